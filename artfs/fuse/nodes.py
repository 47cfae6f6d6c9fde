"""What an inode is, and the attributes and xattrs the kernel gets for it.

Everything inside a version is immutable, so its entries and attributes may be cached by the
kernel for a day. The levels above (projects, artifacts, the version list, aliases) change,
so the kernel keeps those only for the metadata TTL. Attribute objects are built once and
replaced, never mutated, so one object can answer any number of lookups and listings.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

import pyfuse3

from ..core.manifest import EXEC_MODE, ManifestEntry
from ..core.names import ArtifactPath
from ..core.records import CollectionInfo, ProjectInfo, VersionInfo

if TYPE_CHECKING:
    from .tree import Tree

IMMUTABLE_TIMEOUT = 86400.0
BLOCK_SIZE = 128 << 10  # st_blksize: tools size their buffers from it
_UID, _GID = os.getuid(), os.getgid()
XATTR = "user.artfs."


def ns(seconds: float | None) -> int:
    return int((seconds or 0) * 1e9)


def fsname(name: str) -> bytes:
    """A manifest path segment as the bytes the kernel sees."""
    try:
        return name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogatepass")


def attributes(
    inode: int,
    mode: int,
    size: int,
    mtime_ns: int,
    nlink: int,
    entry_timeout: float,
    attr_timeout: float,
) -> pyfuse3.EntryAttributes:
    attr = pyfuse3.EntryAttributes()
    attr.st_ino = inode
    attr.generation = 0  # inode numbers are never reused within a mount
    attr.st_mode = mode
    attr.st_nlink = nlink
    attr.st_uid = _UID
    attr.st_gid = _GID
    attr.st_size = size
    attr.st_blksize = BLOCK_SIZE
    attr.st_blocks = (size + 511) // 512
    attr.st_atime_ns = attr.st_mtime_ns = attr.st_ctime_ns = mtime_ns
    attr.entry_timeout = entry_timeout
    attr.attr_timeout = attr_timeout
    return attr


def dir_attr(
    inode: int,
    mtime_ns: int,
    timeout: float,
    attr_timeout: float | None = None,
    nlink: int = 2,
    mode: int = 0o555,
) -> pyfuse3.EntryAttributes:
    """A directory's attributes: 0555 above the versions, 0755 (``EXEC_MODE``, what a
    version's directories come back as from ``get``) in and at the top of a version."""
    attr_timeout = timeout if attr_timeout is None else attr_timeout
    return attributes(inode, stat.S_IFDIR | mode, 0, mtime_ns, nlink, timeout, attr_timeout)


def negative(timeout: float) -> pyfuse3.EntryAttributes:
    """A "no such entry" the kernel may remember for ``timeout`` seconds."""
    attr = pyfuse3.EntryAttributes()
    attr.st_ino = 0
    attr.entry_timeout = timeout
    return attr


class Node:
    """One inode. ``nlookup`` is the kernel's lookup count; ``owner`` is the tree a node
    belongs to (None above the versions)."""

    __slots__ = ("_attr", "inode", "name", "nlookup", "owner")
    is_dir = True

    def __init__(self, inode: int, name: bytes):
        self.inode = inode
        self.name = name
        self.nlookup = 0
        self.owner: Tree | None = None
        self._attr: pyfuse3.EntryAttributes | None = None

    @property
    def attr(self) -> pyfuse3.EntryAttributes:
        attr = self._attr
        if attr is None:
            attr = self._attr = self.make_attr()
        return attr

    def make_attr(self) -> pyfuse3.EntryAttributes:
        raise NotImplementedError

    def xattrs(self) -> dict[bytes, bytes]:
        return {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.inode} {self.name!r}>"


class MetaNode(Node):
    """A node above the files: its attributes come from the last listing of its parent and
    are replaced when that listing is refreshed."""

    __slots__ = ("parent",)

    def __init__(self, inode: int, name: bytes, parent: Node | None):
        super().__init__(inode, name)
        self.parent = parent


class RootNode(MetaNode):
    __slots__ = ("entity",)

    def __init__(self, inode: int, entity: str, mtime_ns: int, ttl: float):
        super().__init__(inode, b"", None)
        self.entity = entity
        self._attr = dir_attr(inode, mtime_ns, ttl)


class ProjectNode(MetaNode):
    __slots__ = ("info",)
    info: ProjectInfo

    def update(self, info: ProjectInfo, ttl: float) -> None:
        self.info = info
        self._attr = dir_attr(self.inode, ns(info.created_at), ttl)

    def xattrs(self) -> dict[bytes, bytes]:
        return {b"user.artfs.project": f"{self.info.entity}/{self.info.name}".encode()}


