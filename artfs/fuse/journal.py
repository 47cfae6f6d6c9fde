"""A staging area's journal: ``<area>/staging.db`` (SQLite, WAL; docs/FORMAT.md, "Mount
staging areas"), which holds the area's settings, its base version's entries and its tree.

Every change is one transaction, committed before the request that made it returns
(``synchronous=NORMAL``: it survives the daemon being killed); ``sync`` makes every change
so far survive a power loss too. The journal knows rows, not nodes, and needs neither
pyfuse3 nor trio: ``artfs status`` reads it (``stored_changes``) without the mount extra.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import sqlite3
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..core.manifest import ManifestEntry
from .changes import Changes, diff, identity
from .localfiles import fsync_dir
from .staging_format import FORMAT_VERSION, upgrade

DB_NAME = "staging.db"
ROOT_ID = 0  # the parent of what @staging/ holds
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS base (path TEXT PRIMARY KEY, digest TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    id INTEGER PRIMARY KEY,
    parent INTEGER NOT NULL,
    name BLOB NOT NULL,
    mode INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    entry TEXT,
    file INTEGER
);
"""
# (id, parent, name, st_mode, mtime_ns, the entry backing it as JSON, local file id)
Row = tuple[int, int, bytes, int, int, str | None, int | None]
Backing = tuple[int, ManifestEntry | None, int | None]  # (id, entry, local file id)


@dataclass(frozen=True)
class AreaKey:
    entity: str
    project: str
    artifact: str

    @property
    def collection(self) -> str:
        return f"{self.entity}/{self.project}/{self.artifact}"

    @property
    def short(self) -> str:
        """How the mount shows it: ``project/artifact``."""
        return f"{self.project}/{self.artifact}"


def entry_json(entry: ManifestEntry | None) -> str | None:
    return None if entry is None else json.dumps({"path": entry.path, **entry.to_json()})


def parse_entry(text: str) -> ManifestEntry:
    obj = json.loads(text)
    return ManifestEntry.from_json(obj.pop("path"), obj)


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=60)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def read_meta(directory: Path) -> dict[str, str]:
    """An area's settings (type, base, ...) without loading it."""
    db = sqlite3.connect(directory / DB_NAME, timeout=60)
    try:
        return dict(db.execute("SELECT key, value FROM meta"))
    finally:
        db.close()


