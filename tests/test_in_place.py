"""``get`` and the Python API on the embedded store read its chunk files in place (the cache
stays empty, the bytes exist once on disk), verified; ``--link`` copies, reflinks or hard
links, and no edit of a linked file can reach the store."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from artfs.core.digest import digest_bytes

from .conftest import StoreEnv, _base_env
from .util import ARTFS, dir_bytes, tree_digests, write_tree

SMALL_CHUNKS = str(64 << 10)


def _chunk_file(store_env: StoreEnv, digest: str) -> Path:
    hex_ = digest.split(":")[1]
    return store_env.chunk_dir / hex_[:2] / hex_[2:]


def _get(store_env: StoreEnv, name: str, root: Path, *args: str, check: bool = True):
    return store_env.cli("get", name, "--root", root, "--json", *args, check=check)


def _tree(store_env: StoreEnv) -> Path:
    """One file of one chunk, one of several (64 KiB chunks), one empty; put as proj/t."""
    data = write_tree(
        store_env.tmp / "data",
        {
            "one.bin": os.urandom(30_000),
            "sub/multi.bin": os.urandom(200_000),
            "empty": b"",
        },
    )
    store_env.cli("put", data, "-n", "proj/t", extra_env={"ARTFS_CHUNK_SIZE": SMALL_CHUNKS})
    return data


def _entries(store_env: StoreEnv) -> dict:
    shown = json.loads(store_env.cli("show", "proj/t", "--files", "--json").stdout)
    return shown["manifest"]["entries"]


def test_get_reads_the_store_in_place_and_leaves_the_cache_empty(embedded: StoreEnv) -> None:
    data = _tree(embedded)
    out = json.loads(_get(embedded, "proj/t", embedded.tmp / "out").stdout)
    assert tree_digests(embedded.tmp / "out") == tree_digests(data)
    assert out["stats"]["chunks_fetched"] == 0
    assert "chunks: 0" in embedded.cli("cache", "info").stdout
    assert "fetched 0 chunks" in embedded.cli("warm", "proj/t").stdout
    assert "chunks: 0" in embedded.cli("cache", "info").stdout
    # the store holds the bytes once, the cache nothing
    assert dir_bytes(embedded.chunk_dir) == dir_bytes(data)
    assert not (embedded.cache / "chunks").exists() or dir_bytes(embedded.cache / "chunks") == 0


def test_the_python_api_reads_in_place(embedded: StoreEnv) -> None:
    data = _tree(embedded)
    client = embedded.client()
    try:
        _, manifest = client.backend.manifest(client.path("proj/t"))
        entry = next(e for e in manifest if e.path == "sub/multi.bin")
        assert client.read_bytes(entry) == (data / "sub/multi.bin").read_bytes()
    finally:
        client.close()
    assert "chunks: 0" in embedded.cli("cache", "info").stdout


def test_a_corrupt_store_chunk_fails_get_in_one_line(embedded: StoreEnv) -> None:
    _tree(embedded)
    path = _chunk_file(embedded, _entries(embedded)["one.bin"]["digest"])
    os.chmod(path, 0o644)
    path.write_bytes(b"x" + path.read_bytes()[1:])
    failed = _get(embedded, "proj/t", embedded.tmp / "out", check=False)
    assert failed.returncode == 1
    assert "corrupt" in failed.stderr and len(failed.stderr.strip().splitlines()) == 1
    assert not (embedded.tmp / "out" / "one.bin").exists()


# root without the capabilities that let it write into read-only files (as a user is)
_AS_A_USER = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]


def _get_as_a_user(store_env: StoreEnv, root: Path) -> subprocess.CompletedProcess[str]:
    args = [ARTFS, "get", "proj/t", "--root", str(root), "--json", "--link", "hardlink"]
    proc = subprocess.run(
        [*_AS_A_USER, *args] if os.geteuid() == 0 else args,
        env=store_env.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def test_hard_links_share_the_stored_file_read_only(store_env: StoreEnv) -> None:
    """Files of one chunk are linked to the stored copy (the store's file, or the cache's from
    a server) and made read-only; files of several chunks and executables are copied, with
    a note; a second get leaves the links (and the stored copy's mtime) alone."""
    data = _tree(store_env)
    (data / "run.sh").write_text("#!/bin/sh\n")
    (data / "run.sh").chmod(0o755)
    store_env.cli("put", data, "-n", "proj/t", extra_env={"ARTFS_CHUNK_SIZE": SMALL_CHUNKS})
    out = store_env.tmp / "out"
    got = _get_as_a_user(store_env, out)
    assert tree_digests(out) == tree_digests(data)
    assert "hard links are made only for files of one chunk" in got.stderr
    assert "executable files are copied" in got.stderr
    assert os.access(out / "run.sh", os.X_OK) and (out / "run.sh").stat().st_nlink == 1
    digest = _entries(store_env)["one.bin"]["digest"]
    stored = (
        _chunk_file(store_env, digest)
        if store_env.kind == "embedded"
        else store_env.cache / "chunks" / digest[7:9] / digest[9:]
    )
    linked = (out / "one.bin").stat()
    assert linked.st_ino == stored.stat().st_ino and linked.st_nlink >= 2
    assert stat.S_IMODE(linked.st_mode) & 0o222 == 0  # nobody may write it in place
    copied = (out / "sub/multi.bin").stat()
    assert copied.st_nlink == 1 and stat.S_IMODE(copied.st_mode) & 0o200
    stored_mtime = stored.stat().st_mtime_ns
    # replacing the linked file (what editors and tools do) leaves the stored copy alone
    (out / "one.bin").unlink()
    (out / "one.bin").write_bytes(b"edited")
    assert digest_bytes(stored.read_bytes()) == digest
    again = _get_as_a_user(store_env, out)
    assert json.loads(again.stdout)["stats"]["files_written"] == 1  # the edited file only
    assert (out / "one.bin").stat().st_ino == stored.stat().st_ino
    if store_env.kind == "embedded":  # (the cache keeps its last use as its files' mtime)
        assert stored.stat().st_mtime_ns == stored_mtime


def test_root_gets_copies_not_links_it_could_write_through(embedded: StoreEnv) -> None:
    """Modes do not stop root: a hard link root could write into would let one ``cp`` over
    a file corrupt the stored copy, so root gets copies, with a note."""
    if os.geteuid() != 0:
        pytest.skip("needs root: as another user the links are kept (the test above)")
    data = _tree(embedded)
    out = embedded.tmp / "out"
    got = _get(embedded, "proj/t", out, "--link", "hardlink")
    assert tree_digests(out) == tree_digests(data)
    assert "may write into a read-only file (root): files copied instead" in got.stderr
    assert (out / "one.bin").stat().st_nlink == 1


def test_reflink_falls_back_to_copies_with_a_note(embedded: StoreEnv) -> None:
    """On a filesystem without reflinks (or across filesystems) the bytes are copied."""
    if _can_clone(embedded.tmp):
        pytest.skip("this filesystem has reflinks: the fallback cannot be seen here")
    data = _tree(embedded)
    got = _get(embedded, "proj/t", embedded.tmp / "out", "--link", "reflink")
    assert tree_digests(embedded.tmp / "out") == tree_digests(data)
    assert "note: reflinks are not possible here" in got.stderr


@contextlib.contextmanager
def _xfs(where: Path) -> Iterator[Path]:
    """A small XFS filesystem with reflinks, loop-mounted (root only)."""
    if os.geteuid() != 0 or not shutil.which("mkfs.xfs"):
        pytest.skip("needs root and mkfs.xfs (apt-get install xfsprogs)")
    image, mnt = where / "xfs.img", where / "xfs"
    with open(image, "wb") as f:
        f.truncate(320 << 20)
    subprocess.run(["mkfs.xfs", "-q", "-m", "reflink=1", image], check=True)
    mnt.mkdir()
    if subprocess.run(["mount", "-o", "loop", image, mnt], capture_output=True).returncode:
        pytest.skip("cannot loop-mount a filesystem here")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", mnt], check=False)
        image.unlink()


def _can_clone(folder: Path) -> bool:
    """Whether files in ``folder`` can share blocks (a FICLONE between two files there)."""
    import fcntl

    src, dst = folder / ".clone-src", folder / ".clone-dst"
    src.write_bytes(b"x" * 4096)
    try:
        with open(src, "rb") as a, open(dst, "wb") as b:
            fcntl.ioctl(b.fileno(), 0x40049409, a.fileno())  # FICLONE
        return True
    except OSError:
        return False
    finally:
        src.unlink()
        dst.unlink(missing_ok=True)


def _shares_blocks(path: Path) -> bool:
    out = subprocess.run(["filefrag", "-v", path], capture_output=True, text=True).stdout
    return "shared" in out


def test_reflinks_share_the_stores_blocks_and_edits_stay_in_the_copy(tmp_path: Path) -> None:
    with _xfs(tmp_path) as fs:
        env = _base_env(fs)
        store_env = StoreEnv("embedded", fs, env, fs / "home")
        assert _can_clone(fs)  # (the probe the fallback test skips by)
        data = _tree(store_env)
        got = _get(store_env, "proj/t", fs / "out", "--link", "reflink")
        assert "note:" not in got.stderr
        assert tree_digests(fs / "out") == tree_digests(data)
        for name in ("one.bin", "sub/multi.bin"):
            assert _shares_blocks(fs / "out" / name), name
        with open(fs / "out/one.bin", "r+b") as f:  # an edit in place
            f.write(b"edited")
        digest = _entries(store_env)["one.bin"]["digest"]
        assert digest_bytes(_chunk_file(store_env, digest).read_bytes()) == digest
