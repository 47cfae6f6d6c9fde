"""Counters the daemon keeps, shown as JSON in the ``user.artfs.stats`` xattr of the mount
root, so tests, the benchmark and operators can read them with ``getfattr`` and no side
channel: chunk fetches (from the chunk cache's own counters), FUSE read sizes, how reads
were served, and the daemon's memory.
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
        self.read_sizes: Counter[int] = Counter()  # request size rounded up to a power of 2
        self.inline_reads = 0  # served by pread on an open, verified chunk file
        self.waiting_reads = 0  # had to wait for a chunk to be opened, verified or fetched
        self.readahead_chunks = 0
        self.read_errors = 0

    def read(self, size: int) -> None:
        self.reads += 1
        self.read_bytes += size
        self.read_sizes[1 << max(size - 1, 0).bit_length()] += 1

    def snapshot(self, **extra: Any) -> dict[str, Any]:
        sizes = {_label(k): v for k, v in sorted(self.read_sizes.items())}
        return {
            "pid": os.getpid(),
            "mountpoint": self.mountpoint,
            "uptime_s": round(time.time() - self.started, 1),
            "reads": self.reads,
            "read_bytes": self.read_bytes,
            "read_sizes": sizes,
            "inline_reads": self.inline_reads,
            "waiting_reads": self.waiting_reads,
            "readahead_chunks": self.readahead_chunks,
            "read_errors": self.read_errors,
            "rss_kib": _kib("VmRSS"),
            "peak_rss_kib": _kib("VmHWM"),
            **extra,
        }


def _label(size: int) -> str:
    for unit, shift in (("M", 20), ("K", 10)):
        if size >= 1 << shift:
            return f"{size >> shift}{unit}"
    return str(size)
