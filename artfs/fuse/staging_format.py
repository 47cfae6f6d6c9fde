"""Versions of a staging area's database (``staging.db``, docs/FORMAT.md "Mount staging
areas"): the format this artfs writes, and the steps that bring an area written by an older
artfs up to it when the area is loaded. Staged changes outlive upgrades of artfs: a daemon
killed before it could commit leaves them for whichever version mounts next."""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Callable
from pathlib import Path

FORMAT_VERSION = 1

# Format N -> the step that rewrites an area of format N (its tables, its entries) into
# format N + 1. Steps run in order, in one transaction, with the area locked; the loader
# then records the new format in ``meta``.
UPGRADES: dict[int, Callable[[sqlite3.Connection], None]] = {}


def found_format(db: sqlite3.Connection, path: Path) -> int:
    """The area's format; ``OSError(EIO)`` in one line if this artfs cannot read it."""
    row = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
    text = row[0] if row else None
    if text is None or not text.isdigit():
        raise OSError(errno.EIO, f"{path}: unknown staging format {text!r}")
    found = int(text)
    if found > FORMAT_VERSION:
        raise OSError(
            errno.EIO,
            f"{path}: written by a newer artfs (staging format {found}; this artfs reads up "
            f"to {FORMAT_VERSION}): commit it with that version, or upgrade artfs",
        )
    missing = [n for n in range(found, FORMAT_VERSION) if n not in UPGRADES]
    if missing:
        raise OSError(errno.EIO, f"{path}: no upgrade from staging format {missing[0]}")
    return found


def upgrade(db: sqlite3.Connection, found: int) -> None:
    """Run the steps from format ``found`` to ``FORMAT_VERSION`` in one transaction."""
    db.execute("BEGIN IMMEDIATE")
    try:
        for step in range(found, FORMAT_VERSION):
            UPGRADES[step](db)
        db.execute("UPDATE meta SET value = ? WHERE key = 'format'", (str(FORMAT_VERSION),))
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def loaded(db: sqlite3.Connection, path: Path, readonly: bool) -> sqlite3.Connection:
    """``db`` in the current format. Loaded ``readonly`` (``artfs status`` while the area may
    be in use), an older area is upgraded in a copy in memory and the file stays as it is."""
    found = found_format(db, path)
    if found == FORMAT_VERSION:
        return db
    if readonly:
        copy = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        db.backup(copy)
        db.close()
        db = copy
    upgrade(db, found)
    return db
