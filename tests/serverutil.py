"""A real ``artfs server`` process on a free loopback port, for tests that go over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from artfs.client.http import HttpBackend

from .util import ARTFS

START_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ARTFS_")}


@dataclass
class ServerProcess:
    data: Path
    port: int = field(default_factory=free_port)
    args: tuple[str, ...] = ()
    tls: tuple[Path, Path] | None = None  # (certificate, key)
    host: str = "127.0.0.1"
    launcher: tuple[str, ...] = ()  # runs the command, e.g. ip netns exec NAME
    env: dict[str, str] = field(default_factory=dict)  # added to the server's environment
    proc: subprocess.Popen | None = None
    _admin: HttpBackend | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def log(self) -> Path:
        return self.data.parent / f"{self.data.name}.log"

    @property
    def admin_key(self) -> str:
        return (self.data / "admin.key").read_text().strip()

    def client_env(self) -> dict[str, str]:
        env = {"ARTFS_URL": self.url, "ARTFS_API_KEY": self.admin_key}
        if self.tls:
            env["REQUESTS_CA_BUNDLE"] = str(self.tls[0])
        return env

    def start(self) -> ServerProcess:
        command = [
            *self.launcher,
            ARTFS,
            "server",
            "--data",
            str(self.data),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            *self.args,
        ]
        if self.tls:
            command += ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])]
        with open(self.log, "ab") as log:
            env = {**_server_env(), **self.env}
            self.proc = subprocess.Popen(command, stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"artfs server exited at start:\n{self.log.read_text()}")
            try:
                verify = str(self.tls[0]) if self.tls else True
                if requests.get(self.url + "/healthz", timeout=2, verify=verify).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"artfs server did not answer in {START_TIMEOUT_S}s:\n{self.log.read_text()}"
        )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the process (SIGKILL: as a crash would)."""
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def admin(self) -> HttpBackend:
        """An HTTP backend holding the admin key (for setting up users, teams, projects)."""
        if self._admin is None:
            self._admin = HttpBackend(self.url, self.admin_key)
        return self._admin

    def add_user(self, name: str, teams: dict[str, str] | None = None) -> str:
        """Create a user (a member of ``teams``, by role) and return its API key."""
        _, key = self.admin().create_user(name)
        for team, role in (teams or {}).items():
            self.admin().set_member(team, name, role)
        assert key.key is not None
        return key.key

    def user_env(self, key: str | None) -> dict[str, str]:
        """``client_env`` for another key (None: anonymous)."""
        env = self.client_env()
        if key is None:
            del env["ARTFS_API_KEY"]
        else:
            env["ARTFS_API_KEY"] = key
        return env


def start_server(data: Path, *args: str, tls: tuple[Path, Path] | None = None) -> ServerProcess:
    return ServerProcess(data, args=args, tls=tls).start()
