"""put and get through the real CLI: dedup, exact round trips, the cache, deletion and gc."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from artfs.core.chunking import ChunkRef, file_digest
from artfs.core.digest import digest_bytes

from .util import dir_bytes, tree_digests, write_tree


def put(store_env, local: Path, name: str, *args: str) -> dict:
    return json.loads(store_env.cli("put", local, "-n", name, "--json", *args).stdout)


def get(store_env, name: str, root: Path, *args: str) -> dict:
    return json.loads(store_env.cli("get", name, "--root", root, "--json", *args).stdout)


def chunk_file(store_env, digest: str) -> Path:
    hex_ = digest.removeprefix("blake3:")
    return store_env.chunk_dir / hex_[:2] / hex_[2:]


def five_images(root: Path) -> dict[str, bytes]:
    files = {f"images/{i:04d}.png": os.urandom(150_000 + 1000 * i) for i in range(5)}
    write_tree(root, files)
    return files


def test_dedup_story_sends_and_stores_only_changed_files(store_env, tmp_path):
    data = tmp_path / "mnist"
    files = five_images(data)
    before = dir_bytes(store_env.chunk_dir) if store_env.chunk_dir.exists() else 0
    v0 = put(store_env, data, "proj/mnist")
    total = sum(len(b) for b in files.values())
    assert v0["version"]["number"] == 0 and v0["created"]
    assert v0["stats"]["bytes_sent"] == total
    assert dir_bytes(store_env.chunk_dir) - before == total

    changed = {"images/0001.png": os.urandom(151_000), "images/0003.png": os.urandom(153_000)}
    write_tree(data, changed)
    stored_v0 = dir_bytes(store_env.chunk_dir)
    v1 = put(store_env, data, "proj/mnist")
    changed_bytes = sum(len(b) for b in changed.values())
    assert v1["version"]["number"] == 1
    assert v1["stats"]["bytes_sent"] == changed_bytes
    assert v1["stats"]["chunks_sent"] == 2
    assert dir_bytes(store_env.chunk_dir) - stored_v0 == changed_bytes
    assert v1["version"]["file_count"] == 5


def test_same_content_creates_no_new_version(store_env, tmp_path):
    data = tmp_path / "d"
    five_images(data)
    first = put(store_env, data, "proj/d")
    again = put(store_env, data, "proj/d", "-a", "prod")
    assert not again["created"]
    assert again["version"]["number"] == first["version"]["number"] == 0
    assert "prod" in again["version"]["aliases"]
    assert again["stats"]["bytes_sent"] == 0


def test_get_reproduces_each_version_and_second_get_fetches_nothing(store_env, tmp_path):
    data = tmp_path / "d"
    write_tree(data, {"a.txt": b"alpha", "deep/er/b.bin": os.urandom(70_000), "empty": b""})
    v0_tree = tree_digests(data)
    put(store_env, data, "proj/d")
    (data / "a.txt").unlink()
    write_tree(data, {"new/c.txt": b"gamma", "deep/er/b.bin": os.urandom(70_000)})
    v1_tree = tree_digests(data)
    put(store_env, data, "proj/d", "-d", "second")

    first = get(store_env, "proj/d:v0", tmp_path / "r0")
    assert tree_digests(tmp_path / "r0") == v0_tree
    # the embedded store is read in place: nothing is fetched into the cache
    assert first["stats"]["chunks_fetched"] == (0 if store_env.kind == "embedded" else 2)
    assert (tmp_path / "r0" / "empty").stat().st_size == 0

    latest = get(store_env, "proj/d:latest", tmp_path / "r1")
    assert tree_digests(tmp_path / "r1") == v1_tree
    assert latest["version"]["number"] == 1

    again = get(store_env, "proj/d:v0", tmp_path / "r2")
    assert again["stats"]["chunks_fetched"] == 0
    assert tree_digests(tmp_path / "r2") == v0_tree
    same_root = get(store_env, "proj/d:v0", tmp_path / "r0")
    assert same_root["stats"]["chunks_fetched"] == 0


def test_multi_chunk_files_round_trip(store_env, tmp_path):
    data = tmp_path / "d"
    big = os.urandom(64 * 1024 * 5 + 123)
    write_tree(data, {"big.bin": big, "dup.bin": big})
    small_chunks = {"ARTFS_CHUNK_SIZE": "64KiB"}
    out = json.loads(
        store_env.cli("put", data, "-n", "proj/big", "--json", extra_env=small_chunks).stdout
    )
    assert out["stats"]["chunks_sent"] == 6  # the duplicate file's chunks are sent once
    show = json.loads(store_env.cli("show", "proj/big", "--files", "--json").stdout)
    entry = show["manifest"]["entries"]["big.bin"]
    assert [size for _, size in entry["chunks"]] == [65536] * 5 + [123]
    chunks = tuple(ChunkRef(d, s) for d, s in entry["chunks"])
    assert entry["digest"] == file_digest(chunks)  # derived from the verified chunks
    store_env.cli("get", "proj/big", "--root", tmp_path / "out")
    assert (tmp_path / "out" / "big.bin").read_bytes() == big


def test_get_with_prefix(store_env, tmp_path):
    data = tmp_path / "d"
    write_tree(data, {"train/a": b"1", "train/b": b"2", "test/c": b"3"})
    put(store_env, data, "proj/split")
    get(store_env, "proj/split", tmp_path / "out", "--prefix", "train")
    assert sorted(tree_digests(tmp_path / "out")) == ["train/a", "train/b"]


def test_rm_then_gc_removes_only_chunks_no_version_uses(store_env, tmp_path):
    data = tmp_path / "d"
    write_tree(data, {"keep": b"kept in both", "old1": b"only in v0 (1)", "old2": b"only v0 (2)"})
    put(store_env, data, "proj/gc")
    v0_files = json.loads(store_env.cli("show", "proj/gc:v0", "--files", "--json").stdout)
    (data / "old1").unlink()
    (data / "old2").unlink()
    write_tree(data, {"new": b"only in v1"})
    put(store_env, data, "proj/gc")
    v1_files = json.loads(store_env.cli("show", "proj/gc:v1", "--files", "--json").stdout)
    v0_digests = {e["digest"] for e in v0_files["manifest"]["entries"].values()}
    v1_digests = {e["digest"] for e in v1_files["manifest"]["entries"].values()}
    assert all(chunk_file(store_env, d).exists() for d in v0_digests | v1_digests)

    store_env.cli("rm", "proj/gc:v0")
    store_env.cli("gc", "--grace", "0")
    for digest in v0_digests - v1_digests:
        assert not chunk_file(store_env, digest).exists()
    for digest in v1_digests:
        assert chunk_file(store_env, digest).exists()
    get(store_env, "proj/gc:v1", tmp_path / "out")
    assert sorted(tree_digests(tmp_path / "out")) == ["keep", "new"]
    gone = store_env.cli("get", "proj/gc:v0", "--root", tmp_path / "x", check=False)
    assert gone.returncode == 1 and "deleted" in gone.stderr


def test_gc_spares_recent_uploads_but_not_deleted_versions(store_env, tmp_path):
    data = tmp_path / "d"
    write_tree(data, {"a": b"first"})
    put(store_env, data, "proj/g")
    write_tree(data, {"a": b"second"})
    put(store_env, data, "proj/g")
    client = store_env.client()
    in_flight = b"uploaded, not committed yet"
    client.backend.put_chunks(client.entity, "proj", [(digest_bytes(in_flight), in_flight)])
    client.close()
    store_env.cli("rm", "proj/g:v0")  # the deleted version's chunk goes at once
    assert not chunk_file(store_env, digest_bytes(b"first")).exists()
    out = store_env.cli("gc").stdout  # default grace 24h: the recent upload stays
    assert "removed 0 chunks" in out
    assert chunk_file(store_env, digest_bytes(in_flight)).exists()
    assert "removed 1 chunks (27 B)" in store_env.cli("gc", "--grace", "0").stdout
    assert not chunk_file(store_env, digest_bytes(in_flight)).exists()


def test_delete_is_refused_while_aliased(store_env, tmp_path):
    data = tmp_path / "d"
    write_tree(data, {"a": b"1"})
    put(store_env, data, "proj/al", "-a", "best")
    write_tree(data, {"a": b"2"})
    put(store_env, data, "proj/al")
    refused = store_env.cli("rm", "proj/al:v0", check=False)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and "aliases best" in refused.stderr
    latest = store_env.cli("rm", "proj/al:v1", check=False)
    assert latest.returncode == 1 and "latest" in latest.stderr
    store_env.cli("rm", "proj/al:v0", "--delete-aliases")
    versions = store_env.cli("ls", "proj/al").stdout
    assert "v0" not in versions and "v1" in versions


def test_aliases_move_and_are_unique(store_env, tmp_path):
    data = tmp_path / "d"
    for i in range(3):
        write_tree(data, {"a": str(i).encode()})
        put(store_env, data, "proj/m")
    store_env.cli("alias", "set", "proj/m:v0", "best", "prod")
    store_env.cli("alias", "set", "proj/m:v2", "best")
    best = json.loads(store_env.cli("show", "proj/m:best", "--json").stdout)
    prod = json.loads(store_env.cli("show", "proj/m:prod", "--json").stdout)
    assert best["number"] == 2 and prod["number"] == 0
    assert best["aliases"] == ["latest", "best"]
    store_env.cli("alias", "rm", "proj/m", "prod")
    missing = store_env.cli("get", "proj/m:prod", "--root", tmp_path / "o", check=False)
    assert missing.returncode == 1 and "no alias 'prod'" in missing.stderr
    reserved = store_env.cli("alias", "set", "proj/m:v1", "v7", check=False)
    assert reserved.returncode == 1 and "reserved" in reserved.stderr
    managed = store_env.cli("alias", "set", "proj/m:v1", "latest", check=False)
    assert managed.returncode == 1 and "managed" in managed.stderr


@pytest.mark.parametrize("store_env", ["server"], indirect=True)  # (embedded: no cache)
def test_cache_cleanup_zero_empties_cache_and_get_still_works(store_env, tmp_path):
    data = tmp_path / "d"
    files = five_images(data)
    put(store_env, data, "proj/c")
    get(store_env, "proj/c", tmp_path / "o1")
    assert "chunks: 5" in store_env.cli("cache", "info").stdout
    store_env.cli("cache", "cleanup", "0")
    assert "chunks: 0" in store_env.cli("cache", "info").stdout
    assert not list((store_env.cache / "chunks").rglob("*/*"))
    again = get(store_env, "proj/c", tmp_path / "o2")
    assert again["stats"]["chunks_fetched"] == 5
    assert tree_digests(tmp_path / "o2") == tree_digests(data)
    assert len(files) == 5


@pytest.mark.parametrize("store_env", ["server"], indirect=True)  # (embedded: no cache)
def test_cache_cleanup_to_size_evicts_least_recently_used(store_env, tmp_path):
    for name in ("old", "new"):
        write_tree(tmp_path / name, {"f": os.urandom(100_000)})
        put(store_env, tmp_path / name, f"proj/{name}")
    get(store_env, "proj/old", tmp_path / "o-old")
    get(store_env, "proj/new", tmp_path / "o-new")
    old_chunk = next((store_env.cache / "chunks").rglob("*/*"))
    os.utime(old_chunk, (1, 1))  # make one chunk clearly the least recently used
    store_env.cli("cache", "cleanup", "150KB")
    remaining = list((store_env.cache / "chunks").rglob("*/*"))
    assert len(remaining) == 1 and remaining[0] != old_chunk


def test_ls_and_show(store_env, tmp_path):
    data = tmp_path / "d"
    write_tree(data, {"x": b"1"})
    put(
        store_env,
        data,
        "proj/ds",
        "-t",
        "dataset",
        "-d",
        "first",
        "-m",
        "source=camera",
        "--tag",
        "raw",
    )
    assert "proj" in store_env.cli("ls").stdout
    listing = store_env.cli("ls", "proj").stdout
    assert "ds" in listing and "dataset" in listing
    versions = store_env.cli("ls", "proj/ds").stdout
    assert "v0" in versions and "latest" in versions and "first" in versions
    info = json.loads(store_env.cli("show", "proj/ds:v0", "--json").stdout)
    assert info["metadata"] == {"source": "camera"} and info["tags"] == ["raw"]
    assert info["type"] == "dataset" and info["description"] == "first"
    text = store_env.cli("show", "proj/ds").stdout
    assert "digest:" in text and info["digest"] in text
