"""The mount's levels above the files: root → projects → artifacts → versions and aliases,
and the trees below them.

Listings come from the store (blocking Backend calls, run on worker threads) and are kept for
the metadata TTL in a cachetools ``TTLCache``; one task fetches a listing however many ask at
once, and lookups in a listed directory cost no store call. A version's tree is loaded from
its manifest on first use, an alias's tree from its version's, and each is dropped once the
kernel has forgotten all its inodes and nothing in it is open.

An alias in a listing is the node of the pair (alias, version it names now): when the alias
moves, the next listing puts another node under its name, and the old one, with its tree,
lives on for whoever still holds it (inode numbers are never reused, so it stays valid).
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable, Collection, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

import pyfuse3
import trio
from cachetools import TTLCache

from ..client.backend import Backend
from ..core.records import CollectionInfo, ProjectInfo, VersionInfo
from .errnos import fuse_error
from .flight import SingleFlight
from .inodes import InodeTable
from .nodes import (
    IMMUTABLE_TIMEOUT,
    AliasNode,
    ArtifactNode,
    DirNode,
    MetaNode,
    Node,
    ProjectNode,
    RootNode,
    VersionNode,
    negative,
)
from .tree import AliasTree, Tree, VersionTree

log = logging.getLogger(__name__)
T = TypeVar("T")
LISTINGS_KEPT = 100_000


@dataclass
class Listing:
    children: list[Node]
    index: dict[bytes, Node]


class Namespace:
    def __init__(self, backend: Backend, entity: str, ttl: float):
        self.backend = backend
        self.entity = entity
        self.ttl = max(ttl, 0.0)
        self.root = RootNode(pyfuse3.ROOT_INODE, entity, time.time_ns(), self.ttl)
        self.inodes = InodeTable(self.root)
        self._listings: TTLCache[Hashable, Listing] | None = (
            TTLCache(LISTINGS_KEPT, self.ttl) if self.ttl > 0 else None
        )
        self._flights: SingleFlight[Any] = SingleFlight()
        self._negative_ttl = negative(self.ttl)
        self._negative_immutable = negative(IMMUTABLE_TIMEOUT)
        self.trees_loaded = 0

    async def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run a blocking store call on a worker thread; failures become an errno."""
        log.debug("store: %s", what)
        try:
            return await trio.to_thread.run_sync(fn)
        except Exception as exc:
            raise fuse_error(exc, what) from None

    def refresh(self) -> None:
        """Forget every listing (SIGHUP): the next access asks the store."""
        if self._listings is not None:
            self._listings.clear()

    # -- looking things up -----------------------------------------------------------------

    async def lookup(self, parent: Node, name: bytes) -> Node | None:
        if isinstance(parent, DirNode):
            return parent.index.get(name)
        if isinstance(parent, VersionNode):  # (aliases too)
            tree = await self.tree(parent)
            found = tree.root.index.get(name)
            if found is None:
                self.release(tree)  # a miss takes no reference: don't keep the manifest
            return found
        return (await self.listing(parent)).index.get(name)

    def negative(self, parent: Node) -> pyfuse3.EntryAttributes:
        """The kernel may remember a missing name inside a version or alias for a day (an
        alias's inode shows one version), elsewhere for the TTL (a version logged meanwhile
        must appear)."""
        immutable = isinstance(parent, (DirNode, VersionNode))
        return self._negative_immutable if immutable else self._negative_ttl

    async def children(self, parent: Node) -> list[Node]:
        if isinstance(parent, DirNode):
            return parent.children
        if isinstance(parent, VersionNode):
            return (await self.tree(parent)).root.children
        return (await self.listing(parent)).children

    async def fresh_attr(self, node: Node) -> pyfuse3.EntryAttributes:
        """``node``'s attributes, re-reading its parent's listing if the TTL has run out."""
        if isinstance(node, MetaNode) and node.parent is not None:
            try:
                await self.listing(node.parent)
            except pyfuse3.FUSEError as exc:
                if exc.errno != errno.ENOENT:
                    raise
        return node.attr

    # -- listings of the levels above the files --------------------------------------------

    async def listing(self, node: Node) -> Listing:
        if not isinstance(node, (RootNode, ProjectNode, ArtifactNode)):
            raise pyfuse3.FUSEError(errno.ENOTDIR)
        key = node.inode
        if self._listings is not None:
            found = self._listings.get(key)
            if found is not None:
                return found
        return await self._flights.run(("ls", key), lambda: self._list(node))

    async def _list(self, node: RootNode | ProjectNode | ArtifactNode) -> Listing:
        children: list[Node]
        if isinstance(node, RootNode):
            projects = await self.call(
                "listing projects", lambda: self.backend.list_projects(self.entity)
            )
            children = [self._project(node, p) for p in projects]
        elif isinstance(node, ProjectNode):
            project = node.info.name
            artifacts = await self.call(
                f"listing {self.entity}/{project}",
                lambda: self.backend.list_collections(self.entity, project),
            )
            children = [self._artifact(node, a) for a in artifacts]
            children += self.extra_entries(node, {a.name for a in artifacts})
        else:
            path = node.path
            versions = []
            if node.info.version_count:  # (an artifact made by mkdir is not in the store yet)
                versions = await self.call(
                    f"listing {path.collection}", lambda: self.backend.list_versions(path)
                )
            children = self._versions(node, versions)
            children += self.extra_entries(node, ())
        listing = Listing(children, {c.name: c for c in children})
        if self._listings is not None:
            self._listings[node.inode] = listing
        return listing

    def extra_entries(
        self, parent: ProjectNode | ArtifactNode, listed: Collection[str]
    ) -> list[Node]:
        """Entries the store does not list: in an artifact directory besides its versions and
        aliases (``@staging``: ``@`` never starts a version or alias name, so they cannot
        clash), in a project directory besides the artifacts ``listed`` (new ones made by
        ``mkdir``). The writable layer (``areas.StagingNamespace``) adds them."""
        return []

    def forget_listing(self, node: Node) -> None:
        """Drop one cached listing (this mount changed it): the next access asks the store."""
        if self._listings is not None:
            self._listings.pop(node.inode, None)

    def _meta(self, cls: type[MetaNode], key: Hashable, name: bytes, parent: Node) -> Any:
        inode = self.inodes.number(key)
        node = self.inodes.get(inode)
        if node is None:
            node = cls(inode, name, parent)
            self.inodes.add(node)
        return node

    def _project(self, root: RootNode, info: ProjectInfo) -> ProjectNode:
        node: ProjectNode = self._meta(
            ProjectNode, ("project", info.entity, info.name), info.name.encode(), root
        )
        node.update(info, self.ttl)
        return node

    def _artifact(self, project: ProjectNode, info: CollectionInfo) -> ArtifactNode:
        key = ("artifact", info.entity, info.project, info.name)
        node: ArtifactNode = self._meta(ArtifactNode, key, info.name.encode(), project)
        node.update(info, self.ttl)
        return node

    def _versions(self, artifact: ArtifactNode, versions: list[VersionInfo]) -> list[Node]:
        collection = artifact.path.collection
        out: list[Node] = []
        aliases: list[AliasNode] = []
        for info in sorted(versions, key=lambda v: v.number or 0):
            if info.number is None:
                continue
            version: VersionNode = self._meta(
                VersionNode, ("version", collection, info.number), info.label.encode(), artifact
            )
            version.update(info, self.ttl)
            out.append(version)
            for name in info.aliases:
                key = ("alias", collection, name, info.number)
                alias: AliasNode = self._meta(AliasNode, key, name.encode(), artifact)
                alias.version = version
                alias.update(info, self.ttl)
                aliases.append(alias)
        return out + sorted(aliases, key=lambda a: a.name)

    # -- the trees below versions and aliases --------------------------------------------

    async def tree(self, node: VersionNode) -> Tree:
        """``node``'s tree, loaded if need be. Use it before the next await: once nothing
        refers to it, a tree may be dropped (a waiter for a load finds it gone, and loops)."""
        while node.tree is None:
            await self._flights.run(("tree", node.inode), lambda: self._load(node))
        return node.tree

    async def _load(self, node: VersionNode) -> None:
        tree: Tree
        if isinstance(node, AliasNode):
            version = await self.tree(node.version)
            assert isinstance(version, VersionTree)
            tree = AliasTree(version)
        else:
            info = node.info
            path = info.path

            def load() -> VersionTree:
                _, manifest = self.backend.manifest(path)
                return VersionTree(info, manifest)

            tree = await self.call(f"reading the manifest of {path}", load)
        base = self.inodes.number(("tree", node.inode), len(tree.nodes))
        tree.number(base, node.inode)
        self.inodes.add_tree(tree)
        node.tree = tree
        self.trees_loaded += 1
        log.debug("loaded %r: %d entries, inodes %d..", node, len(tree.nodes), base)

    def release(self, tree: Tree) -> None:
        """Drop a tree nothing refers to any more (it is loaded again when needed), with the
        version's or alias trees it lives with."""
        version = tree.version if isinstance(tree, AliasTree) else tree
        assert isinstance(version, VersionTree)
        together = [version, *version.aliases]
        if any(t.used for t in together):
            return
        for t in together:
            node = self.inodes.get(t.root.inode)
            if isinstance(node, VersionNode) and node.tree is t:
                node.tree = None
                self.inodes.drop_tree(t)
                self.trees_loaded -= 1
                log.debug("dropped the tree of %r", node)
        version.aliases.clear()
