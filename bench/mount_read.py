"""Benchmark reads through the mount against native reads of the same bytes, in one run.

- A 1 GiB file (16 MiB chunks) read sequentially with ``dd bs=1M`` through the mount:
  (a) cold from the store (empty chunk cache, page cache dropped), (b) from the chunk cache
  (a fresh mount, so the mount's page cache is empty and every chunk is checked against its
  digest as the daemon opens it), (c) again, from the page cache, and (b') from the chunk
  cache once more after dropping the file's pages (the daemon has its chunks open and
  checked); each beside ``dd`` of the original file under the same cache conditions.
- ``find`` and ``ls -lR`` over a 100,000-file version, after a first listing, beside the same
  on the original tree, in interleaved rounds: the median time of each and the mount's time
  as a multiple of native's (median and spread). Also the requests one ``ls -lR`` sends the
  daemon, the FUSE read sizes the daemon saw and its peak RSS.

    .venv/bin/python bench/mount_read.py [--dir /tmp/artfs-bench-mount] [--files 100000]
        [--runs 3] [--skip-read] [--skip-list] [--keep]

Run as root: dropping the page cache and raising the mount's readahead need it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Timing, best_of, fresh, isolated_env, timed

ARTFS = str(Path(sys.executable).parent / "artfs")
GIB = 1 << 30


def report(
    label: str, subject: Timing, baseline: Timing, baseline_label: str, size: int = 0
) -> None:
    """One figure beside its native baseline: times, rates, the mount's speed as a fraction
    of native (1.00x = as fast) and its time as a multiple of native's."""

    def rate(t: Timing) -> str:
        return f" {size / t.seconds / 1e6:6.0f} MB/s" if size else ""

    speed = baseline.seconds / subject.seconds if subject.seconds else float("inf")
    print(
        f"{label:<32} {subject.seconds:7.3f} s{rate(subject)} | {baseline_label:<19} "
        f"{baseline.seconds:7.3f} s{rate(baseline)} | {speed:4.2f}x native speed "
        f"({1 / speed:4.1f}x its time)"
    )


def drop_caches(*trees: Path) -> str:
    """Empty the page cache (root), or at least drop these files' pages."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return "dropped"
    except OSError:
        for tree in trees:
            for path in [tree] if tree.is_file() else tree.rglob("*"):
                if path.is_file():
                    drop_file_pages(path)
        return "fadvise"


def drop_file_pages(path: Path) -> None:
    """Drop one file's pages from the page cache (works on the mount's files too)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def artfs(env: dict[str, str], *args: object) -> str:
    proc = subprocess.run([ARTFS, *map(str, args)], env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"artfs {' '.join(map(str, args))} failed: {proc.stderr.strip()}")
    return proc.stdout


def mount(env: dict[str, str], mnt: Path) -> None:
    mnt.mkdir(exist_ok=True)
    artfs(env, "mount", mnt)


def umount(env: dict[str, str], mnt: Path) -> None:
    artfs(env, "umount", mnt)


def stats(mnt: Path) -> dict:
    return json.loads(os.getxattr(mnt, "user.artfs.stats"))


def dd(path: Path) -> Timing:
    return timed(["dd", f"if={path}", "of=/dev/null", "bs=1M", "status=none"])


def make_big(path: Path) -> None:
    block = bytearray(os.urandom(1 << 20))
    with open(path, "wb") as f:
        for offset in range(0, GIB, 1 << 20):
            block[:8] = offset.to_bytes(8, "little")
            f.write(block)


