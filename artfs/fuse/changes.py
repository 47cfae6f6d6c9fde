"""What committing a staging area would change (``git status``-like), and the frozen view
of the area a commit sends.

A staged node is compared with the base version's entry at its path by *identity*: a file's
digest and executable bit, a link's target, or that it is a directory (only empty ones are
entries of a version). Mtimes are not compared: a version's digest leaves them out, so a
``touch`` alone makes no new version.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..core.manifest import DIR, FILE_MODE, LINK, ManifestEntry, file_mode
from .localfiles import LocalFile

DIR_IDENTITY = "dir"


def identity(mode: int, entry: ManifestEntry | None) -> str | None:
    """The identity of a node of ``st_mode`` backed by ``entry`` (None: a file whose bytes
    are local, not hashed until the commit)."""
    if stat.S_ISDIR(mode):
        return DIR_IDENTITY
    if entry is None:
        return None
    if stat.S_ISLNK(mode):
        return f"-> {entry.link}"
    executable = file_mode(mode) != FILE_MODE
    return f"{entry.digest} 755" if executable else entry.digest


def entry_identity(entry: ManifestEntry) -> str:
    """The identity of a version's entry (what the ``base`` table holds)."""
    kind = {DIR: stat.S_IFDIR, LINK: stat.S_IFLNK}.get(entry.kind, stat.S_IFREG)
    found = identity(kind | entry.mode, entry)
    assert found is not None
    return found


@dataclass
class Changes:
    """What a commit of the area would change, like ``git status``."""

    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.modified or self.deleted)

    def counts(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "modified": len(self.modified),
            "deleted": len(self.deleted),
        }

    def summary(self) -> str:
        return ", ".join(f"{n} {what}" for what, n in self.counts().items())

    def lines(self) -> list[str]:
        marked = [(p, "A") for p in self.added] + [(p, "M") for p in self.modified]
        marked += [(p, "D") for p in self.deleted]
        return [f"{mark} {path}" for path, mark in sorted(marked)]


def diff(staged: dict[str, str | None], base: dict[str, str]) -> Changes:
    """Compare ``path -> identity`` of the staged nodes (files, links, empty directories)
    with the base version's. A directory of the base that is no longer empty is not
    deleted: it is still there, with entries of its own."""
    changes = Changes()
    for path, found in staged.items():
        known = base.get(path)
        if known is None:
            changes.added.append(path)
        elif found != known:
            changes.modified.append(path)
    changes.deleted = [p for p in base if p not in staged]
    if any(base[p] == DIR_IDENTITY for p in changes.deleted):
        parents = set()  # every directory above a staged path
        for path in staged:
            path = path.rpartition("/")[0]
            while path and path not in parents:
                parents.add(path)
                path = path.rpartition("/")[0]
        changes.deleted = [
            p for p in changes.deleted if not (base[p] == DIR_IDENTITY and p in parents)
        ]
    for paths in (changes.added, changes.modified, changes.deleted):
        paths.sort()
    return changes


@dataclass
class Snapshot:
    """The area as a commit sends it: base-backed files, links and empty directories as
    their entries (no hashing), local files as files to hash, frozen until the commit is
    over."""

    generation: int
    base: int | None
    entries: list[ManifestEntry]
    sources: dict[str, Path]
    frozen: list[tuple[str, LocalFile]]
    changes: Changes
