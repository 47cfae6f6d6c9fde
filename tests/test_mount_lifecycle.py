"""The mount daemon's life: returning once live, SIGTERM, ``artfs umount``, surviving a
SIGKILL'd daemon, fstab and systemd, the cache bound, ``warm`` and ``--run``."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .conftest import StoreEnv
from .mountutil import (
    cached_chunks,
    cleanup,
    daemon_pid,
    digests_of,
    mounted,
    mounted_at,
    need_fuse,
    running,
    sh,
    wait_until,
)
from .util import ARTFS, BIN, need, run_artfs, write_tree

pytestmark = pytest.mark.fuse
REPO = Path(__file__).resolve().parent.parent


def _dataset(store_env: StoreEnv) -> dict[str, bytes]:
    store_env.env["ARTFS_CHUNK_SIZE"] = str(64 << 10)
    rng = random.Random(3)
    files = {f"part{i}.bin": rng.randbytes(300_000) for i in range(4)}
    files["notes/readme.txt"] = b"read me\n"
    write_tree(store_env.tmp / "data", files)
    store_env.cli("put", store_env.tmp / "data", "-n", "proj/ds")
    return files


@pytest.fixture
def dataset(store_env: StoreEnv) -> dict[str, bytes]:
    return _dataset(store_env)


@pytest.fixture
def local(embedded: StoreEnv) -> tuple[StoreEnv, dict[str, bytes]]:
    """The embedded store and its dataset, for the daemon's life (the same on any backend)."""
    return embedded, _dataset(embedded)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_killed_daemon_leaves_a_mount_umount_clears(local: tuple[StoreEnv, dict]) -> None:
    store_env = local[0]
    need_fuse()
    mnt = store_env.tmp / "mnt"
    mnt.mkdir()
    run_artfs("mount", mnt, env=store_env.env)
    pid = daemon_pid(mnt)
    try:
        os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: not running(pid))
        dead = sh("ls", mnt, check=False)
        assert dead.returncode != 0 and "Transport endpoint is not connected" in dead.stderr
        again = run_artfs("mount", mnt, env=store_env.env, check=False)
        assert again.returncode == 1
        assert again.stderr.strip().splitlines() == [
            f"artfs: error: {mnt} is a dead mount (its daemon died): run 'artfs umount {mnt}' first"
        ]
        run_artfs("umount", mnt, env=store_env.env)
        assert not mounted_at(mnt)
    finally:
        cleanup(mnt, pid)
    with mounted(store_env) as m:
        assert sh("cat", m / "proj/ds/v0/notes/readme.txt").stdout == "read me\n"


def test_umount_waits_for_the_daemon_and_refuses_when_busy(local: tuple[StoreEnv, dict]) -> None:
    store_env, dataset = local
    with mounted(store_env) as m:
        with open(m / "proj/ds/v0/part0.bin", "rb") as held:
            busy = run_artfs("umount", m.mnt, env=store_env.env, check=False)
            assert busy.returncode == 1 and "is busy" in busy.stderr
            assert held.read(10) == dataset["part0.bin"][:10]
        run_artfs("umount", m.mnt, env=store_env.env)
        assert not mounted_at(m.mnt) and not running(m.pid)  # it waited for the daemon
        assert "unmounted" in m.log
    gone = run_artfs("umount", m.mnt, env=store_env.env, check=False)
    assert gone.returncode == 1 and "is not an artfs mount" in gone.stderr


def test_bad_mount_points_fail_in_one_line(embedded: StoreEnv) -> None:
    store_env = embedded
    need_fuse()
    missing = run_artfs("mount", store_env.tmp / "nope", env=store_env.env, check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        f"artfs: error: mount point {store_env.tmp / 'nope'} does not exist"
    ]
    (store_env.tmp / "file").write_text("x")
    bad = run_artfs("mount", store_env.tmp / "file", env=store_env.env, check=False)
    assert bad.returncode == 1 and "is not a directory" in bad.stderr
    with mounted(store_env) as m:
        twice = run_artfs("mount", m.mnt, env=store_env.env, check=False)
        assert twice.returncode == 1 and "already an artfs mount" in twice.stderr
        opts = run_artfs(
            "mount", store_env.tmp, "-o", "no_such_option", env=store_env.env, check=False
        )
        assert opts.returncode == 1 and "Traceback" not in opts.stderr


