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

The S3 case (``--case s3``; a moto server on loopback holds the bucket, the servers run with
``--blobs s3://...``), each figure the median of 3 runs taken in turns with the baseline,
with the fastest and slowest, and the ratio of medians with the range of run-by-run ratios:
- cold get of the 1 GiB file through presigned URLs (and, for comparison, streamed through
  the server) beside ``curl --parallel`` (8 transfers) of the same objects' presigned URLs
  from moto;
- aggregate throughput of 8 clients getting a 256 MiB version at once (empty caches), spread
  over 1 and 2 server processes (the second on the same data directory and bucket), through
  presigned URLs and streamed, beside 8 ``curl --parallel`` processes fetching the same
  objects from moto at once.

    .venv/bin/python bench/http_transfer.py [--dir /tmp/artfs-bench-http] [--keep]
        [--case local|s3|all]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from artfs.core.chunking import DEFAULT_CHUNK_SIZE, hash_path
from common import Timing, best_of, fresh, isolated_env, report, report_runs, timed

ARTFS = str(Path(sys.executable).parent / "artfs")
MOTO = str(Path(sys.executable).parent / "moto_server")
WORKERS = 8
CLIENTS = 8
RUNS = 3


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, what: str) -> None:
    for _ in range(300):
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not start")


@contextmanager
def server(
    data: Path, *args: str, env: dict[str, str] | None = None, again: bool = False
) -> Iterator[tuple[str, str]]:
    """A server on a free loopback port, on a fresh data directory unless ``again`` (another
    process on the same store): (url, admin key)."""
    if not again:
        fresh(data)
    port = free_port()
    server_env = {k: v for k, v in os.environ.items() if not k.startswith("ARTFS_")}
    command = [ARTFS, "server", "--data", str(data), "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen([*command, *args], env={**server_env, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url + "/healthz", "the server")
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


def curl_command(config_lines: list[str], key: str | None, config: Path) -> list[str]:
    config.write_text("\n".join(config_lines) + "\n")
    auth = ["-H", f"Authorization: Bearer {key}"] if key else []
    return ["curl", "-sSf", "--parallel", "--parallel-max", str(WORKERS), *auth, "-K", str(config)]


def curl(config_lines: list[str], key: str, work: Path) -> Timing:
    return timed(curl_command(config_lines, key, work / "curl.cfg"))


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


@contextmanager
def moto() -> Iterator[dict[str, str]]:
    """A moto S3 server on a free loopback port: the environment that points boto3 at it."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [MOTO, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(endpoint, "moto")
        yield {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    finally:
        proc.terminate()
        proc.wait()


def presigned_urls(aws: dict[str, str], tree: Path) -> list[str]:
    """GET URLs (SigV4, as the server makes them) of the objects of ``tree``'s chunks."""
    import boto3
    from botocore.config import Config

    s3 = boto3.client(
        "s3",
        endpoint_url=aws["AWS_ENDPOINT_URL"],
        region_name=aws["AWS_DEFAULT_REGION"],
        aws_access_key_id=aws["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"],
        config=Config(signature_version="s3v4"),
    )
    digests = sorted(
        {c.digest for p in tree.iterdir() for c in hash_path(p, DEFAULT_CHUNK_SIZE).chunks}
    )
    return [
        s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": "bench", "Key": f"p/chunks/{d[7:9]}/{d[9:]}"},
            ExpiresIn=3600,
        )
        for d in digests
    ]


def together(commands: list[tuple[list[str], dict[str, str] | None]]) -> float:
    """Run the commands at once; the wall time until the last one is done."""
    start = time.perf_counter()
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for cmd, env in commands
    ]
    for proc, (cmd, _) in zip(procs, commands):
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {err.decode()}")
    return time.perf_counter() - start


def in_turns(n: int, *makers: Callable[[], float]) -> list[list[float]]:
    """``n`` runs of each maker, taking turns (a busy moment hits all of them alike)."""
    runs: list[list[float]] = [[] for _ in makers]
    for _ in range(n):
        for out, make in zip(runs, makers):
            out.append(make())
    return runs


