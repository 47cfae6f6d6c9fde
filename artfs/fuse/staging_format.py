"""Versions of a staging area's journal (``staging.db``, docs/FORMAT.md) and the steps that
upgrade an older one in place when an area is loaded.

Format 2 (artfs 0.2) stores manifest entries in manifest format 2: a file of several chunks
has the digest its chunk list gives, not the whole file's BLAKE3 that format 1 recorded.
"""

from __future__ import annotations

import errno
import json
import sqlite3
from collections.abc import Callable

from ..core.errors import ArtfsError
from ..core.manifest import ManifestEntry

FORMAT_VERSION = 2


def _entries_to_format_2(db: sqlite3.Connection) -> None:
    """Rewrite each entry as manifest format 2, and the base digests that changed with them
    (a base file still in the tree has its entry; a deleted one only needs its path)."""
    renamed: dict[str, str] = {}
    for node_id, text in db.execute("SELECT id, entry FROM nodes WHERE entry IS NOT NULL"):
        obj = json.loads(text)
        path = obj.pop("path")
        entry = ManifestEntry.from_json(path, obj, version=1).check()
        renamed[obj["digest"]] = entry.digest
        db.execute(
            "UPDATE nodes SET entry = ? WHERE id = ?",
            (json.dumps({"path": path, **entry.to_json()}), node_id),
        )
    for old, new in renamed.items():
        if old != new:
            db.execute("UPDATE base SET digest = ? WHERE digest = ?", (new, old))


UPGRADES: dict[int, Callable[[sqlite3.Connection], None]] = {1: _entries_to_format_2}


def upgrade(db: sqlite3.Connection, found: str | None, where: str) -> None:
    """Bring a journal of format ``found`` to ``FORMAT_VERSION``, one step per transaction;
    a format newer than this code is an error (one line), never a guess."""
    try:
        version = int(found or "")
    except ValueError:
        raise OSError(errno.EIO, f"{where}: unknown staging format {found!r}") from None
    if version > FORMAT_VERSION:
        raise OSError(
            errno.EIO, f"{where}: staging format {version} is newer than this artfs knows"
        )
    while version < FORMAT_VERSION:
        step = UPGRADES.get(version)
        if step is None:
            raise OSError(errno.EIO, f"{where}: no upgrade from staging format {version}")
        db.execute("BEGIN IMMEDIATE")
        try:
            step(db)
            version += 1
            db.execute("UPDATE meta SET value = ? WHERE key = 'format'", (str(version),))
            db.execute("COMMIT")
        except (sqlite3.Error, ArtfsError, ValueError, KeyError) as exc:
            db.execute("ROLLBACK")
            raise OSError(errno.EIO, f"{where}: upgrading staging format: {exc}") from None