def test_foreground_notifies_systemd_and_unmounts_on_sigterm(local: tuple[StoreEnv, dict]) -> None:
    store_env = local[0]
    need_fuse()
    mnt = store_env.tmp / "mnt"
    mnt.mkdir()
    sock_path = str(store_env.tmp / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(30)
    env = {**store_env.env, "NOTIFY_SOCKET": sock_path}
    proc = subprocess.Popen(
        [ARTFS, "mount", "--foreground", mnt], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        message = sock.recv(4096).decode()
        assert "READY=1" in message.splitlines()
        assert os.path.ismount(mnt)  # live before READY
        assert sh("cat", mnt / "proj/ds/v0/notes/readme.txt").stdout == "read me\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert not mounted_at(mnt)
        assert "STOPPING=1" in sock.recv(4096).decode()
        assert "unmounted" in proc.stderr.read()  # type: ignore[union-attr]
    finally:
        sock.close()
        cleanup(mnt, proc.pid)
        proc.kill()
        proc.wait()


STANDARD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@contextmanager
def artfs_on_system_path() -> Iterator[None]:
    """mount(8) runs helpers without PATH (a shell then looks in the standard directories):
    link the venv's artfs into /usr/local/bin for the test, as an install would."""
    if shutil.which("artfs", path=STANDARD_PATH):
        yield
        return
    link = Path("/usr/local/bin/artfs")
    link.symlink_to(ARTFS)
    try:
        yield
    finally:
        link.unlink()


def test_fstab_style_mounts(local: tuple[StoreEnv, dict]) -> None:
    """What an fstab line does: mount(8) runs mount.fuse3, which runs `artfs SRC MNT -o ..`."""
    store_env = local[0]
    need_fuse()
    need(
        os.geteuid() == 0 and shutil.which("mount.fuse3") is not None,
        "root and mount.fuse3 (fstab mounts)",
    )
    entity = run_artfs("whoami", env=store_env.env).stdout.split()[0]
    env = {**store_env.env, "PATH": f"{BIN}:{os.environ['PATH']}"}
    cases = [
        (
            "mnt-a",
            "mount.fuse3",
            f"artfs:{entity}",
            "-t",
            "fuse.artfs",
            "-o",
            "ro,metadata_ttl=2,cache_size=1G,nofail,_netdev",
        ),
        ("mnt-b", "mount", "-t", "fuse.artfs", "artfs", "-o", "metadata_ttl=2"),
    ]
    with artfs_on_system_path():
        for name, *cmd in cases:
            mnt = store_env.tmp / name
            mnt.mkdir()
            args = (
                [*cmd[:2], mnt, *cmd[2:]] if cmd[0] == "mount.fuse3" else [*cmd[:4], mnt, *cmd[4:]]
            )
            sh(*args, env=env, timeout=60)
            pid = None
            try:
                assert os.path.ismount(mnt)  # live when mount returned
                pid = daemon_pid(mnt)
                line = next(
                    x
                    for x in Path("/proc/self/mounts").read_text().splitlines()
                    if x.split()[1] == str(mnt)
                )
                assert line.split()[2] == "fuse.artfs"
                assert sh("cat", mnt / "proj/ds/v0/notes/readme.txt").stdout == "read me\n"
                sh("umount", mnt)
                assert not mounted_at(mnt)
                assert wait_until(lambda p=pid: not running(p))
            finally:
                cleanup(mnt, pid)


def test_fstab_argv_maps_options_to_flags() -> None:
    from artfs.cli.mount import fstab_argv

    commands = {"mount", "put"}
    assert fstab_argv(
        [
            "artfs:team",
            "/mnt/a",
            "-o",
            "rw,allow_other,cache_size=10G,metadata_ttl=5,open_chunks=16,_netdev,x-systemd.auto",
        ],
        commands,
    ) == [
        "mount",
        "/mnt/a",
        "--source",
        "artfs:team",
        "--entity",
        "team",
        "--cache-size",
        "10G",
        "--metadata-ttl",
        "5",
        "--open-chunks",
        "16",
        "-o",
        "allow_other",
    ]
    assert fstab_argv(["artfs", "/mnt/a"], commands) == ["mount", "/mnt/a", "--source", "artfs"]
    assert fstab_argv(["put", "x", "-o", "y"], commands) is None
    assert fstab_argv(["typo", "x"], commands) is None


def test_systemd_units_verify() -> None:
    tool = shutil.which("systemd-analyze")
    need(tool is not None, "systemd-analyze (apt-get install systemd)")
    units = REPO / "systemd"
    service = units / "artfs-mount@.service"
    mount_unit = units / "mnt-artfs.mount"
    with_instance = Path(os.environ.get("TMPDIR", "/tmp")) / f"artfs-units-{os.getpid()}"
    with_instance.mkdir(exist_ok=True)
    try:
        instance = with_instance / "artfs-mount@mnt-artfs.service"
        shutil.copy(service, instance)
        proc = subprocess.run(
            [tool, "verify", "--man=no", instance, mount_unit],  # type: ignore[list-item]
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        assert "artfs" not in proc.stderr, proc.stderr  # no warning about our units
    finally:
        shutil.rmtree(with_instance)
    text = service.read_text()
    assert "Type=notify" in text and "--foreground" in text


@pytest.mark.parametrize("store_env", ["server"], indirect=True)  # (embedded: read in place)
def test_cache_size_bounds_the_chunk_cache(store_env: StoreEnv, dataset: dict) -> None:
    limit = 300 << 10
    with mounted(store_env, "--cache-size", str(limit)) as m:
        for name, data in dataset.items():
            assert sh("sha256sum", m / "proj/ds/v0" / name).stdout.split()[0] == _sha(data)
        assert m.stats()["chunks_fetched"] >= 19

        def cache_bytes() -> int:
            """The cache's size while eviction may be removing files from under us."""
            total = 0
            for p in cached_chunks(store_env):
                with contextlib.suppress(FileNotFoundError):
                    total += p.stat().st_size
            return total

        assert wait_until(lambda: cache_bytes() <= limit, 10), cache_bytes()
        assert "evicted" in m.log
        # files read before eviction still read right (page cache or a refetch)
        sh("sh", "-c", f"cat '{m.mnt}'/proj/ds/v0/part*.bin > /dev/null")


def test_warm_fills_the_cache_so_reads_fetch_nothing(store_env: StoreEnv, dataset: dict) -> None:
    """From a server, ``warm`` fetches every chunk; the embedded store is its own cache, so
    there it copies nothing."""
    out = store_env.cli("warm", "proj/ds:latest").stdout
    chunks = {
        c[0]
        for e in digests_of(store_env, "proj/ds:v0").values()
        for c in e.get("chunks", [[e["digest"]]])
    }
    expected = 0 if store_env.kind == "embedded" else len(chunks)
    assert f"fetched {expected} chunks" in out
    assert len(cached_chunks(store_env)) == expected
    assert "fetched 0 chunks" in store_env.cli("warm", "proj/ds:v0").stdout
    with mounted(store_env) as m:
        for name, data in dataset.items():
            assert sh("sha256sum", m / "proj/ds/v0" / name).stdout.split()[0] == _sha(data)
        assert m.stats()["chunks_fetched"] == 0


def test_run_records_the_versions_it_reads(store_env: StoreEnv, dataset: dict) -> None:
    (store_env.tmp / "data" / "extra.txt").write_text("v1\n")
    store_env.cli("put", store_env.tmp / "data", "-n", "proj/ds")
    client = store_env.client()
    try:
        run = client.backend.init_run(client.entity, "proj", "train-1")
        with mounted(store_env, "--run", "train-1") as m:
            sh("ls", "-lR", m / "proj/ds/v0", m / "proj/ds/v1")  # listing is not reading
            sh("cat", m / "proj/ds/v1/extra.txt")
            sh("cat", m / "proj/ds/latest/notes/readme.txt")

            def used() -> list[str]:
                return [v.label for v in client.backend.run_versions(run.path, "used")]

            assert wait_until(lambda: used() == ["v1"], 10), used()
            assert "as used by run" in m.log
        assert used() == ["v1"]
    finally:
        client.close()
