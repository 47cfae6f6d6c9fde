"""One test per finding of issue 9 (Integrity), each replaying the attack or the accident
as the issue describes it against real processes (finding 11, chunk fds in the mount, is
tested with the mount's reader). Each failed against the code the issue was written on."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from artfs.core.chunking import hash_path
from artfs.core.digest import digest_bytes
from artfs.core.manifest import reference_digest

from .attack import API, Team, one_line_error, start_team
from .conftest import StoreEnv
from .mountutil import mounted
from .serverutil import free_port, start_server
from .util import ARTFS, run_artfs, start_service, tree_digests, write_tree


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    yield from start_team(tmp_path_factory.mktemp("team"))


def _victim_file(root: Path, name: str, size: int, seed: int) -> Path:
    """The victim's tree: one file, so that a forged version of it alone looks the same."""
    return write_tree(root, {name: random.Random(seed).randbytes(size)})


def _assert_victim_round_trips(team: Team, src: Path, name: str) -> None:
    """The victim's put creates a version (never "unchanged" over other bytes) and its get
    writes the victim's bytes."""
    put = team.cli("alice", "put", src, "-n", name)
    assert put.stdout.startswith("created "), put.stdout
    out = team.tmp / f"got-{name.replace('/', '-')}"
    team.cli("alice", "get", name, "--root", out)
    assert tree_digests(out) == tree_digests(src)


def _committed_entry(team: Team, artifact: str, path: str) -> dict[str, object]:
    url = f"{team.server.url}{API}/projects/cv/open/artifacts/{artifact}/versions/latest/manifest"
    answer = requests.get(url, headers=team.headers("alice"), timeout=10)
    entry: dict[str, object] = answer.json()["manifest"]["entries"][path]
    return entry


def test_finding_1_a_file_digest_is_never_taken_on_the_clients_word(team: Team) -> None:
    """mallory uploads two chunks of junk and commits data.csv with alice's digest over
    them; alice's put must not find it "unchanged", nor her get write the junk."""
    src = _victim_file(team.tmp / "victim1", "data.csv", 40_000, 1)
    real = (src / "data.csv").read_bytes()
    junk1, junk2 = os.urandom(20_000), os.urandom(20_000)
    assert team.upload("mallory", "open", junk1, junk2).status_code == 200
    junk = [[digest_bytes(junk1), 20_000], [digest_bytes(junk2), 20_000]]
    forged = {"size": 40_000, "digest": digest_bytes(real), "chunks": junk}
    # Format 1 recorded the BLAKE3 of a whole file: the store now derives the digest from
    # the (junk) chunks instead of taking the claim.
    old = team.commit("mallory", "ds1", {"data.csv": forged}, version=1)
    assert old.status_code in (200, 400), old.text
    if old.status_code == 200:
        assert _committed_entry(team, "ds1", "data.csv")["digest"] != digest_bytes(real)
    # Claiming alice's chunk without its bytes (before alice stored it): nothing to commit.
    single = {"size": 40_000, "digest": digest_bytes(real)}
    assert team.commit("mallory", "ds1", {"data.csv": single}).status_code == 409
    _assert_victim_round_trips(team, src, "cv/open/ds1")
    # Format 2: the claimed digest is not the one the chunks give.
    answer = team.commit("mallory", "ds1", {"data.csv": forged})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_manifest"

    big = _victim_file(team.tmp / "victim1big", "big.bin", 200_000, 11)  # 4 chunks
    content = hash_path(big / "big.bin", 64 << 10)
    forged_big = {"size": 40_000, "digest": content.digest, "chunks": junk}
    assert team.commit("mallory", "ds1big", {"big.bin": forged_big}).status_code == 400
    _assert_victim_round_trips(team, big, "cv/open/ds1big")


def test_finding_2_a_reference_never_passes_for_content(team: Team) -> None:
    """An unchecked reference with alice's digest: her put must not find it "unchanged",
    nor her get write the attacker's bytes."""
    src = _victim_file(team.tmp / "victim2", "data.csv", 40_000, 2)
    real = (src / "data.csv").read_bytes()
    evil = {
        "size": 40_000,
        "digest": digest_bytes(real),
        "ref": "http://127.0.0.1:9/attacker.csv",
        "extra": {"checksum": "none"},
    }
    old = team.commit("mallory", "ds2", {"data.csv": evil}, version=1)  # converted
    assert old.status_code == 200, old.text
    stored = _committed_entry(team, "ds2", "data.csv")["digest"]
    assert stored == reference_digest(evil["ref"], {"checksum": "none"}) != digest_bytes(real)
    _assert_victim_round_trips(team, src, "cv/open/ds2")
    assert team.commit("mallory", "ds2", {"data.csv": evil}).status_code == 400


