"""The nodes below a version or alias directory, loaded and dropped together.

A version's tree is built once from its immutable manifest. Nodes are laid out in
sorted-path order, so building the tree of the same version again gives every path the same
position: with the inode range the table keeps per tree, a dropped and reloaded tree gets the
same inode numbers.

A manifest's ``dir`` entries become directories (empty ones too) and its ``link`` entries
symlinks. An alias's tree shows a version's tree: the version's file and link nodes
themselves (a file has one inode and one page cache however it is reached) under
directories of the alias's own (the kernel allows a directory only one parent). A version's
tree and the alias trees showing it live and go together: they are dropped once none of them
is referenced or open.
"""

from __future__ import annotations

from ..core.manifest import DIR, FILE, Manifest
from ..core.records import VersionInfo
from .nodes import DirNode, FileNode, LinkNode, Node, fsname, ns


class Tree:
    """``root`` lists the version or alias directory; ``nodes`` are the other entries this
    tree owns, in layout order.

    ``refs`` is the sum of the kernel's lookup counts on the nodes it owns, ``opened`` the
    number of open files and directories in it.
    """

    def __init__(self, info: VersionInfo):
        self.info = info
        self.mtime_ns = ns(info.created_at)
        self.root = DirNode(b"")
        self.nodes: list[Node] = []
        self.refs = 0
        self.opened = 0

    @property
    def used(self) -> bool:
        return bool(self.refs or self.opened)

    def _add(self, parent: DirNode, node: Node) -> None:
        node.owner = self
        parent.children.append(node)
        self.nodes.append(node)

    def number(self, base: int, root_inode: int) -> None:
        """Give the nodes inodes ``base``, ``base + 1``, ... and the root ``root_inode``."""
        self.root.owner = self
        self.root.inode = root_inode
        for offset, node in enumerate(self.nodes):
            node.inode = base + offset
            node._attr = None


class VersionTree(Tree):
    """A version's tree; ``aliases`` are the alias trees showing it, loaded meanwhile."""

    def __init__(self, info: VersionInfo, manifest: Manifest):
        super().__init__(info)
        self.aliases: list[AliasTree] = []
        dirs: dict[str, DirNode] = {"": self.root}
        last_dir, parent = "", self.root
        for entry in sorted(manifest, key=lambda e: e.path.split("/")):
            if entry.kind == DIR:
                self._directory(dirs, entry.path).mtime_ns = entry.mtime_ns
                continue
            dir_path, _, base = entry.path.rpartition("/")
            if dir_path != last_dir:
                parent = self._directory(dirs, dir_path)
                last_dir = dir_path
            kind = FileNode if entry.kind == FILE else LinkNode
            self._add(parent, kind(fsname(base), entry))
        for directory in dirs.values():
            directory.finish()

    def _directory(self, dirs: dict[str, DirNode], path: str) -> DirNode:
        missing = []  # the path's directories not made yet, deepest first
        while path not in dirs:
            missing.append(path)
            path = path.rpartition("/")[0]
        parent = dirs[path]
        for path in reversed(missing):
            node = dirs[path] = DirNode(fsname(path.rpartition("/")[2]), parent)
            self._add(parent, node)
            parent = node
        return parent


class AliasTree(Tree):
    """An alias's view of ``version``: its own directories, the version's files."""

    def __init__(self, version: VersionTree):
        super().__init__(version.info)
        self.version = version
        version.aliases.append(self)
        stack = [(version.root, self.root)]
        while stack:
            source, mirror = stack.pop()
            for child in source.children:
                if isinstance(child, DirNode):
                    own = DirNode(child.name, mirror, child.mtime_ns)
                    stack.append((child, own))
                    self._add(mirror, own)
                else:
                    mirror.children.append(child)
            mirror.finish()
