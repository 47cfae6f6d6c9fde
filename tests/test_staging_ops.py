"""The writable layer's handlers without mounting (pytest-trio): commits racing writes,
unlinked open files, listings while entries go, rename flags, inode numbers, and a staging
area reloaded from disk as a crash leaves it; over a real embedded store and chunk cache."""

from __future__ import annotations

import errno
import os
import random
import stat
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyfuse3
import pytest
import trio
import trio.testing

from artfs.client.client import Client
from artfs.fuse.areas import StagingNamespace
from artfs.fuse.commit import CommitOptions, Committer
from artfs.fuse.journal import AreaKey
from artfs.fuse.reader import ChunkFiles, Reader
from artfs.fuse.staged import StagedFile
from artfs.fuse.staging import StagingArea
from artfs.fuse.stats import MountStats
from artfs.fuse.writable import WritableOperations

from .conftest import StoreEnv
from .test_mount_ops import TTL, Collector, put, walk

CHUNK = 64 << 10


@pytest.fixture
def client(embedded: StoreEnv) -> Iterator[Client]:
    embedded.env["ARTFS_CHUNK_SIZE"] = str(CHUNK)
    client = embedded.client()
    yield client
    client.close()


def make_ops(
    client: Client, staging: Path, nursery: trio.Nursery | None = None
) -> WritableOperations:
    stats = MountStats()
    files = ChunkFiles(client.cache, client.backend, stats)
    files.nursery = nursery
    namespace = StagingNamespace(client.backend, client.entity, TTL, staging)
    return WritableOperations(
        namespace, Reader(files, stats, client.references), stats, Committer(client)
    )


def fields(**set_: bool) -> Any:
    names = (
        "update_size",
        "update_mode",
        "update_mtime",
        "update_atime",
        "update_uid",
        "update_gid",
        "update_ctime",
    )
    return SimpleNamespace(**{n: set_.get(n, False) for n in names})


async def write_file(ops: WritableOperations, parent: int, name: str, data: bytes) -> int:
    info, attr = await ops.create(parent, name.encode(), 0o644, os.O_WRONLY, None)
    assert await ops.write(info.fh, 0, data) == len(data)
    await ops.release(info.fh)
    return attr.st_ino


async def read_all(ops: WritableOperations, inode: int) -> bytes:
    info = await ops.open(inode, os.O_RDONLY)
    data = await ops.read(info.fh, 0, 1 << 30)
    await ops.release(info.fh)
    return data


def manifest_of(client: Client, name: str) -> dict[str, str]:
    return {e.path: e.digest for e in client.backend.manifest(client.path(name))[1]}


@pytest.mark.trio
async def test_a_commit_sees_its_snapshot_while_writes_go_on(
    client: Client, tmp_path: Path, nursery: trio.Nursery
) -> None:
    data = random.Random(1).randbytes(5 * CHUNK + 10)
    put(client, tmp_path / "base", "proj/ds", {"big.bin": data, "small.txt": b"small"})
    ops = make_ops(client, tmp_path / "staging", nursery)
    staging = (await walk(ops, "proj", "ds", "@staging")).st_ino
    big = (await walk(ops, "proj", "ds", "@staging", "big.bin")).st_ino
    # a write into the middle of a 6-chunk file from the base copies it, then changes it
    fh = (await ops.open(big, os.O_RDWR)).fh
    await ops.write(fh, CHUNK + 5, b"XYZ")
    expected = data[: CHUNK + 5] + b"XYZ" + data[CHUNK + 8 :]
    assert await ops.read(fh, 0, 1 << 20) == expected
    assert ops.stats.copied_files == 1
    # commit, and write again while the commit is hashing and sending
    node = ops.inodes.get(big)
    assert isinstance(node, StagedFile)
    committed = trio.Event()

    async def commit() -> None:
        report = await ops.commits.commit(node.area, CommitOptions(description="snap"))
        assert report.ok and report.version == 1, report
        committed.set()

    nursery.start_soon(commit)
    await trio.testing.wait_all_tasks_blocked()  # the commit took its snapshot: it sends

    assert node.local is not None and node.local.frozen
    await ops.write(fh, 0, b"after")  # copies the frozen file first
    await committed.wait()
    await ops.release(fh)
    v1 = client.read_bytes(client.backend.manifest(client.path("proj/ds:v1"))[1].get("big.bin"))
    assert v1 == expected  # what the snapshot held, not the later write
    assert await read_all(ops, big) == b"after" + expected[5:]
    assert node.area.changes().modified == ["big.bin"]  # still to commit
    report = await ops.commits.commit(node.area, CommitOptions())
    assert report.version == 2 and report.base == 1 and not report.moved_on
    assert not node.area.dir.exists()  # nothing left to commit: nothing kept on disk
    v0, v2 = manifest_of(client, "proj/ds:v0"), manifest_of(client, "proj/ds:v2")
    assert v2["small.txt"] == v0["small.txt"]
    assert (await ops.lookup(staging, b"big.bin")).st_ino == big


