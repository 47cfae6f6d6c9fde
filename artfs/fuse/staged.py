"""The nodes of a staging area (``@staging/`` and everything below it): directories, files
and symlinks. How they change, and how that is kept on disk, is ``staging.StagingArea``'s
job."""

from __future__ import annotations

import errno
import os
import stat
from typing import TYPE_CHECKING

import pyfuse3

from ..core.manifest import ManifestEntry
from ..core.paths import MAX_SEGMENT_BYTES
from .journal import ROOT_ID
from .localfiles import LocalFile
from .nodes import FileNode, Node, attributes, fsname

if TYPE_CHECKING:
    from .staging import StagingArea

STAGING_NAME = b"@staging"
STAGED_TIMEOUT = 60.0  # every change goes through the kernel, so its caches stay right


def fail(code: int, what: str = "") -> OSError:
    return OSError(code, os.strerror(code) + (f": {what}" if what else ""))


def check_name(name: bytes) -> None:
    """A name the manifest can hold: UTF-8, no control characters, not too long."""
    try:
        text = name.decode("utf-8")
    except UnicodeDecodeError:
        raise fail(errno.EINVAL, "names must be UTF-8") from None
    if len(name) > MAX_SEGMENT_BYTES:
        raise fail(errno.ENAMETOOLONG)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text) or text in (".", ".."):
        raise fail(errno.EINVAL, "control characters are not allowed in names")


class StagedNode(Node):
    """A node of a staging area. ``id`` is its row in the database and never reused, so
    the inode number derived from it is stable too. ``parent`` is None once the node has been
    unlinked (it lives on while the kernel references it or a handle holds it open)."""

    __slots__ = ("area", "id", "mode", "mtime_ns", "opened", "parent")

    def __init__(
        self,
        area: StagingArea,
        id: int,
        name: bytes,
        parent: StagedDir | None,
        mode: int,
        mtime_ns: int,
    ) -> None:
        super().__init__(0, name)
        self.area = area
        self.id = id
        self.parent = parent
        self.mode = mode
        self.mtime_ns = mtime_ns
        self.opened = 0

    @property
    def detached(self) -> bool:
        return self.parent is None and self.id != ROOT_ID

    @property
    def path(self) -> str:
        """The manifest path of this node (the area root is ``""``)."""
        parts = []
        node: StagedNode | None = self
        while node is not None and node.id != ROOT_ID:
            parts.append(node.name.decode("utf-8", "surrogateescape"))
            node = node.parent
        return "/".join(reversed(parts))

    def changed(self) -> None:
        self._attr = None


class StagedDir(StagedNode):
    __slots__ = ("index", "nsubdirs")

    def __init__(
        self,
        area: StagingArea,
        id: int,
        name: bytes,
        parent: StagedDir | None,
        mode: int,
        mtime_ns: int,
    ) -> None:
        super().__init__(area, id, name, parent, mode, mtime_ns)
        self.index: dict[bytes, StagedNode] = {}
        self.nsubdirs = 0

    def make_attr(self) -> pyfuse3.EntryAttributes:
        t = STAGED_TIMEOUT
        return attributes(self.inode, self.mode, 0, self.mtime_ns, 2 + self.nsubdirs, t, t)

    def sorted_children(self) -> list[StagedNode]:
        return sorted(self.index.values(), key=lambda n: n.name)

    def xattrs(self) -> dict[bytes, bytes]:
        """``@staging`` itself says whose it is and what it started from."""
        if self.id != ROOT_ID:
            return {}
        area = self.area
        return {
            b"user.artfs.artifact": area.key.collection.encode(),
            b"user.artfs.type": area.type.encode(),
            b"user.artfs.base": b"" if area.base is None else f"v{area.base}".encode(),
        }


class StagedFile(StagedNode):
    """A staged file: ``entry`` while its bytes are those of a committed manifest entry,
    ``local`` once they are in a local file (both right after a commit, while it is open:
    the bytes are local, and equal to the entry)."""

    __slots__ = ("entry", "fd", "local", "size")
    is_dir = False

    def __init__(
        self,
        area: StagingArea,
        id: int,
        name: bytes,
        parent: StagedDir | None,
        mode: int,
        mtime_ns: int,
        entry: ManifestEntry | None,
        local: LocalFile | None,
        size: int,
    ) -> None:
        super().__init__(area, id, name, parent, mode, mtime_ns)
        self.entry = entry
        self.local = local
        self.size = size
        self.fd: int | None = None
        if local is not None:
            local.node = self

    def make_attr(self) -> pyfuse3.EntryAttributes:
        t = STAGED_TIMEOUT
        return attributes(self.inode, self.mode, self.size, self.mtime_ns, 1, t, t)

    def xattrs(self) -> dict[bytes, bytes]:
        if self.entry is None:
            return {}
        return FileNode(self.name, self.entry).xattrs()


class StagedLink(StagedNode):
    """A staged symlink: ``entry`` is its manifest entry (its target stays inside the
    version, checked when it is made and when it moves)."""

    __slots__ = ("entry",)
    is_dir = False

    def __init__(
        self,
        area: StagingArea,
        id: int,
        name: bytes,
        parent: StagedDir | None,
        mtime_ns: int,
        entry: ManifestEntry,
    ) -> None:
        super().__init__(area, id, name, parent, stat.S_IFLNK | 0o777, mtime_ns)
        self.entry = entry

    @property
    def target(self) -> bytes:
        assert self.entry.link is not None
        return fsname(self.entry.link)

    def make_attr(self) -> pyfuse3.EntryAttributes:
        t = STAGED_TIMEOUT
        return attributes(self.inode, self.mode, len(self.target), self.mtime_ns, 1, t, t)
