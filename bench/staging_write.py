"""Benchmark writing through the mount's ``@staging/`` against the same writes to a native
directory, and its commit against ``artfs put`` of the same tree, in one run.

- 1 GiB written with ``dd bs=1M`` (from a random file in the page cache): into the page cache,
  and durable (``conv=fsync``), each beside the same ``dd`` into a native directory;
- 10,000 small files (50-500 bytes) copied with ``cp -r``, beside ``cp -r`` natively;
- ``artfs commit`` of all that (the daemon hashes the local files and sends every chunk),
  beside ``artfs put`` of the same native tree into an empty store; then the commit of one
  changed file in the 10,001-file area beside the re-put of the tree with that change.

    .venv/bin/python bench/staging_write.py [--dir /tmp/artfs-bench-staging] [--files 10000]

Run as root for the page cache to be dropped between runs (the figures hold without it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Timing, best_of, fresh, isolated_env, timed
from common import report as ratio
from mount_read import ARTFS, GIB, artfs, load, make_many, mount, report, stats, umount

RUNS = 3


def make_random(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        for _ in range(size >> 20):
            f.write(os.urandom(1 << 20))


def settled(cmd: list[object], env: dict[str, str] | None = None) -> Timing:
    """Time ``cmd`` after flushing earlier writes, so one run's writeback doesn't bill the next."""
    os.sync()
    return timed([str(c) for c in cmd], env)


def write_figures(work: Path, staging: Path, mnt: Path, files: int) -> None:
    src = work / "src"
    src.mkdir()
    make_random(src / "big.bin", GIB)
    make_many(src / "many", files)
    native = work / "native"
    native.mkdir()
    print(f"\n1 GiB written with dd bs=1M (source in the page cache); best of {RUNS}")
    for label, extra in (("page cache", []), ("durable, conv=fsync", ["conv=fsync"])):

        def dd(target: Path, extra: list[str] = extra) -> Timing:
            target.unlink(missing_ok=True)
            return settled(["dd", f"if={src / 'big.bin'}", f"of={target}", "bs=1M", *extra])

        theirs = best_of(RUNS, lambda: dd(native / "big.bin"))
        ours = best_of(RUNS, lambda: dd(staging / "big.bin"))
        report(f"@staging, {label}", ours, theirs, "native", GIB)
    counters = stats(mnt)
    print(f"    FUSE write sizes: {counters['write_sizes']}")
    print(f"\n{files:,} small files copied with cp -r; best of {RUNS}")

    def cp(target: Path) -> Timing:
        fresh(target)
        return settled(["cp", "-r", src / "many", target])

    theirs = best_of(RUNS, lambda: cp(native / "many"))
    ours = best_of(RUNS, lambda: cp(staging / "many"))
    report("@staging, cp -r", ours, theirs, "native, cp -r")
    print(f"    daemon peak RSS {stats(mnt)['peak_rss_kib'] / 1024:.0f} MiB; load {load()}")


def commit_figures(work: Path, env: dict[str, str], staging: Path, files: int) -> None:
    tree = work / "native"
    size = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())
    other = {**env, "ARTFS_HOME": str(work / "store2")}  # an empty store: put sends it all
    print(f"\ncommit of 1 GiB + {files:,} small files, beside artfs put of the same tree")
    commit = settled([ARTFS, "commit", staging], env)
    put = settled([ARTFS, "put", tree, "-n", "bench/ds"], other)
    ratio("artfs commit @staging", commit, put, "artfs put", size)
    (staging / "many/d000/f0000.txt").write_text("changed\n")
    (tree / "many/d000/f0000.txt").write_text("changed\n")
    commit = settled([ARTFS, "commit", staging], env)
    put = settled([ARTFS, "put", tree, "-n", "bench/ds"], other)
    ratio("commit of 1 changed file", commit, put, "re-put, 1 file changed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/artfs-bench-staging"))
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    work = fresh(args.dir)
    work.mkdir(parents=True)
    env = isolated_env(work)
    print(f"artfs @staging benchmark: {os.cpu_count()} cores, {work}, load average {load()}")
    mnt = work / "mnt"
    try:
        (work / "seed").mkdir()
        (work / "seed/README").write_text("seed\n")
        artfs(env, "put", work / "seed", "-n", "bench/ds")
        mount(env, mnt)
        staging = mnt / "bench/ds/@staging"
        write_figures(work, staging, mnt, args.files)
        shutil.copy(work / "seed/README", work / "native/README")
        commit_figures(work, env, staging, args.files)
        umount(env, mnt)
    finally:
        if os.path.ismount(mnt):
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)])
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