def make_many(root: Path, count: int) -> None:
    rng = random.Random(1)
    per_dir = 1000
    for d in range((count + per_dir - 1) // per_dir):
        sub = root / f"d{d:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        for i in range(min(per_dir, count - d * per_dir)):
            (sub / f"f{i:04d}.txt").write_bytes(rng.randbytes(rng.randint(50, 500)))


def read_figures(work: Path, env: dict[str, str]) -> dict:
    data = work / "big"
    data.mkdir()
    make_big(data / "big.bin")
    start = time.perf_counter()
    artfs(env, "put", data, "-n", "bench/big")
    print(f"put of the 1 GiB file: {time.perf_counter() - start:.1f} s")
    src = data / "big.bin"
    mnt = work / "mnt"
    target = mnt / "bench/big/v0/big.bin"
    runs = 3  # every figure, the mount's and native's, is the best of three runs

    def cold_native() -> Timing:
        drop_caches(src)
        return dd(src)

    def cold_mount() -> Timing:
        shutil.rmtree(env["ARTFS_CACHE_DIR"], ignore_errors=True)
        drop_caches(src, Path(env["ARTFS_HOME"]))
        mount(env, mnt)
        try:
            took = dd(target)
            found.update(stats(mnt))
        finally:
            umount(env, mnt)
        return took

    found: dict = {}
    how = drop_caches(src)
    native_cold = best_of(runs, cold_native)
    cold = best_of(runs, cold_mount)
    cold_stats = dict(found)
    print(f"\n1 GiB sequential read, dd bs=1M (page cache {how} before each cold run)")
    report("(a) mount, cold from the store", cold, native_cold, "native, cold", GIB)

    def fresh_daemon() -> Timing:
        mount(env, mnt)
        try:
            return dd(target)  # a new daemon checks each chunk's digest as it opens it
        finally:
            umount(env, mnt)

    dd(src)  # the native file in the page cache, as the chunk files are
    native_warm = best_of(runs, lambda: dd(src))
    warm = best_of(runs, fresh_daemon)
    mount(env, mnt)
    try:
        dd(target)
        cached = best_of(runs, lambda: dd(target))

        def dropped() -> Timing:
            drop_file_pages(target)  # same daemon: its chunks are open and checked already
            return dd(target)

        warm_open = best_of(runs, dropped)
        warm_stats = stats(mnt)
    finally:
        umount(env, mnt)
    report("(b) mount, from the chunk cache", warm, native_warm, "native, page cache", GIB)
    report("(b') same, chunks already open", warm_open, native_warm, "native, page cache", GIB)
    report("(c) mount, from the page cache", cached, native_warm, "native, page cache", GIB)
    print(
        f"    FUSE read sizes seen by a daemon, (a): {cold_stats['read_sizes']}, "
        f"(c) and 3 x (b'): {warm_stats['read_sizes']} (c sends none)"
    )
    print(
        f"    chunks fetched (a): {cold_stats['chunks_fetched']}, (b): "
        f"{warm_stats['chunks_fetched']}; daemon peak RSS "
        f"{warm_stats['peak_rss_kib'] / 1024:.0f} MiB; load average {load()}"
    )
    return {"cold": cold_stats, "warm": warm_stats}


def paired(runs: int, subject: Callable[[], Timing], baseline: Callable[[], Timing]) -> Ratios:
    """``runs`` rounds of the subject then the baseline, interleaved (a busy machine slows
    both alike)."""
    pairs = [(subject(), baseline()) for _ in range(runs)]
    return Ratios([s.seconds for s, _ in pairs], [b.seconds for _, b in pairs])


@dataclass
class Ratios:
    subject: list[float]
    baseline: list[float]

    def show(self, label: str, baseline_label: str) -> None:
        """Medians, and the mount's time as a multiple of native's: median and spread."""
        ratios = sorted(s / b for s, b in zip(self.subject, self.baseline, strict=True))
        print(
            f"{label:<24} {median(self.subject):7.3f} s | {baseline_label:<14} "
            f"{median(self.baseline):7.3f} s | {median(ratios):5.2f}x native time "
            f"(spread {ratios[0]:.2f}-{ratios[-1]:.2f}x, {len(ratios)} runs)"
        )


def listing_figures(work: Path, env: dict[str, str], count: int, runs: int) -> None:
    src = work / "many"
    start = time.perf_counter()
    make_many(src, count)
    made = time.perf_counter() - start
    start = time.perf_counter()
    artfs(env, "put", src, "-n", "bench/many")
    print(
        f"\n{count:,} small files: made in {made:.1f} s, put in {time.perf_counter() - start:.1f} s"
    )
    mnt = work / "mnt"
    version = mnt / "bench/many/v0"
    timed(["find", src])
    timed(["ls", "-lR", src])
    mount(env, mnt)
    try:
        first = timed(["find", version])  # loads the manifest; the kernel learns every entry
        first_native = timed(["find", src])
        before = stats(mnt)["requests"]
        timed(["ls", "-lR", version])
        after = stats(mnt)
        asked = {k: v - before.get(k, 0) for k, v in after["requests"].items()}
        find = paired(runs, lambda: timed(["find", version]), lambda: timed(["find", src]))
        ls = paired(runs, lambda: timed(["ls", "-lR", version]), lambda: timed(["ls", "-lR", src]))
    finally:
        umount(env, mnt)
    Ratios([first.seconds], [first_native.seconds]).show("find, first listing", "native find")
    find.show("find, once listed", "native find")
    ls.show("ls -lR, once listed", "native ls -lR")
    print(
        f"    daemon requests for one ls -lR: {asked}; peak RSS after listing {count:,} "
        f"files: {after['peak_rss_kib'] / 1024:.0f} MiB (now {after['rss_kib'] / 1024:.0f} "
        f"MiB); chunks fetched: {after['chunks_fetched']}; load average {load()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/artfs-bench-mount"))
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--skip-read", action="store_true")
    parser.add_argument("--skip-list", action="store_true")
    parser.add_argument("--runs", type=int, default=3, help="rounds of each listing figure")
    args = parser.parse_args()
    work = fresh(args.dir)
    work.mkdir(parents=True)
    env = isolated_env(work)
    print(f"artfs mount benchmark: {os.cpu_count()} cores, {work}, load average {load()}")
    try:
        if not args.skip_read:
            read_figures(work, env)
        if not args.skip_list:
            listing_figures(work, env, args.files, args.runs)
    finally:
        if os.path.ismount(work / "mnt"):
            subprocess.run(["fusermount3", "-u", "-z", str(work / "mnt")])
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