class Journal:
    """The journal of the area in ``directory``; ``db`` is None until it is opened (an area
    nobody changed has none: ``create`` writes the whole area at its first change)."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.db: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._dirs_synced = False

    @property
    def path(self) -> Path:
        return self.dir / DB_NAME

    def exists(self) -> bool:
        return self.path.exists()

    def lock(self) -> None:
        """Take the area for this process (``<area>/lock``), or fail with ``EBUSY``."""
        if self._lock_fd is not None:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OSError(errno.EBUSY, f"{self.dir} is in use by another mount") from None
        self._lock_fd = fd

    def open(self) -> tuple[dict[str, str], dict[str, str], list[Row]]:
        """Open the journal on disk (upgrading an older format): settings, base, rows."""
        self.db = db = _connect(self.path)
        meta = dict(db.execute("SELECT key, value FROM meta"))
        if meta.get("format") != str(FORMAT_VERSION):
            upgrade(db, meta.get("format"), str(self.path))
        base = dict(db.execute("SELECT path, digest FROM base"))
        rows = db.execute(
            "SELECT id, parent, name, mode, mtime_ns, entry, file FROM nodes"
        ).fetchall()
        return meta, base, [(i, p, bytes(n), m, t, e, f) for i, p, n, m, t, e, f in rows]

    def create(self, meta: dict[str, str], base: dict[str, str], rows: Iterable[Row]) -> None:
        """Write a whole area: its first change."""
        self.lock()
        db = _connect(self.path)
        try:
            db.executescript(_SCHEMA)
            with _transaction(db):
                db.execute("DELETE FROM meta")
                db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
                db.execute("DELETE FROM base")
                db.executemany("INSERT INTO base VALUES (?, ?)", base.items())
                db.execute("DELETE FROM nodes")
                db.executemany("INSERT INTO nodes VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        except BaseException:
            db.close()
            raise
        self.db = db
        self._dirs_synced = False

    def _db(self) -> sqlite3.Connection:
        assert self.db is not None, "the journal is written once the area is (create)"
        return self.db

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with _transaction(self._db()):
            yield

    def insert(self, row: Row) -> None:
        self._db().execute("INSERT INTO nodes VALUES (?, ?, ?, ?, ?, ?, ?)", row)

    def delete(self, id: int) -> None:
        self._db().execute("DELETE FROM nodes WHERE id = ?", (id,))

    def move(self, id: int, parent: int, name: bytes) -> None:
        self._db().execute("UPDATE nodes SET parent = ?, name = ? WHERE id = ?", (parent, name, id))

    def set_mode(self, id: int, mode: int) -> None:
        self._db().execute("UPDATE nodes SET mode = ? WHERE id = ?", (mode, id))

    def set_mtime(self, id: int, mtime_ns: int) -> None:
        self._db().execute("UPDATE nodes SET mtime_ns = ? WHERE id = ?", (mtime_ns, id))

    def set_backing(self, id: int, entry: ManifestEntry | None, file: int | None) -> None:
        """What holds a file's bytes now: an entry's chunks, a local file, or both."""
        self._db().execute(
            "UPDATE nodes SET entry = ?, file = ? WHERE id = ?", (entry_json(entry), file, id)
        )

    def set_meta(self, key: str, value: str) -> None:
        if self.db is not None:
            self.db.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key))

    def rebase(
        self,
        number: int,
        base: dict[str, str],
        backing: Iterable[tuple[int, ManifestEntry | None, int | None]],
    ) -> None:
        """A commit made version ``number`` (whose entries are ``base``) the area's base;
        ``backing`` is (id, entry, local file) of each file it committed."""
        db = self._db()
        with _transaction(db):
            db.executemany(
                "UPDATE meta SET value = ? WHERE key = ?", [(str(number), "base"), ("", "pending")]
            )
            db.execute("DELETE FROM base")
            db.executemany("INSERT INTO base VALUES (?, ?)", base.items())
            db.executemany(
                "UPDATE nodes SET entry = ?, file = ? WHERE id = ?",
                [(entry_json(entry), file, id) for id, entry, file in backing],
            )

    def sync(self) -> None:
        """Make every change so far survive a power loss (may run on a worker thread)."""
        if not self._dirs_synced:
            for directory in (self.dir, *list(self.dir.parents)[:4]):
                fsync_dir(directory)
            self._dirs_synced = True
        db = sqlite3.connect(self.path, isolation_level=None, timeout=60)
        try:  # a FULL commit fsyncs the WAL, and with it every transaction before it
            db.execute("PRAGMA synchronous=FULL")
            with _transaction(db):
                db.execute("UPDATE meta SET value = value + 1 WHERE key = 'syncs'")
        finally:
            db.close()

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def clear(self) -> None:
        """Drop the area's state on disk (the next change writes it anew)."""
        if self.db is not None:
            self.db.close()
            self.db = None
        shutil.rmtree(self.dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.dir.parent.rmdir()  # the project's last area
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def stored_changes(directory: Path) -> tuple[dict[str, str], Changes]:
    """An area's settings and what committing it would change, read from its journal (the
    daemon need not run; nothing is locked or tidied)."""
    journal = Journal(directory)
    try:
        meta, base, rows = journal.open()
    finally:
        journal.close()
    paths: dict[int, str] = {ROOT_ID: ""}
    by_id = {row[0]: row for row in rows}
    parents = {row[1] for row in rows}

    def path_of(id: int) -> str:
        found = paths.get(id)
        if found is None:
            row = by_id[id]
            above = path_of(row[1]) if row[1] in by_id or row[1] == ROOT_ID else ""
            found = paths[id] = f"{above}/{row[2].decode('utf-8', 'surrogateescape')}".lstrip("/")
        return found

    staged: dict[str, str | None] = {}
    for id, _, _, mode, _, entry, _ in rows:
        if not (stat.S_ISDIR(mode) and id in parents):
            staged[path_of(id)] = identity(mode, parse_entry(entry) if entry else None)
    return meta, diff(staged, base)
