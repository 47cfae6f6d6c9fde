"""Chunk bytes straight between clients and the bucket through presigned URLs (a real server
process, a moto bucket): the data path, the fallback to streaming, what the URLs sign, and
the rules for chunks the server has not read yet ("unverified": docs/FORMAT.md)."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import requests

import artfs
from artfs.client.http import HttpBackend
from artfs.core.chunking import ChunkRef
from artfs.core.digest import digest_bytes, hex_of, verify_stream
from artfs.core.errors import DigestMismatch, MissingChunks, NotFound, PermissionDenied
from artfs.core.manifest import Manifest, ManifestEntry
from artfs.core.names import ArtifactPath

from .conftest import StoreEnv, _base_env
from .mountutil import mounted, sh
from .serverutil import ServerProcess, start_server
from .util import run_artfs, tree_digests, write_tree

CHUNK = 64 << 10
API = "/api/v1"
STREAMED = ("route=/api/v1/chunks/{digest} ", "route=/api/v1/projects/{entity}/{project}/chunks ")
DIRECT = (
    "route=/api/v1/projects/{entity}/{project}/chunks/uploads ",
    "route=/api/v1/projects/{entity}/{project}/chunks/complete ",
    "route=/api/v1/chunks/urls ",
)


def bucket_server(tmp: Path, s3, *args: str, bucket: str = "direct") -> ServerProcess:
    s3.create_bucket(Bucket=bucket)
    return start_server(tmp / "server", "--blobs", f"s3://{bucket}/p", *args)


def client_env(tmp: Path, server: ServerProcess, **extra: str) -> dict[str, str]:
    """A client that has no AWS credentials: it can reach the bucket only through URLs."""
    env = {k: v for k, v in _base_env(tmp).items() if not k.startswith("AWS_")}
    return {**env, **server.client_env(), "ARTFS_CHUNK_SIZE": "64KiB", **extra}


def routes(server: ServerProcess) -> str:
    return server.log.read_text()


def states(server: ServerProcess) -> dict[str, str]:
    """The chunk rows' states, by digest (the server's SQLite database)."""
    with sqlite3.connect(server.data / "artfs.db") as db:
        return dict(db.execute("SELECT digest, state FROM chunks").fetchall())


def bucket_keys(s3, bucket: str = "direct") -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def one_file(data: bytes) -> Manifest:
    digest = digest_bytes(data)
    return Manifest([ManifestEntry("f.bin", len(data), digest, (ChunkRef(digest, len(data)),))])


def stage(
    server: ServerProcess, key: str, project: str, digest: str, body: bytes, size: int = 0
) -> requests.Response:
    """Upload ``body`` as chunk ``digest`` of ``size`` (default: the body's) the way a client
    would, without its checks: URL, PUT, complete."""
    base = f"{server.url}{API}/projects/{project}/chunks"
    auth = {"Authorization": f"Bearer {key}"}
    chunk = {"digest": digest, "size": size or len(body)}
    answer = requests.post(f"{base}/uploads", json={"chunks": [chunk]}, headers=auth, timeout=10)
    answer.raise_for_status()
    upload = answer.json()["uploads"][0]
    requests.put(upload["url"], data=body, headers=upload["headers"], timeout=10).raise_for_status()
    staged = {**chunk, "upload": upload["upload"]}
    return requests.post(f"{base}/complete", json={"chunks": [staged]}, headers=auth, timeout=10)


@pytest.fixture
def team(s3, tmp_path):
    """A bucket server with team ``t``: members ``alice`` and ``bob``, outsider ``carol``."""
    server = bucket_server(tmp_path, s3, "--log-level", "info")
    server.admin().create_team("t")
    keys = {
        "alice": server.add_user("alice", {"t": "member"}),
        "bob": server.add_user("bob", {"t": "member"}),
        "carol": server.add_user("carol"),
    }
    backends = {name: HttpBackend(server.url, key) for name, key in keys.items()}
    yield server, keys, backends
    for backend in backends.values():
        backend.close()
    server.stop()


def test_put_and_get_move_chunks_between_client_and_bucket(s3, tmp_path):
    server = bucket_server(tmp_path, s3, "--log-level", "info")
    try:
        env = client_env(tmp_path, server)
        src = write_tree(tmp_path / "src", {"big.bin": os.urandom(5 * CHUNK + 7), "s": b"hi"})
        run_artfs("put", src, "-n", "proj/d", env=env)
        run_artfs("get", "proj/d", "--root", tmp_path / "out", env=env)
        assert tree_digests(tmp_path / "out") == tree_digests(src)
        metrics = requests.get(server.url + "/metrics", timeout=10).text
    finally:
        server.stop()
    log = routes(server)
    assert all(route in log for route in DIRECT)
    assert not any(route in log for route in STREAMED)
    keys = bucket_keys(s3)
    assert len(keys) == 7 and all(k.startswith("p/chunks/") for k in keys)  # no staging left
    assert set(states(server).values()) == {"unverified"}  # the server never read them
    assert 'artfs_presigned_urls_total{method="PUT"} 7.0' in metrics
    assert 'artfs_presigned_urls_total{method="GET"} 7.0' in metrics
    assert f"artfs_direct_upload_bytes_total {5 * CHUNK + 7 + 2}.0" in metrics


def test_a_client_may_ask_for_streaming(s3, tmp_path):
    server = bucket_server(tmp_path, s3, "--log-level", "info")
    try:
        env = client_env(tmp_path, server, ARTFS_TRANSFER="stream")
        src = write_tree(tmp_path / "src", {"a.bin": os.urandom(3 * CHUNK)})
        run_artfs("put", src, "-n", "proj/d", env=env)
        run_artfs("get", "proj/d", "--root", tmp_path / "out", env=env)
        assert tree_digests(tmp_path / "out") == tree_digests(src)
        bad = run_artfs("ls", env={**env, "ARTFS_TRANSFER": "carrier-pigeon"}, check=False)
        assert bad.returncode != 0 and "ARTFS_TRANSFER=carrier-pigeon" in bad.stderr
    finally:
        server.stop()
    log = routes(server)
    assert all(route in log for route in STREAMED)
    assert not any(route in log for route in DIRECT)
    assert set(states(server).values()) == {"live"}  # streamed: verified on the way in


def test_a_server_with_local_chunks_streams_and_says_so_once(tmp_path):
    server = start_server(tmp_path / "server", "--log-level", "info")
    try:
        env = client_env(tmp_path, server)
        src = write_tree(tmp_path / "src", {f"{i}.bin": os.urandom(CHUNK) for i in range(40)})
        run_artfs("put", src, "-n", "proj/d", env=env)
        run_artfs("get", "proj/d", "--root", tmp_path / "out", env=env)
        assert tree_digests(tmp_path / "out") == tree_digests(src)
    finally:
        server.stop()
    log = routes(server)
    assert log.count(DIRECT[0]) == 1 and log.count(DIRECT[2]) == 1  # then streamed
    assert log.count(STREAMED[0]) == 40


def test_upload_urls_sign_length_and_encryption_and_complete_checks_the_size(s3, tmp_path):
    key_id = "1234abcd-12ab-34cd-56ef-1234567890ab"
    args = ("--s3-sse", "aws:kms", "--s3-kms-key-id", key_id, "--presign-ttl", "120")
    server = bucket_server(tmp_path, s3, *args)
    try:
        data = os.urandom(1000)
        digest = digest_bytes(data)
        auth = {"Authorization": f"Bearer {server.admin_key}"}
        answer = requests.post(
            f"{server.url}{API}/projects/admin/proj/chunks/uploads",
            json={"chunks": [{"digest": digest, "size": len(data)}]},
            headers=auth,
            timeout=10,
        ).json()
        assert answer["direct"] and answer["expires_in"] == 120
        upload = answer["uploads"][0]
        query = parse_qs(urlparse(upload["url"]).query)
        assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
        assert query["X-Amz-Expires"] == ["120"]
        assert set(query["X-Amz-SignedHeaders"][0].split(";")) == {
            "content-length",
            "host",
            "x-amz-server-side-encryption",
            "x-amz-server-side-encryption-aws-kms-key-id",
        }
        assert upload["headers"] == {
            "x-amz-server-side-encryption": "aws:kms",
            "x-amz-server-side-encryption-aws-kms-key-id": key_id,
        }
        assert "/p/staging/" in upload["url"] and hex_of(digest) in upload["url"]

        # moto stores a body of another length than signed; complete refuses it
        wrong = stage(server, server.admin_key, "admin/proj", digest, data + b"!", len(data))
        assert wrong.status_code == 400 and "1001 bytes reached the bucket" in wrong.text
        right = stage(server, server.admin_key, "admin/proj", digest, data)
        assert right.json() == {"stored": [1000]}
        assert bucket_keys(s3) == [f"p/chunks/{hex_of(digest)[:2]}/{hex_of(digest)[2:]}"]
        head = s3.head_object(Bucket="direct", Key=bucket_keys(s3)[0])
        assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == key_id
        assert states(server) == {digest: "unverified"}
    finally:
        server.stop()


def test_unverified_chunks_count_for_their_uploader_only_until_checked(team, s3):
    server, keys, users = team
    alice, bob, carol = users["alice"], users["bob"], users["carol"]
    real = os.urandom(5000)
    digest = digest_bytes(real)
    bogus = os.urandom(len(real))
    # alice sends bytes that are not the chunk's: the bucket takes them, the server never reads them
    assert stage(server, keys["alice"], "t/proj", digest, bogus).json() == {"stored": [5000]}
    assert states(server) == {digest: "unverified"}
    assert alice.missing_chunks([digest]) == []  # her own upload: no check
    bad = ArtifactPath("t", "proj", "bad")
    alice.commit(bad, "dataset", one_file(real))  # her own commit may use it
    # bob sees it through alice's version, but relies on it only once checked: it fails
    assert bob.missing_chunks([digest]) == [digest]
    assert states(server) == {digest: "lost"} and bucket_keys(s3) == []
    with pytest.raises(NotFound):
        b"".join(alice.read_chunk(digest))
    # bob uploads the real bytes: the chunk is back, checked, and alice's version reads again
    bob.put_chunks("t", "proj", [(digest, real)])
    assert states(server) == {digest: "live"}
    assert b"".join(alice.read_chunk(digest)) == real

    # good bytes straight to the bucket: checked on bob's question, then live for everyone
    good = os.urandom(3000)
    alice.put_chunks("t", "proj", [(digest_bytes(good), good)])
    assert states(server)[digest_bytes(good)] == "unverified"
    alice.commit(ArtifactPath("t", "proj", "good"), "dataset", one_file(good))
    assert bob.missing_chunks([digest_bytes(good)]) == []
    assert states(server)[digest_bytes(good)] == "live"

    # carol, an outsider, gets no URL for the team's chunks and cannot claim them with junk
    urls = requests.post(
        f"{server.url}{API}/chunks/urls",
        json={"digests": [digest]},
        headers={"Authorization": f"Bearer {keys['carol']}"},
        timeout=10,
    ).json()
    assert urls == {"direct": True, "expires_in": 900, "urls": {}}
    with pytest.raises(NotFound):
        carol.read_chunk(digest)
    assert carol.missing_chunks([digest]) == [digest]
    junk = stage(server, keys["carol"], "carol/mine", digest, bogus)
    assert junk.status_code == 400 and junk.json()["error"]["code"] == "digest_mismatch"
    carol.put_chunks("carol", "mine", [(digest, real)])  # holding the bytes is proof enough
    assert b"".join(carol.read_chunk(digest)) == real
    # nor may she ask for upload URLs into the team's project
    refused = requests.post(
        f"{server.url}{API}/projects/t/proj/chunks/uploads",
        json={"chunks": [{"digest": digest, "size": 1}]},
        headers={"Authorization": f"Bearer {keys['carol']}"},
        timeout=10,
    )
    assert refused.status_code == 404 and "url" not in refused.text


@pytest.mark.parametrize(
    ("project", "committer", "refusal", "after"),
    [
        ("proj", "bob", MissingChunks, "lost"),  # may write: checked first, and found bad
        ("pub", "carol", PermissionDenied, "unverified"),  # may only read: refused unread
    ],
)
def test_a_commit_by_someone_else_checks_unverified_chunks_first(
    team, s3, project, committer, refusal, after
):
    """A version naming another's unverified chunk (as a draft does) has it checked first,
    but only for a caller who may write into the project: nobody else makes the server read
    the bucket."""
    server, keys, users = team
    if project == "pub":
        server.admin().create_project("t", "pub", "public")
    real, bogus = os.urandom(4000), os.urandom(4000)
    digest = digest_bytes(real)
    stage(server, keys["alice"], f"t/{project}", digest, bogus).raise_for_status()
    users["alice"].commit(ArtifactPath("t", project, "a"), "dataset", one_file(real))
    with pytest.raises(refusal):
        users[committer].commit(ArtifactPath("t", project, "b"), "dataset", one_file(real))
    assert states(server) == {digest: after}


def test_gc_checks_the_backlog_and_removes_stale_staging(team, s3, tmp_path):
    server, keys, users = team
    goods = [os.urandom(2000 + i) for i in range(3)]
    users["alice"].put_chunks("t", "proj", [(digest_bytes(g), g) for g in goods])
    bogus = os.urandom(100)
    stage(server, keys["alice"], "t/proj", digest_bytes(b"x" * 100), bogus).raise_for_status()
    # an upload URL used but never completed leaves a staging object
    auth = {"Authorization": f"Bearer {keys['alice']}"}
    answer = requests.post(
        f"{server.url}{API}/projects/t/proj/chunks/uploads",
        json={"chunks": [{"digest": digest_bytes(b"y"), "size": 1}]},
        headers=auth,
        timeout=10,
    ).json()
    requests.put(answer["uploads"][0]["url"], data=b"y", timeout=10).raise_for_status()
    assert any("/staging/" in k for k in bucket_keys(s3))
    env = {**_base_env(tmp_path), **server.client_env()}
    report = run_artfs("gc", "--grace", "0", env=env).stdout
    assert "verified 3 chunks" in report and "1 failed" in report and "0 left" in report
    assert not any("/staging/" in k for k in bucket_keys(s3))
    assert sorted(states(server).values()) == []  # no version used them: all collected


def test_racing_completes_of_one_new_chunk_store_it_once(team, s3):
    server, keys, users = team
    data = os.urandom(20_000)
    digest = digest_bytes(data)
    answers: list[int] = []

    def upload(name: str) -> None:
        backend = HttpBackend(server.url, keys[name])
        try:
            answers.extend(backend.put_chunks("t", "proj", [(digest, data)]))
        finally:
            backend.close()

    threads = [threading.Thread(target=upload, args=(n,)) for n in ["alice", "bob"] * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [len(data)] * 8
    assert len(bucket_keys(s3)) == 1 and states(server)[digest] in ("unverified", "live")
    body = s3.get_object(Bucket="direct", Key=bucket_keys(s3)[0])["Body"].read()
    assert body == data
    for backend in users.values():
        if backend is not users["carol"]:
            assert backend.missing_chunks([digest]) == []


def test_urls_are_signed_for_the_public_endpoint(s3, tmp_path):
    public = os.environ["AWS_ENDPOINT_URL"].replace("127.0.0.1", "localhost")
    server = bucket_server(tmp_path, s3, "--s3-public-endpoint", public)
    try:
        env = client_env(tmp_path, server)
        src = write_tree(tmp_path / "src", {"a.bin": os.urandom(2 * CHUNK)})
        run_artfs("put", src, "-n", "proj/d", env=env)
        _, manifest = server.admin().manifest(ArtifactPath("admin", "proj", "d"))
        answer = requests.post(
            f"{server.url}{API}/chunks/urls",
            json={"digests": [c.digest for e in manifest for c in e.chunks]},
            headers={"Authorization": f"Bearer {server.admin_key}"},
            timeout=10,
        ).json()
        assert {urlparse(u).hostname for u in answer["urls"].values()} == {"localhost"}
        run_artfs("get", "proj/d", "--root", tmp_path / "out", env=env)
        assert tree_digests(tmp_path / "out") == tree_digests(src)
    finally:
        server.stop()


def test_a_wrong_answer_from_the_bucket_is_never_written_out(team, s3, tmp_path):
    """Bytes replaced in the bucket behind the server's back fail the reader's check."""
    server, keys, users = team
    data = os.urandom(3000)
    users["alice"].put_chunks("t", "proj", [(digest_bytes(data), data)])
    users["alice"].commit(ArtifactPath("t", "proj", "x"), "dataset", one_file(data))
    s3.put_object(Bucket="direct", Key=bucket_keys(s3)[0], Body=os.urandom(3000))
    env = {**_base_env(tmp_path), **server.user_env(keys["alice"])}
    done = run_artfs("get", "t/proj/x", "--root", tmp_path / "out", env=env, check=False)
    assert done.returncode != 0 and len(done.stderr.splitlines()) == 1
    assert not (tmp_path / "out" / "f.bin").exists()
    with pytest.raises(DigestMismatch):
        verify_stream(digest_bytes(data), users["alice"].read_chunk(digest_bytes(data)))


def test_the_mount_and_the_python_api_go_through_the_bucket(s3, tmp_path, monkeypatch):
    server = bucket_server(tmp_path, s3, "--log-level", "info")
    try:
        env = client_env(tmp_path, server)
        src = write_tree(tmp_path / "src", {"a.bin": os.urandom(3 * CHUNK + 1)})
        run_artfs("put", src, "-n", "proj/m", env=env)
        with mounted(StoreEnv("server", tmp_path, env, server.data)) as m:
            assert sh("cmp", m / "proj/m/latest/a.bin", src / "a.bin").returncode == 0
            assert (m / "proj/m/latest/a.bin").read_bytes() == (src / "a.bin").read_bytes()
            (m / "proj/m/@staging/b.bin").write_bytes(os.urandom(2 * CHUNK))
            run_artfs("commit", m / "proj/m/@staging", env=env)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        artfs.Api().artifact("proj/m:v1").download(tmp_path / "api")
        assert (tmp_path / "api" / "a.bin").read_bytes() == (src / "a.bin").read_bytes()
    finally:
        server.stop()
    log = routes(server)
    assert not any(route in log for route in STREAMED)
    assert log.count(DIRECT[1]) >= 2  # the put, then the commit of the mount's staging area
