"""Benchmark ``artfs put`` and ``artfs get`` against a loopback ``artfs server``, beside
``curl`` moving the same bytes to and from the same server in the same run.

Trees: one 1 GiB file (64 chunks of 16 MiB) and 1,000 files of 1 MiB (one chunk each).
- get (empty chunk cache, new root) beside ``curl --parallel`` (8 transfers, like artfs's 8
  workers) fetching every chunk URL of the version into files; and ``artfs warm`` (the same
  transfer into the chunk cache only: get writes every byte twice, to the cache and the root);
- put (a new, empty server each time) beside ``curl -T`` uploading the same chunks to the chunk
  upload URL of a new, empty server (the 1 GiB file as its 64 chunks; the small files one each;
  8 in parallel). The server verifies every upload against its digest either way.
The artfs figures include the CLI's ~0.4 s start-up and, for put, hashing the files.

    .venv/bin/python bench/http_transfer.py [--dir /tmp/artfs-bench-http] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from artfs.core.chunking import DEFAULT_CHUNK_SIZE, hash_path
from common import Timing, best_of, fresh, isolated_env, report, timed

ARTFS = str(Path(sys.executable).parent / "artfs")
WORKERS = 8


def make_tree(root: Path, files: int, size: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    block = os.urandom(size)
    for i in range(files):
        with open(root / f"f{i:04d}.bin", "wb") as f:
            f.write(i.to_bytes(8, "little") + block[8:])
    return root


def make_big(root: Path, size: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "big.bin", "wb") as f:
        for _ in range(size // (64 << 20)):
            f.write(os.urandom(64 << 20))
    return root


@contextmanager
def server(data: Path) -> Iterator[tuple[str, str]]:
    """A fresh server on a free loopback port: (url, admin key)."""
    fresh(data)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARTFS_")}
    proc = subprocess.Popen(
        [ARTFS, "server", "--data", str(data), "--port", str(port), "--log-level", "warning"],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if requests.get(url + "/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.05)
        else:
            raise SystemExit("the server did not start")
        yield url, (data / "admin.key").read_text().strip()
    finally:
        proc.terminate()
        proc.wait()


def client_env(url: str, key: str, cache: Path) -> dict[str, str]:
    return {
        **isolated_env(cache.parent),
        "ARTFS_URL": url,
        "ARTFS_API_KEY": key,
        "ARTFS_CACHE_DIR": str(cache),
        "ARTFS_PROJECT": "bench",
    }


def chunk_files(tree: Path, pieces: Path) -> list[tuple[str, Path]]:
    """(digest, file) of every chunk artfs sends; chunks of multi-chunk files are cut into
    ``pieces`` first (untimed), so curl uploads exactly the requests artfs makes."""
    fresh(pieces).mkdir(parents=True)
    out = []
    for path in sorted(tree.iterdir()):
        content = hash_path(path, DEFAULT_CHUNK_SIZE)
        if len(content.chunks) == 1:
            out.append((content.digest, path))
            continue
        with open(path, "rb") as src:
            for chunk in content.chunks:
                piece = pieces / chunk.digest.removeprefix("blake3:")
                piece.write_bytes(src.read(chunk.size))
                out.append((chunk.digest, piece))
    return out


def curl(config_lines: list[str], key: str, work: Path) -> Timing:
    config = work / "curl.cfg"
    config.write_text("\n".join(config_lines) + "\n")
    return timed(
        [
            "curl",
            "-sSf",
            "--parallel",
            "--parallel-max",
            str(WORKERS),
            "-H",
            f"Authorization: Bearer {key}",
            "-K",
            str(config),
        ]
    )


def bench_tree(name: str, tree: Path, size: int, work: Path) -> None:
    # get: one server holding the version; artfs get and curl of its chunk URLs
    with server(work / "server") as (url, key):
        env = client_env(url, key, work / "cache")
        subprocess.run(
            [ARTFS, "put", str(tree), "-n", f"bench/{name}"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        digests = sorted(
            {c.digest for p in tree.iterdir() for c in hash_path(p, DEFAULT_CHUNK_SIZE).chunks}
        )
        out = work / "curl-out"

        def curl_get() -> Timing:
            fresh(out).mkdir()
            lines = [
                f'url = "{url}/api/v1/chunks/{d}"\noutput = "{out}/{i}"'
                for i, d in enumerate(digests)
            ]
            return curl(lines, key, work)

        def artfs_get() -> Timing:
            fresh(work / "cache")
            fresh(work / "root")
            return timed([ARTFS, "get", f"bench/{name}", "--root", str(work / "root")], env=env)

        def artfs_warm() -> Timing:
            fresh(work / "cache")
            return timed([ARTFS, "warm", f"bench/{name}"], env=env)

        baseline = best_of(3, curl_get)
        report(
            f"get {name} (empty cache)", best_of(3, artfs_get), baseline, "curl --parallel", size
        )
        report(
            f"warm {name} (into the cache)",
            best_of(3, artfs_warm),
            baseline,
            "curl --parallel",
            size,
        )

    # put: a new server each time, so every byte is sent and stored
    def artfs_put() -> Timing:
        with server(work / "server") as (url, key):
            env = client_env(url, key, fresh(work / "cache"))
            return timed([ARTFS, "put", str(tree), "-n", f"bench/{name}"], env=env)

    uploads = chunk_files(tree, work / "pieces")

    def curl_put() -> Timing:
        with server(work / "server") as (url, key):
            lines = [
                f'upload-file = "{path}"\nurl = "{url}/api/v1/projects/admin/bench/chunks/{digest}"'
                for digest, path in uploads
            ]
            return curl(lines, key, work)

    baseline = best_of(2, curl_put)
    subject = best_of(2, artfs_put)
    report(f"put {name}", subject, baseline, "curl -T", size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/artfs-bench-http"))
    parser.add_argument("--keep", action="store_true", help="Keep the trees and stores.")
    args = parser.parse_args()
    if not shutil.which("curl"):
        raise SystemExit("curl is needed for the baselines")
    work = args.dir
    work.mkdir(parents=True, exist_ok=True)
    try:
        big = make_big(fresh(work / "big"), 1 << 30)
        many = make_tree(fresh(work / "many"), 1000, 1 << 20)
        bench_tree("1GiB-file", big, 1 << 30, work)
        bench_tree("1000x1MiB", many, 1000 << 20, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
