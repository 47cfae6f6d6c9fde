"""A version's files as directories and files, built once from its immutable manifest.

Nodes are laid out in sorted-path order, so building the tree of the same version again
gives every path the same position: with the inode range the table keeps per version, a
dropped and reloaded tree gets the same inode numbers.
"""

from __future__ import annotations

from ..core.manifest import Manifest
from ..core.records import VersionInfo
from .nodes import DirNode, FileNode, Node, fsname, ns


class VersionTree:
    """``root`` lists the version directory; ``nodes`` are the other entries in layout order.

    ``refs`` is the sum of the kernel's lookup counts on the nodes, ``opened`` the number of
    open files and directories in the tree: at zero and zero the tree may be dropped.
    """

    def __init__(self, info: VersionInfo, manifest: Manifest):
        self.info = info
        self.mtime_ns = ns(info.created_at)
        self.root = DirNode(b"")
        self.nodes: list[Node] = []
        self.refs = 0
        self.opened = 0
        self._build(manifest)

    def _build(self, manifest: Manifest) -> None:
        dirs: dict[str, DirNode] = {"": self.root}
        last_dir, parent = "", self.root
        for entry in sorted(manifest, key=lambda e: e.path.split("/")):
            dir_path, _, base = entry.path.rpartition("/")
            if dir_path != last_dir:
                parent = self._directory(dirs, dir_path)
                last_dir = dir_path
            self._add(parent, FileNode(fsname(base), entry))
        for directory in dirs.values():
            directory.finish()

    def _directory(self, dirs: dict[str, DirNode], path: str) -> DirNode:
        found = dirs.get(path)
        if found is not None:
            return found
        parent_path, _, base = path.rpartition("/")
        parent = self._directory(dirs, parent_path)
        node = dirs[path] = DirNode(fsname(base))
        self._add(parent, node)
        return node

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
