"""Adversarial tests against real processes: a malicious member of an open project, JSON
bombs in every JSON field, values an older release stored that the bounds now refuse, and a
corrupted or truncated cache under every reader. (A malicious server is in
``test_hostile_server.py``; crashes in ``test_crashes.py``; concurrency in
``test_concurrency.py``.)"""

from __future__ import annotations

import json
import os
import random
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from artfs.core.digest import digest_bytes

from .attack import API, Team, start_team
from .conftest import StoreEnv
from .mountutil import mounted, sh
from .util import tree_digests, write_tree


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    yield from start_team(tmp_path_factory.mktemp("team"))


def deep(levels: int, leaf: object = 1) -> object:
    """A list nested ``levels`` deep, built without recursion."""
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


def deep_text(levels: int) -> str:
    """The JSON text of a value nested ``levels`` deep (too deep for Python's own parser)."""
    return "[" * levels + "1" + "]" * levels


# -- a malicious member of an open project -------------------------------------------------


def test_a_member_cannot_commit_paths_or_links_that_leave_the_version(team: Team) -> None:
    data = os.urandom(500)
    assert team.upload("mallory", "open", data).status_code == 200
    file = {"size": 500, "digest": digest_bytes(data)}
    both, new = (1, 2), (2,)  # the manifest formats an attack is sent in
    attacks: list[tuple[dict[str, Any], tuple[int, ...]]] = [
        ({"../escape": file}, both),
        ({"/etc/passwd": file}, both),
        ({"a/../../escape": file}, both),
        ({"a//b": file}, both),
        ({"ok/\x1b[2J": file}, both),
        ({"x" * 256: file}, both),
        ({"/".join(["d" * 254] * 17): file}, both),  # a path of more than 4096 bytes
        ({"f": file, "f/g": file}, both),
        ({"f": {**file, "unknown": 1}}, both),
        ({"f": {**file, "ref": "gopher://x"}}, both),
        ({"l": {"kind": "link", "link": "../outside"}}, new),
        ({"a/l": {"kind": "link", "link": "../../outside"}}, new),
        ({"l": {"kind": "link", "link": "/etc"}}, new),
        ({"l": {"kind": "link", "link": "sub"}, "l/f": file}, new),  # a file below a link
        ({"f": {**file, "mode": 0o4755}}, new),
        ({"f": {**file, "extra": {"k": deep(40)}}}, new),
        ({"d": {"kind": "dir", "size": 5}}, new),
    ]
    for entries, versions in attacks:
        for version in versions:
            answer = team.commit("mallory", "evil", entries, version=version)
            assert answer.status_code == 400, (entries, version, answer.text[:300])
            assert "\n" not in answer.json()["error"]["message"]
    listed = requests.get(
        f"{team.server.url}{API}/projects/cv/open/artifacts/evil/versions",
        headers=team.headers("alice"),
        timeout=10,
    )
    assert listed.status_code == 404


def test_a_member_cannot_use_chunks_it_cannot_read(team: Team) -> None:
    """alice's bytes in her team's private project: mallory names them, never holds them."""
    team.server.admin().create_project("cv", "private", "private")
    secret = os.urandom(5000)
    src = write_tree(team.tmp / "secret", {"s.bin": secret})
    team.cli("alice", "put", src, "-n", "cv/private/s")
    digest = digest_bytes(secret)
    answer = team.commit("mallory", "steal", {"s.bin": {"size": 5000, "digest": digest}})
    assert answer.status_code == 409 and answer.json()["error"]["digests"] == [digest]
    chunk = requests.get(
        f"{team.server.url}{API}/chunks/{digest}", headers=team.headers("mallory"), timeout=10
    )
    assert chunk.status_code == 404
    lying = team.upload("mallory", "open", secret[:-1] + b"!")
    assert lying.status_code == 200  # other bytes, another digest
    forged = requests.post(
        f"{team.server.url}{API}/projects/cv/open/chunks",
        data=secret[:-1] + b"!",
        headers={**team.headers("mallory"), "Artfs-Chunks": f"{digest}:5000"},
        timeout=10,
    )
    assert forged.status_code == 400 and forged.json()["error"]["code"] == "digest_mismatch"
    assert (
        team.commit("mallory", "steal", {"s.bin": {"size": 5000, "digest": digest}}).status_code
        == 409
    )


# -- JSON bombs: every JSON field is bounded on the way in ---------------------------------


def _bombs() -> dict[str, object]:
    return {
        "deep": deep(33),
        "wide": "x" * (1 << 20),
        "many keys": {f"k{i}": i for i in range(100_000)},
    }


