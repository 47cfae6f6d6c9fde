"""The mount daemon's Prometheus metrics (``artfs mount --metrics-port``): the counters the
daemon already keeps for the ``user.artfs.stats`` xattr (``stats``, the chunk cache's, the
cache bound's), read at scrape time, not counted a second time.

The scrape comes on prometheus_client's HTTP thread; the counters belong to the trio thread
serving FUSE, so the snapshot is taken there (``trio.from_thread``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import trio
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)

# snapshot key -> (metric name, help); counters are exported with the suffix _total
COUNTERS = {
    "reads": ("artfs_mount_reads", "FUSE read requests"),
    "read_bytes": ("artfs_mount_read_bytes", "Bytes returned to read requests"),
    "read_errors": ("artfs_mount_read_errors", "Reads failed (a chunk could not be had)"),
    "writes": ("artfs_mount_writes", "FUSE write requests to @staging"),
    "write_bytes": ("artfs_mount_write_bytes", "Bytes written to @staging"),
    "chunks_fetched": ("artfs_mount_chunk_fetches", "Chunks fetched from the store (cache misses)"),
    "bytes_fetched": ("artfs_mount_fetched_bytes", "Bytes of chunks fetched from the store"),
    "cache_hits": ("artfs_mount_cache_hits", "Chunks opened from the chunk cache, verified"),
    "chunks_evicted": ("artfs_mount_cache_evictions", "Chunks evicted to keep --cache-size"),
    "chunks_corrupt": ("artfs_mount_corrupt_chunks", "Cached chunks that failed verification"),
    "readahead_chunks": ("artfs_mount_readahead_chunks", "Chunks opened ahead of readers"),
    "in_place_chunks": ("artfs_mount_in_place_chunks", "Chunks opened in the embedded store"),
    "commit_failures": ("artfs_mount_commit_failures", "Commits of @staging that failed"),
}
GAUGES = {
    "open_files": ("artfs_mount_open_files", "Files open through the mount"),
    "open_chunks": ("artfs_mount_open_chunks", "Chunk files held open"),
    "inodes": ("artfs_mount_inodes", "Inodes the kernel holds"),
    "staging_areas": ("artfs_mount_staging_areas", "Staging areas loaded"),
}


class MountCollector:
    """Metrics out of a stats snapshot; empty until ``serving`` hands over the trio token."""

    def __init__(self) -> None:
        self._snapshot: Callable[[], dict[str, Any]] | None = None
        self._token: trio.lowlevel.TrioToken | None = None

    def serving(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        """Called on the trio thread once it serves: snapshots are taken there from now on."""
        self._snapshot, self._token = snapshot, trio.lowlevel.current_trio_token()

    def collect(self) -> Iterator[Metric]:
        if self._snapshot is None or self._token is None:
            return
        try:
            stats = trio.from_thread.run_sync(self._snapshot, trio_token=self._token)
        except trio.RunFinishedError:  # unmounted: the daemon is committing, then exits
            return
        for key, (name, about) in COUNTERS.items():
            yield CounterMetricFamily(name, about, value=stats.get(key, 0))
        for key, (name, about) in GAUGES.items():
            yield GaugeMetricFamily(name, about, value=stats.get(key, 0))
        yield GaugeMetricFamily(
            "artfs_mount_resident_bytes", "Resident memory", value=(stats["rss_kib"] or 0) * 1024
        )
        yield SummaryMetricFamily(
            "artfs_mount_commit_duration_seconds",
            "Commits of @staging (from the mount, artfs commit, or an unmount)",
            count_value=stats.get("commits", 0),
            sum_value=stats.get("commit_seconds", 0.0),
        )


class MetricsServer:
    """Answers scrapes at ``http://HOST:PORT/metrics`` on a thread of its own; a port in use
    raises ``OSError`` here."""

    def __init__(self, host: str, port: int):
        self.collector = MountCollector()
        registry = CollectorRegistry()
        registry.register(self.collector)
        self._server, self._thread = start_http_server(port, host, registry)

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()