@pytest.mark.trio
async def test_unlinked_open_files_live_until_closed_and_forgotten(
    client: Client, tmp_path: Path
) -> None:
    put(client, tmp_path / "base", "proj/ds", {"a.txt": b"a"})
    ops = make_ops(client, tmp_path / "staging")
    staging = (await walk(ops, "proj", "ds", "@staging")).st_ino
    info, attr = await ops.create(staging, b"temp.bin", 0o600, os.O_RDWR, None)
    await ops.write(info.fh, 0, b"still here")
    area = ops.inodes.get(staging).area
    files = area.files_dir
    await ops.unlink(staging, b"temp.bin", None)
    assert await ops.read(info.fh, 0, 100) == b"still here"
    await ops.write(info.fh, 10, b", and written")
    assert len(os.listdir(files)) == 1
    await ops.release(info.fh)
    assert ops.inodes.get(attr.st_ino) is not None  # the kernel still knows it
    await ops.forget([(attr.st_ino, 1)])
    assert ops.inodes.get(attr.st_ino) is None and os.listdir(files) == []
    # a new file of the same name is a new inode: numbers are never reused
    again = await write_file(ops, staging, "temp.bin", b"new")
    assert again != attr.st_ino
    assert area.changes().added == ["temp.bin"]


@pytest.mark.trio
async def test_listings_skip_what_went_away_and_rename_follows_posix(
    client: Client, tmp_path: Path
) -> None:
    put(client, tmp_path / "base", "proj/ds", {f"f{i:03d}": b"x" for i in range(50)})
    ops = make_ops(client, tmp_path / "staging")
    staging = (await walk(ops, "proj", "ds", "@staging")).st_ino
    collector = Collector(random.Random(3))
    fh = await ops.opendir(staging)
    original = pyfuse3.readdir_reply
    pyfuse3.readdir_reply = collector.reply
    try:
        collector.room = 10
        await ops.readdir(fh, 0, None)
        for i in range(20, 30):
            await ops.unlink(staging, f"f{i:03d}".encode(), None)
        await ops.mkdir(staging, b"sub", 0o755, None)
        sub = (await walk(ops, "proj", "ds", "@staging", "sub")).st_ino
        await ops.rename(staging, b"f040", sub, b"moved", 0, None)
        start = collector.entries[-1][2]
        while True:
            collector.room = 7
            before = len(collector.entries)
            await ops.readdir(fh, start, None)
            if len(collector.entries) == before:
                break
            start = collector.entries[-1][2]
    finally:
        pyfuse3.readdir_reply = original
    await ops.releasedir(fh)
    names = [e[0].decode() for e in collector.entries]
    assert names == [f"f{i:03d}" for i in range(50) if not 20 <= i < 30 and i != 40]

    async def fails(code: int, *args: Any) -> None:
        with pytest.raises(pyfuse3.FUSEError) as caught:
            await ops.rename(*args, None)
        assert caught.value.errno == code

    moved = (await walk(ops, "proj", "ds", "@staging", "sub", "moved")).st_ino
    await fails(errno.EEXIST, staging, b"f000", staging, b"f001", pyfuse3.RENAME_NOREPLACE)
    await fails(errno.EISDIR, staging, b"f000", staging, b"sub", 0)
    await ops.mkdir(staging, b"other", 0o755, None)
    await fails(errno.ENOTEMPTY, staging, b"other", staging, b"sub", 0)
    await fails(errno.ENOTDIR, staging, b"other", staging, b"f000", 0)
    await ops.mkdir(sub, b"inner", 0o755, None)
    await fails(
        errno.EINVAL,
        staging,
        b"sub",
        (await walk(ops, "proj", "ds", "@staging", "sub", "inner")).st_ino,
        b"x",
        0,
    )
    await fails(errno.ENOENT, staging, b"f000", staging, b"nope", pyfuse3.RENAME_EXCHANGE)
    await ops.rename(staging, b"f000", sub, b"moved", pyfuse3.RENAME_EXCHANGE, None)
    assert (await walk(ops, "proj", "ds", "@staging", "f000")).st_ino == moved  # swapped
    await ops.rename(staging, b"f001", staging, b"f002", 0, None)  # over a file
    changes = ops.inodes.get(staging).area.changes()
    assert changes.deleted == sorted([f"f{i:03d}" for i in range(20, 30)] + ["f001", "f040"])
    assert changes.added == ["other", "sub/inner", "sub/moved"]  # empty directories count
    assert changes.modified == []  # f000/f002: same bytes


