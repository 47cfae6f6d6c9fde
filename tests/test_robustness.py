"""Concurrency, crashes and bad input: nothing committed, staged or cached is lost or corrupt."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import blake3
import pytest

from artfs.core.chunking import ChunkRef
from artfs.core.digest import digest_bytes
from artfs.core.errors import DigestMismatch, InvalidManifest, InvalidPath
from artfs.core.manifest import Manifest, ManifestEntry
from artfs.core.names import parse_artifact_path

from .util import ARTFS, dir_bytes, need, tree_digests, write_tree


def chunk_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and len(p.parent.name) == 2]


def assert_chunks_verify(root: Path) -> None:
    """Every chunk file holds exactly the bytes its name promises."""
    for path in chunk_files(root):
        assert blake3.blake3(path.read_bytes()).hexdigest() == path.parent.name + path.name


def test_eight_concurrent_commits_get_gap_free_numbers(store_env, tmp_path):
    dirs = [write_tree(tmp_path / f"d{i}", {"f.txt": f"writer {i}".encode()}) for i in range(8)]
    procs = [
        subprocess.Popen(
            [ARTFS, "put", d, "-n", "proj/shared", "--json"],
            env=store_env.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for d in dirs
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [err for _, err in outputs]
    numbers = sorted(json.loads(out)["version"]["number"] for out, _ in outputs)
    assert numbers == list(range(8))
    client = store_env.client()
    versions = client.backend.list_versions(parse_artifact_path("proj/shared", client.entity))
    assert [v.number for v in versions] == list(range(8))
    assert len({v.digest for v in versions}) == 8


def test_killed_put_leaves_no_version_and_resumes(store_env, tmp_path):
    small = {"ARTFS_CHUNK_SIZE": "64KiB"}
    data = write_tree(tmp_path / "big", {f"f{i}.bin": os.urandom(2 << 20) for i in range(48)})
    proc = subprocess.Popen(
        [ARTFS, "put", data, "-n", "proj/big"],
        env={**store_env.env, **small},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    # uploads are recorded in batches of up to 32 chunks per worker: wait for a few batches
    while len(chunk_files(store_env.chunk_dir)) < 500 and time.monotonic() < deadline:
        assert proc.poll() is None, "put finished before it could be killed"
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < dir_bytes(store_env.chunk_dir) < dir_bytes(data)
    assert_chunks_verify(store_env.chunk_dir)
    shown = store_env.cli("show", "proj/big", check=False)
    assert shown.returncode == 1 and "not found" in shown.stderr

    digests = {}
    for path in data.iterdir():
        content = path.read_bytes()
        for start in range(0, len(content), 64 << 10):
            piece = content[start : start + (64 << 10)]
            digests[digest_bytes(piece)] = len(piece)
    missing = store_env.client().backend.missing_chunks(sorted(digests))
    assert 0 < len(missing) < len(digests)
    again = json.loads(
        store_env.cli("put", data, "-n", "proj/big", "--json", extra_env=small).stdout
    )
    assert again["version"]["number"] == 0
    assert again["stats"]["bytes_sent"] == sum(digests[d] for d in missing)
    store_env.cli("get", "proj/big", "--root", tmp_path / "out")
    assert tree_digests(tmp_path / "out") == tree_digests(data)


@pytest.mark.parametrize("store_env", ["server"], indirect=True)  # (embedded: no cache)
def test_killed_get_leaves_cache_consistent(store_env, tmp_path):
    small = {"ARTFS_CHUNK_SIZE": "64KiB"}
    data = write_tree(tmp_path / "big", {f"f{i}.bin": os.urandom(2 << 20) for i in range(24)})
    store_env.cli("put", data, "-n", "proj/big", extra_env=small)
    proc = subprocess.Popen(
        [ARTFS, "get", "proj/big", "--root", tmp_path / "out"],
        env={**store_env.env, **small},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while len(chunk_files(store_env.cache / "chunks")) < 60 and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    cached = len(chunk_files(store_env.cache / "chunks"))
    assert_chunks_verify(store_env.cache / "chunks")
    out = store_env.cli("get", "proj/big", "--root", tmp_path / "out", "--json", extra_env=small)
    again = json.loads(out.stdout)
    assert again["stats"]["chunks_fetched"] == 24 * 32 - cached
    assert tree_digests(tmp_path / "out") == tree_digests(data)


def test_commit_refuses_manifest_paths_even_without_client_checks(embedded):
    client = embedded.client()
    data = b"payload"
    digest = digest_bytes(data)
    client.backend.put_chunks(client.entity, "proj", [(digest, data)])
    path = parse_artifact_path("proj/evil", client.entity)
    for bad in ("../escape", "/etc/passwd", "a//b", "ok/\x01ctl"):
        manifest = Manifest()
        manifest.entries[bad] = ManifestEntry(bad, len(data), digest, (ChunkRef(digest, 7),))
        with pytest.raises(InvalidPath):
            client.backend.commit(path, "dataset", manifest)
    liar = Manifest()
    liar.entries["x"] = ManifestEntry("x", 8, digest, (ChunkRef(digest, 8),))
    with pytest.raises(InvalidManifest):
        client.backend.commit(path, "dataset", liar)
    assert client.backend.list_projects() == [] or not client.backend.list_collections(
        client.entity, "proj"
    )


def test_chunk_whose_bytes_do_not_match_its_digest_is_not_stored(embedded):
    client = embedded.client()
    claimed = digest_bytes(b"the real bytes")
    with pytest.raises(DigestMismatch):
        client.backend.put_chunks(client.entity, "proj", [(claimed, b"other bytes!!!")])
    assert chunk_files(embedded.chunk_dir) == []
    assert list((embedded.store_dir / "tmp").iterdir()) == []
    assert client.backend.missing_chunks([claimed]) == [claimed]


def test_commit_of_unknown_chunks_is_refused(embedded):
    client = embedded.client()
    digest = digest_bytes(b"never uploaded")
    manifest = Manifest([ManifestEntry("f", 14, digest, (ChunkRef(digest, 14),))])
    from artfs.core.errors import MissingChunks

    with pytest.raises(MissingChunks) as info:
        client.backend.commit(parse_artifact_path("proj/x", client.entity), "dataset", manifest)
    assert info.value.digests == [digest]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("get", "proj/bad name!"), "invalid artifact name"),
        (("get", "proj/exists:nope"), "no alias 'nope'"),
        (("get", "proj/exists:v9"), "v9 not found"),
        (("get", "proj/nothing"), "not found"),
        (("cache", "cleanup", "lots"), "invalid size"),
        (("gc", "--grace", "soon"), "invalid duration"),
        (("put", "/nonexistent/path"), "does not exist"),
        (("alias", "set", "proj/exists:v0", "bad@alias"), "invalid alias"),
    ],
)
def test_cli_errors_are_one_line(store_env, tmp_path, args, message):
    write_tree(tmp_path / "d", {"f": b"1"})
    store_env.cli("put", tmp_path / "d", "-n", "proj/exists")
    proc = store_env.cli(*args, check=False)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("artfs: error:"), proc.stderr
    assert message in lines[0]


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs: a disk that fills up."""
    need(os.geteuid() == 0, "mounting a small tmpfs needs root")
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", mnt], check=False)