@pytest.fixture(scope="module")
def targets(team: Team) -> dict[str, str]:
    """URLs of a version, a run and a project of the team server, made once."""
    src = write_tree(team.tmp / "bomb-src", {"a.txt": b"a"})
    team.cli("alice", "put", src, "-n", "cv/open/bombs")
    base = f"{team.server.url}{API}"
    started = requests.post(
        f"{base}/projects/cv/open/runs", json={"run_id": "bombed"}, headers=team.headers("alice")
    )
    assert started.status_code == 200, started.text
    return {
        "version": f"{base}/projects/cv/open/artifacts/bombs/versions/v0",
        "commit": f"{base}/projects/cv/open/artifacts/bombs/versions",
        "pending": f"{base}/projects/cv/open/artifacts/bombs/pending",
        "runs": f"{base}/projects/cv/open/runs",
        "run": f"{base}/runs/cv/open/bombed",
        "sweeps": f"{base}/projects/cv/open/sweeps",
        "missing": f"{base}/chunks/missing",
    }


def _bodies(targets: dict[str, str], bomb: object) -> Iterator[tuple[str, str, object]]:
    """(method, url, body) for every JSON field a client sends, each holding ``bomb``."""
    empty = {"format": "artfs.manifest", "version": 2, "entries": {}}
    commit = {"type": "dataset", "manifest": empty}
    yield "PATCH", targets["version"], {"metadata": {"b": bomb}}
    yield "PATCH", targets["version"], {"description": bomb}
    yield "PATCH", targets["version"], {"aliases": [bomb]}
    yield "PATCH", targets["version"], {"tags": [bomb]}
    yield "POST", targets["commit"], {**commit, "metadata": {"b": bomb}}
    yield "POST", targets["commit"], {**commit, "aliases": [bomb]}
    yield "POST", targets["commit"], {**commit, "tags": [bomb]}
    f = {"size": 0, "digest": digest_bytes(b""), "extra": {"b": bomb}}
    yield "POST", targets["commit"], {**commit, "manifest": {**empty, "entries": {"f": f}}}
    yield "POST", targets["pending"], {**commit, "distributed_id": "d", "metadata": {"b": bomb}}
    yield "POST", targets["runs"], {"config": {"b": bomb}}
    yield "PATCH", targets["run"], {"config": {"b": bomb}}
    yield "PATCH", targets["run"], {"summary": {"b": bomb}}
    yield "PATCH", targets["run"], {"name": bomb}
    sweep = {"method": "grid", "parameters": {"lr": {"values": [bomb]}}}
    yield "POST", targets["sweeps"], {"config": sweep}
    yield "POST", targets["sweeps"], {"config": {**sweep, "notes": bomb}}
    yield "POST", targets["missing"], {"digests": [bomb]}


@pytest.mark.parametrize("bomb", sorted(_bombs()))
def test_json_bombs_in_every_field_are_refused(
    team: Team, targets: dict[str, str], bomb: str
) -> None:
    for method, url, body in _bodies(targets, _bombs()[bomb]):
        answer = requests.request(method, url, json=body, headers=team.headers("alice"))
        assert answer.status_code == 400, (bomb, method, url, answer.status_code, answer.text)
        assert "\n" not in answer.json()["error"]["message"]
    _assert_reads_answer(team, targets)


def test_aliases_and_tags_lists_are_bounded(team: Team, targets: dict[str, str]) -> None:
    many = [f"t{i}" for i in range(1001)]
    for field in ("aliases", "tags"):
        answer = requests.patch(
            targets["version"], json={field: many}, headers=team.headers("alice")
        )
        assert answer.status_code == 400, answer.text


def test_merged_json_stays_bounded(team: Team, targets: dict[str, str]) -> None:
    """A summary merged key by key (or a pending version's metadata) cannot outgrow the
    bound one piece at a time."""
    half = "x" * (600 << 10)
    first = requests.patch(
        targets["run"], json={"summary": {"a": half}}, headers=team.headers("alice")
    )
    assert first.status_code == 200
    second = requests.patch(
        targets["run"], json={"summary": {"b": half}}, headers=team.headers("alice")
    )
    assert second.status_code == 400, second.text[:300]
    empty = {"format": "artfs.manifest", "version": 2, "entries": {}}
    for key in ("a", "b"):
        body = {
            "type": "dataset",
            "manifest": empty,
            "distributed_id": "grow",
            "metadata": {key: half},
        }
        answer = requests.post(targets["pending"], json=body, headers=team.headers("alice"))
    assert answer.status_code == 400, answer.text[:300]
    _assert_reads_answer(team, targets)