class ArtifactNode(MetaNode):
    __slots__ = ("info",)
    info: CollectionInfo

    @property
    def path(self) -> ArtifactPath:
        return ArtifactPath(self.info.entity, self.info.project, self.info.name)

    def update(self, info: CollectionInfo, ttl: float) -> None:
        self.info = info
        self._attr = dir_attr(self.inode, ns(info.created_at), ttl)

    def xattrs(self) -> dict[bytes, bytes]:
        return {
            b"user.artfs.artifact": self.path.collection.encode(),
            b"user.artfs.type": self.info.type.encode(),
        }


class VersionNode(MetaNode):
    """A version directory: its name may vanish (the version is deleted) within the TTL, but
    what it holds never changes. ``tree`` is loaded on first use."""

    __slots__ = ("info", "tree")
    info: VersionInfo

    def __init__(self, inode: int, name: bytes, parent: Node | None):
        super().__init__(inode, name, parent)
        self.tree: Tree | None = None

    def update(self, info: VersionInfo, ttl: float) -> None:
        self.info = info
        created = ns(info.created_at)
        self._attr = dir_attr(self.inode, created, ttl, IMMUTABLE_TIMEOUT, mode=EXEC_MODE)

    def xattrs(self) -> dict[bytes, bytes]:
        info = self.info
        return {
            b"user.artfs.artifact": info.path.collection.encode(),
            b"user.artfs.version": info.label.encode(),
            b"user.artfs.digest": info.digest.encode(),
            b"user.artfs.type": info.type.encode(),
        }


class AliasNode(VersionNode):
    """An alias (``latest``, ``best``): a read-only directory showing ``version``, the version
    it named when this node was made. Its inode is specific to the pair (alias, version), so a
    moved alias gives its name a new inode, while this one goes on showing the version it
    resolved to whoever is inside it (a cwd, an open directory or file)."""

    __slots__ = ("version",)
    version: VersionNode

    def xattrs(self) -> dict[bytes, bytes]:
        return {**super().xattrs(), b"user.artfs.alias": self.name}


class DirNode(Node):
    """A directory inside a version or alias; ``parent`` is None for the top one.
    ``mtime_ns`` is its ``dir`` entry's, if the manifest has one with a time."""

    __slots__ = ("children", "index", "mtime_ns", "nsubdirs", "parent")

    def __init__(self, name: bytes, parent: DirNode | None = None, mtime_ns: int | None = None):
        super().__init__(0, name)
        self.parent = parent
        self.children: list[Node] = []
        self.index: dict[bytes, Node] = {}
        self.nsubdirs = 0
        self.mtime_ns = mtime_ns

    def finish(self) -> None:
        self.children.sort(key=lambda n: n.name)
        self.index = {c.name: c for c in self.children}
        self.nsubdirs = sum(1 for c in self.children if c.is_dir)

    def make_attr(self) -> pyfuse3.EntryAttributes:
        assert self.owner is not None
        mtime = self.owner.mtime_ns if self.mtime_ns is None else self.mtime_ns
        t = IMMUTABLE_TIMEOUT
        return dir_attr(self.inode, mtime, t, nlink=2 + self.nsubdirs, mode=EXEC_MODE)


class FileNode(Node):
    """A file inside a version: its manifest entry says where its bytes are."""

    __slots__ = ("entry",)
    is_dir = False

    def __init__(self, name: bytes, entry: ManifestEntry):
        super().__init__(0, name)
        self.entry = entry

    def make_attr(self) -> pyfuse3.EntryAttributes:
        """The one place a file's mode and times are decided: the manifest's mode (0644,
        or 0755 for an executable) and mtime (the version's time if it records none); the
        same through a version or an alias, since ``owner`` is always the version's tree."""
        assert self.owner is not None
        entry = self.entry
        mode = stat.S_IFREG | entry.mode
        mtime = self.owner.mtime_ns if entry.mtime_ns is None else entry.mtime_ns
        t = IMMUTABLE_TIMEOUT
        return attributes(self.inode, mode, entry.size, mtime, 1, t, t)

    def xattrs(self) -> dict[bytes, bytes]:
        out = {b"user.artfs.digest": self.entry.digest.encode()}
        if self.entry.ref is not None:
            out[b"user.artfs.ref"] = self.entry.ref.encode()
        return out


class LinkNode(Node):
    """A symlink inside a version (its target stays inside the version)."""

    __slots__ = ("entry", "target")
    is_dir = False

    def __init__(self, name: bytes, entry: ManifestEntry):
        super().__init__(0, name)
        self.entry = entry
        assert entry.link is not None
        self.target = fsname(entry.link)

    def make_attr(self) -> pyfuse3.EntryAttributes:
        assert self.owner is not None
        mtime = self.owner.mtime_ns if self.entry.mtime_ns is None else self.entry.mtime_ns
        t = IMMUTABLE_TIMEOUT
        return attributes(self.inode, stat.S_IFLNK | 0o777, len(self.target), mtime, 1, t, t)
