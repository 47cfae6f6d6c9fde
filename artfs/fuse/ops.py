"""The pyfuse3 ``Operations``: each request mapped onto the namespace and the reader.

Only ``FUSEError`` may leave a handler (anything else would end the mount), so the layers
below turn store and disk failures into an errno and log them. Requests that would change
anything are refused by ``ReadOnly``. ``flush`` is left unimplemented on purpose: nothing is
buffered here, and its first ENOSYS tells the kernel to stop sending one on every close().

Extended attributes are the one thing the kernel does not cache, and ``ls -l`` asks for two
of each file it lists (``security.selinux``, ``system.posix_acl_access``): a round trip each,
which made ``ls -lR`` of a big version 15 times slower than on a local disk. Names outside the
``user.`` namespace get ``ENOTSUP`` ("not on this file system"), which coreutils remembers for
the whole device, so ``ls`` asks once per run instead; ``user.*`` names other than ours get
``ENOATTR``. (Not ``ENOSYS``: after that the kernel would never send ``getxattr`` again, and
``user.artfs.*`` would be lost.)
"""

from __future__ import annotations

import errno
import json
import logging
import os
from collections.abc import Sequence
from typing import Any

import pyfuse3
import trio

from . import control
from .background import UsageRecorder
from .namespace import Namespace
from .nodes import BLOCK_SIZE, DirNode, FileNode, LinkNode, MetaNode, Node, VersionNode
from .reader import OpenFile, Reader
from .readonly import ReadOnly
from .stats import MountStats
from .tree import Tree

log = logging.getLogger(__name__)
XATTR_PREFIX = b"user.artfs."
USER = b"user."
STATS_XATTR = b"user.artfs.stats"
PID_XATTR = control.PID_XATTR.encode()
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_TRUNC


class DirHandle:
    """An open directory: the listing it reads (a snapshot), the tree it keeps loaded, and
    the entries ``.`` and ``..``."""

    __slots__ = ("children", "dots", "tree")

    def __init__(
        self,
        children: Sequence[Node],
        tree: Tree | None,
        own: pyfuse3.EntryAttributes,
        parent: pyfuse3.EntryAttributes,
    ):
        self.children = children
        self.tree = tree
        self.dots = ((b".", own), (b"..", parent))


