"""The embedded backend: the store service in-process, acting as one caller.

``artfs`` on the embedded store acts as the local user (an admin of its own store); the
server's web pages act as the principal an API key stands for, through the same class.
Each method is one call of a ``Store`` part with the bound caller (``backend.Backend``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..core.config import Config, local_user
from ..core.manifest import Manifest
from ..core.names import ArtifactPath
from ..core.records import (
    CollectionInfo,
    CommitResult,
    GcReport,
    ProjectInfo,
    RunInfo,
    SweepInfo,
    VersionInfo,
)
from ..store.access import Principal
from ..store.blobs import Data
from ..store.gc import DEFAULT_GRACE_S
from ..store.service import Store
from ..store.settings import StoreSettings
from .retry import TRANSIENT


class LocalBackend:
    """The ``Backend`` protocol over a ``Store``, with ``caller`` bound as the caller."""

    def __init__(self, store: Store, caller: Principal, default_entity: str | None = None):
        self.store = store
        self.caller = caller
        self._default_entity = default_entity or caller.name

    @classmethod
    def for_user(cls, store: Store, user: str) -> LocalBackend:
        """The local user of an embedded store: created on first use, an admin."""
        return cls(store, store.admin.ensure_user(user, is_admin=True))

    @classmethod
    def from_config(cls, config: Config) -> LocalBackend:
        """The embedded store of ``config``. Its user is its operator, so an older schema is
        upgraded on open (after a copy of the database is kept; see docs/OPERATIONS.md)."""
        settings = StoreSettings(upgrade=True, encryption_key_file=config.encryption_key_file)
        store = Store.open(config.home, settings=settings)
        return cls.for_user(store, config.entity or local_user())

    @property
    def default_entity(self) -> str:
        return self._default_entity

    def whoami(self) -> dict[str, Any]:
        return {**self.store.admin.whoami(self.caller), "url": None}

    def missing_chunks(self, digests: Sequence[str]) -> list[str]:
        return self.store.chunks.missing_chunks(self.caller, digests)

    def put_chunks(self, entity: str, project: str, items: Sequence[tuple[str, Data]]) -> list[int]:
        """Retried under the one policy while the store answers "busy with these chunks"
        (another process's gc); the items are buffers, read again each time."""
        return TRANSIENT.call(
            lambda: self.store.chunks.put_chunks(self.caller, entity, project, items)
        )

    def read_chunk(
        self, digest: str, offset: int = 0, length: int | None = None
    ) -> Iterator[bytes]:
        return self.store.chunks.read_chunk(self.caller, digest, offset, length)

    def chunk_paths(self, digests: Sequence[str]) -> dict[str, Path]:
        return self.store.chunks.chunk_paths(self.caller, digests)

    def expect_reads(self, digests: Sequence[str]) -> None:
        """Nothing to prepare: the store is read in-process."""

    def commit(
        self, path: ArtifactPath, type: str, manifest: Manifest, **options: Any
    ) -> CommitResult:
        return self.store.versions.commit(self.caller, path, type, manifest, **options)

    def upsert_version(
        self, path: ArtifactPath, type: str, manifest: Manifest, **options: Any
    ) -> CommitResult:
        return self.store.versions.upsert_version(self.caller, path, type, manifest, **options)

    def resolve(self, path: ArtifactPath) -> VersionInfo:
        return self.store.versions.resolve(self.caller, path)

    def manifest(self, path: ArtifactPath) -> tuple[VersionInfo, Manifest]:
        return self.store.versions.manifest(self.caller, path)

    def list_projects(self, entity: str | None = None) -> list[ProjectInfo]:
        return self.store.projects.list_projects(self.caller, entity)

    def list_collections(
        self, entity: str, project: str, type: str | None = None
    ) -> list[CollectionInfo]:
        return self.store.versions.list_collections(self.caller, entity, project, type)

    def list_versions(self, path: ArtifactPath, include_deleted: bool = False) -> list[VersionInfo]:
        return self.store.versions.list_versions(self.caller, path, include_deleted)

    def update_version(self, path: ArtifactPath, changes: Mapping[str, Any]) -> VersionInfo:
        return self.store.versions.update_version(self.caller, path, changes)

    def delete_version(self, path: ArtifactPath, delete_aliases: bool = False) -> VersionInfo:
        return self.store.versions.delete_version(self.caller, path, delete_aliases)

    def gc(self, grace: float = DEFAULT_GRACE_S) -> GcReport:
        return self.store.collector.gc(self.caller, grace)

    def init_run(
        self, entity: str, project: str, run_id: str | None = None, **options: Any
    ) -> RunInfo:
        return self.store.runs.init_run(self.caller, entity, project, run_id, **options)

    def update_run(self, run: str, changes: Mapping[str, Any]) -> RunInfo:
        return self.store.runs.update_run(self.caller, run, changes)

    def get_run(self, run: str) -> RunInfo:
        return self.store.runs.get_run(self.caller, run)

    def list_runs(
        self, entity: str, project: str, filters: Mapping[str, Any] | None = None
    ) -> list[RunInfo]:
        return self.store.runs.list_runs(self.caller, entity, project, filters)

    def use_version(self, run: str, path: ArtifactPath) -> VersionInfo:
        return self.store.runs.use_version(self.caller, run, path)

    def run_versions(self, run: str, relation: str) -> list[VersionInfo]:
        return self.store.runs.run_versions(self.caller, run, relation)

    def version_runs(self, path: ArtifactPath, relation: str) -> list[RunInfo]:
        return self.store.runs.version_runs(self.caller, path, relation)

    def create_sweep(self, entity: str, project: str, config: Mapping[str, Any]) -> SweepInfo:
        return self.store.sweeps.create_sweep(self.caller, entity, project, config)

    def get_sweep(self, sweep: str) -> SweepInfo:
        return self.store.sweeps.get_sweep(self.caller, sweep)

    def claim_trial(self, sweep: str, job_type: str | None = None) -> RunInfo | None:
        return self.store.sweeps.claim_trial(self.caller, sweep, job_type)

    def close(self) -> None:
        self.store.close()
