"""Writing through the mount: ``@staging/`` areas driven with plain tools, committed by
``artfs umount`` and ``artfs commit``, surviving a killed daemon and an unreachable store.
Every mount is a real ``artfs mount`` in its own process."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import StoreEnv
from .mountutil import (
    FUSERMOUNT,
    chunks_of,
    cleanup,
    digests_of,
    mounted,
    running,
    sh,
    umount_json,
    wait_until,
)
from .serverutil import ServerProcess
from .util import ARTFS, write_tree

pytestmark = pytest.mark.fuse
CHUNK = 64 << 10

# The same edits, made with plain tools in a native directory and in @staging.
EDITS = r"""
set -e
cd "$1"
SRC="$2"
cp -r "$SRC/newtree" added_by_cp
rsync -a "$SRC/synced/" synced/
dd if="$SRC/blob.bin" of=dd.bin bs=64K status=none
echo "appended line" >> labels.csv
echo "one more" >> big.bin
mv train/0001.png train/renamed.png
rm -r test
mkdir -p deep/a/b/c
echo leaf > deep/a/b/c/leaf.txt
"$PYTHON" "$SRC/replace.py" model.ckpt
"""
REPLACE = """
import os, sys
path = sys.argv[1]
with open(path + ".tmp", "wb") as f:  # what checkpoint savers do
    f.write(b"new weights " * 5000)
    f.flush()
    os.fsync(f.fileno())