def test_huge_and_deep_bodies_are_refused(team: Team, targets: dict[str, str]) -> None:
    headers = {**team.headers("alice"), "Content-Type": "application/json"}
    for url in (targets["version"], targets["run"]):
        deep_body = requests.patch(url, data=deep_text(100_000), headers=headers)
        assert deep_body.status_code == 400, deep_body.text
        nested = '{"metadata": ' + deep_text(100_000) + "}"
        assert requests.patch(url, data=nested, headers=headers).status_code == 400
    host, port = team.server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(
            f"PATCH {targets['version'].removeprefix(team.server.url)} HTTP/1.1\r\n"
            f"Host: {host}\r\nAuthorization: {team.headers('alice')['Authorization']}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {1 << 40}\r\n\r\n{{}}".encode()
        )
        assert conn.recv(4096).startswith(b"HTTP/1.1 413 ")

    def endless() -> Iterator[bytes]:
        yield b'{"metadata": {"a": "'
        block = b"x" * (1 << 20)
        for _ in range(1 << 12):  # 4 GiB, unless the server stops reading
            yield block

    try:
        streamed = requests.patch(targets["version"], data=endless(), headers=headers, timeout=60)
        assert streamed.status_code == 413, streamed.text
    except requests.ConnectionError:
        pass  # the server refused and closed the connection while the body was still coming
    _assert_reads_answer(team, targets)


def test_json_routes_beside_chunk_uploads_are_bounded_before_any_check(
    team: Team, targets: dict[str, str]
) -> None:
    """Only the streamed chunk uploads may carry big bodies: the JSON routes beside them
    (``.../chunks/uploads``, ``.../chunks/complete``) answer 413 to an announced huge body,
    with or without a key, before anything reads it."""
    host, port = team.server.url.removeprefix("http://").split(":")
    base = f"{API}/projects/cv/open/chunks"
    for path in (f"{base}/uploads", f"{base}/complete", f"{base}/not-a-digest"):
        for auth in ("", f"Authorization: {team.headers('alice')['Authorization']}\r\n"):
            with socket.create_connection((host, int(port)), timeout=30) as conn:
                head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{auth}"
                size = f"Content-Type: application/json\r\nContent-Length: {1 << 40}\r\n\r\n"
                conn.sendall((head + size + "{").encode())
                assert conn.recv(4096).startswith(b"HTTP/1.1 413 "), (path, auth)
    _assert_reads_answer(team, targets)


def _assert_reads_answer(team: Team, targets: dict[str, str]) -> None:
    for url in (targets["version"], targets["commit"], targets["run"], targets["runs"]):
        answer = requests.get(url, headers=team.headers("alice"), timeout=30)
        assert answer.status_code == 200, (url, answer.status_code, answer.text)


# -- values an older release could store ---------------------------------------------------


def _store_deep_values(db_path: Path, depth: int) -> None:
    """Write over-deep metadata, configs and summaries straight into the database."""
    text = json.dumps({"x": deep(depth)})
    db = sqlite3.connect(db_path)
    try:
        db.execute("UPDATE versions SET metadata = ?", (text,))
        db.execute("UPDATE runs SET config = ?, summary = ?", (text, text))
        db.execute("UPDATE sweeps SET config = ?", (text,))
        db.commit()
    finally:
        db.close()


