"""A staging area's commit bookkeeping: the frozen snapshot a commit sends, and the area
settled after it (the committed version is the new base, or nothing changes).

A snapshot holds a staged file backed by an entry as that entry (moved to the file's path,
with its mode and mtime: nothing is read or hashed), a local file as a file to hash (frozen:
a write meanwhile copies it first), a link as its entry, and each empty directory as a
``dir`` entry.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..core.manifest import Manifest, ManifestEntry, file_mode
from .changes import Snapshot, entry_identity
from .localfiles import LocalFile
from .staged import StagedDir, StagedFile, StagedNode
from .staging import StagingArea, backing, is_entry


def take(area: StagingArea) -> Snapshot:
    """Freeze what a commit of ``area`` sends (``released`` or ``committed`` unfreezes)."""
    entries: list[ManifestEntry] = []
    sources: dict[str, Path] = {}
    frozen: list[tuple[str, LocalFile]] = []
    for path, node in area.walk():
        if not is_entry(node):
            continue
        entry = _entry(path, node)
        if entry is not None:
            entries.append(entry)
        else:
            assert isinstance(node, StagedFile) and node.local is not None
            node.local.frozen += 1
            sources[path] = node.local.path
            frozen.append((path, node.local))
    return Snapshot(area.generation, area.base, entries, sources, frozen, area.changes())


def _entry(path: str, node: StagedNode) -> ManifestEntry | None:
    """The entry a commit makes of ``node`` at ``path``; None for a file whose bytes are
    local (the commit hashes them)."""
    if isinstance(node, StagedDir):
        return ManifestEntry.directory(path, node.mtime_ns)
    entry = backing(node)
    if entry is None:
        return None
    mode = file_mode(node.mode) if isinstance(node, StagedFile) else entry.mode
    if (entry.path, entry.mode, entry.mtime_ns) == (path, mode, node.mtime_ns):
        return entry
    return dataclasses.replace(entry, path=path, mode=mode, mtime_ns=node.mtime_ns)


def released(area: StagingArea, snapshot: Snapshot) -> None:
    """A commit of ``snapshot`` failed: nothing changes but the freeze."""
    for _, local in snapshot.frozen:
        local.frozen -= 1
        area.files.drop(local)


def committed(area: StagingArea, snapshot: Snapshot, manifest: Manifest, number: int) -> None:
    """``snapshot`` is now version ``number`` (whose entries are ``manifest``): that is the
    new base, and the files committed from local bytes are backed by their entries (an open
    one keeps reading its local bytes until closed)."""
    area.base = number
    area.base_digests = {e.path: entry_identity(e) for e in manifest}
    area.pending = None
    updated: list[StagedFile] = []
    for path, local in snapshot.frozen:
        local.frozen -= 1
        node, entry = local.node, manifest.get(path)
        if node is not None and entry is not None:
            node.entry = entry
            if not node.detached:
                updated.append(node)
            if not node.opened:
                node.local = None
                local.node = None
        area.files.drop(local)
    if area.generation == snapshot.generation and not area.holds_local():
        area.clear()
        return
    area.changing().rebase(
        number,
        area.base_digests,
        [(n.id, n.entry, n.local.id if n.local else None) for n in updated],
    )
