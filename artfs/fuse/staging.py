"""A staging area: the writable, copy-on-write tree behind one artifact's ``@staging/``.

An area starts as a view of a base version: every file is backed by the base's manifest
entry (its bytes read from chunks, nothing copied). A file's first change gives it a local
file holding its bytes; everything else (names, directories, modes) lives in a small SQLite
database. On disk (docs/FORMAT.md, "Mount staging areas"):

    <area>/staging.db     the base, the tree, and what backs each file (SQLite, WAL)
    <area>/files/<n>      the bytes of each file created or changed here
    <area>/lock           flock'd by the one daemon that has the area open

An area nobody changed has no state on disk: the first change writes the whole tree. Every
change is one SQLite transaction, committed before the request that made it returns
(``synchronous=NORMAL``: it survives the daemon being killed); ``sync`` (what fsync(2) on a
staged file asks for) makes it, and the files' directory, survive a power loss too. A local
file's size and mtime are the file's own, so writes cost no database work.

The model knows nothing of FUSE requests: it raises ``OSError`` with the errno a request
should fail with, and calls ``adopt`` for every node it creates (the mount gives it an inode).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import logging
import os
import shutil
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyfuse3

from ..core.manifest import Manifest, ManifestEntry
from .changes import Changes, Snapshot, diff
from .nodes import DirNode, FileNode
from .staged import (
    ROOT_ID,
    STAGING_NAME,
    LocalFile,
    StagedDir,
    StagedFile,
    StagedNode,
    check_name,
    fail,
)

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
DB_NAME = "staging.db"
FILE_MODE = 0o644
DIR_MODE = 0o755
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


def _ignore(node: StagedNode) -> None:
    pass


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


def _entry_json(entry: ManifestEntry | None) -> str | None:
    return None if entry is None else json.dumps({"path": entry.path, **entry.to_json()})


def _entry(text: str) -> ManifestEntry:
    obj = json.loads(text)
    return ManifestEntry.from_json(obj.pop("path"), obj)


class StagingArea:
    """One artifact's staging area. All methods run on one thread (the mount's trio thread,
    or the main thread once it has stopped serving); ``sync`` may run on a worker."""

    def __init__(
        self,
        directory: Path,
        key: AreaKey,
        type: str,
        adopt: Callable[[StagedNode], None] = _ignore,
    ) -> None:
        self.dir = directory
        self.key = key
        self.type = type
        self.adopt = adopt
        self.base: int | None = None
        self.base_digests: dict[str, str] = {}
        self.pending: dict[str, Any] | None = None  # options of a commit asked for, not done
        self.root = StagedDir(
            self, ROOT_ID, STAGING_NAME, None, stat.S_IFDIR | DIR_MODE, time.time_ns()
        )
        self.nodes: dict[int, StagedNode] = {}
        self.db: sqlite3.Connection | None = None
        self.loaded = False
        self.generation = 0  # bumped by every change
        self._next_id = ROOT_ID + 1
        self._next_file = 1
        self._lock_fd: int | None = None
        self._dirs_synced = False

    @property
    def db_path(self) -> Path:
        return self.dir / DB_NAME

    @property
    def files_dir(self) -> Path:
        return self.dir / "files"

    def on_disk(self) -> bool:
        return self.db_path.exists()

    # -- starting: from a base version, or from disk ---------------------------------------

    def start(self, base: int | None, tree: DirNode | None, mtime_ns: int = 0) -> None:
        """Start clean from a base version's tree (None: an artifact without versions)."""
        self.base = base
        self.base_digests = {}
        if tree is not None:
            self._copy_tree(tree, self.root, mtime_ns)
        self.loaded = True

    def _copy_tree(self, source: DirNode, into: StagedDir, mtime_ns: int) -> None:
        stack: list[tuple[DirNode, StagedDir]] = [(source, into)]
        while stack:
            source, into = stack.pop()
            for child in source.children:
                node: StagedNode
                if isinstance(child, FileNode):
                    entry = child.entry
                    node = StagedFile(
                        self,
                        self._id(),
                        child.name,
                        into,
                        stat.S_IFREG | FILE_MODE,
                        mtime_ns,
                        entry,
                        None,
                        entry.size,
                    )
                    self.base_digests[entry.path] = entry.digest
                else:
                    node = StagedDir(
                        self, self._id(), child.name, into, stat.S_IFDIR | DIR_MODE, mtime_ns
                    )
                    stack.append((child, node))  # type: ignore[arg-type]
                self._link(into, node)
                self._add(node)

    def load(self, readonly: bool = False) -> None:
        """Load the area from disk. Not ``readonly``: lock it, and tidy what a crash left
        (local files no row uses; local copies of files a commit had made clean)."""
        try:
            self._load(readonly)
        except BaseException:
            self.close()
            raise

    def _load(self, readonly: bool) -> None:
        if not readonly:
            self._lock()
        self.db = db = _connect(self.db_path)
        meta = dict(db.execute("SELECT key, value FROM meta"))
        if meta.get("format") != str(FORMAT_VERSION):
            raise OSError(errno.EIO, f"{self.db_path}: unknown staging format {meta.get('format')}")
        try:
            self.type = meta["type"]
            self.base = int(meta["base"]) if meta["base"] else None
            self.pending = json.loads(meta["pending"]) if meta["pending"] else None
        except (KeyError, ValueError) as exc:
            raise OSError(errno.EIO, f"{self.db_path}: damaged settings ({exc})") from None
        self.base_digests = dict(db.execute("SELECT path, digest FROM base"))
        rows = db.execute(
            "SELECT id, parent, name, mode, mtime_ns, entry, file FROM nodes"
        ).fetchall()
        used: set[int] = set()
        links: list[tuple[StagedNode, int]] = []
        for id, parent, name, mode, mtime_ns, entry, file in rows:
            node: StagedNode
            if stat.S_ISDIR(mode):
                node = StagedDir(self, id, bytes(name), None, mode, mtime_ns)
            else:
                node = self._loaded_file(id, bytes(name), mode, mtime_ns, entry, file, readonly)
                if file is not None and not readonly:
                    used.add(file)
            links.append((node, parent))
            self._next_id = max(self._next_id, id + 1)
        by_id = {node.id: node for node, _ in links}
        for node, parent_id in links:
            parent = self.root if parent_id == ROOT_ID else by_id.get(parent_id)
            if not isinstance(parent, StagedDir) and parent_id != ROOT_ID:
                log.warning(
                    "%s: node %d has no parent %d; shown at the top",
                    self.key.short,
                    node.id,
                    parent_id,
                )
                parent = self.root
            self._link(parent, node)
        for node, _ in links:
            self._add(node)
        if not readonly:
            self._tidy(used)
        self.loaded = True

    def _loaded_file(
        self,
        id: int,
        name: bytes,
        mode: int,
        mtime_ns: int,
        entry: str | None,
        file: int | None,
        readonly: bool,
    ) -> StagedFile:
        base_entry = _entry(entry) if entry is not None else None
        if file is None:
            assert base_entry is not None
            return StagedFile(
                self, id, name, None, mode, mtime_ns, base_entry, None, base_entry.size
            )
        self._next_file = max(self._next_file, file + 1)
        path = self.files_dir / str(file)
        if base_entry is not None and not readonly:  # a commit made it clean: the chunks serve
            path.unlink(missing_ok=True)
            self.db.execute("UPDATE nodes SET file = NULL WHERE id = ?", (id,))  # type: ignore[union-attr]
            return StagedFile(
                self, id, name, None, mode, mtime_ns, base_entry, None, base_entry.size
            )
        try:
            st = os.stat(path)
        except FileNotFoundError:
            log.warning("%s: the bytes of %r were lost; it is empty now", self.key.short, name)
            if not readonly:
                path.touch()
            st = None
        local = LocalFile(file, path)
        return StagedFile(
            self,
            id,
            name,
            None,
            mode,
            st.st_mtime_ns if st else mtime_ns,
            base_entry,
            local,
            st.st_size if st else 0,
        )

    def _tidy(self, used: set[int]) -> None:
        self.files_dir.mkdir(exist_ok=True)
        for entry in os.scandir(self.files_dir):
            if not entry.name.isdigit() or int(entry.name) not in used:
                # the bytes of a file unlinked while open, or of a copy cut short
                os.unlink(entry.path)

    # -- the tree --------------------------------------------------------------------------

    def _id(self) -> int:
        id = self._next_id
        self._next_id += 1
        return id

    def _add(self, node: StagedNode) -> None:
        self.nodes[node.id] = node
        self.adopt(node)

    def _link(self, parent: StagedDir, node: StagedNode) -> None:
        node.parent = parent
        parent.index[node.name] = node
        if node.is_dir:
            parent.nsubdirs += 1
        parent.changed()

    def _unlink(self, node: StagedNode) -> None:
        parent = node.parent
        assert parent is not None
        del parent.index[node.name]
        if node.is_dir:
            parent.nsubdirs -= 1
        parent.mtime_ns = time.time_ns()
        parent.changed()
        node.parent = None

    def child(self, parent: StagedDir, name: bytes) -> StagedNode:
        node = parent.index.get(name)
        if node is None:
            raise fail(errno.ENOENT)
        return node

    def _check_new(self, parent: StagedDir, name: bytes) -> None:
        if parent.detached:
            raise fail(errno.ENOENT)
        if name in parent.index:
            raise fail(errno.EEXIST)
        check_name(name)

    def walk(self) -> Iterator[tuple[str, StagedFile]]:
        """Every file with its path, in no particular order."""
        stack: list[tuple[str, StagedDir]] = [("", self.root)]
        while stack:
            prefix, directory = stack.pop()
            for node in directory.index.values():
                path = prefix + node.name.decode("utf-8", "surrogateescape")
                if isinstance(node, StagedDir):
                    stack.append((path + "/", node))
                else:
                    yield path, node  # type: ignore[misc]

    def changes(self) -> Changes:
        files = {p: (n.entry.digest if n.entry is not None else None) for p, n in self.walk()}
        return diff(files, self.base_digests)

    # -- persistence -----------------------------------------------------------------------

    def _changing(self) -> sqlite3.Connection:
        """Called before every change: the first one writes the whole area to disk."""
        if self.db is None:
            self._persist()
        self.generation += 1
        return self.db  # type: ignore[return-value]

    def _lock(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise fail(errno.EBUSY, f"{self.dir} is in use by another mount") from None
        self._lock_fd = fd

    def _persist(self) -> None:
        if self._lock_fd is None:
            self._lock()
        self.files_dir.mkdir(exist_ok=True)
        db = _connect(self.db_path)
        try:
            db.executescript(_SCHEMA)
            with self._transaction(db):
                db.execute("DELETE FROM meta")
                db.executemany("INSERT INTO meta VALUES (?, ?)", self._meta().items())
                db.execute("DELETE FROM base")
                db.executemany("INSERT INTO base VALUES (?, ?)", self.base_digests.items())
                db.execute("DELETE FROM nodes")
                rows = (self._row(n) for n in self.nodes.values() if not n.detached)
                db.executemany("INSERT INTO nodes VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        except BaseException:
            db.close()
            raise
        self.db = db
        self._dirs_synced = False

    def _meta(self) -> dict[str, str]:
        return {
            "format": str(FORMAT_VERSION),
            "entity": self.key.entity,
            "project": self.key.project,
            "artifact": self.key.artifact,
            "type": self.type,
            "base": "" if self.base is None else str(self.base),
            "pending": json.dumps(self.pending) if self.pending is not None else "",
            "syncs": "0",
        }

    def _row(self, node: StagedNode) -> tuple[Any, ...]:
        parent = node.parent.id if node.parent is not None else ROOT_ID
        entry = local = None
        if isinstance(node, StagedFile):
            entry = _entry_json(node.entry)
            local = node.local.id if node.local is not None else None
        return (node.id, parent, node.name, node.mode, node.mtime_ns, entry, local)

    @contextlib.contextmanager
    def _transaction(self, db: sqlite3.Connection) -> Iterator[None]:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _set_meta(self, key: str, value: str) -> None:
        if self.db is not None:
            self.db.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key))

    def set_type(self, type: str) -> None:
        self._changing()
        self.type = type
        self._set_meta("type", type)

    def set_pending(self, options: dict[str, Any] | None) -> None:
        """Remember (or forget) that a commit was asked for and could not be done."""
        if self.db is None and options is None:
            return
        self._changing()
        self.pending = options
        self._set_meta("pending", json.dumps(options) if options is not None else "")

    def sync(self) -> None:
        """Make every change so far survive a power loss (may run on a worker thread)."""
        if self.db is None:
            return
        try:
            _fsync_dir(self.files_dir)
        except FileNotFoundError:  # cleared meanwhile: committed, nothing staged to keep
            return
        if not self._dirs_synced:
            for directory in (self.dir, *list(self.dir.parents)[:4]):
                _fsync_dir(directory)
            self._dirs_synced = True
        db = sqlite3.connect(self.db_path, isolation_level=None, timeout=60)
        try:  # a FULL commit fsyncs the WAL, and with it every transaction before it
            db.execute("PRAGMA synchronous=FULL")
            with self._transaction(db):
                db.execute("UPDATE meta SET value = value + 1 WHERE key = 'syncs'")
        finally:
            db.close()

    def close(self) -> None:
        for node in self.nodes.values():
            if isinstance(node, StagedFile):
                self.close_fd(node)
        if self.db is not None:
            self.db.close()
            self.db = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def clear(self) -> None:
        """The area equals its base: drop its state on disk (the next change writes it anew)."""
        if self.db is not None:
            self.db.close()
            self.db = None
        shutil.rmtree(self.dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.dir.parent.rmdir()  # the project's last area
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- changing the tree -----------------------------------------------------------------

    def create(self, parent: StagedDir, name: bytes, mode: int) -> StagedFile:
        """A new empty file (its local file open in ``fd``)."""
        self._check_new(parent, name)
        db = self._changing()
        local = self._new_local()
        node = StagedFile(
            self,
            self._id(),
            name,
            parent,
            stat.S_IFREG | (mode & 0o7777),
            time.time_ns(),
            None,
            local,
            0,
        )
        node.fd = self._open_local(local, os.O_CREAT | os.O_EXCL)
        try:
            db.execute("INSERT INTO nodes VALUES (?, ?, ?, ?, ?, ?, ?)", self._row(node))
        except BaseException:
            self.close_fd(node)
            local.path.unlink(missing_ok=True)
            raise
        self._link(parent, node)
        parent.mtime_ns = node.mtime_ns
        self._add(node)
        return node

    def mkdir(self, parent: StagedDir, name: bytes, mode: int) -> StagedDir:
        self._check_new(parent, name)
        db = self._changing()
        node = StagedDir(
            self, self._id(), name, parent, stat.S_IFDIR | (mode & 0o7777), time.time_ns()
        )
        db.execute("INSERT INTO nodes VALUES (?, ?, ?, ?, ?, ?, ?)", self._row(node))
        self._link(parent, node)
        parent.mtime_ns = node.mtime_ns
        self._add(node)
        return node

    def unlink(self, parent: StagedDir, name: bytes) -> StagedFile:
        """Remove a file's name; the node lives on until ``free``."""
        node = self.child(parent, name)
        if isinstance(node, StagedDir):
            raise fail(errno.EISDIR)
        self._changing().execute("DELETE FROM nodes WHERE id = ?", (node.id,))
        self._unlink(node)
        return node  # type: ignore[return-value]

    def rmdir(self, parent: StagedDir, name: bytes) -> StagedDir:
        node = self.child(parent, name)
        if not isinstance(node, StagedDir):
            raise fail(errno.ENOTDIR)
        if node.index:
            raise fail(errno.ENOTEMPTY)
        self._changing().execute("DELETE FROM nodes WHERE id = ?", (node.id,))
        self._unlink(node)
        return node

    def rename(
        self,
        old_parent: StagedDir,
        old_name: bytes,
        new_parent: StagedDir,
        new_name: bytes,
        flags: int = 0,
    ) -> StagedNode | None:
        """POSIX rename (``flags``: RENAME_NOREPLACE, RENAME_EXCHANGE); returns the node the
        new name used to have, now unlinked (None if there was none, or on an exchange)."""
        if flags & ~(pyfuse3.RENAME_NOREPLACE | pyfuse3.RENAME_EXCHANGE):
            raise fail(errno.EINVAL)
        node = self.child(old_parent, old_name)
        target = new_parent.index.get(new_name)
        if target is node:
            return None
        if isinstance(node, StagedDir) and self._inside(new_parent, node):
            raise fail(errno.EINVAL, "cannot move a directory into itself")
        if flags & pyfuse3.RENAME_EXCHANGE:
            if target is None:
                raise fail(errno.ENOENT)
            if isinstance(target, StagedDir) and self._inside(old_parent, target):
                raise fail(errno.EINVAL, "cannot move a directory into itself")
            self._exchange(node, target)
            return None
        check_name(new_name)
        if target is not None:
            if flags & pyfuse3.RENAME_NOREPLACE:
                raise fail(errno.EEXIST)
            if isinstance(node, StagedDir) and not isinstance(target, StagedDir):
                raise fail(errno.ENOTDIR)
            if isinstance(target, StagedDir):
                if not isinstance(node, StagedDir):
                    raise fail(errno.EISDIR)
                if target.index:
                    raise fail(errno.ENOTEMPTY)
        db = self._changing()
        with self._transaction(db):
            if target is not None:
                db.execute("DELETE FROM nodes WHERE id = ?", (target.id,))
            db.execute(
                "UPDATE nodes SET parent = ?, name = ? WHERE id = ?",
                (new_parent.id, new_name, node.id),
            )
        if target is not None:
            self._unlink(target)
        self._unlink(node)
        node.name = new_name
        self._link(new_parent, node)
        return target

    def _inside(self, directory: StagedDir, ancestor: StagedDir) -> bool:
        node: StagedDir | None = directory
        while node is not None:
            if node is ancestor:
                return True
            node = node.parent
        return False

    def _exchange(self, a: StagedNode, b: StagedNode) -> None:
        db = self._changing()
        pa, pb = a.parent, b.parent
        assert pa is not None and pb is not None
        with self._transaction(db):
            db.execute("UPDATE nodes SET parent = ?, name = ? WHERE id = ?", (pb.id, b.name, a.id))
            db.execute("UPDATE nodes SET parent = ?, name = ? WHERE id = ?", (pa.id, a.name, b.id))
        self._unlink(a)
        self._unlink(b)
        a.name, b.name = b.name, a.name
        self._link(pb, a)
        self._link(pa, b)

    def set_mode(self, node: StagedNode, mode: int) -> None:
        mode = stat.S_IFMT(node.mode) | (mode & 0o7777)
        if node.id != ROOT_ID:
            self._changing().execute("UPDATE nodes SET mode = ? WHERE id = ?", (mode, node.id))
        node.mode = mode
        node.changed()

    def set_mtime(self, node: StagedNode, mtime_ns: int) -> None:
        """A local file keeps its mtime itself; other nodes in their row."""
        if isinstance(node, StagedFile) and node.local is not None and node.entry is None:
            os.utime(node.local.path, ns=(mtime_ns, mtime_ns))
        elif node.id != ROOT_ID:
            self._changing().execute(
                "UPDATE nodes SET mtime_ns = ? WHERE id = ?", (mtime_ns, node.id)
            )
        node.mtime_ns = mtime_ns
        node.changed()

    # -- file bytes ------------------------------------------------------------------------

    def _new_local(self) -> LocalFile:
        id = self._next_file
        self._next_file += 1
        return LocalFile(id, self.files_dir / str(id))

    def _open_local(self, local: LocalFile, flags: int = 0) -> int:
        return os.open(local.path, os.O_RDWR | os.O_CLOEXEC | flags, 0o600)

    def writable(self, node: StagedFile) -> bool:
        """Whether writes may go straight to the node's local file (else ``new_local`` and
        a copy of its bytes, then ``use_local``)."""
        return node.local is not None and not node.local.frozen

    def new_local(self) -> LocalFile:
        """An empty local file, to fill with a copy of a file's bytes before ``use_local``."""
        self._changing()
        local = self._new_local()
        os.close(self._open_local(local, os.O_CREAT | os.O_EXCL))
        return local

    def use_local(self, node: StagedFile, local: LocalFile) -> None:
        """Back ``node`` by ``local`` from now on: its bytes differ from any entry."""
        db = self._changing()
        db.execute("UPDATE nodes SET entry = NULL, file = ? WHERE id = ?", (local.id, node.id))
        self.close_fd(node)
        old = node.local
        node.local, node.entry = local, None
        local.node = node
        if old is not None:
            old.node = None
            self._drop(old)
        node.size = os.stat(local.path).st_size
        node.mtime_ns = time.time_ns()
        node.changed()

    def fd(self, node: StagedFile) -> int:
        """The open local file of a node backed by one."""
        assert node.local is not None
        if node.fd is None:
            node.fd = self._open_local(node.local)
        return node.fd

    def close_fd(self, node: StagedFile) -> None:
        if node.fd is not None:
            os.close(node.fd)
            node.fd = None

    def write(self, node: StagedFile, offset: int, data: bytes) -> int:
        """Write to a ``writable`` node's local file."""
        written = os.pwrite(self.fd(node), data, offset)
        self._modified(node, max(node.size, offset + written))
        return written

    def truncate(self, node: StagedFile, size: int) -> None:
        """Set a ``writable`` node's size."""
        os.ftruncate(self.fd(node), size)
        self._modified(node, size)

    def _modified(self, node: StagedFile, size: int) -> None:
        if node.entry is not None:  # local bytes equal to a committed entry until now
            self._changing().execute("UPDATE nodes SET entry = NULL WHERE id = ?", (node.id,))
            node.entry = None
        self.generation += 1
        node.size = size
        node.mtime_ns = time.time_ns()
        node.changed()

    def closed(self, node: StagedFile) -> None:
        """The last handle on ``node`` was released: close its local file, and drop it if
        its bytes are a committed entry's (reads then come from the chunks)."""
        self.close_fd(node)
        local = node.local
        if node.entry is not None and local is not None and not local.frozen:
            if self.db is not None:
                self.db.execute("UPDATE nodes SET file = NULL WHERE id = ?", (node.id,))
            node.local = None
            local.node = None
            self._drop(local)

    def free(self, node: StagedNode) -> None:
        """Forget an unlinked node nothing refers to any more, with its bytes."""
        self.nodes.pop(node.id, None)
        if isinstance(node, StagedFile):
            self.close_fd(node)
            if node.local is not None:
                node.local.node = None
                self._drop(node.local)
                node.local = None

    def _drop(self, local: LocalFile) -> None:
        if local.node is None and not local.frozen:
            local.path.unlink(missing_ok=True)

    # -- committing ------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        entries: list[ManifestEntry] = []
        sources: dict[str, Path] = {}
        frozen: list[tuple[str, LocalFile]] = []
        files: dict[str, str | None] = {}
        for path, node in self.walk():
            if node.entry is not None:
                entry = node.entry
                if entry.path != path:
                    entry = dataclasses.replace(entry, path=path)
                entries.append(entry)
                files[path] = entry.digest
            else:
                assert node.local is not None
                node.local.frozen += 1
                sources[path] = node.local.path
                frozen.append((path, node.local))
                files[path] = None
        changes = diff(files, self.base_digests)
        return Snapshot(self.generation, self.base, entries, sources, frozen, changes)

    def released(self, snapshot: Snapshot) -> None:
        """A commit of ``snapshot`` failed: nothing changes but the freeze."""
        for _, local in snapshot.frozen:
            local.frozen -= 1
            self._drop(local)

    def committed(self, snapshot: Snapshot, manifest: Manifest, number: int) -> None:
        """``snapshot`` is now version ``number`` (whose files are ``manifest``): that is
        the new base, and the files committed from local bytes are backed by their entries
        (an open one keeps reading its local bytes until closed)."""
        self.base = number
        self.base_digests = {e.path: e.digest for e in manifest}
        self.pending = None
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
            self._drop(local)
        if self.generation == snapshot.generation and not self._holds_local():
            self.clear()
            return
        db = self._changing()
        with self._transaction(db):
            db.executemany(
                "UPDATE meta SET value = ? WHERE key = ?", [(str(number), "base"), ("", "pending")]
            )
            db.execute("DELETE FROM base")
            db.executemany("INSERT INTO base VALUES (?, ?)", self.base_digests.items())
            db.executemany(
                "UPDATE nodes SET entry = ?, file = ? WHERE id = ?",
                [(_entry_json(n.entry), n.local.id if n.local else None, n.id) for n in updated],
            )

    def _holds_local(self) -> bool:
        return any(isinstance(n, StagedFile) and n.local is not None for n in self.nodes.values())
