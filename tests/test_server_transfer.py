"""Chunk transfer over HTTP against a real server process: verification of uploads,
server-side manifest checks, ranged and resumed reads, crashes mid-upload, streaming."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from artfs.client.http import HttpBackend
from artfs.core.chunking import hash_path
from artfs.core.digest import EMPTY_DIGEST, digest_bytes, hex_of
from artfs.core.errors import DigestMismatch
from artfs.core.names import ArtifactPath

from .serverutil import ServerProcess, start_server
from .util import ARTFS, run_artfs, write_tree

API = "/api/v1"


def auth(server: ServerProcess) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.admin_key}"}


def stored_blobs(server: ServerProcess) -> set[str]:
    return {p.parent.name + p.name for p in (server.data / "chunks").rglob("*") if p.is_file()}


def test_upload_with_a_false_digest_is_refused_and_nothing_is_stored(artfs_server):
    claimed, sent = b"the bytes the digest names", b"other bytes entirely"
    digest = digest_bytes(claimed)
    url = f"{artfs_server.url}{API}/chunks/{digest}"
    upload = f"{artfs_server.url}{API}/projects/admin/proj/chunks"
    answer = requests.put(f"{upload}/{digest}", data=sent, headers=auth(artfs_server), timeout=10)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "digest_mismatch"
    batch = requests.post(
        upload,
        data=sent,
        headers={**auth(artfs_server), "Artfs-Chunks": f"{digest}:{len(sent)}"},
        timeout=10,
    )
    assert batch.status_code == 400
    backend = artfs_server.admin()
    with pytest.raises(DigestMismatch):
        backend.put_chunks("admin", "proj", [(digest, sent)])
    assert hex_of(digest) not in stored_blobs(artfs_server)
    assert list((artfs_server.data / "tmp").iterdir()) == []
    assert backend.missing_chunks([digest]) == [digest]
    assert requests.get(url, headers=auth(artfs_server), timeout=10).status_code == 404


def test_batch_upload_checks_the_announced_sizes(artfs_server):
    a, b = b"first chunk", b"second chunk"
    announced = f"{digest_bytes(a)}:{len(a)},{digest_bytes(b)}:{len(b)}"
    url = f"{artfs_server.url}{API}/projects/admin/proj/chunks"
    headers = {**auth(artfs_server), "Artfs-Chunks": announced}
    short = requests.post(url, data=a + b[:-1], headers=headers, timeout=10)
    assert short.status_code == 400
    long = requests.post(url, data=a + b + b"!", headers=headers, timeout=10)
    assert long.status_code == 400
    ok = requests.post(url, data=a + b, headers=headers, timeout=10)
    assert ok.status_code == 200 and ok.json() == {"stored": [len(a), len(b)]}
    assert artfs_server.admin().missing_chunks([digest_bytes(a), digest_bytes(b)]) == []


@pytest.mark.parametrize("bad_path", ["../evil", "a/../../evil", "/etc/passwd", "a//b", "a\x00b"])
def test_server_refuses_a_manifest_with_unsafe_paths(artfs_server, bad_path):
    """A client that skips its own checks still cannot commit a path leaving the root."""
    data = b"payload"
    digest = digest_bytes(data)
    requests.put(
        f"{artfs_server.url}{API}/projects/admin/proj/chunks/{digest}",
        data=data,
        headers=auth(artfs_server),
        timeout=10,
    ).raise_for_status()
    manifest = {
        "format": "artfs.manifest",
        "version": 1,
        "entries": {bad_path: {"size": len(data), "digest": digest}},
    }
    answer = requests.post(
        f"{artfs_server.url}{API}/projects/admin/proj/artifacts/evil/versions",
        json={"type": "dataset", "manifest": manifest},
        headers=auth(artfs_server),
        timeout=10,
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_path"
    assert artfs_server.admin().list_projects() == []


def test_ranged_reads(artfs_server):
    data = bytes(range(256)) * 64
    digest = digest_bytes(data)
    backend = artfs_server.admin()
    backend.put_chunks("admin", "proj", [(digest, data)])
    url = f"{artfs_server.url}{API}/chunks/{digest}"

    def get(range_header: str) -> requests.Response:
        return requests.get(url, headers={**auth(artfs_server), "Range": range_header}, timeout=10)

    answer = get("bytes=10-19")
    assert answer.status_code == 206 and answer.content == data[10:20]
    assert answer.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    assert get("bytes=-5").content == data[-5:]
    assert get("bytes=16000-").content == data[16000:]
    assert get("bytes=16000-99999").content == data[16000:]
    assert get(f"bytes={len(data)}-").status_code == 416
    assert get("bytes=5-2").status_code == 200  # invalid: ignored, the whole chunk
    assert b"".join(backend.read_chunk(digest, 100, 1000)) == data[100:1100]
    assert b"".join(backend.read_chunk(digest, 16000)) == data[16000:]


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_a_large_chunk_is_streamed_not_buffered(artfs_server, tmp_path):
    """A 192 MiB chunk goes up and down without the server holding it in memory."""
    size = 192 << 20
    src = tmp_path / "big.bin"
    with open(src, "wb") as f:
        for _ in range(size >> 20):
            f.write(os.urandom(1 << 20))
    env = {
        **os.environ,
        **artfs_server.client_env(),
        "ARTFS_CHUNK_SIZE": "256MiB",
        "ARTFS_CACHE_DIR": str(tmp_path / "cache"),
        "ARTFS_PROJECT": "proj",
    }
    assert artfs_server.proc is not None
    before = _peak_rss(artfs_server.proc.pid)
    run_artfs("put", src, "-n", "proj/big", env=env)
    run_artfs("get", "proj/big", "--root", tmp_path / "out", env=env)
    assert hash_path(tmp_path / "out" / "big.bin").digest == hash_path(src).digest
    grown = _peak_rss(artfs_server.proc.pid) - before
    assert grown < 64 << 20, f"server peak memory grew by {grown >> 20} MiB"


def test_download_cut_off_mid_body_resumes_with_a_range(artfs_server):
    data = os.urandom(48 << 20)
    digest = digest_bytes(data)
    backend = artfs_server.admin()
    backend.put_chunks("admin", "proj", [(digest, data)])
    reader = HttpBackend(artfs_server.url, artfs_server.admin_key)
    blocks = reader.read_chunk(digest)
    received = [next(blocks)]
    artfs_server.stop(signal.SIGKILL)  # the rest of the body never comes
    artfs_server.start()
    received += list(blocks)
    reader.close()
    assert b"".join(received) == data


def _dataset(root: Path, files: int, size: int) -> Path:
    return write_tree(root, {f"part-{i:03d}.bin": os.urandom(size) for i in range(files)})


def _all_chunks(src: Path, chunk_size: int) -> list[str]:
    return sorted({c.digest for p in src.iterdir() for c in hash_path(p, chunk_size).chunks})


def _sent_chunks(output: str) -> int:
    return int(re.search(r"sent (\d+) chunks", output).group(1))  # type: ignore[union-attr]


def _put_until_half_stored(
    server: ServerProcess, tmp_path: Path
) -> tuple[Path, list[str], dict[str, str], subprocess.Popen]:
    """Start ``artfs put`` of a dataset of many small chunks and return (dataset, its chunk
    digests, the client environment, the running put) once part of it is stored, not all."""
    src = _dataset(tmp_path / "src", 24, 2 << 20)
    digests = _all_chunks(src, 64 << 10)
    env = {
        **os.environ,
        **server.client_env(),
        **SLOW_UPLOAD,
        "ARTFS_CACHE_DIR": str(tmp_path / "cache"),
        "ARTFS_PROJECT": "proj",
    }
    put = subprocess.Popen(
        [ARTFS, "put", str(src), "-n", "proj/data"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    checker = HttpBackend(server.url, server.admin_key)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            missing = len(checker.missing_chunks(digests))
            if 0 < missing < len(digests) * 3 // 4:
                return src, digests, env, put
            assert put.poll() is None, f"put ended first: {put.communicate()}"
            time.sleep(0.01)
    finally:
        checker.close()
    put.kill()
    raise AssertionError("the upload never got part-way")


SLOW_UPLOAD = {"ARTFS_CHUNK_SIZE": "64KiB"}  # many small chunks: many requests to cut through


def test_server_killed_mid_upload_then_retried_put_sends_only_missing(artfs_server, tmp_path):
    src, digests, env, put = _put_until_half_stored(artfs_server, tmp_path)
    artfs_server.stop(signal.SIGKILL)
    put.kill()
    put.wait()
    artfs_server.start()
    lacking = artfs_server.admin().missing_chunks(digests)
    assert 0 < len(lacking) < len(digests)
    done = run_artfs("put", src, "-n", "proj/data", env=env)
    assert _sent_chunks(done.stdout) == len(lacking)
    run_artfs("get", "proj/data", "--root", tmp_path / "out", env=env)
    for path in src.iterdir():
        assert (tmp_path / "out" / path.name).read_bytes() == path.read_bytes()


def test_put_rides_out_a_server_restart(artfs_server, tmp_path):
    """Retries with backoff: the same put completes once the server is back."""
    _, digests, _, put = _put_until_half_stored(artfs_server, tmp_path)
    artfs_server.stop(signal.SIGKILL)
    artfs_server.start()
    out, err = put.communicate(timeout=120)
    assert put.returncode == 0, err
    assert "created admin/proj/data:v0" in out
    assert artfs_server.admin().missing_chunks(digests) == []


def test_transfers_reuse_connections(tmp_path):
    """A get of 200 files opens about as many connections as it has workers, not 200."""
    server = start_server(tmp_path / "server", "--log-level", "info")
    try:
        src = _dataset(tmp_path / "src", 200, 1000)
        env = {
            **os.environ,
            **server.client_env(),
            "ARTFS_PROJECT": "proj",
            "ARTFS_CACHE_DIR": str(tmp_path / "cache"),
        }
        run_artfs("put", src, "-n", "proj/many", env=env)
        run_artfs("get", "proj/many", "--root", tmp_path / "out", env=env)
    finally:
        server.stop()
    log = server.log.read_text()
    gets = re.findall(r"method=GET path=/api/v1/chunks/\S+ .* client=127\.0\.0\.1:(\d+)", log)
    assert len(gets) == 200
    assert len(set(gets)) <= 16


def test_empty_files_need_no_chunk(artfs_server, tmp_path):
    src = write_tree(tmp_path / "src", {"empty": b"", "a/also-empty": b""})
    env = {
        **os.environ,
        **artfs_server.client_env(),
        "ARTFS_PROJECT": "proj",
        "ARTFS_CACHE_DIR": str(tmp_path / "cache"),
    }
    run_artfs("put", src, "-n", "proj/empty", env=env)
    _, manifest = artfs_server.admin().manifest(ArtifactPath("admin", "proj", "empty"))
    assert {e.digest for e in manifest} == {EMPTY_DIGEST}
