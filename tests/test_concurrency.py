"""Concurrency on SQLite and on PostgreSQL: 8 writers commit versions that share most of
their chunks, while a deleter deletes versions (which frees their chunks at once), gc runs
in a loop, and readers read every version's chunks from the store and check them byte for
byte. No committed version may ever lose a chunk, whatever the interleaving; at the end
every remaining version reads back and ``gc --grace 0`` leaves exactly the chunks they use.

Every worker is a thread with an HTTP client of its own (the concurrency under test is the
server's, a process of its own). A file's bytes follow from its name (``f<seed>.bin``), so
any reader can check any version it finds."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from artfs.client.client import Client
from artfs.client.http import HttpBackend
from artfs.core.config import load_config
from artfs.core.errors import NotFound
from artfs.core.names import ArtifactPath
from artfs.core.records import VersionInfo

from .pgutil import PgCluster
from .serverutil import ServerProcess, start_server

CHUNK = 64 << 10
WRITERS = 8
PUTS = 8
SEEDS = 30  # a small pool: versions of different writers share most chunks
FILE_BYTES = 100_000  # two chunks
GC_GRACE_S = 2.0  # uploads a commit is about to use are younger than this


def content(seed: int) -> bytes:
    return random.Random(seed).randbytes(FILE_BYTES)


def _client(url: str, key: str, cache: Path) -> Client:
    config = load_config().with_overrides(cache_dir=cache, chunk_size=CHUNK)
    return Client(config, HttpBackend(url, key))


def _artifacts(index: int) -> list[ArtifactPath]:
    return [ArtifactPath("team", "proj", f"w{index}"), ArtifactPath("team", "proj", "shared")]


def writer(url: str, key: str, tmp: str, index: int) -> list[tuple[str, int, str]]:
    """Put PUTS versions of trees of random seeds; the versions it made."""
    client = _client(url, key, Path(tmp) / f"cache-w{index}")
    rng = random.Random(index)
    made = []
    try:
        for round in range(PUTS):
            src = Path(tmp) / f"src-w{index}-{round}"
            src.mkdir(parents=True)
            for seed in rng.sample(range(SEEDS), 6):
                (src / f"f{seed}.bin").write_bytes(content(seed))
            path = _artifacts(index)[round % 2]
            sources = {p.name: p for p in src.iterdir()}
            result, _ = client.put(path, "dataset", sources)
            made.append((path.artifact, int(result.version.number or 0), result.version.digest))
    finally:
        client.close()
    return made


def _check_version(backend: HttpBackend, path: ArtifactPath) -> bool:
    """Read every chunk of a version from the store and check it; False if the version is
    gone (deleted meanwhile), an error if a version still there lost a byte."""
    try:
        _, manifest = backend.manifest(path)
        for entry in manifest:
            data = b"".join(b"".join(backend.read_chunk(c.digest)) for c in entry.chunks)
            seed = int(entry.path.removeprefix("f").removesuffix(".bin"))
            assert data == content(seed), f"{path}: {entry.path} has other bytes"
        return True
    except NotFound:
        try:
            backend.resolve(path)
        except NotFound:
            return False  # deleted while it was read: fine
        raise AssertionError(f"{path} is still there but lost a chunk") from None


def _committed(backend: HttpBackend) -> list[VersionInfo]:
    """The committed versions of every artifact the writers write."""
    found = []
    for path in {p for index in range(WRITERS) for p in _artifacts(index)}:
        try:
            found += backend.list_versions(path)
        except NotFound:  # not made yet
            continue
    return found


def until(stop: threading.Event, url: str, key: str, step: Callable[[HttpBackend], int]) -> int:
    """Run ``step`` again and again, with a client of its own, until ``stop``; the sum of
    what it returned."""
    backend = HttpBackend(url, key)
    total = 0
    try:
        while not stop.is_set():
            total += step(backend)
    finally:
        backend.close()
    return total


def read_every_version(backend: HttpBackend) -> int:
    return sum(_check_version(backend, info.path) for info in _committed(backend))


def delete_one(backend: HttpBackend) -> int:
    """Delete a committed version other than the latest of its artifact."""
    candidates = [v for v in _committed(backend) if "latest" not in v.aliases]
    time.sleep(0.02)
    if not candidates:
        return 0
    try:
        backend.delete_version(random.choice(candidates).path)
    except NotFound:  # gone meanwhile
        return 0
    return 1


def collect(backend: HttpBackend) -> int:
    backend.gc(GC_GRACE_S)
    return 1


@pytest.fixture(params=["sqlite", "postgres"])
def shared_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    args: tuple[str, ...] = ()
    if request.param == "postgres":
        pg: PgCluster = request.getfixturevalue("pg")
        args = ("--db", pg.new_database())
    server = start_server(tmp_path / "server", *args)
    yield server
    server.stop()


def test_writers_deleters_gc_and_readers_never_lose_a_chunk(
    shared_server: ServerProcess, tmp_path: Path
) -> None:
    server = shared_server
    server.admin().create_team("team")
    keys = [server.add_user(f"u{i}", {"team": "member"}) for i in range(WRITERS + 2)]
    stop = threading.Event()
    with ThreadPoolExecutor(WRITERS + 4) as pool:
        readers = [
            pool.submit(until, stop, server.url, keys[WRITERS + i], read_every_version)
            for i in (0, 1)
        ]
        chores = [
            pool.submit(until, stop, server.url, keys[0], delete_one),
            pool.submit(until, stop, server.url, server.admin_key, collect),
        ]
        writes = [
            pool.submit(writer, server.url, keys[i], str(tmp_path), i) for i in range(WRITERS)
        ]
        try:
            made = [version for w in writes for version in w.result(timeout=300)]
        finally:
            stop.set()
        checked = [r.result(timeout=120) for r in readers]
        deleted, gc_runs = (c.result(timeout=120) for c in chores)
    assert len(made) == WRITERS * PUTS
    assert all(checked) and deleted and gc_runs, (checked, deleted, gc_runs)

    admin = server.admin()
    remaining = _committed(admin)
    assert remaining and all(_check_version(admin, v.path) for v in remaining)
    used: set[str] = set()
    for info in remaining:
        used |= set(admin.manifest(info.path)[1].chunks())
    admin.gc(0)
    if (server.data / "chunks").is_dir():  # SQLite store: the blobs are files here
        stored = {f"blake3:{p.parent.name}{p.name}" for p in (server.data / "chunks").glob("*/*")}
        assert stored == used
    assert admin.missing_chunks(sorted(used)) == []
    assert "internal error" not in server.log.read_text()


def test_a_stale_sweep_never_deletes_a_chunk_uploaded_again(tmp_path: Path) -> None:
    """Two sweeps may hold one chunk (gc's and a deletion's). Once the first removed it, the
    chunk can be uploaded again under a new row: the second, late sweep must leave that new
    blob alone (it sweeps only rows still ``deleting``, locked)."""
    import sqlalchemy as sa

    from artfs.core.digest import digest_bytes
    from artfs.store.schema import chunks
    from artfs.store.service import Store

    store = Store.open(tmp_path / "home")
    try:
        alice = store.admin.ensure_user("alice")
        data = random.Random(8).randbytes(50_000)
        digest = digest_bytes(data)
        store.chunks.put_chunks(alice, "alice", "proj", [(digest, data)])
        with store.db.write() as conn:
            ids = conn.execute(sa.select(chunks.c.id).where(chunks.c.digest == digest)).scalars()
            doomed = store.chunks.release(conn, list(ids))
        assert [r.digest for r in doomed] == [digest]
        assert store.chunks.sweep(doomed) == (1, len(data))  # the first sweep
        store.chunks.put_chunks(alice, "alice", "proj", [(digest, data)])  # uploaded again
        assert store.chunks.sweep(doomed) == (0, 0)  # the late one: nothing of it left
        assert b"".join(store.chunks.read_chunk(alice, digest)) == data
    finally:
        store.close()