class Operations(ReadOnly, pyfuse3.Operations):
    supports_dot_lookup = False  # no NFS export: the kernel never looks up "." or ".."
    enable_writeback_cache = False

    def __init__(
        self,
        namespace: Namespace,
        reader: Reader,
        stats: MountStats,
        usage: UsageRecorder | None = None,
    ) -> None:
        super().__init__()
        self.ns = namespace
        self.inodes = namespace.inodes
        self.reader = reader
        self.stats = stats
        self.usage = usage
        self._files: dict[int, OpenFile] = {}
        self._dirs: dict[int, DirHandle] = {}
        self._next_fh = 1
        self.initialized: trio.Event | None = None

    def init(self) -> None:
        """The kernel's INIT arrived (the reply goes out when this returns)."""
        if self.initialized is not None:
            self.initialized.set()

    def _node(self, inode: int) -> Node:
        node = self.inodes.get(inode)
        if node is None:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return node

    def _handle(self) -> int:
        fh = self._next_fh
        self._next_fh += 1
        return fh

    def _closed(self, tree: Tree | None) -> None:
        if tree is not None:
            tree.opened -= 1
            if not tree.opened and not tree.refs:
                self.ns.release(tree)

    # -- names and attributes --------------------------------------------------------------

    async def lookup(self, parent_inode: int, name: bytes, ctx: Any = None) -> Any:
        self.stats.requests["lookup"] += 1
        parent = self._node(parent_inode)
        if not parent.is_dir:
            raise pyfuse3.FUSEError(errno.ENOTDIR)
        node = await self.ns.lookup(parent, name)
        if node is None:
            return self.ns.negative(parent)
        self.inodes.remember(node)
        return node.attr

    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        for inode, count in inode_list:
            try:
                tree = self.inodes.forget(inode, count)
                if tree is not None and not tree.opened:
                    self.ns.release(tree)
            except Exception:  # forget must not fail
                log.exception("forget(%d, %d)", inode, count)

    async def getattr(self, inode: int, ctx: Any = None) -> Any:
        self.stats.requests["getattr"] += 1
        node = self._node(inode)
        if isinstance(node, MetaNode):
            return await self.ns.fresh_attr(node)
        return node.attr

    async def access(self, inode: int, mode: int, ctx: Any = None) -> bool:
        node = self._node(inode)
        if mode & os.W_OK:
            raise pyfuse3.FUSEError(errno.EROFS)
        return not (mode & os.X_OK) or bool(node.attr.st_mode & 0o111)

    async def readlink(self, inode: int, ctx: Any = None) -> bytes:
        node = self._node(inode)
        if not isinstance(node, LinkNode):
            raise pyfuse3.FUSEError(errno.EINVAL)
        return node.target

    async def statfs(self, ctx: Any = None) -> Any:
        st = pyfuse3.StatvfsData()
        st.f_bsize = st.f_frsize = BLOCK_SIZE
        st.f_namemax = 255
        return st

    # -- directories -----------------------------------------------------------------------

    async def opendir(self, inode: int, ctx: Any = None) -> int:
        self.stats.requests["opendir"] += 1
        node = self._node(inode)
        if not node.is_dir:
            raise pyfuse3.FUSEError(errno.ENOTDIR)
        children = await self.ns.children(node)  # dynamic listings: a snapshot per handle
        tree = node.tree if isinstance(node, VersionNode) else node.owner
        if tree is not None:
            tree.opened += 1
        parent = node.parent if isinstance(node, MetaNode | DirNode) else None
        fh = self._handle()
        self._dirs[fh] = DirHandle(children, tree, node.attr, (parent or node).attr)
        return fh

    async def readdir(self, fh: int, start_id: int, token: Any) -> None:
        """``next_id`` is the position in the handle's listing (``.`` and ``..`` first) plus
        one: immutable inside a version and a snapshot above, so paging never skips or
        repeats an entry. The kernel takes no reference for ``.`` and ``..``."""
        self.stats.requests["readdir"] += 1
        handle = self._dirs[fh]
        reply = pyfuse3.readdir_reply
        for position in range(start_id, len(handle.dots)):
            name, attr = handle.dots[position]
            if not reply(token, name, attr, position + 1):
                return
        children, skip = handle.children, len(handle.dots)
        for position in range(max(start_id - skip, 0), len(children)):  # hot for huge dirs
            node = children[position]
            if not reply(token, node.name, node._attr or node.attr, position + skip + 1):
                break
            node.nlookup += 1  # InodeTable.remember, inline
            owner = node.owner  # (in an alias's directory, files belong to the version)
            if owner is not None:
                owner.refs += 1

    async def releasedir(self, fh: int) -> None:
        self._closed(self._dirs.pop(fh).tree)

    # -- files -----------------------------------------------------------------------------

    async def open(self, inode: int, flags: int, ctx: Any = None) -> Any:
        node = self._node(inode)
        if flags & _WRITE_FLAGS:
            raise pyfuse3.FUSEError(errno.EROFS)
        if node.is_dir:
            raise pyfuse3.FUSEError(errno.EISDIR)
        if not isinstance(node, FileNode):
            raise pyfuse3.FUSEError(errno.EINVAL)
        fd = None
        if node.entry.ref is not None:  # its bytes live elsewhere (user.artfs.ref says where)
            fd = await self.reader.open_reference(node.entry)
        tree = node.owner
        assert tree is not None
        tree.opened += 1
        fh = self._handle()
        self._files[fh] = opened = OpenFile(node, node.entry, fd)
        if self.usage is not None:
            self.usage.opened(tree.info)
        await self.reader.opened(opened)
        return pyfuse3.FileInfo(fh=fh, keep_cache=True)

    async def read(self, fh: int, off: int, size: int) -> bytes:
        return await self.reader.read(self._files[fh], off, size)

    async def fsync(self, fh: int, datasync: bool) -> None:
        pass

    async def release(self, fh: int) -> None:
        f = self._files.pop(fh)
        if f.fd is not None:
            os.close(f.fd)
        self._closed(f.node.owner)

    # -- extended attributes ---------------------------------------------------------------

    def _xattrs(self, node: Node) -> dict[bytes, bytes]:
        if node is self.ns.root:
            return {
                b"user.artfs.entity": self.ns.entity.encode(),
                PID_XATTR: str(os.getpid()).encode(),
                STATS_XATTR: b"",  # computed when asked
            }
        return node.xattrs()

    async def getxattr(self, inode: int, name: bytes, ctx: Any = None) -> bytes:
        self.stats.requests["getxattr"] += 1
        if not name.startswith(XATTR_PREFIX):
            raise pyfuse3.FUSEError(pyfuse3.ENOATTR if name.startswith(USER) else errno.ENOTSUP)
        node = self._node(inode)
        if isinstance(node, VersionNode):
            await self.ns.fresh_attr(node)
        value = self._xattrs(node).get(name)
        if value is None:
            raise pyfuse3.FUSEError(pyfuse3.ENOATTR)
        if name == STATS_XATTR and node is self.ns.root:
            return json.dumps(self.stats_snapshot(), sort_keys=True).encode()
        return value

    async def listxattr(self, inode: int, ctx: Any = None) -> list[bytes]:
        self.stats.requests["listxattr"] += 1
        return list(self._xattrs(self._node(inode)))

    def stats_snapshot(self) -> dict[str, Any]:
        cache = self.reader.files.cache
        return self.stats.snapshot(
            chunks_fetched=cache.fetched_chunks,
            bytes_fetched=cache.fetched_bytes,
            chunks_corrupt=cache.corrupt_chunks,
            open_chunks=len(self.reader.files.open_digests()),
            open_files=len(self._files),
            inodes=len(self.inodes),
            trees_loaded=self.ns.trees_loaded,
        )