def test_full_disk_during_put_loses_nothing(embedded, tmp_path, tiny_disk):
    env = {"ARTFS_HOME": str(tiny_disk / "home")}
    small = write_tree(tmp_path / "small", {"a": os.urandom(100_000)})
    embedded.cli("put", small, "-n", "proj/d", extra_env=env)
    big = write_tree(tmp_path / "big", {f"f{i}": os.urandom(1 << 20) for i in range(8)})
    proc = embedded.cli("put", big, "-n", "proj/d", check=False, extra_env=env)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "No space left on device" in proc.stderr
    assert "v1" not in embedded.cli("ls", "proj/d", extra_env=env).stdout
    assert_chunks_verify(tiny_disk / "home" / "chunks")
    embedded.cli("get", "proj/d:v0", "--root", tmp_path / "out", extra_env=env)
    assert tree_digests(tmp_path / "out") == tree_digests(small)


@pytest.mark.parametrize("store_env", ["server"], indirect=True)  # (embedded: no cache)
def test_full_cache_disk_during_get_loses_nothing(store_env, tmp_path, tiny_disk):
    env = {"ARTFS_CACHE_DIR": str(tiny_disk / "cache")}
    big = write_tree(tmp_path / "big", {f"f{i}": os.urandom(1 << 20) for i in range(8)})
    store_env.cli("put", big, "-n", "proj/d", extra_env=env)
    proc = store_env.cli("get", "proj/d", "--root", tmp_path / "out", check=False, extra_env=env)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "No space left on device" in proc.stderr
    assert_chunks_verify(tiny_disk / "cache" / "chunks")
    assert list((tiny_disk / "cache" / "tmp").iterdir()) == []
    store_env.cli("cache", "cleanup", "0", extra_env=env)
    store_env.cli("get", "proj/d", "--root", tmp_path / "out", "--prefix", "f1", extra_env=env)
    assert (tmp_path / "out" / "f1").read_bytes() == (big / "f1").read_bytes()


def test_python_api_failure_outside_cli_raises_artfs_error(api_env, tmp_path):
    import artfs

    with pytest.raises(artfs.ArtfsError):
        artfs.Api().artifact("proj/missing:latest")
    assert sys.modules["artfs"].ArtfsError is artfs.ArtfsError
