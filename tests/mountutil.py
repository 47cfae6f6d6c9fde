"""Mounting in tests: a real artfs mount served by its own process (``artfs mount``, as a user
runs it), checked with plain tools, and always taken down again."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .conftest import StoreEnv
from .util import fuse_available, need, run_artfs

FUSERMOUNT = shutil.which("fusermount3") or "fusermount3"


def need_fuse() -> None:
    need(fuse_available(), "FUSE: /dev/fuse and fusermount3")


def sh(
    *cmd: object, check: bool = True, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a plain tool; text output."""
    proc = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, env=env
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def mounted_at(mnt: Path) -> bool:
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == str(mnt) for line in f)


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except OSError:
        return False


def wait_until(predicate: Any, timeout: float = 10.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def cleanup(mnt: Path, pid: int | None = None) -> None:
    """Unmount (lazily if it must) and make sure the daemon is gone."""
    if mounted_at(mnt):
        proc = subprocess.run([FUSERMOUNT, "-u", str(mnt)], capture_output=True, timeout=30)
        if proc.returncode != 0:
            subprocess.run([FUSERMOUNT, "-u", "-z", str(mnt)], capture_output=True, timeout=30)
    if pid is not None and not wait_until(lambda: not running(pid), 10):
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not running(pid), 10)
    assert not mounted_at(mnt), f"{mnt} is still mounted"


class Mounted:
    def __init__(self, env: StoreEnv, mnt: Path, pid: int):
        self.env = env
        self.mnt = mnt
        self.pid = pid

    def __truediv__(self, rel: str) -> Path:
        return self.mnt / rel

    def stats(self) -> dict[str, Any]:
        """The daemon's counters, from the ``user.artfs.stats`` xattr of the mount root."""
        return json.loads(os.getxattr(self.mnt, "user.artfs.stats"))  # type: ignore[no-any-return]

    @property
    def log(self) -> str:
        name = str(self.mnt).strip("/").replace("/", "-")
        path = Path(self.env.env["ARTFS_STATE_DIR"]) / "logs" / f"mount-{name}.log"
        return path.read_text() if path.exists() else ""


def daemon_pid(mnt: Path) -> int:
    return int(os.getxattr(mnt, "user.artfs.pid"))


@contextmanager
def mounted(env: StoreEnv, *args: object, name: str = "mnt") -> Iterator[Mounted]:
    """``artfs mount MNT ARGS`` as a daemon; it must be live when the command returns."""
    need_fuse()
    mnt = env.tmp / name
    mnt.mkdir(exist_ok=True)
    run_artfs("mount", mnt, *args, env=env.env, timeout=60)
    pid = None
    try:
        assert os.path.ismount(mnt), "artfs mount returned before the mount was live"
        pid = daemon_pid(mnt)
        yield Mounted(env, mnt, pid)
    finally:
        cleanup(mnt, pid)


def cached_chunks(env: StoreEnv) -> list[Path]:
    """The chunk files in the test's chunk cache (each one fetch, or a warm)."""
    root = env.cache / "chunks"
    return [p for p in root.glob("*/*") if p.is_file()] if root.exists() else []


def digests_of(env: StoreEnv, name: str) -> dict[str, Any]:
    """``path -> manifest entry`` of a version, through the CLI."""
    shown = json.loads(env.cli("show", name, "--files", "--json").stdout)
    return shown["manifest"]["entries"]  # type: ignore[no-any-return]


def umount_json(env: StoreEnv, mnt: Path, check: bool = True) -> tuple[list[dict[str, Any]], str]:
    """``artfs umount --json``: the commit reports, and what it said on stderr."""
    proc = run_artfs("umount", mnt, "--json", env=env.env, check=check, timeout=300)
    return json.loads(proc.stdout or "[]"), proc.stderr


def chunks_of(entry: dict[str, Any]) -> dict[str, int]:
    """``digest -> size`` of the chunks of a manifest entry (as ``show --json`` prints it)."""
    if "chunks" in entry:
        return dict(map(tuple, entry["chunks"]))  # type: ignore[arg-type]
    return {entry["digest"]: entry["size"]} if entry["size"] else {}
