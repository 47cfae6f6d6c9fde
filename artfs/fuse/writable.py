"""The writable layer in front of the read-only operations: requests on ``@staging/`` are
served from staging areas, ``mkdir PROJECT/NAME`` makes a new artifact, and everything else
goes to ``Operations``/``ReadOnly`` behind it, so version directories stay EROFS.

This module only dispatches: the staging model (``staging``) changes the tree, ``cow``
gives a file its own bytes on its first change, ``commits`` runs commits (also those asked
for over ``user.artfs.commit``), and ``errnos`` turns failures into errnos. A write goes
straight to the staged file's local file: one ``pwrite`` in the handler, into the page
cache, like a cache hit on the read path.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import stat
from collections.abc import Sequence
from typing import Any

import pyfuse3
import trio

from ..core.errors import InvalidName
from ..core.names import check_identifier
from . import control
from .areas import StagingNamespace
from .background import UsageRecorder
from .commit import Committer
from .commits import COMMIT_XATTR, RESULT_PREFIX, Commits
from .cow import CopyOnWrite
from .errnos import errors
from .nodes import BLOCK_SIZE, ArtifactNode, Node, ProjectNode
from .ops import Operations
from .reader import OpenFile, Reader
from .staged import StagedDir, StagedFile, StagedLink, StagedNode
from .staging import StagingArea
from .stats import MountStats

log = logging.getLogger(__name__)
STATE_XATTR = control.STATE_XATTR.encode()
TYPE_XATTR = b"user.artfs.type"
_WRITING = os.O_WRONLY | os.O_RDWR


class StagedHandle:
    """One open() of a staged file; ``reading`` serves it from chunks while the file has
    its base bytes."""

    __slots__ = ("append", "node", "reading")

    def __init__(self, node: StagedFile, append: bool):
        self.node = node
        self.append = append
        self.reading: OpenFile | None = None


def _sync(area: StagingArea, fd: int | None) -> None:
    try:
        if fd is not None:
            os.fsync(fd)
        area.sync()
    finally:
        if fd is not None:
            os.close(fd)


class WritableOperations(Operations):
    ns: StagingNamespace

    def __init__(
        self,
        namespace: StagingNamespace,
        reader: Reader,
        stats: MountStats,
        committer: Committer,
        usage: UsageRecorder | None = None,
        record: str = "",
    ) -> None:
        super().__init__(namespace, reader, stats, usage)
        self.areas = namespace.areas
        self.commits = Commits(namespace, committer, stats)
        self.cow = CopyOnWrite(reader, stats)
        self.record = record  # the file `artfs umount` reads the unmount's commits from
        self._staged: dict[int, StagedHandle] = {}
        self._staged_dirs: dict[int, StagedDir] = {}

    # -- helpers ---------------------------------------------------------------------------

    async def _dir(self, inode: int) -> StagedDir | None:
        """The staged directory ``inode``, its area ready; None if it is not one."""
        node = self._node(inode)
        if not isinstance(node, StagedDir):
            return None
        await self.ns.ready(node.area)
        return node

    def _free_if_unused(self, node: StagedNode) -> None:
        if node.detached and not node.nlookup and not node.opened:
            self.areas.free(node)

    def _opened(self, node: StagedFile, flags: int) -> pyfuse3.FileInfo:
        """A handle on a staged file. Write-only handles bypass the kernel's page cache
        (``direct_io``): one copy less per write, and the kernel drops cached pages the
        write changes, so readers stay coherent (mmap needs a readable descriptor)."""
        node.opened += 1
        fh = self._handle()
        self._staged[fh] = StagedHandle(node, bool(flags & os.O_APPEND))
        write_only = flags & os.O_ACCMODE == os.O_WRONLY
        return pyfuse3.FileInfo(fh=fh, keep_cache=False, direct_io=write_only)

    # -- names and attributes --------------------------------------------------------------

    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        await super().forget(inode_list)
        for inode, _ in inode_list:
            node = self.inodes.get(inode)
            if isinstance(node, StagedNode):
                try:
                    self._free_if_unused(node)
                except Exception:  # forget must not fail
                    log.exception("forgetting %r", node)

    @errors
    async def setattr(self, inode: int, attr: Any, fields: Any, fh: int | None, ctx: Any) -> Any:
        node = self._node(inode)
        if not isinstance(node, StagedNode):
            return await super().setattr(inode, attr, fields, fh, ctx)
        if (fields.update_uid and attr.st_uid != os.getuid()) or (
            fields.update_gid and attr.st_gid != os.getgid()
        ):
            raise pyfuse3.FUSEError(errno.EPERM)  # files belong to the daemon's user
        area = node.area
        if fields.update_size:
            if not isinstance(node, StagedFile):
                raise pyfuse3.FUSEError(errno.EISDIR)
            await self.cow.truncate(node, attr.st_size)
        if fields.update_mode:
            area.set_mode(node, attr.st_mode)
        if fields.update_mtime:
            area.set_mtime(node, attr.st_mtime_ns)
        return node.attr

    async def access(self, inode: int, mode: int, ctx: Any = None) -> bool:
        node = self._node(inode)
        if isinstance(node, StagedNode):
            return not (mode & os.X_OK) or node.is_dir or bool(node.mode & 0o111)
        if isinstance(node, ProjectNode):
            return True  # mkdir makes an artifact in it
        return await super().access(inode, mode, ctx)

    @errors
    async def statfs(self, ctx: Any = None) -> Any:
        st = await super().statfs(ctx)
        where = self.areas.root
        while not where.exists():
            where = where.parent
        fs = os.statvfs(where)  # what staged files can use
        st.f_frsize = fs.f_frsize
        st.f_blocks, st.f_bfree, st.f_bavail = fs.f_blocks, fs.f_bfree, fs.f_bavail
        st.f_files, st.f_ffree, st.f_favail = fs.f_files, fs.f_ffree, fs.f_favail
        st.f_bsize = BLOCK_SIZE
        return st

    # -- changing the tree -----------------------------------------------------------------

    @errors
    async def mkdir(self, parent_inode: int, name: bytes, mode: int, ctx: Any) -> Any:
        parent = await self._dir(parent_inode)
        if parent is not None:
            node: Node = parent.area.mkdir(parent, name, mode)
        elif isinstance(project := self._node(parent_inode), ProjectNode):
            try:
                artifact = check_identifier("artifact", name.decode("utf-8", "replace"))
            except InvalidName:
                raise pyfuse3.FUSEError(errno.EINVAL) from None
            node = self.ns.new_artifact(project, artifact)
            log.info("new artifact %s/%s, committed by its @staging", project.info.name, artifact)
        else:
            return await super().mkdir(parent_inode, name, mode, ctx)
        self.inodes.remember(node)
        return node.attr

    @errors
    async def mknod(self, parent_inode: int, name: bytes, mode: int, rdev: int, ctx: Any) -> Any:
        parent = await self._dir(parent_inode)
        if parent is None:
            return await super().mknod(parent_inode, name, mode, rdev, ctx)
        if not stat.S_ISREG(mode):
            raise pyfuse3.FUSEError(errno.EPERM)  # a version holds no special files
        node = parent.area.create(parent, name, mode)
        parent.area.bytes.close_fd(node)
        self.inodes.remember(node)
        return node.attr

    @errors
    async def create(self, parent_inode: int, name: bytes, mode: int, flags: int, ctx: Any) -> Any:
        parent = await self._dir(parent_inode)
        if parent is None:
            return await super().create(parent_inode, name, mode, flags, ctx)
        node = parent.area.create(parent, name, mode)
        self.inodes.remember(node)
        return self._opened(node, flags), node.attr

    @errors
    async def unlink(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        parent = await self._dir(parent_inode)
        if parent is None:
            return await super().unlink(parent_inode, name, ctx)
        self._free_if_unused(parent.area.unlink(parent, name))

    @errors
    async def rmdir(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        parent = await self._dir(parent_inode)
        if parent is None:
            return await super().rmdir(parent_inode, name, ctx)
        self._free_if_unused(parent.area.rmdir(parent, name))

    @errors
    async def rename(
        self,
        parent_inode_old: int,
        name_old: bytes,
        parent_inode_new: int,
        name_new: bytes,
        flags: int,
        ctx: Any,
    ) -> None:
        old, new = await self._dir(parent_inode_old), await self._dir(parent_inode_new)
        if old is None and new is None:
            return await super().rename(
                parent_inode_old, name_old, parent_inode_new, name_new, flags, ctx
            )
        if old is None or new is None or old.area is not new.area:
            # into a staging area from elsewhere, or between two: `mv` copies and deletes
            raise pyfuse3.FUSEError(errno.EXDEV if new is not None else errno.EROFS)
        replaced = old.area.rename(old, name_old, new, name_new, flags)
        if replaced is not None:
            self._free_if_unused(replaced)

    @errors
    async def symlink(self, parent_inode: int, name: bytes, target: bytes, ctx: Any) -> Any:
        parent = await self._dir(parent_inode)
        if parent is None:
            return await super().symlink(parent_inode, name, target, ctx)
        node = parent.area.symlink(parent, name, target)
        self.inodes.remember(node)
        return node.attr

    @errors
    async def link(self, inode: int, new_parent_inode: int, new_name: bytes, ctx: Any) -> Any:
        """A hard link in ``@staging/`` is made as a copy (a version keeps no hard links):
        later writes to one name do not show in the other."""
        parent = await self._dir(new_parent_inode)
        if parent is None:
            return await super().link(inode, new_parent_inode, new_name, ctx)
        node = self._node(inode)
        if not isinstance(node, StagedFile | StagedLink) or node.area is not parent.area:
            raise pyfuse3.FUSEError(errno.EXDEV)
        copy = await self.cow.link(node, parent, new_name)
        self.inodes.remember(copy)
        return copy.attr

    async def readlink(self, inode: int, ctx: Any = None) -> bytes:
        node = self._node(inode)
        if isinstance(node, StagedLink):
            return node.target
        return await super().readlink(inode, ctx)

    # -- directories -----------------------------------------------------------------------

    async def opendir(self, inode: int, ctx: Any = None) -> int:
        fh = await super().opendir(inode, ctx)
        node = self.inodes.get(inode)
        if isinstance(node, StagedDir):
            self._staged_dirs[fh] = node
        return fh

    async def readdir(self, fh: int, start_id: int, token: Any) -> None:
        """A staged directory's listing is a snapshot too; entries removed or moved away
        since ``opendir`` are left out (POSIX allows either)."""
        directory = self._staged_dirs.get(fh)
        if directory is None:
            return await super().readdir(fh, start_id, token)
        children = self._dirs[fh].children
        for position in range(start_id, len(children)):
            node = children[position]
            if node.parent is not directory:  # type: ignore[attr-defined]
                continue
            if not pyfuse3.readdir_reply(token, node.name, node.attr, position + 1):
                break
            self.inodes.remember(node)
        return None

    async def releasedir(self, fh: int) -> None:
        self._staged_dirs.pop(fh, None)
        await super().releasedir(fh)

    @errors
    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        directory = self._staged_dirs.get(fh)
        if directory is not None:
            await trio.to_thread.run_sync(_sync, directory.area, None)

    # -- files -----------------------------------------------------------------------------

    @errors
    async def open(self, inode: int, flags: int, ctx: Any = None) -> Any:
        node = self._node(inode)
        if not isinstance(node, StagedNode):
            return await super().open(inode, flags, ctx)
        if not isinstance(node, StagedFile):
            raise pyfuse3.FUSEError(errno.EISDIR)
        if flags & os.O_TRUNC and flags & _WRITING:
            await self.cow.truncate(node, 0)
        elif node.local is None and node.entry is not None and node.entry.ref is not None:
            raise pyfuse3.FUSEError(errno.EOPNOTSUPP)  # its bytes live elsewhere
        return self._opened(node, flags)

    @errors
    async def read(self, fh: int, off: int, size: int) -> bytes:
        handle = self._staged.get(fh)
        if handle is None:
            return await super().read(fh, off, size)
        node = handle.node
        if node.local is not None:
            self.stats.read(size)
            return os.pread(node.area.bytes.fd(node), size, off)
        entry = node.entry
        assert entry is not None
        if handle.reading is None or handle.reading.entry is not entry:
            handle.reading = OpenFile(node, entry)
        return await self.reader.read(handle.reading, off, size)

    @errors
    async def write(self, fh: int, off: int, buf: bytes) -> int:
        handle = self._staged.get(fh)
        if handle is None:
            return await super().write(fh, off, buf)
        node = handle.node
        if not node.area.bytes.writable(node):
            await self.cow.writable(node)
        self.stats.write(len(buf))
        return node.area.bytes.write(node, node.size if handle.append else off, buf)

    @errors
    async def fsync(self, fh: int, datasync: bool) -> None:
        handle = self._staged.get(fh)
        if handle is None:
            return await super().fsync(fh, datasync)
        node = handle.node
        fd = os.dup(node.area.bytes.fd(node)) if node.local is not None else None
        await trio.to_thread.run_sync(_sync, node.area, fd)
        return None

    @errors
    async def release(self, fh: int) -> None:
        handle = self._staged.pop(fh, None)
        if handle is None:
            return await super().release(fh)
        node = handle.node
        node.opened -= 1
        if not node.opened:
            node.area.bytes.closed(node)
            self._free_if_unused(node)
        return None

    # -- extended attributes, and commits through them -------------------------------------

    def _xattrs(self, node: Node) -> dict[bytes, bytes]:
        found = super()._xattrs(node)
        if node is self.ns.root:
            found[STATE_XATTR] = self.record.encode()
        return found

    @errors
    async def getxattr(self, inode: int, name: bytes, ctx: Any = None) -> bytes:
        if name.startswith(RESULT_PREFIX) and self.ns.staged_root(self._node(inode)):
            return self.commits.result(name)
        return await super().getxattr(inode, name, ctx)

    @errors
    async def setxattr(self, inode: int, name: bytes, value: bytes, ctx: Any) -> None:
        node = self._node(inode)
        root = self.ns.staged_root(node)
        if root is not None and name == COMMIT_XATTR:
            return await self.commits.request(root.area, value)
        if isinstance(node, ArtifactNode) and name == TYPE_XATTR:
            return await self._set_type(node, value)
        if isinstance(node, StagedNode):
            raise pyfuse3.FUSEError(errno.EOPNOTSUPP)  # a version keeps no extended attributes
        return await super().setxattr(inode, name, value, ctx)

    @errors
    async def removexattr(self, inode: int, name: bytes, ctx: Any) -> None:
        if isinstance(self._node(inode), StagedNode):
            raise pyfuse3.FUSEError(pyfuse3.ENOATTR)
        return await super().removexattr(inode, name, ctx)

    async def _set_type(self, artifact: ArtifactNode, value: bytes) -> None:
        """``user.artfs.type`` of an artifact made by mkdir, before its first commit."""
        try:
            type = check_identifier("type", value.decode("utf-8", "replace"))
        except InvalidName:
            raise pyfuse3.FUSEError(errno.EINVAL) from None
        info = artifact.info
        if type == info.type:
            return
        area = self.areas.get(info.project, info.name, info.type)
        await self.ns.ready(area)
        if info.version_count or area.base is not None:
            raise pyfuse3.FUSEError(errno.EROFS)  # the store fixed it with the first version
        area.set_type(type)
        artifact.update(dataclasses.replace(info, type=type), self.ns.ttl)

    def stats_snapshot(self) -> dict[str, Any]:
        found = super().stats_snapshot()
        found["staging_areas"] = len(self.areas.loaded())
        found["cache_hits"] = self.reader.files.cache.hit_chunks
        return found
