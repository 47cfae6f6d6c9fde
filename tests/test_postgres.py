"""The store on PostgreSQL (a real server) and S3 (a moto server): the same rules hold."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from artfs.client.client import Client
from artfs.client.local import LocalBackend
from artfs.core.config import load_config
from artfs.core.names import parse_artifact_path
from artfs.store.service import Store

from .pgutil import PgCluster, start_cluster
from .serverutil import start_server
from .util import run_artfs, tree_digests, write_tree


@pytest.fixture(scope="session")
def pg() -> Iterator[PgCluster]:
    yield from start_cluster()


def _client(tmp: Path, db_url: str, blobs_url: str | None = None) -> Client:
    store = Store.open(tmp / "home", db_url=db_url, blobs_url=blobs_url)
    config = load_config().with_overrides(cache_dir=tmp / "cache", home=tmp / "home")
    return Client(config, LocalBackend.for_user(store, "tester"))


def _commit_one(db_url: str, tmp: str, i: int) -> int:
    client = _client(Path(tmp) / f"w{i}", db_url)
    src = write_tree(Path(tmp) / f"src{i}", {"f": f"writer {i}".encode()})
    result, _ = client.put(client.path("proj/shared"), "dataset", {"f": src / "f"})
    return result.version.number  # type: ignore[return-value]


def test_concurrent_commits_on_postgres_are_gap_free(pg, tmp_path):
    db_url = pg.new_database()
    _client(tmp_path / "init", db_url).close()  # create the schema once
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(8) as pool:
        numbers = pool.starmap(_commit_one, [(db_url, str(tmp_path), i) for i in range(8)])
    assert sorted(numbers) == list(range(8))


def test_put_get_gc_on_postgres_and_s3(pg, tmp_path, s3):
    s3.create_bucket(Bucket="chunks")
    client = _client(tmp_path, pg.new_database(), "s3://chunks/store1")
    data = write_tree(tmp_path / "d", {"a": os.urandom(5000), "b": b"bee", "c": os.urandom(900)})
    path = client.path("proj/ds")
    sources = {p: data / p for p in ("a", "b", "c")}
    _, stats = client.put(path, "dataset", sources)
    assert stats.bytes_sent == 5903
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="chunks")["Contents"]}
    assert len(keys) == 3 and all(k.startswith("store1/chunks/") for k in keys)
    (data / "a").write_bytes(os.urandom(5000))
    v1, stats = client.put(path, "dataset", sources)
    assert v1.version.number == 1 and stats.bytes_sent == 5000
    client.backend.delete_version(parse_artifact_path("proj/ds:v0", client.entity))
    assert len(s3.list_objects_v2(Bucket="chunks")["Contents"]) == 3  # v0's own chunk went
    assert client.backend.gc(0).chunks_deleted == 0
    info, manifest = client.backend.manifest(path)
    client.download(info, manifest, tmp_path / "out")
    assert tree_digests(tmp_path / "out") == tree_digests(data)


def test_two_servers_share_postgres_and_s3(pg, tmp_path, s3):
    """The scaling story: servers are stateless, so two processes serve one store."""
    s3.create_bucket(Bucket="team")
    shared = ("--db", pg.new_database(), "--blobs", "s3://team/artfs")
    first = start_server(tmp_path / "a", *shared)
    try:
        (tmp_path / "b").mkdir()
        shutil.copy(tmp_path / "a" / "admin.key", tmp_path / "b" / "admin.key")
        second = start_server(tmp_path / "b", *shared)
    except BaseException:
        first.stop()
        raise
    try:
        env = {**os.environ, **_client_env_dirs(tmp_path), **first.client_env()}
        data = write_tree(tmp_path / "d", {"x.bin": os.urandom(70_000), "y.txt": b"why"})
        run_artfs("put", data, "-n", "proj/shared", env=env)
        env2 = {**env, **second.client_env()}
        out = json.loads(
            run_artfs("get", "proj/shared", "--root", tmp_path / "o", "--json", env=env2).stdout
        )
        assert out["stats"]["chunks_fetched"] == 2
        assert tree_digests(tmp_path / "o") == tree_digests(data)
        assert not (tmp_path / "a" / "chunks").exists() or not list(
            (tmp_path / "a" / "chunks").rglob("*/*")
        )
        assert len(s3.list_objects_v2(Bucket="team")["Contents"]) == 2
    finally:
        first.stop()
        second.stop()


def _client_env_dirs(tmp: Path) -> dict[str, str]:
    return {
        "ARTFS_CACHE_DIR": str(tmp / "cache"),
        "ARTFS_HOME": str(tmp / "home"),
        "XDG_CONFIG_HOME": str(tmp / "config"),
        "ARTFS_PROJECT": "proj",
    }