@pytest.mark.parametrize("depth", [400, 800])
def test_a_read_never_fails_because_of_what_an_earlier_write_stored(
    store_env: StoreEnv, depth: int
) -> None:
    src = write_tree(store_env.tmp / "src", {"a.txt": b"a", "b/c.txt": b"c"})
    store_env.cli("put", src, "-n", "proj/ds")
    script = (
        "import artfs\n"
        "with artfs.init(project='proj', id='r1') as run:\n"
        "    run.use_artifact('proj/ds:latest')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=store_env.env, capture_output=True)
    assert done.returncode == 0, done.stderr
    _store_deep_values(store_env.store_dir / "artfs.db", depth)
    for args in (
        ("ls", "proj/ds"),
        ("show", "proj/ds"),
        ("show", "proj/ds:latest", "--json", "--files"),
        ("get", "proj/ds", "--root", store_env.tmp / "out"),
        ("lineage", "proj/ds:v0"),
    ):
        proc = store_env.cli(*args, check=False)
        assert proc.returncode == 0, (args, proc.stderr)
    assert tree_digests(store_env.tmp / "out") == tree_digests(src)
    if store_env.kind == "server":
        env = store_env.env
        base = f"{env['ARTFS_URL']}{API}"
        me = requests.get(
            f"{base}/whoami", headers={"Authorization": f"Bearer {env['ARTFS_API_KEY']}"}
        ).json()["user"]
        headers = {"Authorization": f"Bearer {env['ARTFS_API_KEY']}"}
        artifact = f"{base}/projects/{me}/proj/artifacts/ds"
        for url in (
            f"{artifact}/versions",
            f"{artifact}/versions/latest",
            f"{artifact}/versions/latest/manifest",
            f"{artifact}/versions/v0/runs?relation=used_by",
            f"{base}/runs/{me}/proj/r1",
            f"{base}/runs/{me}/proj/r1/versions?relation=used",
            f"{base}/projects/{me}/proj/runs",
        ):
            answer = requests.get(url, headers=headers, timeout=30)
            assert answer.status_code == 200, (url, answer.status_code, answer.text[:300])
            assert json.dumps(answer.json()).count("[") >= depth


# -- a corrupted or truncated cache, under every reader -------------------------------------


def _cached_chunk(env: StoreEnv, digest: str) -> Path:
    hex_ = digest.split(":")[1]
    return env.cache / "chunks" / hex_[:2] / hex_[2:]


def _spoil(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    os.chmod(path, 0o644)
    if how == "flip":
        data[len(data) // 3] ^= 0x80
        path.write_bytes(bytes(data))
    else:
        path.write_bytes(bytes(data[: len(data) // 3]))


@pytest.mark.parametrize("store_env", ["server"], indirect=True)  # (embedded: no cache)
@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_a_spoiled_cache_is_never_served(
    api_env: StoreEnv, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """``Artifact.download`` and ``read_bytes`` (the Python API) and the mount: a cached
    chunk with a flipped byte or cut short is dropped and fetched again, never served.
    (The embedded store is read in place, not through the cache: test_in_place and
    test_mount_reads spoil its own files.)"""
    import artfs

    api_env.env["ARTFS_CHUNK_SIZE"] = str(64 << 10)
    monkeypatch.setenv("ARTFS_CHUNK_SIZE", str(64 << 10))
    rng = random.Random(3)
    src = write_tree(api_env.tmp / "src", {"big.bin": rng.randbytes(300_000), "t.txt": b"t\n"})
    art = artfs.Artifact("c", type="dataset")
    art.add_dir(str(src))
    art.save(project="proj")
    logged = artfs.Api().artifact("proj/c:v0")
    logged.download(api_env.tmp / "warm")
    big = logged.manifest().entries["big.bin"]
    chunks = [c.digest for c in big.chunks]

    _spoil(_cached_chunk(api_env, chunks[1]), how)
    logged.download(api_env.tmp / "again")
    assert tree_digests(api_env.tmp / "again") == tree_digests(src)
    assert logged.last_transfer.chunks_corrupt == 1

    _spoil(_cached_chunk(api_env, chunks[2]), how)
    client = logged._require_client()
    assert client.read_bytes(big) == (src / "big.bin").read_bytes()

    _spoil(_cached_chunk(api_env, chunks[3]), how)
    _spoil(_cached_chunk(api_env, chunks[0]), how)
    with mounted(api_env) as m:
        same = sh("cmp", m / "proj/c/v0/big.bin", src / "big.bin", check=False)
        assert same.returncode == 0, same.stdout + same.stderr
        assert m.stats()["chunks_corrupt"] == 2
    for digest in chunks:
        assert digest_bytes(_cached_chunk(api_env, digest).read_bytes()) == digest


def test_an_upload_of_content_the_caller_cannot_see_is_written_like_new(tmp_path: Path) -> None:
    """Whether another team already stores some content must not show in how an upload
    goes: a chunk the caller cannot see is written (and synced) again, like a new one,
    while a chunk it can see is only verified."""
    from artfs.store.service import Store

    store = Store.open(tmp_path / "home")
    try:
        alice, bob = store.admin.ensure_user("alice"), store.admin.ensure_user("bob")
        store.projects.create_project(alice, "alice", "secret", "private")
        store.projects.create_project(bob, "bob", "mine", "private")
        data = b"a config only alice's project holds\n" * 100
        digest = digest_bytes(data)
        store.chunks.put_chunks(alice, "alice", "secret", [(digest, data)])
        blob = store.chunks.chunk_paths(alice, [digest])[digest]
        first = blob.stat().st_ino
        store.chunks.put_chunks(alice, "alice", "secret", [(digest, data)])
        assert blob.stat().st_ino == first  # hers: seen, only verified
        store.chunks.put_chunks(bob, "bob", "mine", [(digest, data)])
        assert blob.stat().st_ino != first  # not his to see: written again
        assert b"".join(store.chunks.read_chunk(bob, digest)) == data
    finally:
        store.close()