os.replace(path + ".tmp", path)
"""


def _base(store_env: StoreEnv, name: str = "proj/ds", seed: int = 1) -> dict[str, bytes]:
    """Log v0 of ``name``; returns its files."""
    store_env.env["ARTFS_CHUNK_SIZE"] = str(CHUNK)
    rng = random.Random(seed)
    files = {
        "train/0001.png": rng.randbytes(3000),
        "train/0002.png": rng.randbytes(5000),
        "test/0001.png": rng.randbytes(700),
        "test/sub/x.bin": rng.randbytes(9000),
        "labels.csv": b"file,label\n",
        "model.ckpt": b"old weights" * 100,
        "big.bin": rng.randbytes(200_000),  # 4 chunks
        "untouched.txt": b"leave me\n",
    }
    src = write_tree(store_env.tmp / f"base-{name.replace('/', '-')}", files)
    store_env.cli("put", src, "-n", name)
    return files


def _sources(tmp: Path) -> Path:
    rng = random.Random(7)
    src = write_tree(
        tmp / "sources",
        {
            "newtree/a.txt": b"a\n",
            "newtree/nested/b.bin": rng.randbytes(100_000),
            "synced/s1.txt": b"synced one\n",
            "synced/dir/s2.bin": rng.randbytes(20_000),
            "blob.bin": rng.randbytes(1 << 20),
        },
    )
    (src / "replace.py").write_text(REPLACE)
    return src


def _edit(target: Path, src: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    sh("bash", "-c", EDITS, "edits", target, src, env=env)


def _status(store_env: StoreEnv, mnt: Path) -> list[str]:
    return store_env.cli("status", mnt).stdout.splitlines()


def test_plain_tools_make_the_next_version(store_env: StoreEnv) -> None:
    files = _base(store_env)
    src = _sources(store_env.tmp)
    native = write_tree(store_env.tmp / "native", files)
    _edit(native, src)
    v0 = digests_of(store_env, "proj/ds:v0")
    with mounted(store_env) as m:
        staging = m / "proj/ds/@staging"
        sh("diff", "-r", staging, store_env.tmp / "base-proj-ds")  # a view of latest
        _edit(staging, src)
        sh("diff", "-r", staging, native)  # reads of staged files
        assert sh("cat", m / "proj/ds/v0/labels.csv").stdout == "file,label\n"
        status = _status(store_env, m.mnt)
        assert status[0] == "proj/ds: 7 added, 3 modified, 3 deleted (based on v0)"
        assert set(status[1:]) == {
            "A added_by_cp/a.txt",
            "A added_by_cp/nested/b.bin",
            "A dd.bin",
            "A deep/a/b/c/leaf.txt",
            "A synced/dir/s2.bin",
            "A synced/s1.txt",
            "A train/renamed.png",
            "M big.bin",
            "M labels.csv",
            "M model.ckpt",
            "D test/0001.png",
            "D test/sub/x.bin",
            "D train/0001.png",
        }
        reports, _ = umount_json(store_env, m.mnt)
    [report] = reports
    assert report["ok"] and report["created"] and report["version"] == 1, report
    assert report["text"].startswith("proj/ds: committed v1 (7 added, 3 modified, 3 deleted;")
    out = store_env.tmp / "out"
    store_env.cli("get", "proj/ds:v1", "--root", out)
    sh("diff", "-r", out, native)
    v1 = digests_of(store_env, "proj/ds:v1")
    for path in ("untouched.txt", "train/0002.png"):
        assert v1[path] == v0[path]
    assert v1["train/renamed.png"] == v0["train/0001.png"]
    # only the changed files were hashed (the moved one is reused as it was)...
    assert report["stats"]["hashed_files"] == 7 - 1 + 3
    # ...and only the chunks the store lacked were sent
    old = {d for e in v0.values() for d in chunks_of(e)}
    new = {d: s for e in v1.values() for d, s in chunks_of(e).items() if d not in old}
    assert report["stats"]["bytes_sent"] == sum(new.values())
    assert report["stats"]["chunks_sent"] == len(new)
    assert not list((store_env.tmp / "state/staging").glob("*/*/proj/ds"))  # cleared


def test_commit_now_and_areas_commit_independently(embedded: StoreEnv) -> None:
    store_env = embedded
    for name in ("proj/one", "proj/two", "proj/three"):
        _base(store_env, name)
    with mounted(store_env) as m:
        (m / "proj/one/@staging/new.txt").write_text("one\n")
        (m / "proj/two/@staging/labels.csv").write_text("two\n")
        sh("ls", "-R", m / "proj/three/@staging")  # looked at, not changed
        out = store_env.cli(
            "commit", m / "proj/one/@staging", "-m", "by hand", "--alias", "best"
        ).stdout
        assert out.startswith("proj/one: committed v1 (1 added;")
        assert os.getxattr(m / "proj/one/best", "user.artfs.version") == b"v1"
        assert (m / "proj/one/v1/new.txt").read_text() == "one\n"
        assert (m / "proj/one/@staging/new.txt").read_text() == "one\n"  # now based on v1
        shown = sh("getfattr", "-d", m / "proj/one/@staging").stdout
        assert 'user.artfs.base="v1"' in shown and 'user.artfs.type="dataset"' in shown
        digest = digests_of(store_env, "proj/one:v1")["new.txt"]["digest"]
        assert (
            sh(
                "getfattr",
                "-n",
                "user.artfs.digest",
                "--only-values",
                m / "proj/one/@staging/new.txt",
            ).stdout
            == digest
        )
        again = store_env.cli("commit", m / "proj/one/@staging", "--json").stdout
        assert json.loads(again)[0]["text"] == "proj/one: no changes"
        status = _status(store_env, m.mnt)
        assert status == ["proj/two: 0 added, 1 modified, 0 deleted (based on v0)", "M labels.csv"]
        notdir = store_env.cli("commit", m / "proj/one/v1", check=False)
        assert notdir.returncode == 1 and "not the @staging directory" in notdir.stderr
        reports, _ = umount_json(store_env, m.mnt)
    assert [r["text"].split(" (")[0] for r in reports] == ["proj/two: committed v1"]
    shown = json.loads(store_env.cli("show", "proj/one:v1", "--json").stdout)
    assert shown["description"] == "by hand"
    assert "v1" not in store_env.cli("ls", "proj/three").stdout  # no changes, no version
    assert store_env.cli("ls", "proj/two").stdout.count("committed") == 2


def test_sigkill_loses_no_fsynced_write(embedded: StoreEnv) -> None:
    store_env = embedded
    _base(store_env)
    writer = r"""
import os, sys
root = sys.argv[1]
def durable(path, data, mode="wb"):
    with open(path, mode) as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
