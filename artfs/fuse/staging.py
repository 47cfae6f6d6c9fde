"""A staging area: the writable, copy-on-write tree behind one artifact's ``@staging/``.

An area starts as a view of a base version: every file is backed by the base's manifest
entry (its bytes read from chunks, nothing copied), with the version's modes, mtimes, links
and empty directories. A file's first change gives it a local file holding its bytes
(``localfiles``; reading and writing them is ``filebytes``' job); everything else (names,
directories, links, modes, mtimes) is kept in the area's journal (``journal``). On disk
(docs/FORMAT.md, "Mount staging areas"):

    <area>/staging.db     the journal: the base, the tree, what backs each file
    <area>/files/<n>      the bytes of each file created or changed here
    <area>/lock           flock'd by the one daemon that has the area open

An area nobody changed has no state on disk: the first change writes the whole tree. What a
commit sends is ``snapshots``' job.

The model knows nothing of FUSE requests: it raises ``OSError`` with the errno a request
should fail with, and calls ``adopt`` for every node it creates (the mount gives it an inode).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyfuse3

from ..core.errors import InvalidPath
from ..core.manifest import ManifestEntry
from ..core.paths import check_link
from .changes import DIR_IDENTITY, Changes, diff, entry_identity, identity
from .filebytes import FileBytes
from .journal import ROOT_ID, AreaKey, Journal, Row, entry_json, parse_entry
from .localfiles import LocalFile, LocalFiles, local_mode
from .nodes import DirNode, FileNode, LinkNode
from .staged import STAGING_NAME, StagedDir, StagedFile, StagedLink, StagedNode, check_name, fail
from .staging_format import FORMAT_VERSION

log = logging.getLogger(__name__)

FILE_MODE = 0o644
DIR_MODE = 0o755


def _ignore(node: StagedNode) -> None:
    pass


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
        self.base_digests: dict[str, str] = {}  # path -> identity of the base's entries
        self.pending: dict[str, Any] | None = None  # options of a commit asked for, not done
        self.root = StagedDir(
            self, ROOT_ID, STAGING_NAME, None, stat.S_IFDIR | DIR_MODE, time.time_ns()
        )
        self.nodes: dict[int, StagedNode] = {}
        self.journal = Journal(directory)
        self.files = LocalFiles(directory / "files")
        self.bytes = FileBytes(self)
        self.loaded = False
        self.generation = 0  # bumped by every change
        self._next_id = ROOT_ID + 1

    @property
    def db_path(self) -> Path:
        return self.journal.path

    @property
    def files_dir(self) -> Path:
        return self.files.dir

    def on_disk(self) -> bool:
        return self.journal.exists()

    # -- starting: from a base version, or from disk ---------------------------------------

    def start(self, base: int | None, tree: DirNode | None, mtime_ns: int = 0) -> None:
        """Start clean from a base version's tree (None: an artifact without versions);
        ``mtime_ns`` is the version's time, for entries that record none."""
        self.base = base
        self.base_digests = {}
        if tree is not None:
            self._copy_tree(tree, mtime_ns)
        self.loaded = True

    def _copy_tree(self, top: DirNode, mtime_ns: int) -> None:
        stack: list[tuple[DirNode, StagedDir]] = [(top, self.root)]
        while stack:
            source, into = stack.pop()
            if source is not top and not source.children:
                self.base_digests[into.path] = DIR_IDENTITY
            for child in source.children:
                node: StagedNode
                if isinstance(child, DirNode):
                    when = mtime_ns if child.mtime_ns is None else child.mtime_ns
                    node = StagedDir(
                        self, self._id(), child.name, into, stat.S_IFDIR | DIR_MODE, when
                    )
                    stack.append((child, node))
                else:
                    assert isinstance(child, FileNode | LinkNode)
                    entry = child.entry
                    when = mtime_ns if entry.mtime_ns is None else entry.mtime_ns
                    if isinstance(child, LinkNode):
                        node = StagedLink(self, self._id(), child.name, into, when, entry)
                    else:
                        mode = stat.S_IFREG | entry.mode
                        node = StagedFile(
                            self, self._id(), child.name, into, mode, when, entry, None, entry.size
                        )
                    self.base_digests[entry.path] = entry_identity(entry)
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
            self.journal.lock()
        meta, base, rows = self.journal.open()
        try:
            self.type = meta["type"]
            self.base = int(meta["base"]) if meta["base"] else None
            self.pending = json.loads(meta["pending"]) if meta["pending"] else None
        except (KeyError, ValueError) as exc:
            raise OSError(errno.EIO, f"{self.db_path}: damaged settings ({exc})") from None
        self.base_digests = base
        used: set[int] = set()
        links: list[tuple[StagedNode, int]] = []
        for row in rows:
            node = self._loaded(row, readonly)
            if isinstance(node, StagedFile) and node.local is not None:
                used.add(node.local.id)
            links.append((node, row[1]))
            self._next_id = max(self._next_id, node.id + 1)
        by_id = {node.id: node for node, _ in links}
        for node, parent_id in links:
            parent = self.root if parent_id == ROOT_ID else by_id.get(parent_id)
            if not isinstance(parent, StagedDir):
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
            self.files.tidy(used)
        self.loaded = True

    def _loaded(self, row: Row, readonly: bool) -> StagedNode:
        id, _, name, mode, mtime_ns, entry, file = row
        if stat.S_ISDIR(mode):
            return StagedDir(self, id, name, None, mode, mtime_ns)
        backing = parse_entry(entry) if entry is not None else None
        if stat.S_ISLNK(mode):
            if backing is None:
                raise OSError(errno.EIO, f"{self.db_path}: link {id} has no target")
            return StagedLink(self, id, name, None, mtime_ns, backing)
        if file is None:
            if backing is None:
                raise OSError(errno.EIO, f"{self.db_path}: file {id} has no bytes")
            return StagedFile(self, id, name, None, mode, mtime_ns, backing, None, backing.size)
        self.files.seen(file)
        local = LocalFile(file, self.files.dir / str(file))
        if backing is not None and not readonly:  # a commit made it clean: the chunks serve
            local.path.unlink(missing_ok=True)
            self.journal.set_backing(id, backing, None)
            return StagedFile(self, id, name, None, mode, mtime_ns, backing, None, backing.size)
        try:
            st = os.stat(local.path)
        except FileNotFoundError:
            log.warning("%s: the bytes of %r were lost; it is empty now", self.key.short, name)
            if not readonly:
                local.path.touch(local_mode(mode))
            st = None
        return StagedFile(
            self,
            id,
            name,
            None,
            mode,
            st.st_mtime_ns if st else mtime_ns,
            backing,
            local,
            st.st_size if st else 0,
        )

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

    def walk(self) -> Iterator[tuple[str, StagedNode]]:
        """Every node below the root with its path, directories before what they hold."""
        return below(self.root)

    def changes(self) -> Changes:
        staged = {p: identity(n.mode, backing(n)) for p, n in self.walk() if is_entry(n)}
        return diff(staged, self.base_digests)

    # -- persistence -----------------------------------------------------------------------

    def changing(self) -> Journal:
        """Called before every change: the first one writes the whole area to disk."""
        if self.journal.db is None:
            self.files.dir.mkdir(parents=True, exist_ok=True)
            rows = (_row(n) for n in self.nodes.values() if not n.detached)
            self.journal.create(self._meta(), self.base_digests, rows)
        self.generation += 1
        return self.journal

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

    def set_type(self, type: str) -> None:
        self.changing()
        self.type = type
        self.journal.set_meta("type", type)

    def set_pending(self, options: dict[str, Any] | None) -> None:
        """Remember (or forget) that a commit was asked for and could not be done."""
        if self.journal.db is None and options is None:
            return
        self.changing()
        self.pending = options
        self.journal.set_meta("pending", json.dumps(options) if options is not None else "")

    def sync(self) -> None:
        """Make every change so far survive a power loss (may run on a worker thread)."""
        if self.journal.db is not None and self.files.sync():
            self.journal.sync()

    def close(self) -> None:
        for node in self.nodes.values():
            if isinstance(node, StagedFile):
                self.bytes.close_fd(node)
        self.journal.close()

    def clear(self) -> None:
        """The area equals its base: drop its state on disk (the next change writes it anew)."""
        self.journal.clear()

    # -- changing the tree -----------------------------------------------------------------

    def create(self, parent: StagedDir, name: bytes, mode: int) -> StagedFile:
        """A new empty file (its local file open in ``fd``)."""
        self._check_new(parent, name)
        journal = self.changing()
        mode = stat.S_IFREG | (mode & 0o7777)
        local, fd = self.files.create(mode)
        node = StagedFile(self, self._id(), name, parent, mode, time.time_ns(), None, local, 0)
        node.fd = fd
        try:
            journal.insert(_row(node))
        except BaseException:
            self.bytes.close_fd(node)
            local.path.unlink(missing_ok=True)
            raise
        self._linked_new(parent, node)
        return node

    def mkdir(self, parent: StagedDir, name: bytes, mode: int) -> StagedDir:
        self._check_new(parent, name)
        journal = self.changing()
        mode = stat.S_IFDIR | (mode & 0o7777)
        node = StagedDir(self, self._id(), name, parent, mode, time.time_ns())
        journal.insert(_row(node))
        self._linked_new(parent, node)
        return node

    def symlink(self, parent: StagedDir, name: bytes, target: bytes) -> StagedLink:
        """A new symlink; its target must stay inside the version (``EPERM`` otherwise)."""
        self._check_new(parent, name)
        path = _join(parent.path, _text(name))
        try:
            text = target.decode("utf-8")
            entry = ManifestEntry.symlink(path, check_link(path, text), time.time_ns())
        except (UnicodeDecodeError, InvalidPath) as exc:
            log.warning("%s: symlink %s refused: %s", self.key.short, path, _reason(exc, target))
            raise fail(errno.EPERM, "a version keeps only links that stay inside it") from None
        journal = self.changing()
        node = StagedLink(self, self._id(), name, parent, entry.mtime_ns or 0, entry)
        journal.insert(_row(node))
        self._linked_new(parent, node)
        return node

    def copy(
        self,
        source: StagedFile | StagedLink,
        parent: StagedDir,
        name: bytes,
        local: LocalFile | None,
    ) -> StagedFile | StagedLink:
        """A hard link made as a copy: a new node with ``source``'s mode, mtime and bytes,
        backed by the same entry, or by ``local`` (a copy of its local bytes)."""
        self._check_new(parent, name)
        journal = self.changing()
        node: StagedFile | StagedLink
        if isinstance(source, StagedLink):
            node = StagedLink(self, self._id(), name, parent, source.mtime_ns, source.entry)
        else:
            size = source.size
            entry = source.entry if local is None else None
            if local is not None:
                os.chmod(local.path, local_mode(source.mode))
                size = os.stat(local.path).st_size
            node = StagedFile(
                self, self._id(), name, parent, source.mode, source.mtime_ns, entry, local, size
            )
        journal.insert(_row(node))
        self._linked_new(parent, node)
        return node

    def _linked_new(self, parent: StagedDir, node: StagedNode) -> None:
        self._link(parent, node)
        parent.mtime_ns = time.time_ns()
        self._add(node)

    def unlink(self, parent: StagedDir, name: bytes) -> StagedNode:
        """Remove a file's or link's name; the node lives on until ``free``."""
        node = self.child(parent, name)
        if isinstance(node, StagedDir):
            raise fail(errno.EISDIR)
        self.changing().delete(node.id)
        self._unlink(node)
        return node

    def rmdir(self, parent: StagedDir, name: bytes) -> StagedDir:
        node = self.child(parent, name)
        if not isinstance(node, StagedDir):
            raise fail(errno.ENOTDIR)
        if node.index:
            raise fail(errno.ENOTEMPTY)
        self.changing().delete(node.id)
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
        new name used to have, now unlinked (None if there was none, or on an exchange).
        A move that would make a link lead out of the version is ``EPERM``."""
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
            self._check_links(node, _join(new_parent.path, _text(new_name)))
            self._check_links(target, _join(old_parent.path, _text(old_name)))
            self._exchange(node, target)
            return None
        check_name(new_name)
        self._check_links(node, _join(new_parent.path, _text(new_name)))
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
        journal = self.changing()
        with journal.transaction():
            if target is not None:
                journal.delete(target.id)
            journal.move(node.id, new_parent.id, new_name)
        if target is not None:
            self._unlink(target)
        self._unlink(node)
        node.name = new_name
        self._link(new_parent, node)
        return target

    def _check_links(self, node: StagedNode, path: str) -> None:
        """Refuse (``EPERM``) to move ``node`` to ``path`` if a link in it would then lead
        out of the version."""
        moved = [(path, node)]
        if isinstance(node, StagedDir):
            moved += [(_join(path, p), n) for p, n in below(node)]
        for where, link in moved:
            if isinstance(link, StagedLink):
                try:
                    check_link(where, link.entry.link)
                except InvalidPath as exc:
                    log.warning("%s: rename refused: %s", self.key.short, exc)
                    raise fail(errno.EPERM, "a link would lead out of the version") from None

    def _inside(self, directory: StagedDir, ancestor: StagedDir) -> bool:
        node: StagedDir | None = directory
        while node is not None:
            if node is ancestor:
                return True
            node = node.parent
        return False

    def _exchange(self, a: StagedNode, b: StagedNode) -> None:
        journal = self.changing()
        pa, pb = a.parent, b.parent
        assert pa is not None and pb is not None
        with journal.transaction():
            journal.move(a.id, pb.id, b.name)
            journal.move(b.id, pa.id, a.name)
        self._unlink(a)
        self._unlink(b)
        a.name, b.name = b.name, a.name
        self._link(pb, a)
        self._link(pa, b)

    def set_mode(self, node: StagedNode, mode: int) -> None:
        """chmod: kept in the journal, and on a local file's own bits (a commit keeps the
        executable bit)."""
        mode = stat.S_IFMT(node.mode) | (mode & 0o7777)
        if node.id != ROOT_ID:
            self.changing().set_mode(node.id, mode)
        if isinstance(node, StagedFile) and node.local is not None:
            os.chmod(node.local.path, local_mode(mode))
        node.mode = mode
        node.changed()

    def set_mtime(self, node: StagedNode, mtime_ns: int) -> None:
        """A local file keeps its mtime itself; other nodes in their row."""
        if isinstance(node, StagedFile) and node.local is not None and node.entry is None:
            os.utime(node.local.path, ns=(mtime_ns, mtime_ns))
        elif node.id != ROOT_ID:
            self.changing().set_mtime(node.id, mtime_ns)
        node.mtime_ns = mtime_ns
        node.changed()

    def free(self, node: StagedNode) -> None:
        """Forget an unlinked node nothing refers to any more, with its bytes."""
        self.nodes.pop(node.id, None)
        if isinstance(node, StagedFile):
            self.bytes.release(node)

    def holds_local(self) -> bool:
        return any(isinstance(n, StagedFile) and n.local is not None for n in self.nodes.values())


def is_entry(node: StagedNode) -> bool:
    """Whether ``node`` is an entry of the version a commit makes: files, links, and
    directories that hold nothing."""
    return not isinstance(node, StagedDir) or not node.index


def backing(node: StagedNode) -> ManifestEntry | None:
    return node.entry if isinstance(node, StagedFile | StagedLink) else None


def _row(node: StagedNode) -> Row:
    parent = node.parent.id if node.parent is not None else ROOT_ID
    entry = local = None
    if isinstance(node, StagedFile | StagedLink):
        entry = entry_json(node.entry)
    if isinstance(node, StagedFile) and node.local is not None:
        local = node.local.id
    return (node.id, parent, node.name, node.mode, node.mtime_ns, entry, local)


def _text(name: bytes) -> str:
    return name.decode("utf-8", "surrogateescape")


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def below(directory: StagedDir) -> Iterator[tuple[str, StagedNode]]:
    """Every node below ``directory``, with its path relative to it."""
    stack: list[tuple[str, StagedDir]] = [("", directory)]
    while stack:
        prefix, folder = stack.pop()
        for node in folder.index.values():
            path = prefix + _text(node.name)
            yield path, node
            if isinstance(node, StagedDir):
                stack.append((path + "/", node))


def _reason(exc: Exception, target: bytes) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"target {target!r} is not UTF-8"
    return str(exc)
