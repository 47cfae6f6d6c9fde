"""Helpers the tests share: environments, running the real CLI, building trees."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from artfs.client.hashcache import RACY_NS

BIN = Path(sys.executable).parent
ARTFS = str(BIN / "artfs")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(condition: bool, why: str) -> None:
    """Skip a test whose system requirement is missing, except in CI where it must fail."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"CI must provide this: {why}")
    pytest.skip(why)


def fuse_available() -> bool:
    return os.path.exists("/dev/fuse") and shutil.which("fusermount3") is not None


def run_artfs(
    *args: object,
    env: dict[str, str] | None = None,
    check: bool = True,
    timeout: float = 120,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``artfs`` command in a separate process."""
    proc = subprocess.run(
        [ARTFS, *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"artfs {' '.join(map(str, args))} failed ({proc.returncode}):\n"
            f"{proc.stdout}\n{proc.stderr}"
        )
    return proc


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def tree_digests(root: Path) -> dict[str, str]:
    """sha256 of every file below ``root``, by relative path."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def dir_bytes(root: Path) -> int:
    """Total size of the regular files below ``root``."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def settle() -> None:
    """Wait out the hash cache's racy window so freshly written files count as unchanged."""
    time.sleep(RACY_NS / 1e9 + 0.05)


def start_service(cmd: list[str], url: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start a helper server process and wait until ``url`` answers."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=5)
            return proc
        except requests.RequestException:  # not up yet, or too slow to answer on a busy machine
            assert proc.poll() is None, f"{cmd[0]} exited"
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"{cmd} did not start")
