"""A shared server as attackers meet it: team ``cv`` with an ``open`` and a ``public``
project, the victim ``alice`` (a member of ``cv``), the attacker ``mallory`` (no team: she
may write ``cv/open`` and only read ``cv/pub``), and raw HTTP calls that skip every check
the artfs client makes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from artfs.core.digest import digest_bytes

from .serverutil import ServerProcess, start_server
from .util import run_artfs

API = "/api/v1"
SMALL_CHUNKS = {"ARTFS_CHUNK_SIZE": "64KiB"}


@dataclass
class Team:
    server: ServerProcess
    keys: dict[str, str]  # user -> API key
    tmp: Path

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[user]}"}

    def env(self, user: str, home: Path | None = None) -> dict[str, str]:
        """The environment of ``user``'s own machine: config, cache and state of its own."""
        home = home or self.tmp / f"home-{user}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARTFS_")}
        env.update(
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            ARTFS_CACHE_DIR=str(home / ".cache" / "artfs"),
            ARTFS_STATE_DIR=str(home / ".local" / "state" / "artfs"),
            ARTFS_URL=self.server.url,
            ARTFS_API_KEY=self.keys[user],
            **SMALL_CHUNKS,
        )
        return env

    def cli(self, user: str, *args: object, check: bool = True) -> Any:
        return run_artfs(*args, env=self.env(user), check=check)

    def upload(self, user: str, project: str, *blobs: bytes) -> requests.Response:
        """Send chunks in one batch to ``cv/<project>`` as ``user``."""
        header = ",".join(f"{digest_bytes(b)}:{len(b)}" for b in blobs)
        return requests.post(
            f"{self.server.url}{API}/projects/cv/{project}/chunks",
            data=b"".join(blobs),
            headers={**self.headers(user), "Artfs-Chunks": header},
            timeout=60,
        )

    def commit(
        self, user: str, artifact: str, entries: dict[str, Any], version: int = 2, **body: Any
    ) -> requests.Response:
        """Commit a raw manifest (of manifest format ``version``) into ``cv/open``."""
        manifest = {"format": "artfs.manifest", "version": version, "entries": entries}
        return requests.post(
            f"{self.server.url}{API}/projects/cv/open/artifacts/{artifact}/versions",
            json={"type": "dataset", "manifest": manifest, **body},
            headers=self.headers(user),
            timeout=60,
        )

    def stored_blobs(self) -> set[str]:
        return {
            f"blake3:{p.parent.name}{p.name}"
            for p in (self.server.data / "chunks").rglob("*")
            if p.is_file()
        }


def start_team(root: Path) -> Iterator[Team]:
    """The team's server (a module's fixture), stopped when the fixture ends."""
    server = start_server(root / "server")
    try:
        admin = server.admin()
        admin.create_team("cv")
        keys = {
            "alice": server.add_user("alice", {"cv": "member"}),
            "mallory": server.add_user("mallory"),
        }
        admin.create_project("cv", "open", "open")
        admin.create_project("cv", "pub", "public")
        yield Team(server, keys, root)
    finally:
        server.stop()


def one_line_error(proc: Any) -> str:
    """The one ``artfs: error:`` line a failed command must print, and nothing else."""
    assert proc.returncode != 0, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("artfs: error:"), proc.stderr
    assert "Traceback" not in proc.stderr
    return str(lines[0])
