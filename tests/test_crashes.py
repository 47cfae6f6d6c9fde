"""kill -9 at many points: of the client (which is the store itself when embedded), of the
server, of the mount daemon; during put, commit, staging writes, delete and gc. After each
crash every committed version still reads back byte for byte, every blob holds the bytes
its name promises, staged data that was made durable survives, nothing answers 500, and a
final ``gc --grace 0`` leaves exactly the chunks the remaining versions use."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import blake3
import pytest

from artfs.client.client import Client
from artfs.core.chunking import hash_path
from artfs.core.errors import NotFound
from artfs.core.manifest import Manifest, ManifestEntry, file_mode
from artfs.core.names import ArtifactPath
from artfs.core.records import VersionInfo

from .conftest import StoreEnv
from .mountutil import FUSERMOUNT, Mounted, mounted, running, sh, wait_until
from .util import ARTFS, tree_digests

CHUNK = 64 << 10
SMALL = {"ARTFS_CHUNK_SIZE": str(CHUNK)}


def make_tree(root: Path, generation: int, files: int = 24, size: int = 160_000) -> Path:
    """A dataset whose generations share two thirds of their files (dedup across versions)."""
    for i in range(files):
        seed = i if i % 3 != generation % 3 else 1000 * (generation + 1) + i
        path = root / f"part{i:02d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(random.Random(seed).randbytes(size))
    return root


def version_digest(tree: Path) -> str:
    entries = [
        ManifestEntry.of_file(
            p.relative_to(tree).as_posix(), hash_path(p, CHUNK), file_mode(p.stat().st_mode)
        )
        for p in sorted(tree.rglob("*"))
        if p.is_file()
    ]
    return Manifest(entries).digest


def blobs(root: Path) -> dict[str, Path]:
    return {f"blake3:{p.parent.name}{p.name}": p for p in root.glob("*/*") if p.is_file()}


@dataclass
class Ledger:
    """What every committed version of one artifact must hold, by version digest."""

    env: StoreEnv
    name: str
    trees: dict[str, dict[str, str]] = field(default_factory=dict)
    checks: int = 0

    def expect(self, tree: Path) -> None:
        self.trees[version_digest(tree)] = tree_digests(tree)

    def check(self) -> list[int]:
        """Read every committed version back from the store with an empty cache; returns
        their numbers."""
        self.checks += 1
        fresh = self.env.tmp / f"check-cache-{self.checks}"
        client = replace(self.env, env={**self.env.env, "ARTFS_CACHE_DIR": str(fresh)}).client()
        try:
            path = client.path(self.name)
            numbers = []
            for info in _versions(client, path):
                assert info.digest in self.trees, f"{info.path}: content nobody put"
                _, manifest = client.backend.manifest(path.with_alias(info.label))
                out = self.env.tmp / f"check-{self.checks}-{info.label}"
                client.download(info, manifest, out)
                assert tree_digests(out) == self.trees[info.digest], info.path
                numbers.append(int(info.number or 0))
            return numbers
        finally:
            client.close()

    def used_chunks(self) -> set[str]:
        client = self.env.client()
        try:
            path = client.path(self.name)
            used: set[str] = set()
            for info in _versions(client, path):
                _, manifest = client.backend.manifest(path.with_alias(info.label))
                used |= set(manifest.chunks())
            return used
        finally:
            client.close()


def _versions(client: Client, path: ArtifactPath) -> list[VersionInfo]:
    try:
        return client.backend.list_versions(path)
    except NotFound:  # the first put was killed before it made the project
        return []


def assert_blobs_verify(root: Path) -> None:
    for digest, path in blobs(root).items():
        assert "blake3:" + blake3.blake3(path.read_bytes()).hexdigest() == digest, path


def wait_for(proc: subprocess.Popen[str], ready: Callable[[], bool]) -> bool:
    """Wait until ``ready()`` or the end of ``proc``; whether it is still running."""
    deadline = time.monotonic() + 60
    while proc.poll() is None and not ready() and time.monotonic() < deadline:
        time.sleep(0.002)
    return proc.poll() is None


def kill_when(proc: subprocess.Popen[str], ready: Callable[[], bool]) -> bool:
    """kill -9 ``proc`` once ``ready()``; whether it was still running."""
    alive = wait_for(proc, ready)
    if alive:
        proc.kill()
    proc.communicate()
    return alive


def start(env: StoreEnv, *args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [ARTFS, *map(str, args)],
        env={**env.env, **SMALL},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def one_line_or_success(proc: subprocess.Popen[str]) -> bool:
    """A command that lived through a crash of its server either succeeded or said why in
    one line; returns whether it succeeded."""
    _, err = proc.communicate(timeout=180)
    assert "Traceback" not in err, err
    if proc.returncode:
        assert len(err.strip().splitlines()) == 1 and err.startswith("artfs: error:"), err
    return proc.returncode == 0


def after_progress(root: Path, new: int) -> Callable[[], bool]:
    """Ready once ``new`` more blobs than now are stored (uploads under way)."""
    before = len(blobs(root))
    return lambda: len(blobs(root)) >= before + new


def after(seconds: float) -> Callable[[], bool]:
    deadline = time.monotonic() + seconds
    return lambda: time.monotonic() >= deadline


def _final_gc_leaves_exactly_what_is_used(env: StoreEnv, ledger: Ledger) -> None:
    env.cli("gc", "--grace", "0")
    ledger.check()
    assert set(blobs(env.chunk_dir)) == ledger.used_chunks()


def _delete_candidates(ledger: Ledger) -> list[int]:
    """Committed versions but the latest (which carries the alias ``latest``)."""
    return ledger.check()[:-1]


def test_killed_client_loses_no_committed_byte(embedded: StoreEnv) -> None:
    """The embedded store: the client process is the store, killed mid-put (hashing,
    uploading, committing), mid-rm and mid-gc."""
    env = embedded
    ledger = Ledger(env, "proj/ds")
    total = 24 * 3  # chunks of one generation
    points = [
        after(0.2),
        after_progress(env.chunk_dir, 1),
        after_progress(env.chunk_dir, total // 3),
    ]
    points += [after_progress(env.chunk_dir, total // 2), after(5.0)]
    killed = 0
    for generation, ready in enumerate(points):
        tree = make_tree(env.tmp / f"gen{generation}", generation)
        ledger.expect(tree)
        killed += kill_when(start(env, "put", tree, "-n", "proj/ds"), ready)
        ledger.check()
        assert_blobs_verify(env.chunk_dir)
    assert killed >= 2  # at least two puts died on the way
    env.cli("put", env.tmp / "gen0", "-n", "proj/ds", extra_env=SMALL)  # one more, whole
    for delay in (0.35, 0.45, 0.55, 0.7):
        victims = _delete_candidates(ledger)
        if not victims:
            break
        kill_when(start(env, "rm", f"proj/ds:v{victims[0]}"), after(delay))
        ledger.check()
        assert_blobs_verify(env.chunk_dir)
        kill_when(start(env, "gc", "--grace", "0"), after(delay))
        ledger.check()
        assert_blobs_verify(env.chunk_dir)
    _final_gc_leaves_exactly_what_is_used(env, ledger)


@pytest.mark.parametrize("store_env", ["server"], indirect=True)
def test_killed_server_loses_no_committed_byte(
    store_env: StoreEnv, request: pytest.FixtureRequest
) -> None:
    """The server killed and restarted at once while clients put, delete and collect:
    the clients ride it out or fail in one line, and nothing answers 500."""
    env, server = store_env, request.getfixturevalue("artfs_server")

    def crash() -> None:
        server.stop(signal.SIGKILL)
        server.start()

    ledger = Ledger(env, "proj/ds")
    total = 24 * 3
    points = [after_progress(env.chunk_dir, 1), after_progress(env.chunk_dir, total // 2)]
    for generation, ready in enumerate([*points, after(0.9)]):
        tree = make_tree(env.tmp / f"gen{generation}", generation)
        ledger.expect(tree)
        put = start(env, "put", tree, "-n", "proj/ds")
        wait_for(put, ready)
        crash()
        one_line_or_success(put)
        ledger.check()
        assert_blobs_verify(env.chunk_dir)
    env.cli("put", env.tmp / "gen0", "-n", "proj/ds", extra_env=SMALL)
    for delay in (0.4, 0.5, 0.6):
        victims = _delete_candidates(ledger)
        if not victims:
            break
        for args in (("rm", f"proj/ds:v{victims[0]}"), ("gc", "--grace", "0")):
            proc = start(env, *args)
            wait_for(proc, after(delay))
            crash()
            one_line_or_success(proc)
            ledger.check()
            assert_blobs_verify(env.chunk_dir)
    _final_gc_leaves_exactly_what_is_used(env, ledger)
    assert "internal error" not in server.log.read_text()


def _kill_daemon(m: Mounted) -> None:
    os.kill(m.pid, signal.SIGKILL)
    assert wait_until(lambda: not running(m.pid))


def _leave_uncommitted(m: Mounted, *users: subprocess.Popen[str]) -> None:
    """Take a mount down without the commit an unmount makes: kill the daemon first, then
    the processes still using the mount."""
    _kill_daemon(m)
    for user in users:
        user.kill()
        user.wait()
    _unmount(m)


def _unmount(m: Mounted) -> None:
    """``fusermount -u`` of a mount whose daemon is dead (its users may take a moment to
    let go)."""
    unmounted = lambda: sh(FUSERMOUNT, "-u", m.mnt, check=False).returncode == 0  # noqa: E731
    assert wait_until(unmounted, timeout=10, step=0.2)


@pytest.mark.fuse
def test_killed_daemon_keeps_staged_and_committed_bytes(embedded: StoreEnv) -> None:
    """The mount daemon killed while a tool writes (and fsyncs) into @staging, and while
    ``artfs commit`` commits it: what was made durable is still staged after a remount, and
    a commit either made the version, with the right bytes, or left the area to commit."""
    env = embedded
    env.env.update(SMALL)
    ledger = Ledger(env, "proj/ds")
    base = make_tree(env.tmp / "base", 0)
    ledger.expect(base)
    env.cli("put", base, "-n", "proj/ds")
    writer = (
        "import os, random, sys\n"
        "root = sys.argv[1]\n"
        "for i in range(400):\n"
        "    with open(f'{root}/new{i:03d}.bin', 'wb') as f:\n"
        "        f.write(random.Random(i).randbytes(100_000))\n"
        "        f.flush()\n"
        "        os.fsync(f.fileno())\n"
        "    print(i, flush=True)\n"
    )
    for kill_after in (3, 10):
        with mounted(env) as m:
            proc = subprocess.Popen(
                [sys.executable, "-c", writer, str(m / "proj/ds/@staging")],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            assert proc.stdout is not None
            durable = int(proc.stdout.readline())
            while durable < kill_after:
                durable = int(proc.stdout.readline())
            _leave_uncommitted(m, proc)  # while the writer writes on
        with mounted(env) as m:
            for i in range(durable + 1):
                data = (m / f"proj/ds/@staging/new{i:03d}.bin").read_bytes()
                assert data == random.Random(i).randbytes(100_000), i
            _leave_uncommitted(m)
    staged = env.tmp / "staged"
    with mounted(env) as m:
        sh("cp", "-a", m / "proj/ds/@staging/.", staged)
        _leave_uncommitted(m)
    ledger.expect(staged)
    for delay in (0.45, 0.7, 1.0, 60.0):
        with mounted(env) as m:
            commit = start(env, "commit", m / "proj/ds/@staging")
            wait_for(commit, after(delay))
            _kill_daemon(m)  # mid-commit, or (last) once it is done
            one_line_or_success(commit)
            _unmount(m)
        if len(ledger.check()) == 2:
            break
        with mounted(env) as m:
            assert tree_digests(m / "proj/ds/@staging") == tree_digests(staged)
            _leave_uncommitted(m)
    assert len(ledger.check()) == 2
    _final_gc_leaves_exactly_what_is_used(env, ledger)
