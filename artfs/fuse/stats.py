"""Counters the daemon keeps, shown as JSON in the ``user.artfs.stats`` xattr of the mount
root, so tests, the benchmark and operators can read them with ``getfattr`` and no side
channel: chunk fetches (from the chunk cache's own counters), FUSE read and write sizes, how
reads were served, commits, and the daemon's memory. ``metrics`` exports the same counters to
Prometheus.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any


def _kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class MountStats:
    def __init__(self, mountpoint: str = ""):
        self.mountpoint = mountpoint
        self.started = time.time()
        self.reads = 0
        self.read_bytes = 0
        self.read_sizes: Counter[int] = Counter()  # by _bucket
        self.inline_reads = 0  # served by pread on an open, verified chunk file
        self.waiting_reads = 0  # had to wait for a chunk to be opened, verified or fetched
        self.readahead_chunks = 0
        self.in_place_chunks = 0  # opened where the embedded store keeps them (no cache copy)
        self.in_place_checks = 0  # of those, hashed (once per chunk per daemon)
        self.checked_ahead = 0  # of those checks, made ahead of the reader (prefetching)
        self.fetched_ahead = 0  # chunks fetched into the cache ahead of the reader
        self.locate_calls = 0  # store calls asking where chunks are (one per batch)
        self.read_errors = 0
        self.writes = 0
        self.write_bytes = 0
        self.write_sizes: Counter[int] = Counter()  # the same, for writes to @staging
        self.copied_files = 0  # staged files whose first change copied their bytes
        self.commits = 0  # of staging areas with changes, by this mount (not its unmount)
        self.commit_failures = 0
        self.commit_seconds = 0.0
        self.requests: Counter[str] = Counter()

    def read(self, size: int) -> None:
        self.reads += 1
        self.read_bytes += size
        self.read_sizes[_bucket(size)] += 1

    def write(self, size: int) -> None:
        self.writes += 1
        self.write_bytes += size
        self.write_sizes[_bucket(size)] += 1

    def committed(self, seconds: float, ok: bool) -> None:
        self.commits += 1
        self.commit_failures += not ok
        self.commit_seconds += seconds

    def snapshot(self, **extra: Any) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "mountpoint": self.mountpoint,
            "uptime_s": round(time.time() - self.started, 1),
            "reads": self.reads,
            "read_bytes": self.read_bytes,
            "read_sizes": _labels(self.read_sizes),
            "inline_reads": self.inline_reads,
            "waiting_reads": self.waiting_reads,
            "readahead_chunks": self.readahead_chunks,
            "in_place_chunks": self.in_place_chunks,
            "in_place_checks": self.in_place_checks,
            "checked_ahead": self.checked_ahead,
            "fetched_ahead": self.fetched_ahead,
            "locate_calls": self.locate_calls,
            "read_errors": self.read_errors,
            "writes": self.writes,
            "write_bytes": self.write_bytes,
            "write_sizes": _labels(self.write_sizes),
            "copied_files": self.copied_files,
            "commits": self.commits,
            "commit_failures": self.commit_failures,
            "commit_seconds": round(self.commit_seconds, 3),
            "requests": dict(self.requests),
            "rss_kib": _kib("VmRSS"),
            "peak_rss_kib": _kib("VmHWM"),
            **extra,
        }


def _bucket(size: int) -> int:
    """A request size rounded up to a power of 2."""
    return 1 << max(size - 1, 0).bit_length()


def _labels(sizes: Counter[int]) -> dict[str, int]:
    return {_label(k): v for k, v in sorted(sizes.items())}


def _label(size: int) -> str:
    for unit, shift in (("M", 20), ("K", 10)):
        if size >= 1 << shift:
            return f"{size >> shift}{unit}"
    return str(size)