def bench_s3(big: Path, medium: Path, work: Path) -> None:
    with moto() as aws:
        import boto3

        boto3.client(
            "s3",
            endpoint_url=aws["AWS_ENDPOINT_URL"],
            region_name=aws["AWS_DEFAULT_REGION"],
            aws_access_key_id=aws["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"],
        ).create_bucket(Bucket="bench")
        data = work / "s3server"
        blobs = ("--blobs", "s3://bench/p")
        with server(data, *blobs, env=aws) as (url, key):
            env = client_env(url, key, work / "cache")
            for tree, name in ((big, "big"), (medium, "medium")):
                subprocess.run(
                    [ARTFS, "put", str(tree), "-n", f"bench/{name}"],
                    env=env,
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
            lines = [
                f'url = "{u}"\noutput = "{work}/curl-out/{i}"'
                for i, u in enumerate(presigned_urls(aws, big))
            ]

            def curl_get() -> float:
                fresh(work / "curl-out").mkdir()
                return timed(curl_command(lines, None, work / "curl.cfg")).seconds

            def artfs_get(transfer: str) -> Callable[[], float]:
                def run() -> float:
                    fresh(work / "cache")
                    fresh(work / "root")
                    command = [ARTFS, "get", "bench/big", "--root", str(work / "root")]
                    return timed(command, env={**env, "ARTFS_TRANSFER": transfer}).seconds

                return run

            direct, streamed, baseline = in_turns(
                RUNS, artfs_get("auto"), artfs_get("stream"), curl_get
            )
            report_runs(
                "get 1GiB-file, presigned URLs", direct, baseline, "curl --parallel", 1 << 30
            )
            report_runs("get 1GiB-file, streamed", streamed, baseline, "curl --parallel", 1 << 30)

        medium_urls = presigned_urls(aws, medium)
        medium_size = sum(p.stat().st_size for p in medium.iterdir())

        def curls_at_once() -> float:
            commands: list[tuple[list[str], dict[str, str] | None]] = []
            for c in range(CLIENTS):
                out = fresh(work / f"curl-{c}")
                out.mkdir()
                lines = [f'url = "{u}"\noutput = "{out}/{i}"' for i, u in enumerate(medium_urls)]
                commands.append((curl_command(lines, None, work / f"curl-{c}.cfg"), None))
            return together(commands)

        def gets_at_once(servers: list[tuple[str, str]], transfer: str) -> Callable[[], float]:
            def run() -> float:
                commands: list[tuple[list[str], dict[str, str] | None]] = []
                for c in range(CLIENTS):
                    url, key = servers[c % len(servers)]
                    env = {
                        **client_env(url, key, fresh(work / f"cache-{c}")),
                        "ARTFS_TRANSFER": transfer,
                    }
                    root = fresh(work / f"root-{c}")
                    commands.append(([ARTFS, "get", "bench/medium", "--root", str(root)], env))
                return together(commands)

            return run

        total = CLIENTS * medium_size
        with (
            server(data, *blobs, env=aws, again=True) as one,
            server(data, *blobs, env=aws, again=True) as two,
        ):
            cases = {
                "1 server, presigned URLs": gets_at_once([one], "auto"),
                "2 servers, presigned URLs": gets_at_once([one, two], "auto"),
                "1 server, streamed": gets_at_once([one], "stream"),
                "2 servers, streamed": gets_at_once([one, two], "stream"),
            }
            *runs, baseline = in_turns(RUNS, *cases.values(), curls_at_once)
        for label, subject in zip(cases, runs):
            report_runs(
                f"{CLIENTS} gets at once, {label}",
                subject,
                baseline,
                f"{CLIENTS} curls at once",
                total,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/artfs-bench-http"))
    parser.add_argument("--keep", action="store_true", help="Keep the trees and stores.")
    parser.add_argument("--case", choices=("local", "s3", "all"), default="all")
    args = parser.parse_args()
    if not shutil.which("curl"):
        raise SystemExit("curl is needed for the baselines")
    work = args.dir
    work.mkdir(parents=True, exist_ok=True)
    try:
        big = make_big(fresh(work / "big"), 1 << 30)
        if args.case in ("local", "all"):
            many = make_tree(fresh(work / "many"), 1000, 1 << 20)
            bench_tree("1GiB-file", big, 1 << 30, work)
            bench_tree("1000x1MiB", many, 1000 << 20, work)
        if args.case in ("s3", "all"):
            bench_s3(big, make_big(fresh(work / "medium"), 256 << 20), work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