@pytest.mark.trio
async def test_a_crashed_area_reloads_from_disk(client: Client, tmp_path: Path) -> None:
    put(
        client,
        tmp_path / "base",
        "proj/ds",
        {"keep.txt": b"keep", "gone.txt": b"gone", "dir/in.txt": b"in"},
    )
    ops = make_ops(client, tmp_path / "staging")
    staging = (await walk(ops, "proj", "ds", "@staging")).st_ino
    new = await write_file(ops, staging, "new.txt", b"new bytes")
    await ops.unlink(staging, b"gone.txt", None)
    await ops.rename(staging, b"dir", staging, b"renamed", 0, None)
    await ops.setattr(
        new,
        SimpleNamespace(st_mode=stat.S_IFREG | 0o600, st_mtime_ns=10**18),
        fields(update_mode=True, update_mtime=True),
        None,
        None,
    )
    keep = (await walk(ops, "proj", "ds", "@staging", "keep.txt")).st_ino
    await ops.setattr(keep, SimpleNamespace(st_size=2), fields(update_size=True), None, None)
    area = ops.inodes.get(staging).area
    stray = area.files_dir / "999"
    stray.write_bytes(b"a copy cut short")
    # the daemon dies here: nothing closed, nothing committed; a new one loads the area
    reloaded = StagingArea(area.dir, AreaKey(*area.key.__dict__.values()), "")
    with pytest.raises(OSError) as locked:
        reloaded.load()
    assert locked.value.errno == errno.EBUSY  # the first daemon still holds it
    area.close()
    reloaded.load()
    assert reloaded.type == "dataset" and reloaded.base == 0
    files = {p: n for p, n in reloaded.walk() if not n.is_dir}
    assert sorted(files) == ["keep.txt", "new.txt", "renamed/in.txt"]
    assert files["new.txt"].mode == stat.S_IFREG | 0o600
    assert files["new.txt"].mtime_ns == 10**18 and files["new.txt"].size == 9
    assert files["keep.txt"].size == 2 and files["renamed/in.txt"].entry is not None
    assert not stray.exists()
    changes = reloaded.changes()
    assert changes.added == ["new.txt", "renamed/in.txt"] and changes.modified == ["keep.txt"]
    assert changes.deleted == ["dir/in.txt", "gone.txt"]
    reloaded.close()


