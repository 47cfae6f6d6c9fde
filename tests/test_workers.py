"""More than one server process: ``artfs server --workers 2`` and a second server, on one
PostgreSQL database and one (moto) bucket, with 16 clients spread across them writing and
reading at once. Every version is read back byte for byte and no request answers 5xx."""

from __future__ import annotations

import os
import random
import re
import shutil
import threading
from pathlib import Path

from artfs.client.client import Client
from artfs.core.config import load_config
from artfs.core.names import ArtifactPath

from .serverutil import ServerProcess, start_server
from .util import tree_digests, write_tree

WRITERS = 16
ROUNDS = 3
USERS = 4
SHARED = os.urandom(150_000)  # in every version: racing first uploads, then dedup


def _client(server: ServerProcess, key: str, cache: Path) -> Client:
    config = load_config(
        url=server.url, api_key=key, cache_dir=cache, state_dir=cache / "state", chunk_size=64 << 10
    )
    return Client(config)


def test_workers_and_servers_share_one_store(pg, s3, tmp_path):
    s3.create_bucket(Bucket="team")
    shared = ("--db", pg.new_database(), "--blobs", "s3://team/artfs", "--log-level", "info")
    first = start_server(tmp_path / "a", *shared, "--workers", "2")
    servers = [first]
    try:
        (tmp_path / "b").mkdir()
        shutil.copy(tmp_path / "a" / "admin.key", tmp_path / "b" / "admin.key")
        servers.append(start_server(tmp_path / "b", *shared))
        first.admin().create_team("t")
        keys = [first.add_user(f"u{i}", {"t": "member"}) for i in range(USERS)]

        written: list[tuple[ArtifactPath, dict[str, str]]] = []
        failures: list[BaseException] = []
        lock = threading.Lock()

        def read_back(client: Client, path: ArtifactPath, expected: dict[str, str], n: int) -> None:
            root = tmp_path / "out" / f"{path.artifact}-{path.alias}-{n}"
            info, manifest = client.backend.manifest(path)
            client.download(info, manifest, root)
            assert tree_digests(root) == expected, f"{path} read back wrong"
            shutil.rmtree(root)

        def work(n: int) -> None:
            rng = random.Random(n)
            writer = _client(servers[n % 2], keys[n % USERS], tmp_path / f"cache-w{n}")
            reader = _client(servers[(n + 1) % 2], keys[(n + 1) % USERS], tmp_path / f"cache-r{n}")
            try:
                for r in range(ROUNDS):
                    files = {
                        "shared.bin": SHARED,
                        f"own/{n}-{r}.bin": os.urandom(rng.randrange(1, 300_000)),
                        "small.txt": f"writer {n} round {r}\n".encode(),
                    }
                    src = write_tree(tmp_path / "src" / f"{n}-{r}", files)
                    target = ArtifactPath("t", "proj", f"a{n % USERS}")
                    sources = {p.relative_to(src).as_posix(): p for p in src.rglob("*.*")}
                    result, _ = writer.put(target, "dataset", sources)
                    done = target.with_alias(f"v{result.version.number}")
                    with lock:
                        written.append((done, tree_digests(src)))
                        earlier = rng.choice(written)
                    read_back(reader, *earlier, n)
            except BaseException as exc:
                failures.append(exc)
            finally:
                writer.close()
                reader.close()

        threads = [threading.Thread(target=work, args=(n,)) for n in range(WRITERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failures, failures[0]
        assert len(written) == WRITERS * ROUNDS
        numbers = {(p.artifact, p.alias) for p, _ in written}
        assert len(numbers) == WRITERS * ROUNDS  # no version number given twice
        everyone = _client(servers[1], first.admin_key, tmp_path / "cache-all")
        try:
            for n, (path, expected) in enumerate(written):
                read_back(everyone, path, expected, 1000 + n)
        finally:
            everyone.close()
    finally:
        for server in servers:
            server.stop()
    logs = "".join(server.log.read_text() for server in servers)
    assert not re.findall(r"status=5\d\d", logs), "a request failed on the server"
    assert len(set(re.findall(r"Started server process \[(\d+)\]", first.log.read_text()))) == 2
    assert "route=/api/v1/projects/{entity}/{project}/chunks/complete " in logs
