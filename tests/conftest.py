"""Fixtures: each test gets its own store, cache, state and config directories.

``store_env`` is parametrized over the backends a test runs against: the embedded store,
and (where the server is available) a real ``artfs server`` process on a loopback port.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from artfs.client.client import Client
from artfs.core.config import load_config

from .serverutil import ServerProcess, free_port, start_server
from .util import BIN, run_artfs, start_service


@dataclass
class StoreEnv:
    """Where one test's data lives, and the environment that points artfs at it."""

    kind: str
    tmp: Path
    env: dict[str, str]
    store_dir: Path  # where the store keeps its database and blobs (embedded or server)

    @property
    def cache(self) -> Path:
        return self.tmp / "cache"

    @property
    def chunk_dir(self) -> Path:
        return self.store_dir / "chunks"

    def client(self) -> Client:
        saved = dict(os.environ)
        os.environ.update(self.env)
        try:
            return Client(load_config())
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def cli(
        self,
        *args: object,
        check: bool = True,
        extra_env: dict[str, str] | None = None,
        **kwargs: object,
    ):
        """Run the ``artfs`` command against this store (``extra_env`` adds variables)."""
        env = {**self.env, **(extra_env or {})}
        return run_artfs(*args, env=env, check=check, **kwargs)  # type: ignore[arg-type]


def _base_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARTFS_")}
    env.update(
        ARTFS_HOME=str(tmp / "home"),
        ARTFS_CACHE_DIR=str(tmp / "cache"),
        ARTFS_STATE_DIR=str(tmp / "state"),
        XDG_CONFIG_HOME=str(tmp / "config"),
        ARTFS_PROJECT="proj",
    )
    return env


BACKENDS = ["embedded", "server"]


@pytest.fixture
def artfs_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A real ``artfs server`` process with its own data directory, stopped afterwards."""
    server = start_server(tmp_path / "server")
    yield server
    server.stop()


@pytest.fixture(params=BACKENDS)
def store_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreEnv]:
    env = _base_env(tmp_path)
    store_dir = tmp_path / "home"
    if request.param == "server":
        server = request.getfixturevalue("artfs_server")
        env.update(server.client_env())
        store_dir = server.data
    yield StoreEnv(request.param, tmp_path, env, store_dir)


@pytest.fixture
def embedded(tmp_path: Path) -> StoreEnv:
    """An embedded store only (tests of the store's own files on disk)."""
    return StoreEnv("embedded", tmp_path, _base_env(tmp_path), tmp_path / "home")


@pytest.fixture
def api_env(store_env: StoreEnv, monkeypatch: pytest.MonkeyPatch) -> StoreEnv:
    """``store_env`` with its variables also set in this process, for the Python API."""
    for key in [k for k in os.environ if k.startswith("ARTFS_")]:
        monkeypatch.delenv(key)
    for key, value in store_env.env.items():
        monkeypatch.setenv(key, value)
    return store_env


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """A local moto S3 server process, with boto3 pointed at it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_service([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    import boto3

    yield boto3.client("s3", endpoint_url=url)
    proc.kill()
    proc.wait()
