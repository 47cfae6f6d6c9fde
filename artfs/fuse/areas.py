"""A mount's staging areas: where they live on disk, which are open, and how they appear in
the namespace (``@staging/`` in every artifact directory, and artifacts made by ``mkdir``
that the store does not know yet).

Areas live in ``$ARTFS_STATE_DIR/staging/<store>/<entity>/<project>/<artifact>/``, so a
remount of the same store shows the same staged changes, and two stores never mix.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import sqlite3
import time
from collections.abc import Collection, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pyfuse3

from ..client.backend import Backend
from ..core.config import Config
from ..core.digest import digest_bytes, hex_of
from ..core.records import CollectionInfo
from .errnos import fuse_error
from .flight import SingleFlight
from .inodes import InodeTable
from .journal import DB_NAME, ROOT_ID, AreaKey, read_meta
from .namespace import Namespace
from .nodes import AliasNode, ArtifactNode, Node, ProjectNode, VersionNode, negative
from .staged import STAGED_TIMEOUT, StagedDir, StagedNode
from .staging import StagingArea

log = logging.getLogger(__name__)
DEFAULT_TYPE = "dataset"


def store_key(config: Config) -> str:
    """A directory name for the store a mount shows: readable, and unique per server URL or
    embedded store directory."""
    if config.url:
        parts = urlsplit(config.url)
        label, ident = f"{parts.hostname}-{parts.port or parts.scheme}", config.url.rstrip("/")
    else:
        label, ident = "embedded", str(config.home.resolve())
    label = re.sub(r"[^A-Za-z0-9.-]+", "-", label).strip("-") or "store"
    return f"{label}-{hex_of(digest_bytes(ident.encode()))[:12]}"


def staging_root(config: Config, entity: str) -> Path:
    return config.state_dir / "staging" / store_key(config) / entity


class StagingAreas:
    """The areas of one mount's entity, each created once and kept for the mount's life;
    their nodes get inode numbers from the mount's table (never reused: node ids aren't)."""

    def __init__(self, root: Path, entity: str, inodes: InodeTable):
        self.root = root
        self.entity = entity
        self.inodes = inodes
        self._areas: dict[tuple[str, str], StagingArea] = {}

    def get(self, project: str, artifact: str, type: str) -> StagingArea:
        area = self._areas.get((project, artifact))
        if area is None:
            key = AreaKey(self.entity, project, artifact)
            area = StagingArea(self.root / project / artifact, key, type, self._adopt)
            self._adopt(area.root)
            self._areas[(project, artifact)] = area
        return area

    def _number(self, node: StagedNode) -> tuple[str, str, int]:
        return ("staged", node.area.key.collection, node.id)

    def _adopt(self, node: StagedNode) -> None:
        node.inode = self.inodes.number(self._number(node))
        self.inodes.add(node)

    def free(self, node: StagedNode) -> None:
        """Drop an unlinked node the kernel has forgotten and nothing holds open."""
        node.area.free(node)
        self.inodes.discard(self._number(node))

    def _stored(self) -> Iterator[tuple[str, str, Path]]:
        """(project, artifact, directory) of every area with state on disk."""
        if not self.root.is_dir():
            return
        for project in sorted(os.scandir(self.root), key=lambda e: e.name):
            if project.is_dir():
                for artifact in sorted(os.scandir(project.path), key=lambda e: e.name):
                    if os.path.exists(os.path.join(artifact.path, DB_NAME)):
                        yield project.name, artifact.name, Path(artifact.path)

    def new_artifacts(self, project: str, listed: Collection[str]) -> list[CollectionInfo]:
        """Artifacts of ``project`` that have a staging area but are not in the store."""
        out = []
        for proj, name, directory in self._stored():
            if proj != project or name in listed:
                continue
            area = self._areas.get((proj, name))
            try:
                type = area.type if area is not None else read_meta(directory)["type"]
            except (OSError, sqlite3.Error, KeyError) as exc:
                log.warning("unreadable staging area %s: %s", directory, exc)
                continue
            created = os.stat(directory).st_mtime
            out.append(CollectionInfo(self.entity, proj, name, type, None, created, 0, None))
        return out

    def stored(self) -> list[StagingArea]:
        """Every area with state on disk, loaded (the ones another mount holds are left out)."""
        out = []
        for project, artifact, _ in self._stored():
            area = self.get(project, artifact, DEFAULT_TYPE)
            if not area.loaded:
                try:
                    area.load()
                except (OSError, sqlite3.Error) as exc:
                    log.warning("staging area %s/%s left alone: %s", project, artifact, exc)
                    continue
            out.append(area)
        return out

    def loaded(self) -> list[StagingArea]:
        return [a for a in self._areas.values() if a.loaded]

    def close(self) -> None:
        for area in self._areas.values():
            area.close()


class StagingNamespace(Namespace):
    """The namespace with the staging areas in it."""

    def __init__(self, backend: Backend, entity: str, ttl: float, staging: Path):
        super().__init__(backend, entity, ttl)
        self.areas = StagingAreas(staging, entity, self.inodes)
        self._owners: dict[AreaKey, ArtifactNode] = {}
        self._starting: SingleFlight[None] = SingleFlight()
        self._negative_staged = negative(STAGED_TIMEOUT)

    async def lookup(self, parent: Node, name: bytes) -> Node | None:
        if isinstance(parent, StagedDir):
            await self.ready(parent.area)
            return parent.index.get(name)
        return await super().lookup(parent, name)

    async def children(self, parent: Node) -> list[Node]:
        if isinstance(parent, StagedDir):
            await self.ready(parent.area)
            return parent.sorted_children()  # type: ignore[return-value]
        return await super().children(parent)

    def negative(self, parent: Node) -> pyfuse3.EntryAttributes:
        if isinstance(parent, StagedNode):
            return self._negative_staged
        return super().negative(parent)

    def extra_entries(
        self, parent: ProjectNode | ArtifactNode, listed: Collection[str]
    ) -> list[Node]:
        if isinstance(parent, ArtifactNode):
            info = parent.info
            area = self.areas.get(info.project, info.name, info.type)
            self._owners[area.key] = parent
            return [area.root]
        project = parent.info.name
        return [self._artifact(parent, info) for info in self.areas.new_artifacts(project, listed)]

    def new_artifact(self, project: ProjectNode, name: str) -> ArtifactNode:
        """``mkdir PROJECT/NAME``: an artifact whose first version its staging area makes."""
        area = self.areas.get(project.info.name, name, DEFAULT_TYPE)
        if area.loaded or area.on_disk():
            raise pyfuse3.FUSEError(errno.EEXIST)
        area.start(None, None)
        area.set_type(DEFAULT_TYPE)  # written to disk: the artifact outlives the mount
        info = CollectionInfo(
            self.entity, project.info.name, name, DEFAULT_TYPE, None, time.time(), 0, None
        )
        node = self._artifact(project, info)
        self._owners[area.key] = node
        self.forget_listing(project)
        return node

    async def ready(self, area: StagingArea) -> None:
        """Load ``area`` from disk, or start it from its artifact's latest version."""
        if not area.loaded:
            await self._starting.run(area.key, lambda: self._start(area))

    async def _start(self, area: StagingArea) -> None:
        if area.on_disk():
            try:
                area.load()
            except (OSError, sqlite3.Error) as exc:
                raise fuse_error(exc, f"opening the staging area of {area.key.short}") from None
            return
        artifact = self._owners.get(area.key)
        version = await self._latest(artifact) if artifact is not None else None
        if version is None:
            area.start(None, None)
            return
        tree = await self.tree(version)
        area.start(version.info.number, tree.root, tree.mtime_ns)
        self.release(tree)

    async def _latest(self, artifact: ArtifactNode) -> VersionNode | None:
        latest = (await self.listing(artifact)).index.get(b"latest")
        return latest.version if isinstance(latest, AliasNode) else None

    def owner(self, area: StagingArea) -> ArtifactNode | None:
        return self._owners.get(area.key)

    def staged_root(self, node: Node) -> StagedDir | None:
        """``node`` if it is a ``@staging`` directory."""
        if isinstance(node, StagedDir) and node.id == ROOT_ID:
            return node
        return None
