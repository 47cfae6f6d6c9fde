"""Work the daemon does besides answering requests: keeping the chunk cache under
``--cache-size``, and recording the versions a ``--run`` reads."""

from __future__ import annotations

import contextlib
import logging
import os

import trio

from ..client.backend import Backend
from ..client.cache import ChunkCache
from ..core.records import VersionInfo
from ..core.sizes import format_size
from .reader import ChunkFiles

log = logging.getLogger(__name__)
LOW_WATER = 0.9  # evict down to this fraction of the bound, so eviction runs in batches


class CacheBound:
    """Evicts least-recently-used chunks when the cache outgrows its bound.

    The cache's size is estimated from the daemon's own fetches between scans and rescanned
    now and then (other processes share the cache). Chunks the daemon holds open are touched
    first so they count as recent; a reader of an evicted chunk keeps reading it (Linux keeps
    an unlinked open file readable), and a later open fetches it again.
    """

    def __init__(
        self,
        cache: ChunkCache,
        limit: int,
        files: ChunkFiles,
        interval: float = 1.0,
        rescan: float = 30.0,
    ) -> None:
        self.cache = cache
        self.limit = limit
        self.files = files
        self.interval = interval
        self.rescan = rescan
        self.evicted_chunks = 0

    async def run(self) -> None:
        mark = self.cache.fetched_bytes
        size = await trio.to_thread.run_sync(self._enforce, [])
        scanned = trio.current_time()
        while True:
            await trio.sleep(self.interval)
            fetched = self.cache.fetched_bytes
            due = trio.current_time() - scanned >= self.rescan
            if size + fetched - mark <= self.limit and not due:
                continue
            mark = fetched
            size = await trio.to_thread.run_sync(self._enforce, self.files.open_digests())
            scanned = trio.current_time()

    def _enforce(self, open_digests: list[str]) -> int:
        """Evict if over the bound; returns the cache's size afterwards."""
        total = self.cache.info().bytes
        if total <= self.limit:
            return total
        for digest in open_digests:
            with contextlib.suppress(OSError):
                os.utime(self.cache.path(digest))
        removed, freed = self.cache.cleanup(int(self.limit * LOW_WATER))
        self.evicted_chunks += removed
        log.info(
            "chunk cache over %s: evicted %d chunks (%s)",
            format_size(self.limit),
            removed,
            format_size(freed),
        )
        return total - freed


class UsageRecorder:
    """``--run RUN``: each version read through the mount is recorded, once, as used by RUN."""

    def __init__(self, backend: Backend, run: str):
        self.backend = backend
        self.run = run
        self.nursery: trio.Nursery | None = None
        self._seen: set[tuple[str, int | None]] = set()

    def opened(self, info: VersionInfo) -> None:
        key = (info.path.collection, info.number)
        if key in self._seen or self.nursery is None:
            return
        self._seen.add(key)
        self.nursery.start_soon(self._record, info, key)

    async def _record(self, info: VersionInfo, key: tuple[str, int | None]) -> None:
        try:
            await trio.to_thread.run_sync(self.backend.use_version, self.run, info.path)
        except Exception as exc:
            self._seen.discard(key)  # try again on the next open
            log.warning("could not record %s as used by run %s: %s", info.path, self.run, exc)
        else:
            log.info("recorded %s as used by run %s", info.path, self.run)
