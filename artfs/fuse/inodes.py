"""The inode table: numbers that stay stable for the life of the mount, and the kernel's
lookup counts.

A number is never reused within a mount, so ``generation`` can stay 0. A named thing
(project, artifact, version directory, alias and the version it names) keeps the number it
got first, keyed by its identity; a tree gets a contiguous range the first time it is loaded
and the same range whenever it is loaded again (its layout derives from the immutable
manifest).

Every reply that hands the kernel an inode (lookup, each readdirplus entry) adds one to the
node's count and to its owner tree's (a file's is its version's, however it was reached);
``forget`` takes them off. A tree whose count and open
handles are both zero may be dropped (see ``Namespace.release``).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator

import pyfuse3

from .nodes import Node
from .tree import Tree


class InodeTable:
    def __init__(self, root: Node):
        root.inode = pyfuse3.ROOT_INODE
        self._nodes: dict[int, Node] = {root.inode: root}
        self._numbers: dict[Hashable, tuple[int, int]] = {}
        self._next = pyfuse3.ROOT_INODE + 1

    def number(self, key: Hashable, count: int = 1) -> int:
        """The first of ``count`` numbers reserved for ``key``: the same on every call."""
        found = self._numbers.get(key)
        if found is not None and found[1] == count:
            return found[0]
        # (a different count would mean the thing changed: it gets fresh numbers)
        base = self._next
        self._next += count
        self._numbers[key] = (base, count)
        return base

    def get(self, inode: int) -> Node | None:
        return self._nodes.get(inode)

    def add(self, node: Node) -> None:
        self._nodes[node.inode] = node

    def add_tree(self, tree: Tree) -> None:
        nodes = self._nodes
        for node in tree.nodes:
            nodes[node.inode] = node

    def drop_tree(self, tree: Tree) -> None:
        nodes = self._nodes
        for node in tree.nodes:
            nodes.pop(node.inode, None)

    def discard(self, key: Hashable) -> None:
        """Drop a node for good: its key (and so its number) is never asked for again."""
        found = self._numbers.pop(key, None)
        if found is not None:
            self._nodes.pop(found[0], None)

    def remember(self, node: Node) -> None:
        """The kernel now holds one more reference to ``node``."""
        node.nlookup += 1
        if node.owner is not None:
            node.owner.refs += 1

    def forget(self, inode: int, count: int) -> Tree | None:
        """The kernel dropped ``count`` references; returns the node's tree if that tree is
        now unreferenced."""
        node = self._nodes.get(inode)
        if node is None:
            return None
        count = min(count, node.nlookup)
        node.nlookup -= count
        tree = node.owner
        if tree is None:
            return None
        tree.refs -= count
        return tree if tree.refs == 0 else None

    def __len__(self) -> int:
        return len(self._nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self._nodes.values())
