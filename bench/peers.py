"""artfs beside its peers on the same bytes, in one run: every line of issue 11's table.

Trees: ``tree/`` (1,000 files of 1 MiB + one 1 GiB file: 2 GiB) and ``train/`` (10,000 files
of 100 KiB). Each line is measured in interleaved rounds (artfs, then its peer), page
caches dropped before each cold step (``echo 3 > /proc/sys/vm/drop_caches``: run as root),
and printed as the median of each side with the ratio's median and spread over the rounds.

- put (new store) vs DVC ``add`` + ``push`` (a new cache and local remote each round);
- get, empty cache vs DVC ``pull``; get from the cache vs DVC ``checkout`` (the embedded
  store is artfs's cache: both read it in place);
- 1 GiB through the mount, cold, vs ``dd`` of the file on disk, cold;
- 1 GiB through a fresh mount with the chunks in memory vs ``rclone mount`` of the tree
  (a local remote), the file in memory;
- 1 GiB re-read from the page cache vs native;
- ``cat`` of the 1,000 files of 1 MiB through the mount, cold, vs native;
- the disk used after put and reading everything through the mount, vs the data's size;
- a training epoch: ``train/`` read by 4 processes in random order (the files listed first,
  as a data loader does), cold and warm, files per second vs native;
- through a loopback server: 1 GiB through the mount, cold (empty chunk cache), vs ``curl``
  of the same chunks from the same server.

DVC comes from PyPI in a virtualenv of its own (found on PATH or in
``~/.cache/artfs-bench/dvc-venv``, else installed there); rclone from the Debian package
(``apt-get install rclone``). A missing peer is reported and its lines skipped.

    .venv/bin/python bench/peers.py [--dir /tmp/artfs-bench-peers] [--runs 3] [--keep]
        [--only put,get,mount,cat,disk,epoch,server] [--json results.json]
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
from multiprocessing import Pool
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import fresh, isolated_env, timed
from http_transfer import server
from mount_read import dd, drop_caches, load, mount, stats, umount

ARTFS = str(Path(sys.executable).parent / "artfs")
DVC_VENV = Path.home() / ".cache" / "artfs-bench" / "dvc-venv"
MIB = 1 << 20
RESULTS: list[dict] = []


# -- reporting ------------------------------------------------------------------------------


def line(
    label: str,
    peer: str,
    pairs: list[tuple[float, float]],
    unit: str = "s",
    scale: float = 1.0,
    speed: bool = False,
) -> None:
    """One line of the table: artfs and its peer (medians), and the ratio over the rounds:
    of times (lower is better for artfs) or, ``speed``, of rates (higher is better)."""
    ours, theirs = [a for a, _ in pairs], [b for _, b in pairs]
    if speed:
        ratios = sorted(b / a for a, b in pairs)
        show = lambda t: f"{scale / t:8.0f} {unit}"  # noqa: E731
        kind = "speed"
    else:
        ratios = sorted(a / b for a, b in pairs)
        show = lambda t: f"{t:8.2f} s"  # noqa: E731
        kind = "time"
    print(
        f"{label:<44} {show(median(ours))} | {peer:<28} {show(median(theirs))} | "
        f"{median(ratios):5.2f}x {kind} (spread {ratios[0]:.2f}-{ratios[-1]:.2f}, "
        f"{len(ratios)} runs)",
        flush=True,
    )
    RESULTS.append(
        {
            "line": label,
            "peer": peer,
            "artfs_s": ours,
            "peer_s": theirs,
            "ratio": median(ratios),
            "spread": [ratios[0], ratios[-1]],
            "kind": kind,
        }
    )


def rounds(runs: int, ours: Callable[[], float], theirs: Callable[[], float]) -> list:
    return [(ours(), theirs()) for _ in range(runs)]


def wall(cmd: list, env: dict | None = None, cwd: Path | None = None) -> float:
    """Seconds ``cmd`` takes, once earlier writes are flushed (so that one step's writeback
    does not bill the next)."""
    os.sync()
    return timed(cmd, env, cwd).seconds


def cold(cmd: list, env: dict | None = None, cwd: Path | None = None) -> float:
    drop_caches()
    return wall(cmd, env, cwd)


def _size(n: int) -> str:
    return f"{n / (1 << 30):g} GiB" if n >= 1 << 30 else f"{n >> 20} MiB"


def du(*paths: Path) -> int:
    """Bytes the files under ``paths`` occupy on disk (hard links counted once)."""
    seen, total = set(), 0
    for root in paths:
        for path in [root] if root.is_file() else root.rglob("*"):
            st = path.lstat()
            if path.is_file() and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


# -- data and peers -------------------------------------------------------------------------


def make_tree(root: Path, files: int, size: int, big: int) -> None:
    block = os.urandom(size)
    for i in range(files):
        sub = root / "small" / f"{i // 100:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:04d}.bin").write_bytes(i.to_bytes(8, "little") + block[8:])
    if big:
        with open(root / "big.bin", "wb") as f:
            for _ in range(big // (64 * MIB)):
                f.write(os.urandom(64 * MIB))


def make_train(root: Path, files: int, size: int) -> None:
    block = os.urandom(size)
    for i in range(files):
        sub = root / f"class{i // 1000:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"s{i:05d}.bin").write_bytes(i.to_bytes(8, "little") + block[8:])


def find_dvc(install: bool) -> str | None:
    found = shutil.which("dvc") or (
        str(DVC_VENV / "bin/dvc") if (DVC_VENV / "bin/dvc").exists() else None
    )
    if found or not install:
        return found
    print(f"DVC not found: installing it from PyPI into {DVC_VENV}", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", DVC_VENV], check=True)
        subprocess.run([DVC_VENV / "bin/pip", "install", "-q", "dvc"], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"DVC could not be installed ({exc}): its lines are skipped")
        return None
    return str(DVC_VENV / "bin/dvc")


def find_rclone(install: bool) -> str | None:
    found = shutil.which("rclone")
    if found or not install:
        return found
    print("rclone not found: installing the Debian package", flush=True)
    subprocess.run(["apt-get", "install", "-y", "-q", "rclone"], capture_output=True)
    return shutil.which("rclone")


class Dvc:
    """A DVC project whose workspace holds ``tree/``, with a local directory as remote."""

    def __init__(self, exe: str, repo: Path, remote: Path):
        self.exe, self.repo, self.remote = exe, repo, remote
        self.env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
        self.run("init", "--no-scm", "-f")
        self.run("remote", "add", "-f", "-d", "local", str(remote))

    def run(self, *args: str) -> None:
        subprocess.run([self.exe, *args], cwd=self.repo, env=self.env, check=True, **QUIET)

    def cmd(self, *args: str) -> list[str]:
        return [self.exe, *args]

    def forget(self) -> None:
        """No cache, no hash state: the next add or pull starts from nothing."""
        shutil.rmtree(self.repo / ".dvc/cache", ignore_errors=True)
        shutil.rmtree(self.repo / ".dvc/tmp", ignore_errors=True)

    def add_push(self) -> float:
        self.forget()
        fresh(self.remote)
        (self.repo / "tree.dvc").unlink(missing_ok=True)
        drop_caches()
        start = time.perf_counter()
        self.run("add", "tree")
        self.run("push")
        return time.perf_counter() - start

    def pull(self) -> float:
        self.forget()
        shutil.rmtree(self.repo / "tree")
        return cold(self.cmd("pull"), self.env, self.repo)

    def checkout(self) -> float:
        shutil.rmtree(self.repo / "tree")
        return wall(self.cmd("checkout"), self.env, self.repo)


QUIET = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}


# -- the lines ------------------------------------------------------------------------------


def put_get(work: Path, env: dict, tree: Path, dvc: Dvc | None, runs: int) -> None:
    size = f"{du(tree) / (1 << 30):.1f} GiB"

    def put() -> float:
        for d in ("store", "cache"):
            fresh(work / d)
        return cold([ARTFS, "put", tree, "-n", "bench/tree"], env)

    def get_cold() -> float:
        fresh(work / "cache")
        fresh(work / "out")
        return cold([ARTFS, "get", "bench/tree", "--root", work / "out"], env)

    def get_warm() -> float:
        fresh(work / "out")
        return wall([ARTFS, "get", "bench/tree", "--root", work / "out"], env)

    if dvc is None:
        print("DVC missing: put/get lines skipped")
        put()
        return
    line(f"put (new store), {size}", "DVC add+push", rounds(runs, put, dvc.add_push))
    line("get, empty cache", "DVC pull", rounds(runs, get_cold, dvc.pull))
    line("get, from the cache", "DVC checkout", rounds(runs, get_warm, dvc.checkout))
    fresh(work / "out")


def mount_lines(work: Path, env: dict, tree: Path, rclone: str | None, runs: int) -> None:
    mnt, big = work / "mnt", tree / "big.bin"
    through = mnt / "bench/tree/v0/big.bin"
    size = big.stat().st_size

    def mounted_dd(drop: bool) -> float:
        if drop:
            drop_caches()
        mount(env, mnt)
        try:
            return dd(through).seconds
        finally:
            umount(env, mnt)

    def native_dd(drop: bool) -> float:
        if drop:
            drop_caches()
        return dd(big).seconds

    mb, name = size / 1e6, _size(size)
    pairs = rounds(runs, lambda: mounted_dd(True), lambda: native_dd(True))
    line(f"{name} through the mount, cold", "native disk, cold", pairs, "MB/s", mb, speed=True)
    mounted_dd(False)  # the store's chunks in memory, as a chunk cache would be
    if rclone:
        rmnt = fresh(work / "rclone-mnt")
        rmnt.mkdir()

        def rclone_dd() -> float:
            proc = subprocess.Popen([rclone, "mount", "--read-only", str(tree), str(rmnt)], **QUIET)
            try:
                for _ in range(200):
                    if os.path.ismount(rmnt):
                        break
                    time.sleep(0.05)
                return dd(rmnt / "big.bin").seconds
            finally:
                subprocess.run(["fusermount3", "-u", str(rmnt)], check=False)
                proc.wait()

        dd(big)
        pairs = rounds(runs, lambda: mounted_dd(False), rclone_dd)
        line(
            f"{name} through a new mount, chunks in memory",
            "rclone mount (local), in memory",
            pairs,
            "MB/s",
            mb,
            speed=True,
        )
    else:
        print("rclone missing (apt-get install rclone): its line is skipped")
    mount(env, mnt)
    try:
        dd(through)
        dd(big)
        pairs = rounds(runs, lambda: dd(through).seconds, lambda: dd(big).seconds)
        line(f"{name} re-read, page cache", "native, page cache", pairs, "MB/s", mb, speed=True)
    finally:
        umount(env, mnt)


def cat_line(work: Path, env: dict, tree: Path, runs: int) -> None:
    mnt = work / "mnt"

    def through() -> float:
        drop_caches()
        mount(env, mnt)
        try:
            return wall(["sh", "-c", f"cat '{mnt}'/bench/tree/v0/small/*/* > /dev/null"])
        finally:
            umount(env, mnt)

    def native() -> float:
        return cold(["sh", "-c", f"cat '{tree}'/small/*/* > /dev/null"])

    line(
        "cat of 1,000 x 1 MiB through the mount, cold",
        "native, cold",
        rounds(runs, through, native),
    )


def disk_line(work: Path, env: dict, tree: Path, dvc: Dvc | None) -> None:
    mnt = work / "mnt"
    mount(env, mnt)
    try:
        subprocess.run(["sh", "-c", f"cat $(find '{mnt}/bench/tree/v0' -type f) > /dev/null"])
        found = stats(mnt)
    finally:
        umount(env, mnt)
    data = du(tree)
    store, cache = du(work / "store" / "chunks"), du(work / "cache")
    print(
        f"{'disk after put + reading all through the mount':<44} store {store / 2**30:.2f} GiB"
        f" + cache {cache / 2**30:.2f} GiB | data {data / 2**30:.2f} GiB | "
        f"{(store + cache) / data:5.2f}x the data (chunks read in place: "
        f"{found['in_place_chunks']}, fetched into the cache: {found['chunks_fetched']})"
    )
    RESULTS.append({"line": "disk", "store": store, "cache": cache, "data": data})
    if dvc is not None:
        used = du(dvc.repo / ".dvc/cache", dvc.repo / "tree")
        print(f"{'':<44} DVC cache + workspace: {used / data:.2f}x the data (cache.type default)")


def _read_all(paths: list[str]) -> int:
    total = 0
    for path in paths:
        with open(path, "rb") as f:
            total += len(f.read())
    return total


def epoch(root: Path, seed: int, procs: int = 4) -> tuple[float, int]:
    """A data loader's epoch: list the files, then ``procs`` workers read them in a random
    order; (seconds of the reading, files)."""
    files = sorted(str(p) for p in root.rglob("*") if p.is_file())
    random.Random(seed).shuffle(files)
    with Pool(procs) as pool:
        start = time.perf_counter()
        pool.map(_read_all, [files[i::procs] for i in range(procs)])
        return time.perf_counter() - start, len(files)


def epoch_lines(work: Path, env: dict, train: Path, runs: int) -> None:
    subprocess.run([ARTFS, "put", train, "-n", "bench/train"], env=env, check=True, **QUIET)
    mnt = work / "mnt"
    version = mnt / "bench/train/v0"
    cold_pairs, warm_pairs = [], []
    count = 0
    for r in range(runs):
        drop_caches()
        mount(env, mnt)
        try:
            ours_cold, count = epoch(version, r)
            ours_warm, _ = epoch(version, r + 100)
        finally:
            umount(env, mnt)
        drop_caches()
        native_cold, _ = epoch(train, r)
        native_warm, _ = epoch(train, r + 100)
        cold_pairs.append((ours_cold, native_cold))
        warm_pairs.append((ours_warm, native_warm))
    label = f"epoch of {count:,} files, 4 readers, random"
    line(f"{label}, cold", "native, cold", cold_pairs, "files/s", count, speed=True)
    line(f"{label}, warm", "native, warm", warm_pairs, "files/s", count, speed=True)


def server_line(work: Path, tree: Path, runs: int) -> None:
    from artfs.core.chunking import hash_path
    from http_transfer import client_env

    big = tree / "big.bin"
    one = fresh(work / "server-src")
    one.mkdir()
    os.link(big, one / "big.bin")
    with server(work / "server") as (url, key):
        env = client_env(url, key, work / "server-cache")
        subprocess.run([ARTFS, "put", one, "-n", "bench/big"], env=env, check=True, **QUIET)
        mnt = work / "mnt"
        urls = [f"{url}/api/v1/chunks/{c.digest}" for c in hash_path(big).chunks]

        def through() -> float:
            fresh(work / "server-cache")
            drop_caches()
            mount(env, mnt)
            try:
                return dd(mnt / "bench/big/v0/big.bin").seconds
            finally:
                umount(env, mnt)

        def curl() -> float:
            drop_caches()
            args = ["curl", "-sSf", "-H", f"Authorization: Bearer {key}"]
            for u in urls:
                args += [u, "-o", "/dev/null"]
            return wall(args)

        pairs = rounds(runs, through, curl)
        mb = big.stat().st_size / 1e6
        line(
            "1 GiB through the mount, cold, via a server",
            "curl, same chunks",
            pairs,
            "MB/s",
            mb,
            speed=True,
        )
    shutil.rmtree(one)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/artfs-bench-peers"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--files", type=int, default=1000, help="files of 1 MiB in tree/")
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--train-files", type=int, default=10_000)
    parser.add_argument("--only", default="put,mount,cat,disk,epoch,server")
    parser.add_argument("--no-install", action="store_true", help="do not install peers")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    only = set(args.only.split(","))
    if os.geteuid() != 0:
        print("not root: page caches cannot be dropped; cold figures are not cold")
    work = args.dir
    work.mkdir(parents=True, exist_ok=True)
    env = isolated_env(work)
    dvc_exe = find_dvc(not args.no_install) if "put" in only else None
    rclone = find_rclone(not args.no_install) if "mount" in only else None
    tree = work / "dvc" / "tree"
    if not (tree / "small").exists():
        make_tree(fresh(tree), args.files, MIB, args.big_mib * MIB)
    train = work / "train"
    if "epoch" in only and not train.exists():
        make_train(train, args.train_files, 100 << 10)
    print(
        f"artfs beside its peers: {os.cpu_count()} cores, load average {load()}, "
        f"DVC {'at ' + dvc_exe if dvc_exe else 'missing'}, rclone {rclone or 'missing'}",
        flush=True,
    )
    dvc = Dvc(dvc_exe, work / "dvc", work / "dvc-remote") if dvc_exe else None
    try:
        if "put" in only or not (work / "store").exists():
            put_get(work, env, tree, dvc, args.runs)
        if "mount" in only:
            mount_lines(work, env, tree, rclone, args.runs)
        if "cat" in only:
            cat_line(work, env, tree, args.runs)
        if "disk" in only:
            disk_line(work, env, tree, dvc)
        if "epoch" in only:
            epoch_lines(work, env, train, args.runs)
        if "server" in only:
            server_line(work, tree, args.runs)
    finally:
        for mnt in (work / "mnt", work / "rclone-mnt"):
            if os.path.ismount(mnt):
                subprocess.run(["fusermount3", "-u", "-z", str(mnt)])
        print(f"load average at the end: {load()}")
        if args.json:
            args.json.write_text(json.dumps(RESULTS, indent=1))
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
