"""``Client``: one configured connection (backend, chunk cache, hash cache, defaults) that the
Python API, the CLI and the mount share, and the put/get workflows built on it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..core.config import Config, load_config
from ..core.errors import MissingChunks, NotFound
from ..core.manifest import Manifest, ManifestEntry
from ..core.names import ArtifactPath, parse_artifact_path
from ..core.paths import is_under
from ..core.records import CommitResult, VersionInfo
from .backend import Backend
from .cache import ChunkCache
from .connect import connect
from .hashcache import HashCache
from .transfer import TransferStats, hash_sources, materialize, send_missing

HASH_CACHE_FILE = "hashes.db"


class Client:
    def __init__(self, config: Config | None = None, backend: Backend | None = None):
        self.config = config or load_config()
        self.backend = backend or connect(self.config)
        self.cache = ChunkCache(self.config.cache_dir)
        self.hash_cache = HashCache(self.config.cache_dir / HASH_CACHE_FILE)

    @property
    def entity(self) -> str:
        return self.config.entity or self.backend.default_entity

    def path(self, name: str, project: str | None = None) -> ArtifactPath:
        """Parse a user-given artifact name with the configured defaults."""
        return parse_artifact_path(name, self.entity, project or self.config.project)

    def latest_digest(self, path: ArtifactPath) -> str | None:
        try:
            return self.backend.resolve(path.with_alias("latest")).digest
        except NotFound:
            return None

    def put(
        self,
        path: ArtifactPath,
        type: str,
        sources: Mapping[str, Path],
        entries: Iterable[ManifestEntry] = (),
        *,
        progress: bool | None = None,
        **options: Any,
    ) -> tuple[CommitResult, TransferStats]:
        """Hash local ``sources``, add known ``entries``, send missing chunks and commit.

        Options go to ``Backend.commit`` (description, metadata, aliases, tags, run, base).
        """
        stats = TransferStats()
        manifest = Manifest(entries)
        for entry in hash_sources(
            sources, self.hash_cache, self.config.chunk_size, stats, progress
        ).values():
            manifest.add(entry)
        manifest.check_tree()
        if manifest.digest != self.latest_digest(path):
            send_missing(self.backend, manifest, sources, stats, progress)
        try:
            result = self.backend.commit(path, type, manifest, **options)
        except MissingChunks as exc:  # gc took chunks the store had: send them, once more
            send_missing(self.backend, manifest, sources, stats, progress, only=exc.digests)
            result = self.backend.commit(path, type, manifest, **options)
        return result, stats

    def download(
        self,
        info: VersionInfo,
        manifest: Manifest,
        root: Path,
        path_prefix: str | None = None,
        progress: bool | None = None,
    ) -> TransferStats:
        stats = TransferStats()
        entries = [e for e in manifest if is_under(e.path, path_prefix)]
        if path_prefix and not entries:
            raise NotFound(f"{info.path} has no files under {path_prefix!r}")
        materialize(
            self.backend,
            self.cache,
            self.hash_cache,
            entries,
            root,
            self.config.chunk_size,
            stats,
            progress,
        )
        return stats

    def close(self) -> None:
        self.backend.close()
