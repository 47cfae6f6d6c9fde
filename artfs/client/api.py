"""``artfs.Api``: read and manage what the store holds, outside any run."""

from __future__ import annotations

import contextlib
from typing import Any

from ..core.config import load_config
from ..core.errors import ArtfsError
from ..core.names import parse_project_path
from ..core.records import CollectionInfo, ProjectInfo
from .artifact import Artifact
from .client import Client
from .run import Run
from .sweeps import Sweep


class Api(contextlib.AbstractContextManager["Api"]):
    """Reads and edits outside a run. An Api owns the client it makes (``close`` or ``with``
    closes it); a client passed in stays its caller's to close."""

    def __init__(self, overrides: dict[str, Any] | None = None, *, client: Client | None = None):
        self._owns_client = client is None
        if client is None:
            keys = ("entity", "project", "url", "api_key")
            client = Client(
                load_config(**{k: v for k, v in (overrides or {}).items() if k in keys})
            )
        self.client = client

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def artifact(self, name: str, type: str | None = None) -> Artifact:
        """A logged version by ``[entity/]project/name[:alias|vN]`` (``latest`` by default)."""
        info = self.client.backend.resolve(self.client.path(name))
        if type is not None and info.type != type:
            raise ArtfsError(f"{info.path} has type {info.type!r}, not {type!r}")
        return Artifact._logged(self.client, info)

    def artifact_exists(self, name: str) -> bool:
        try:
            self.artifact(name)
        except ArtfsError:
            return False
        return True

    def artifact_versions(self, type_name: str | None, name: str) -> list[Artifact]:
        """Every committed version of an artifact, oldest first."""
        path = self.client.path(name)
        infos = self.client.backend.list_versions(path)
        return [Artifact._logged(self.client, i) for i in infos if type_name in (None, i.type)]

    artifacts = artifact_versions

    def artifact_collections(
        self, project_name: str | None = None, type_name: str | None = None
    ) -> list[CollectionInfo]:
        entity, project = self._project(project_name)
        return self.client.backend.list_collections(entity, project, type_name)

    def projects(self, entity: str | None = None) -> list[ProjectInfo]:
        return self.client.backend.list_projects(entity)

    def run(self, path: str) -> Run:
        """A run by ``[entity/][project/]run_id``."""
        return Run(self.client, self.client.backend.get_run(self._qualified(path)))

    def runs(self, path: str | None = None, filters: dict[str, Any] | None = None) -> list[Run]:
        entity, project = self._project(path)
        return [
            Run(self.client, r) for r in self.client.backend.list_runs(entity, project, filters)
        ]

    def sweep(self, path: str) -> Sweep:
        """A sweep by ``[entity/][project/]sweep_id``."""
        return Sweep(self.client, self.client.backend.get_sweep(self._qualified(path)))

    def _qualified(self, path: str) -> str:
        parts = path.split("/")
        if len(parts) >= 3:
            return path
        entity, project = self._project(parts[0] if len(parts) == 2 else None)
        return f"{entity}/{project}/{parts[-1]}"

    def _project(self, text: str | None) -> tuple[str, str]:
        text = text or self.client.config.project
        if not text:
            raise ArtfsError("name a project (or set ARTFS_PROJECT)")
        return parse_project_path(text, self.client.entity)