def test_finding_2_get_of_an_unchecked_reference_says_so(team: Team, tmp_path: Path) -> None:
    web = write_tree(tmp_path / "www", {"x.txt": b"served\n"})
    port = free_port()
    server = start_service(
        [sys.executable, "-m", "http.server", "-d", str(web), "-b", "127.0.0.1", str(port)],
        f"http://127.0.0.1:{port}/",
    )
    try:
        uri = f"http://127.0.0.1:{port}/x.txt"
        facts = {"checksum": "none"}
        entry = {"size": 7, "digest": reference_digest(uri, facts), "ref": uri, "extra": facts}
        assert team.commit("mallory", "loose", {"x.txt": entry}, version=1).status_code == 200
        got = team.cli("alice", "get", "cv/open/loose", "--root", tmp_path / "out")
    finally:
        server.kill()
        server.wait()
    assert (tmp_path / "out/x.txt").read_bytes() == b"served\n"
    assert "x.txt" in got.stderr and "without a checksum" in got.stderr


def test_finding_3_a_version_cannot_make_a_reader_read_its_own_files(team: Team) -> None:
    home = team.tmp / "home-alice"
    team.cli("alice", "login", team.server.url, "--key", team.keys["alice"])
    secret = home / ".config/artfs/config.json"
    assert team.keys["alice"] in secret.read_text()
    uri = secret.as_uri()
    unchecked = {"size": secret.stat().st_size, "ref": uri, "extra": {"checksum": "none"}}
    unchecked["digest"] = reference_digest(uri, unchecked["extra"])
    # A file whose content an attacker knows, named with the right content checksum.
    known = Path("/etc/hostname") if Path("/etc/hostname").is_file() else Path("/etc/passwd")
    facts = {"checksum": "content", "content": digest_bytes(known.read_bytes())}
    checked = {"size": known.stat().st_size, "ref": known.as_uri(), "extra": facts}
    checked["digest"] = reference_digest(known.as_uri(), facts)
    # Format 1 named a reference by the content digest it claimed.
    unchecked_v1 = {**unchecked, "digest": digest_bytes(b"anything")}
    checked_v1 = {**checked, "digest": facts["content"], "extra": {"checksum": "content"}}
    attacks = [(unchecked_v1, 1), (checked_v1, 1), (unchecked, 2), (checked, 2)]
    for i, (entry, version) in enumerate(attacks):
        answer = team.commit("mallory", f"loot{i}", {"loot.txt": entry}, version=version)
        assert answer.status_code == 200, answer.text
        out = team.tmp / f"loot{i}"
        refused = team.cli("alice", "get", f"cv/open/loot{i}", "--root", out, check=False)
        assert "loot.txt" in one_line_error(refused)
        assert not (out / "loot.txt").exists()
        assert not any(team.keys["alice"] in p.read_text() for p in out.rglob("*") if p.is_file())
    # The reader's own reference, under a root it logged itself, reads.
    mine = write_tree(team.tmp / "alice-data", {"t.csv": b"a,b\n"})
    script = (
        "import artfs, sys\n"
        "a = artfs.Artifact('own', type='dataset')\n"
        "a.add_reference(sys.argv[1])\n"
        "a.save(project='open')\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, (mine / "t.csv").as_uri()],
        env={**team.env("alice"), "ARTFS_ENTITY": "cv"},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    team.cli("alice", "get", "cv/open/own", "--root", team.tmp / "own")
    assert (team.tmp / "own/t.csv").read_bytes() == b"a,b\n"


def test_finding_4_a_chunk_size_is_the_size_that_was_verified(team: Team) -> None:
    data = os.urandom(1000)
    other = os.urandom(3000)
    assert team.upload("mallory", "open", data, other).status_code == 200
    d, o = digest_bytes(data), digest_bytes(other)

    def multi(chunks: list[list[object]]) -> dict[str, object]:
        from artfs.core.chunking import ChunkRef, file_digest

        refs = [ChunkRef(str(c[0]), int(c[1])) for c in chunks]  # type: ignore[call-overload]
        return {"size": sum(r.size for r in refs), "digest": file_digest(refs), "chunks": chunks}

    attacks = {
        # the digest repeats, the last size wins: a 1,000-byte chunk passes for 1 TiB
        "one TiB": multi([[d, 1 << 40], [d, 1000]]),
        "2**70": multi([[d, 1 << 70], [d, 1000]]),
        "one chunk of 1 TiB": {"size": 1 << 40, "digest": d},
        "one chunk of 2**70": {"size": 1 << 70, "digest": d},
        "bigger than verified": multi([[d, 2000], [o, 3000]]),
        "two sizes": multi([[d, 1000], [o, 3000], [d, 1001]]),
        "two sizes, two files": {"a": multi([[d, 1000], [o, 3000]]), "b": multi([[o, 5], [d, 9]])},
    }
    for what, entry in attacks.items():
        entries = entry if "a" in entry else {"f.bin": entry}
        for version in (1, 2):
            answer = team.commit("mallory", "sizes", entries, version=version)
            assert answer.status_code == 400, (what, version, answer.status_code, answer.text)
            assert "\n" not in answer.json()["error"]["message"]
    honest = team.commit("mallory", "sizes", {"f.bin": multi([[d, 1000], [o, 3000]])})
    assert honest.status_code == 200 and honest.json()["version"]["size"] == 4000


def _deep(levels: int) -> object:
    value: object = "bottom"
    for _ in range(levels):
        value = [value]
    return value


def test_finding_5_stored_input_cannot_break_reads(team: Team) -> None:
    src = write_tree(team.tmp / "deep-src", {"a.txt": b"a"})
    team.cli("alice", "put", src, "-n", "cv/open/deep")
    version = f"{team.server.url}{API}/projects/cv/open/artifacts/deep/versions"
    run = f"{team.server.url}{API}/runs/cv/open/r1"
    started = requests.post(
        f"{team.server.url}{API}/projects/cv/open/runs",
        json={"run_id": "r1"},
        headers=team.headers("alice"),
        timeout=10,
    )
    assert started.status_code == 200
    writes = [
        ("PATCH", f"{version}/v0", {"metadata": {"x": _deep(400)}}),
        ("PATCH", run, {"config": {"x": _deep(400)}}),
        ("PATCH", run, {"summary": {"x": _deep(400)}}),
        ("POST", f"{team.server.url}{API}/projects/cv/open/runs", {"config": {"x": _deep(400)}}),
    ]
    for method, url, body in writes:
        answer = requests.request(method, url, json=body, headers=team.headers("mallory"))
        assert answer.status_code == 400, (url, answer.status_code, answer.text)
        assert "nested deeper than 32" in answer.json()["error"]["message"]
    for url in (version, f"{version}/latest", f"{version}/latest/manifest", run):
        assert requests.get(url, headers=team.headers("alice"), timeout=10).status_code == 200
    team.cli("alice", "get", "cv/open/deep", "--root", team.tmp / "deep-out")


def test_finding_6_a_refused_write_stores_no_byte(team: Team) -> None:
    blobs = [os.urandom(25_000), os.urandom(26_000)]
    before = team.stored_blobs()
    refused = team.upload("mallory", "pub", *blobs)
    assert refused.status_code == 403, refused.text
    one = requests.put(
        f"{team.server.url}{API}/projects/cv/pub/chunks/{digest_bytes(blobs[0])}",
        data=blobs[0],
        headers=team.headers("mallory"),
        timeout=10,
    )
    assert one.status_code == 403
    assert team.stored_blobs() == before
    assert not list((team.server.data / "tmp").iterdir())
    missing = requests.post(
        f"{team.server.url}{API}/chunks/missing",
        json={"digests": [digest_bytes(b) for b in blobs]},
        headers=team.headers("mallory"),
        timeout=10,
    ).json()["missing"]
    assert missing == sorted(digest_bytes(b) for b in blobs)  # never "already there"
    db = sqlite3.connect(team.server.data / "artfs.db")
    try:
        rows = db.execute(
            "SELECT count(*) FROM chunks WHERE digest IN (?, ?)", [digest_bytes(b) for b in blobs]
        ).fetchone()[0]
    finally:
        db.close()
    assert rows == 0


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_finding_7_get_verifies_every_cached_byte(team: Team, how: str) -> None:
    src = write_tree(team.tmp / f"cached-{how}", {"big.bin": os.urandom(200_000)})
    name = f"cv/open/cached-{how}"
    team.cli("alice", "put", src, "-n", name)
    team.cli("alice", "get", name, "--root", team.tmp / f"first-{how}")
    cache = Path(team.env("alice")["ARTFS_CACHE_DIR"]) / "chunks"
    entry = json.loads(team.cli("alice", "show", name, "--files", "--json").stdout)
    chunk = entry["manifest"]["entries"]["big.bin"]["chunks"][1][0].split(":")[1]
    path = cache / chunk[:2] / chunk[2:]
    data = bytearray(path.read_bytes())
    os.chmod(path, 0o644)
    if how == "flip":
        data[len(data) // 2] ^= 1
        path.write_bytes(data)
    else:
        path.write_bytes(data[: len(data) // 2])
    out = team.tmp / f"second-{how}"
    got = json.loads(team.cli("alice", "get", name, "--root", out, "--json").stdout)
    assert tree_digests(out) == tree_digests(src)
    assert got["stats"]["chunks_fetched"] == 1  # the bad one, again
    assert got["stats"]["chunks_corrupt"] == 1
    assert digest_bytes(path.read_bytes()) == f"blake3:{chunk}"


def test_finding_8_a_put_rides_out_a_killed_and_restarted_server(tmp_path: Path) -> None:
    """kill -9 of the server during a put of 96 MiB in 4 MiB chunks, restarted at once:
    early (first upload in flight) and late (half the chunks stored)."""
    server = start_server(tmp_path / "server")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARTFS_")}
    env.update(
        server.client_env(),
        ARTFS_CACHE_DIR=str(tmp_path / "cache"),
        ARTFS_CHUNK_SIZE="4MiB",
        ARTFS_PROJECT="proj",
    )
    try:
        for stored_before_kill in (0, 12):
            src = tmp_path / f"src{stored_before_kill}"
            write_tree(src, {f"part{i}.bin": os.urandom(24 << 20) for i in range(4)})
            spooled = set((server.data / "tmp").iterdir())
            put = subprocess.Popen(
                [ARTFS, "put", src, "-n", f"proj/big{stored_before_kill}"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            chunks = len(list((server.data / "chunks").glob("*/*")))
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (
                set((server.data / "tmp").iterdir()) - spooled
                and len(list((server.data / "chunks").glob("*/*"))) >= chunks + stored_before_kill
            ):
                assert put.poll() is None, put.communicate()
                time.sleep(0.001)
            assert put.poll() is None
            server.stop(signal.SIGKILL)  # mid-upload
            server.start()  # at once
            out, err = put.communicate(timeout=180)
            assert "Traceback" not in err and "BufferError" not in err, err
            if put.returncode:
                one_line_error(subprocess.CompletedProcess(put.args, put.returncode, out, err))
                continue
            assert out.startswith("created"), out
            got = tmp_path / f"out{stored_before_kill}"
            run_artfs("get", f"proj/big{stored_before_kill}", "--root", got, env=env)
            assert tree_digests(got) == tree_digests(src)
    finally:
        server.stop()


def test_finding_9_names_of_255_bytes_round_trip(team: Team) -> None:
    name = "n" * 251 + ".csv"
    utf8 = "é" * 127  # 254 bytes
    src = write_tree(
        team.tmp / "long-src", {name: b"long\n", f"{utf8}/{name}": b"deeper\n", "x" * 255: b"x"}
    )
    team.cli("alice", "put", src, "-n", "cv/open/long")
    team.cli("alice", "get", "cv/open/long", "--root", team.tmp / "long-out")
    assert tree_digests(team.tmp / "long-out") == tree_digests(src)


def _deep_path() -> list[str]:
    """The names of a path of exactly 4096 bytes: 16 directories of 254 bytes and a file."""
    names = ["d" * 254] * 16 + ["f" * 16]
    assert len("/".join(names).encode()) == 4096
    return names


def _open_below(top: Path, names: list[str], create: bool) -> int:
    """A descriptor of the directory ``names`` lead to below ``top``, walked with openat
    (no syscall takes a path that long whole)."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for name in names:
        if create and not os.path.lexists(f"/proc/self/fd/{fd}/{name}"):
            os.mkdir(name, dir_fd=fd)
        below = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = below
    return fd


def _read_below(top: Path, dirs: list[str], name: str) -> bytes:
    fd = _open_below(top, dirs, create=False)
    try:
        got = os.open(name, os.O_RDONLY, dir_fd=fd)
        with open(got, "rb") as f:
            return f.read()
    finally:
        os.close(fd)


@pytest.mark.fuse
def test_finding_9_paths_of_4096_bytes_round_trip(embedded: StoreEnv) -> None:
    """Made through the mount (a shell reaches any depth step by step), committed, read
    back through the mount and by ``artfs get``; ``artfs put`` of a local tree deeper than
    it can read fails in one line instead of leaving files out."""
    env = embedded
    *dirs, leaf = _deep_path()
    data = b"at the bottom\n"
    env.cli("put", write_tree(env.tmp / "base", {"top.txt": b"top\n"}), "-n", "proj/deep")
    with mounted(env) as m:
        fd = _open_below(m / "proj/deep/@staging", dirs, create=True)
        try:
            out = os.open(leaf, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
            os.write(out, data)
            os.close(out)
        finally:
            os.close(fd)
        assert env.cli("commit", m / "proj/deep/@staging").stdout.startswith(
            "proj/deep: committed v1"
        )
        assert _read_below(m / "proj/deep/v1", dirs, leaf) == data
    env.cli("get", "proj/deep:v1", "--root", env.tmp / "out")
    assert _read_below(env.tmp / "out", dirs, leaf) == data
    deeper = env.tmp / "local"
    deeper.mkdir()
    fd = _open_below(deeper, [*dirs, "deeper"], create=True)
    os.close(os.open("lost.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    os.close(fd)
    refused = env.cli("put", deeper, "-n", "proj/local", check=False)
    assert "File name too long" in one_line_error(refused)


LEFTOVERS = ("config.tmp", "config.json.tmp", ".config.json.tmp", "config.json")


def test_finding_10_secrets_are_written_0600_whatever_exists(team: Team, tmp_path: Path) -> None:
    config_dir = tmp_path / ".config" / "artfs"
    config_dir.mkdir(parents=True)
    for name in LEFTOVERS:
        (config_dir / name).write_text("{}")
        os.chmod(config_dir / name, 0o644)
    env = {**team.env("alice", home=tmp_path), "ARTFS_API_KEY": ""}
    run_artfs("login", team.server.url, "--key", team.keys["alice"], env=env)
    saved = config_dir / "config.json"
    assert os.stat(saved).st_mode & 0o777 == 0o600
    assert json.loads(saved.read_text())["api_key"] == team.keys["alice"]
    for path in config_dir.iterdir():
        if team.keys["alice"] in path.read_text():
            assert os.stat(path).st_mode & 0o777 == 0o600, path

    data = tmp_path / "server-data"
    data.mkdir()
    for name in ("admin.key.tmp", ".admin.key.tmp"):
        (data / name).write_text("")
        os.chmod(data / name, 0o644)
    server = start_server(data)
    try:
        assert os.stat(data / "admin.key").st_mode & 0o777 == 0o600
    finally:
        server.stop()


def test_finding_12_deletion_frees_unused_chunks_in_the_same_call(team: Team) -> None:
    rng = random.Random(12)
    shared, only_v0 = rng.randbytes(150_000), rng.randbytes(150_000)
    src = write_tree(team.tmp / "del-src", {"shared.bin": shared, "mine.bin": only_v0})
    team.cli("alice", "put", src, "-n", "cv/open/del")
    (src / "mine.bin").write_bytes(rng.randbytes(100_000))
    team.cli("alice", "put", src, "-n", "cv/open/del")
    v0 = json.loads(team.cli("alice", "show", "cv/open/del:v0", "--files", "--json").stdout)
    entries = v0["manifest"]["entries"]
    gone = {c for c, _ in entries["mine.bin"]["chunks"]}
    kept = {c for c, _ in entries["shared.bin"]["chunks"]}
    assert gone | kept <= team.stored_blobs()
    team.cli("alice", "rm", "cv/open/del:v0")
    assert not gone & team.stored_blobs()  # no gc in between
    assert kept <= team.stored_blobs()
    db = sqlite3.connect(team.server.data / "artfs.db")
    try:
        marks = ",".join("?" * len(gone))
        rows = db.execute(
            f"SELECT count(*) FROM chunks WHERE digest IN ({marks})", sorted(gone)
        ).fetchone()[0]
        claims = db.execute(
            "SELECT count(*) FROM chunk_claims JOIN chunks ON chunks.id = chunk_claims.chunk_id "
            f"WHERE digest IN ({marks})",
            sorted(gone),
        ).fetchone()[0]
    finally:
        db.close()
    assert rows == 0 and claims == 0
    team.cli("alice", "get", "cv/open/del:v1", "--root", team.tmp / "del-out")
    assert tree_digests(team.tmp / "del-out") == tree_digests(src)
