"""``Client``: one configured connection (backend, chunk cache, hash cache, defaults) that the
Python API, the CLI and the mount share, and the put/get workflows built on it."""

from __future__ import annotations

import contextlib
import functools
import io
import weakref
from collections.abc import Callable, Iterable, Mapping
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
from .filebytes import ChunkSource
from .hashcache import HashCache
from .references import ReferenceReader
from .transfer import TransferStats, fetch_chunks, hash_sources, materialize, send_missing

HASH_CACHE_FILE = "hashes.db"


class Client(contextlib.AbstractContextManager["Client"]):
    def __init__(self, config: Config | None = None, backend: Backend | None = None):
        self.config = config or load_config()
        self.backend = backend or connect(self.config)
        self.cache = ChunkCache(self.config.cache_dir)
        self.hash_cache = HashCache(self.config.cache_dir / HASH_CACHE_FILE)
        self.references = ReferenceReader.for_config(self.config)
        weakref.finalize(self, _release, self.backend, self.hash_cache)  # if never closed

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

        Options go to ``Backend.commit`` (description, metadata, aliases, tags, run, base, ttl);
        with ``distributed_id`` they go to ``Backend.upsert_version`` instead: the entries join
        that distributed version, which ``finish=True`` commits.
        """
        stats = TransferStats()
        manifest = self._manifest(sources, entries, stats, progress)
        distributed = "distributed_id" in options
        if distributed or manifest.digest != self.latest_digest(path):
            send_missing(self.backend, path, manifest, sources, stats, progress)
        store = self.backend.upsert_version if distributed else self.backend.commit
        commit = functools.partial(store, path, type, manifest, **options)
        return self._retrying(commit, path, manifest, sources, stats, progress), stats

    def _manifest(
        self,
        sources: Mapping[str, Path],
        entries: Iterable[ManifestEntry],
        stats: TransferStats,
        progress: bool | None,
    ) -> Manifest:
        manifest = Manifest(entries)
        for entry in hash_sources(
            sources, self.hash_cache, self.config.chunk_size, stats, progress
        ).values():
            manifest.add(entry)
        manifest.check_tree()
        return manifest

    def _retrying(
        self,
        call: Callable[[], CommitResult],
        path: ArtifactPath,
        manifest: Manifest,
        sources: Mapping[str, Path],
        stats: TransferStats,
        progress: bool | None,
    ) -> CommitResult:
        try:
            return call()
        except MissingChunks as exc:  # gc took chunks the store had: send them, once more
            send_missing(self.backend, path, manifest, sources, stats, progress, only=exc.digests)
            return call()

    def download(
        self,
        info: VersionInfo,
        manifest: Manifest,
        root: Path,
        path_prefix: str | None = None,
        progress: bool | None = None,
        link: str = "copy",
    ) -> TransferStats:
        """Write a version's files (those under ``path_prefix``) under ``root``, as copies or
        links of the stored chunks (``link``: see ``filebytes``)."""
        stats = TransferStats()
        entries = _entries_under(info, manifest, path_prefix)
        materialize(
            self.backend,
            self.cache,
            self.hash_cache,
            self.references,
            entries,
            root,
            self.config.chunk_size,
            stats,
            progress,
            link,
        )
        return stats

    def prefetch(
        self,
        info: VersionInfo,
        manifest: Manifest,
        path_prefix: str | None = None,
        progress: bool | None = None,
    ) -> TransferStats:
        """Fetch a version's chunks into the cache without writing files (``artfs warm``);
        chunks read in place from the embedded store need no copy."""
        stats = TransferStats()
        entries = _entries_under(info, manifest, path_prefix)
        remote = set(
            ChunkSource(self.backend, self.cache).locate(
                c.digest for e in entries for c in e.chunks
            )
        )
        chunks = {c.digest: c.size for e in entries for c in e.chunks if c.digest in remote}
        fetch_chunks(self.backend, self.cache, chunks, stats, progress)
        stats.files += len(entries)
        stats.bytes += sum(e.size for e in entries)
        return stats

    def read_bytes(self, entry: ManifestEntry) -> bytes:
        """One file's bytes, verified (small files: tables, configs): read in place from the
        embedded store, else through the cache."""
        if entry.ref is not None:
            out = io.BytesIO()
            self.references.fetch(entry, out)
            return out.getvalue()
        source = ChunkSource(self.backend, self.cache)
        source.locate(c.digest for c in entry.chunks)
        return source.read(entry)

    def close(self) -> None:
        """Close the backend's connections and the hash cache's; used again, the client
        opens new ones (an artifact read after its run finished)."""
        _release(self.backend, self.hash_cache)

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _release(backend: Backend, hash_cache: HashCache) -> None:
    backend.close()
    hash_cache.close()


def _entries_under(
    info: VersionInfo, manifest: Manifest, prefix: str | None
) -> list[ManifestEntry]:
    entries = [e for e in manifest if is_under(e.path, prefix)]
    if prefix and not entries:
        raise NotFound(f"{info.path} has no files under {prefix!r}")
    return entries
