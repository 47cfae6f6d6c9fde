"""Every request that would change something fails with EROFS.

Kept apart from the reading operations so a writable layer (the ``@staging/`` area) can be
put in front of it: its handlers serve the inodes they own and defer the rest to these.
"""

from __future__ import annotations

import errno
from typing import Any

import pyfuse3


def _refuse() -> pyfuse3.FUSEError:
    return pyfuse3.FUSEError(errno.EROFS)


class ReadOnly:
    async def setattr(self, inode: int, attr: Any, fields: Any, fh: int | None, ctx: Any) -> Any:
        raise _refuse()

    async def mknod(self, parent_inode: int, name: bytes, mode: int, rdev: int, ctx: Any) -> Any:
        raise _refuse()

    async def mkdir(self, parent_inode: int, name: bytes, mode: int, ctx: Any) -> Any:
        raise _refuse()

    async def unlink(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        raise _refuse()

    async def rmdir(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        raise _refuse()

    async def symlink(self, parent_inode: int, name: bytes, target: bytes, ctx: Any) -> Any:
        raise _refuse()

    async def rename(
        self,
        parent_inode_old: int,
        name_old: bytes,
        parent_inode_new: int,
        name_new: bytes,
        flags: int,
        ctx: Any,
    ) -> None:
        raise _refuse()

    async def link(self, inode: int, new_parent_inode: int, new_name: bytes, ctx: Any) -> Any:
        raise _refuse()

    async def create(self, parent_inode: int, name: bytes, mode: int, flags: int, ctx: Any) -> Any:
        raise _refuse()

    async def write(self, fh: int, off: int, buf: bytes) -> int:
        raise _refuse()

    async def setxattr(self, inode: int, name: bytes, value: bytes, ctx: Any) -> None:
        raise _refuse()

    async def removexattr(self, inode: int, name: bytes, ctx: Any) -> None:
        raise _refuse()