durable(root + "/fresh.bin", b"f" * (3 << 20))
durable(root + "/labels.csv", b"more\n", "ab")
os.mkdir(root + "/made")
durable(root + "/made/leaf.txt", b"leaf\n")
durable(root + "/model.ckpt.tmp", b"weights" * 1000)
os.replace(root + "/model.ckpt.tmp", root + "/model.ckpt")
os.unlink(root + "/untouched.txt")
os.truncate(root + "/big.bin", 1000)
fd = os.open(root, os.O_RDONLY)
os.fsync(fd)  # the renames, the unlink and the truncation
os.close(fd)
print("synced", flush=True)
with open(root + "/stream.bin", "wb") as f:  # still writing when the daemon dies
    while True:
        f.write(b"z" * 65536)
"""
    with mounted(store_env) as m:
        staging = m / "proj/ds/@staging"
        proc = subprocess.Popen(
            [sys.executable, "-c", writer, str(staging)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "synced"
            assert wait_until(lambda: (staging / "stream.bin").exists())
            time.sleep(0.3)
            os.kill(m.pid, signal.SIGKILL)
            assert wait_until(lambda: not running(m.pid))
        finally:
            proc.kill()
            proc.wait()
        sh(FUSERMOUNT, "-u", m.mnt)
    with mounted(store_env) as m:
        staging = m / "proj/ds/@staging"
        assert (staging / "fresh.bin").read_bytes() == b"f" * (3 << 20)
        assert (staging / "labels.csv").read_bytes() == b"file,label\nmore\n"
        assert (staging / "made/leaf.txt").read_bytes() == b"leaf\n"
        assert (staging / "model.ckpt").read_bytes() == b"weights" * 1000
        assert not (staging / "untouched.txt").exists()
        assert (staging / "big.bin").stat().st_size == 1000
        stream = (staging / "stream.bin").read_bytes()
        assert stream and set(stream) == {ord("z")}  # what was written before the kill
        out = store_env.cli("commit", staging).stdout
        assert out.startswith("proj/ds: committed v1 (3 added, 3 modified, 1 deleted;"), out
        reports, _ = umount_json(store_env, m.mnt)
    assert reports == []
    v1 = digests_of(store_env, "proj/ds:v1")
    assert v1["stream.bin"]["size"] == len(stream) and "untouched.txt" not in v1


@pytest.mark.parametrize("store_env", ["server"], indirect=True)
def test_unreachable_store_at_unmount_loses_nothing(
    store_env: StoreEnv, artfs_server: ServerProcess
) -> None:
    files = _base(store_env)
    with mounted(store_env) as m:
        staging = m / "proj/ds/@staging"
        (staging / "new.txt").write_text("written while the store was up\n")
        (staging / "labels.csv").write_text("changed\n")
        artfs_server.stop()
        reports, stderr = umount_json(store_env, m.mnt, check=False)
        [report] = reports
        assert not report["ok"] and "commit failed, the staged changes are kept" in report["text"]
        assert "1 commit(s) failed; the staged changes are kept" in stderr
        assert "commit failed" in m.log
    status = _status(store_env, m.mnt)  # not mounted: read from disk
    assert status[0] == (
        "proj/ds: 1 added, 1 modified, 0 deleted (based on v0; its commit is pending)"
    )
    artfs_server.start()  # the same data and port
    assert "v1" not in store_env.cli("ls", "proj/ds").stdout
    with mounted(store_env) as m:  # commits what the last unmount could not, at once
        assert wait_until(lambda: "v1" in store_env.cli("ls", "proj/ds").stdout, 30), m.log
        assert (m / "proj/ds/@staging/new.txt").read_text() == "written while the store was up\n"
        reports, _ = umount_json(store_env, m.mnt)
    assert reports == []
    out = store_env.tmp / "out"
    store_env.cli("get", "proj/ds:v1", "--root", out)
    assert (out / "labels.csv").read_text() == "changed\n"
    assert (out / "untouched.txt").read_bytes() == files["untouched.txt"]
    assert store_env.cli("status", m.mnt).stdout.strip() == "no staged changes"


def test_mkdir_makes_a_new_artifact(embedded: StoreEnv) -> None:
    store_env = embedded
    _base(store_env)
    with mounted(store_env) as m:
        new = m / "proj/model"
        sh("mkdir", new)
        assert sh("ls", m / "proj").stdout.split() == ["ds", "model"]
        assert sh("ls", "-A", new).stdout.split() == ["@staging"]
        assert sh("ls", "-A", new / "@staging").stdout == ""
        sh("setfattr", "-n", "user.artfs.type", "-v", "model", new)
        assert sh("getfattr", "-n", "user.artfs.type", "--only-values", new).stdout == "model"
        sh("mkdir", "-p", new / "@staging/weights")
        (new / "@staging/weights/w.bin").write_bytes(b"w" * 1000)
        sh("mkdir", m / "proj/plain")
        (m / "proj/plain/@staging/x.txt").write_text("x\n")
        sh("mkdir", m / "proj/empty")
        bad = sh("mkdir", m / "proj/no space", check=False)
        assert bad.returncode != 0 and "Invalid argument" in bad.stderr
        sh("setfattr", "-n", "user.artfs.type", "-v", "model", m / "proj/ds", check=False)
        assert (
            sh("getfattr", "-n", "user.artfs.type", "--only-values", m / "proj/ds").stdout
            == "dataset"
        )
        reports, _ = umount_json(store_env, m.mnt)
    texts = sorted(r["text"].split(" (")[0] for r in reports)
    assert texts == ["proj/model: committed v0", "proj/plain: committed v0"]
    shown = json.loads(store_env.cli("show", "proj/model:v0", "--files", "--json").stdout)
    assert shown["type"] == "model"
    assert list(shown["manifest"]["entries"]) == ["weights/w.bin"]
    assert json.loads(store_env.cli("show", "proj/plain", "--json").stdout)["type"] == "dataset"
    listed = store_env.cli("ls", "proj").stdout
    assert "empty" not in listed  # nothing staged, no artifact
    with mounted(store_env) as m:
        assert sh("ls", m / "proj").stdout.split() == ["ds", "model", "plain"]


def test_a_commit_based_on_an_old_version_says_so(embedded: StoreEnv) -> None:
    store_env = embedded
    _base(store_env)
    with mounted(store_env) as m:
        (m / "proj/ds/@staging/mine.txt").write_text("mine\n")
        other = write_tree(store_env.tmp / "other", {"theirs.txt": b"theirs\n"})
        store_env.cli("put", other, "-n", "proj/ds")  # v1, logged elsewhere meanwhile
        out = store_env.cli("commit", m / "proj/ds/@staging", "--json").stdout
    [report] = json.loads(out)
    assert report["moved_on"] and report["version"] == 2 and report["base"] == 0
    assert report["text"].endswith("; based on v0: v1 was logged meanwhile")
    v2 = digests_of(store_env, "proj/ds:v2")
    assert "mine.txt" in v2 and "theirs.txt" not in v2 and "big.bin" in v2


def test_every_way_of_unmounting_commits(embedded: StoreEnv) -> None:
    store_env = embedded
    _base(store_env)
    with mounted(store_env) as m:  # fusermount3 -u: nobody waits, the daemon commits anyway
        (m / "proj/ds/@staging/a.txt").write_text("a\n")
        sh(FUSERMOUNT, "-u", m.mnt)
        assert wait_until(lambda: not running(m.pid), 60)
        assert "proj/ds: committed v1" in m.log
    mnt = store_env.tmp / "fg"
    mnt.mkdir()
    proc = subprocess.Popen(
        [ARTFS, "mount", "--foreground", mnt],
        env=store_env.env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:  # SIGTERM, as stopping the systemd unit sends
        assert wait_until(lambda: os.path.ismount(mnt), 30)
        (mnt / "proj/ds/@staging/b.txt").write_text("b\n")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert "proj/ds: committed v2 (1 added;" in proc.stderr.read()  # type: ignore[union-attr]
    finally:
        cleanup(mnt, proc.pid)
        proc.kill()
        proc.wait()
    assert sorted(digests_of(store_env, "proj/ds:v2")) == sorted(
        [
            "a.txt",
            "b.txt",
            "big.bin",
            "labels.csv",
            "model.ckpt",
            "test/0001.png",
            "test/sub/x.bin",
            "train/0001.png",
            "train/0002.png",
            "untouched.txt",
        ]
    )
