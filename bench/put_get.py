"""Benchmark ``artfs put`` and ``artfs get`` on the embedded store against ``cp -r``.

Trees: 1,000 files of 1 MiB, and one 1 GiB file. For each: put (new data), get with an empty
cache, get with a warm cache (new root), each beside ``cp -r`` of the same tree in the same
run; and the re-put of the unchanged tree beside ``find`` over it. The CLI figures include
the ~0.4 s Python start-up; the in-process re-put shows the hash-cache path alone.

    .venv/bin/python bench/put_get.py [--dir /tmp/artfs-bench] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Timing, best_of, fresh, isolated_env, report, timed

ARTFS = str(Path(sys.executable).parent / "artfs")


def make_tree(root: Path, files: int, size: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    block = os.urandom(size)
    for i in range(files):
        # distinct content per file: a counter stamped into shared random bytes
        (root / f"{i // 100:02d}").mkdir(exist_ok=True)
        with open(root / f"{i // 100:02d}" / f"f{i:04d}.bin", "wb") as f:
            f.write(i.to_bytes(8, "little") + block[8:])


def make_big(root: Path, size: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "big.bin", "wb") as f:
        for _ in range(size // (64 << 20)):
            f.write(os.urandom(64 << 20))


def in_process_reput(env: dict[str, str], tree: Path, name: str) -> Timing:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        from artfs.client.artifact import Artifact, _walk_files
        from artfs.client.client import Client

        client = Client()
        start = time.perf_counter()
        sources = {rel: tree / rel for rel in _walk_files(tree)}
        result, stats = client.put(client.path(name), "dataset", sources)
        elapsed = time.perf_counter() - start
        assert not result.created and stats.hashed_files == 0, (result, stats)
        client.close()
        del Artifact
    finally:
        os.environ.clear()
        os.environ.update(saved)
    import resource

    return Timing(elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def settled(cmd: list[str], env: dict[str, str] | None = None) -> Timing:
    """Time ``cmd`` after flushing earlier writes, so one step's writeback doesn't bill the next."""
    os.sync()
    return timed(cmd, env)


def bench_tree(label: str, tree: Path, work: Path, env: dict[str, str], size: int) -> None:
    name = f"bench/{label.replace(' ', '-')}"
    copy = work / "cp-copy"
    cp = best_of(3, lambda: settled(["cp", "-r", tree, fresh(copy)]))
    cp_sync = best_of(3, lambda: settled(["sh", "-c", f"cp -r {tree} {fresh(copy)} && sync"]))
    shutil.rmtree(copy)
    put = settled([ARTFS, "put", tree, "-n", name], env)
    report(f"{label}: put (new data)", put, cp, "cp -r", size)
    report(f"{label}: put (new data)", put, cp_sync, "cp -r && sync (durable)", size)
    cache = Path(env["ARTFS_CACHE_DIR"]) / "chunks"
    get_cold = settled([ARTFS, "get", name, "--root", fresh(work / "get1")], env)
    report(f"{label}: get, empty cache", get_cold, cp, "cp -r", size)
    get_warm = settled([ARTFS, "get", name, "--root", fresh(work / "get2")], env)
    report(f"{label}: get, warm cache", get_warm, cp, "cp -r", size)
    assert cache.exists()
    time.sleep(1.1)  # let the files written by put settle past the hash cache's racy window
    timed([ARTFS, "put", tree, "-n", name], env)  # re-hash what was racy at the first put
    find = best_of(3, lambda: timed(["find", tree, "-type", "f"]))
    reput = best_of(3, lambda: timed([ARTFS, "put", tree, "-n", name], env))
    report(f"{label}: re-put unchanged (CLI)", reput, find, "find", 0)
    inproc = in_process_reput(env, tree, name)
    report(f"{label}: re-put unchanged (API)", inproc, find, "find", 0)
    for d in ("get1", "get2"):
        shutil.rmtree(work / d)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/artfs-bench"))
    parser.add_argument("--keep", action="store_true", help="keep the data afterwards")
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--big-mib", type=int, default=1024)
    args = parser.parse_args()
    work = fresh(args.dir)
    work.mkdir(parents=True)
    env = isolated_env(work)
    print(f"# artfs put/get, embedded store in {work}; {os.cpu_count()} CPUs")
    make_tree(work / "small", args.files, 1 << 20)
    bench_tree(f"{args.files} x 1 MiB", work / "small", work, env, args.files << 20)
    shutil.rmtree(work / "cache")
    make_big(work / "big", args.big_mib << 20)
    bench_tree(f"1 x {args.big_mib} MiB", work / "big", work, env, args.big_mib << 20)
    if not args.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
