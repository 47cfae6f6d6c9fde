"""A per-user cache of file digests keyed by (device, inode) and validated by size, mtime and
ctime, so re-putting or re-getting an unchanged tree reads no file bytes.

An entry is trusted only if the file's times are at least ``RACY_NS`` older than the moment
it was hashed: a write landing in the same clock tick as the hash could otherwise leave
size and times unchanged (git's "racily clean" problem).

The database's ``user_version`` is its format (``FORMAT``). It is a cache: one of another
format (older, or written by a newer artfs) is emptied and rebuilt as files are hashed.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path

from ..core.chunking import ChunkRef, FileContent, hash_fd

RACY_NS = 1_000_000_000
FORMAT = 1  # artfs 0.1 wrote format 1 without recording it (user_version 0)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    dev INTEGER NOT NULL, ino INTEGER NOT NULL, chunk_size INTEGER NOT NULL,
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
    hashed_ns INTEGER NOT NULL, digest TEXT NOT NULL, chunks TEXT,
    PRIMARY KEY (dev, ino, chunk_size)
)
"""


def _format(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchall()[0][0])


def _key(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, max(st.st_mtime_ns, st.st_ctime_ns)


class _Handle:
    """One thread's connection, which ``HashCache.close`` may close from another thread."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn: sqlite3.Connection | None = conn


class HashCache:
    """Each thread gets its own connection; ``close`` closes them all (a thread that uses
    the cache again opens a new one)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._handles: weakref.WeakSet[_Handle] = weakref.WeakSet()
        self._lock = threading.Lock()
        self.path = path
        conn = self._conn()
        if _format(conn) != FORMAT:
            self._rebuild_unless_current(conn)

    @staticmethod
    def _rebuild_unless_current(conn: sqlite3.Connection) -> None:
        """Under the write lock (another process may be doing the same): keep a cache of
        this format, else drop its table and start empty."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            found = _format(conn)
            if (
                found == 0
                and conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'files'").fetchall()
            ):
                found = 1  # written by artfs 0.1
            if found != FORMAT:
                conn.execute("DROP TABLE IF EXISTS files")
            conn.execute(_SCHEMA)
            conn.execute(f"PRAGMA user_version = {FORMAT}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _conn(self) -> sqlite3.Connection:
        handle: _Handle | None = getattr(self._local, "handle", None)
        conn = handle.conn if handle is not None else None
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=60, isolation_level=None, check_same_thread=False
            )
            _use_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.handle = handle = _Handle(conn)
            with self._lock:
                self._handles.add(handle)
        return conn

    def close(self) -> None:
        """Close every thread's connection (a thread that ended took its own along)."""
        with self._lock:
            handles = list(self._handles)
        for handle in handles:
            conn, handle.conn = handle.conn, None
            if conn is not None:
                conn.close()

    def lookup_many(
        self, stats: Sequence[os.stat_result], chunk_size: int
    ) -> list[FileContent | None]:
        """Cached contents for files with these stats (None where unknown or stale)."""
        wanted = {(st.st_dev, st.st_ino) for st in stats}
        rows: dict[tuple[int, int], tuple] = {}
        conn = self._conn()
        inodes = sorted(wanted)
        for start in range(0, len(inodes), 400):
            part = inodes[start : start + 400]
            marks = ",".join("(?,?)" for _ in part)
            query = (
                "SELECT dev, ino, size, mtime_ns, ctime_ns, hashed_ns, digest, chunks FROM files "
                f"WHERE chunk_size = ? AND (dev, ino) IN (VALUES {marks})"
            )
            args = [chunk_size, *[v for pair in part for v in pair]]
            for dev, ino, *rest in conn.execute(query, args):
                rows[(dev, ino)] = tuple(rest)
        out: list[FileContent | None] = []
        for st in stats:
            row = rows.get((st.st_dev, st.st_ino))
            size, mtime, ctime, newest = _key(st)
            if row is None or row[:3] != (size, mtime, ctime) or row[3] - newest < RACY_NS:
                out.append(None)
                continue
            digest, chunks = row[4], row[5]
            refs = (
                tuple(ChunkRef(d, s) for d, s in json.loads(chunks))
                if chunks
                else ((ChunkRef(digest, size),) if size else ())
            )
            out.append(FileContent(size, refs))
        return out

    def store_many(
        self,
        items: Sequence[tuple[os.stat_result, FileContent]],
        chunk_size: int,
        hashed: int,
    ) -> None:
        """Remember contents; ``hashed`` is ``time.time_ns()`` taken before the first of these
        files was statted, the moment the racy-window rule measures from."""
        rows = [
            (
                st.st_dev,
                st.st_ino,
                chunk_size,
                st.st_size,
                st.st_mtime_ns,
                st.st_ctime_ns,
                hashed,
                content.digest,
                json.dumps([[c.digest, c.size] for c in content.chunks])
                if len(content.chunks) > 1
                else None,
            )
            for st, content in items
        ]
        conn = self._conn()
        conn.execute("BEGIN")
        conn.executemany("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?,?,?)", rows)
        conn.execute("COMMIT")

    def content(self, path: Path, chunk_size: int) -> FileContent:
        """One file's content digests, from the cache if it can say, else by hashing it."""
        started = time.time_ns()
        cached = self.lookup_many([os.stat(path)], chunk_size)[0]
        if cached is not None:
            return cached
        st, content = stat_and_hash(path, chunk_size)
        self.store_many([(st, content)], chunk_size, started)
        return content


def stat_and_hash(path: Path, chunk_size: int) -> tuple[os.stat_result, FileContent]:
    """Hash a file, with the stat taken from the open descriptor before reading: a write
    racing the hash changes the times, so the cache entry is not trusted later."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.fstat(fd), hash_fd(fd, chunk_size)
    finally:
        os.close(fd)


def _use_wal(conn: sqlite3.Connection) -> None:
    """Put the cache in WAL mode once. Switching needs an exclusive lock, for which SQLite
    does not wait when the connection already reads: processes opening a new cache together
    see "database is locked", and the one that lost finds the mode set by the winner."""
    for _ in range(50):
        if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            return
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            time.sleep(0.1)
    raise sqlite3.OperationalError("cannot put the hash cache in WAL mode: database is locked")
