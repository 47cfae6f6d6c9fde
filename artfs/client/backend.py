"""The Backend protocol: everything the client needs from a store, local or remote.

Each method is the store service's method of the same name (``Store.<part>.<method>``)
without the caller argument: the embedded backend supplies its bound principal, the HTTP
backend the API key's owner. The type checker holds ``LocalBackend`` and ``HttpBackend``
to this protocol, and ``tests/test_contract.py`` holds the store's methods and the
server's routes to it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

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
from ..store.blobs import Data


class Backend(Protocol):
    @property
    def default_entity(self) -> str: ...

    def whoami(self) -> dict[str, Any]: ...

    def missing_chunks(self, digests: Sequence[str]) -> list[str]: ...

    def put_chunks(
        self, entity: str, project: str, items: Sequence[tuple[str, Data]]
    ) -> list[int]: ...

    def read_chunk(
        self, digest: str, offset: int = 0, length: int | None = None
    ) -> Iterator[bytes]: ...

    def chunk_paths(self, digests: Sequence[str]) -> dict[str, Path]:
        """The local files holding these chunks, for reading in place (the embedded store
        is its own cache); chunks left out go through the cache. A server answers {}."""
        ...

    def expect_reads(self, digests: Sequence[str]) -> None:
        """A hint, not a store call: these chunks are about to be read (a backend reading
        through presigned URLs gets theirs in one round trip)."""
        ...

    def commit(
        self, path: ArtifactPath, type: str, manifest: Manifest, **options: Any
    ) -> CommitResult: ...

    def upsert_version(
        self, path: ArtifactPath, type: str, manifest: Manifest, **options: Any
    ) -> CommitResult: ...

    def resolve(self, path: ArtifactPath) -> VersionInfo: ...

    def manifest(self, path: ArtifactPath) -> tuple[VersionInfo, Manifest]: ...

    def list_projects(self, entity: str | None = None) -> list[ProjectInfo]: ...

    def list_collections(
        self, entity: str, project: str, type: str | None = None
    ) -> list[CollectionInfo]: ...

    def list_versions(
        self, path: ArtifactPath, include_deleted: bool = False
    ) -> list[VersionInfo]: ...

    def update_version(self, path: ArtifactPath, changes: Mapping[str, Any]) -> VersionInfo: ...

    def delete_version(self, path: ArtifactPath, delete_aliases: bool = False) -> VersionInfo: ...

    def gc(self, grace: float = ...) -> GcReport: ...

    def init_run(
        self, entity: str, project: str, run_id: str | None = None, **options: Any
    ) -> RunInfo: ...

    def update_run(self, run: str, changes: Mapping[str, Any]) -> RunInfo: ...

    def get_run(self, run: str) -> RunInfo: ...

    def list_runs(
        self, entity: str, project: str, filters: Mapping[str, Any] | None = None
    ) -> list[RunInfo]: ...

    def use_version(self, run: str, path: ArtifactPath) -> VersionInfo: ...

    def run_versions(self, run: str, relation: str) -> list[VersionInfo]: ...

    def version_runs(self, path: ArtifactPath, relation: str) -> list[RunInfo]: ...

    def create_sweep(self, entity: str, project: str, config: Mapping[str, Any]) -> SweepInfo: ...

    def get_sweep(self, sweep: str) -> SweepInfo: ...

    def claim_trial(self, sweep: str, job_type: str | None = None) -> RunInfo | None: ...

    def close(self) -> None: ...