@pytest.mark.trio
async def test_version_directories_stay_read_only(client: Client, tmp_path: Path) -> None:
    put(client, tmp_path / "base", "proj/ds", {"x.txt": b"x"})
    ops = make_ops(client, tmp_path / "staging")
    version = (await walk(ops, "proj", "ds", "v0")).st_ino
    file = (await walk(ops, "proj", "ds", "v0", "x.txt")).st_ino
    artifact = (await walk(ops, "proj", "ds")).st_ino
    staging = (await walk(ops, "proj", "ds", "@staging")).st_ino
    attempts = [
        (errno.EROFS, ops.create(version, b"new", 0o644, os.O_WRONLY, None)),
        (errno.EROFS, ops.mkdir(version, b"d", 0o755, None)),
        (errno.EROFS, ops.open(file, os.O_WRONLY, None)),
        (
            errno.EROFS,
            ops.setattr(file, SimpleNamespace(st_size=0), fields(update_size=True), None, None),
        ),
        (errno.EROFS, ops.unlink(version, b"x.txt", None)),
        (errno.EROFS, ops.rename(staging, b"x.txt", version, b"y", 0, None)),
        (errno.EXDEV, ops.rename(version, b"x.txt", staging, b"y", 0, None)),
        (errno.EROFS, ops.rmdir(artifact, b"@staging", None)),
        (errno.EROFS, ops.mkdir(pyfuse3.ROOT_INODE, b"newproj", 0o755, None)),
        (errno.EPERM, ops.symlink(staging, b"l", b"../x.txt", None)),  # leaves the version
        (errno.EPERM, ops.symlink(staging, b"l", b"/etc", None)),
        (errno.EXDEV, ops.link(file, staging, b"h", None)),  # from a version
        (errno.EPERM, ops.mknod(staging, b"fifo", stat.S_IFIFO | 0o644, 0, None)),
        (errno.EOPNOTSUPP, ops.setxattr(staging, b"user.x", b"1", None)),
    ]
    for code, attempt in attempts:
        with pytest.raises(pyfuse3.FUSEError) as caught:
            await attempt
        assert caught.value.errno == code
    assert await ops.access(staging, os.W_OK, None)
    with pytest.raises(pyfuse3.FUSEError):
        await ops.access(file, os.W_OK, None)


@pytest.mark.trio
async def test_links_modes_and_empty_directories_are_staged_kept_and_committed(
    client: Client, tmp_path: Path
) -> None:
    put(client, tmp_path / "base", "proj/ds", {"d/x.txt": b"x", "run.sh": b"#!/bin/sh\n"})
    ops = make_ops(client, tmp_path / "staging")
    staging = (await walk(ops, "proj", "ds", "@staging")).st_ino
    d = (await walk(ops, "proj", "ds", "@staging", "d")).st_ino
    run = (await walk(ops, "proj", "ds", "@staging", "run.sh")).st_ino
    link = await ops.symlink(d, b"up", b"../run.sh", None)
    assert await ops.readlink(link.st_ino, None) == b"../run.sh"
    # a move that would make the link lead out of the version is refused
    with pytest.raises(pyfuse3.FUSEError) as caught:
        await ops.rename(d, b"up", staging, b"up", 0, None)
    assert caught.value.errno == errno.EPERM
    await ops.mkdir(staging, b"empty", 0o755, None)
    area = ops.inodes.get(staging).area
    assert area.changes().added == ["d/up", "empty"]
    # chmod +x of a base file is a change (its bytes are not copied); a touch alone is not
    await ops.setattr(
        run, SimpleNamespace(st_mode=stat.S_IFREG | 0o755), fields(update_mode=True), None, None
    )
    x = (await walk(ops, "proj", "ds", "@staging", "d", "x.txt")).st_ino
    await ops.setattr(x, SimpleNamespace(st_mtime_ns=7), fields(update_mtime=True), None, None)
    assert area.changes().modified == ["run.sh"] and ops.stats.copied_files == 0
    # what the journal keeps comes back after a crash
    reloaded = StagingArea(area.dir, AreaKey(*area.key.__dict__.values()), "")
    area.close()
    reloaded.load()
    nodes = dict(reloaded.walk())
    assert nodes["d/up"].entry.link == "../run.sh" and nodes["d/x.txt"].mtime_ns == 7
    assert nodes["run.sh"].mode == stat.S_IFREG | 0o755 and not nodes["empty"].index
    reloaded.close()
    ops = make_ops(client, tmp_path / "staging")
    staging = (await walk(ops, "proj", "ds", "@staging")).st_ino
    report = await ops.commits.commit(ops.inodes.get(staging).area, CommitOptions())
    assert report.ok and report.changes == {"added": 2, "modified": 1, "deleted": 0}
    manifest = client.backend.manifest(client.path("proj/ds:v1"))[1]
    assert manifest.get("d/up").link == "../run.sh" and manifest.get("empty").kind == "dir"
    assert manifest.get("run.sh").mode == 0o755 and manifest.get("d/x.txt").mtime_ns == 7
