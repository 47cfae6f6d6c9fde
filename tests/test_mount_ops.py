"""The mount's request handlers without mounting (pytest-trio, as s3ql tests them): inode
numbers and lookup counts, paged listings, negative entries, EROFS, reads and readahead,
over a real embedded store and chunk cache."""

from __future__ import annotations

import errno
import os
import random
import stat
from collections.abc import Iterator
from typing import Any

import pyfuse3
import pytest
import trio

from artfs.client.client import Client
from artfs.core.digest import EMPTY_DIGEST, digest_bytes
from artfs.core.manifest import Manifest, ManifestEntry
from artfs.fuse.namespace import Namespace
from artfs.fuse.nodes import IMMUTABLE_TIMEOUT
from artfs.fuse.ops import Operations
from artfs.fuse.reader import READAHEAD_MAX_CHUNKS, ChunkFiles, Reader
from artfs.fuse.stats import MountStats

from .conftest import StoreEnv
from .util import write_tree

ROOT = pyfuse3.ROOT_INODE
TTL = 5.0


@pytest.fixture
def client(embedded: StoreEnv) -> Iterator[Client]:
    embedded.env["ARTFS_CHUNK_SIZE"] = str(64 << 10)
    client = embedded.client()
    yield client
    client.close()


def make_ops(client: Client, nursery: trio.Nursery | None = None) -> Operations:
    stats = MountStats()
    files = ChunkFiles(client.cache, client.backend, stats)
    files.nursery = nursery
    return Operations(
        Namespace(client.backend, client.entity, TTL),
        Reader(files, stats, client.references),
        stats,
    )


def put(client: Client, root: Any, name: str, files: dict[str, bytes]) -> None:
    write_tree(root, files)
    sources = {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}
    client.put(client.path(name), "dataset", sources)


async def walk(ops: Operations, *names: str) -> Any:
    inode = ROOT
    attr = None
    for name in names:
        attr = await ops.lookup(inode, name.encode())
        inode = attr.st_ino
    return attr


class Collector:
    """Stands in for the kernel's reply buffer: takes ``room`` entries per readdir call."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.entries: list[tuple[bytes, int, int]] = []
        self.room = 0

    def reply(self, token: Any, name: bytes, attr: Any, next_id: int) -> bool:
        if self.room == 0:
            return False
        self.room -= 1
        self.entries.append((name, attr.st_ino, next_id))
        return True

    async def listing(self, ops: Operations, fh: int) -> list[tuple[bytes, int, int]]:
        start = 0
        while True:
            self.room = self.rng.randint(1, 300)
            before = len(self.entries)
            await ops.readdir(fh, start, None)
            if len(self.entries) == before:
                return self.entries
            start = self.entries[-1][2]


@pytest.mark.trio
async def test_inodes_stay_stable_through_forget_and_reload(client: Client, tmp_path) -> None:
    put(client, tmp_path / "a", "proj/ds", {"a/b/c.txt": b"c", "a/d.txt": b"d", "e.txt": b"e"})
    ops = make_ops(client)
    project = await walk(ops, "proj")
    assert (await walk(ops, "proj")).st_ino == project.st_ino
    assert ops.inodes.get(project.st_ino).nlookup == 2
    path = ["proj", "ds", "v0", "a", "b", "c.txt"]
    first = [(await walk(ops, *path[: i + 1])).st_ino for i in range(len(path))]
    assert len(set(first)) == len(first)
    assert ops.ns.trees_loaded == 1
    # the kernel forgets everything inside the version: the tree is dropped...
    for inode in first[3:]:
        node = ops.inodes.get(inode)
        await ops.forget([(inode, node.nlookup)])
    assert ops.ns.trees_loaded == 0 and ops.inodes.get(first[-1]) is None
    # ...and loaded again with the same numbers
    again = [(await walk(ops, *path[: i + 1])).st_ino for i in range(len(path))]
    assert again == first and ops.ns.trees_loaded == 1
    # an open file keeps its tree even when every lookup is forgotten
    fi = await ops.open(first[-1], os.O_RDONLY)
    for inode in again[3:]:
        await ops.forget([(inode, ops.inodes.get(inode).nlookup)])
    assert ops.ns.trees_loaded == 1
    assert await ops.read(fi.fh, 0, 10) == b"c"
    await ops.release(fi.fh)
    assert ops.ns.trees_loaded == 0


@pytest.mark.trio
async def test_a_missed_lookup_keeps_no_tree_loaded(client: Client, tmp_path) -> None:
    put(client, tmp_path / "a", "proj/ds", {"present.txt": b"here"})
    ops = make_ops(client)
    version = await walk(ops, "proj", "ds", "v0")
    for name in (b"absent-1.json", b"absent-2.json", b"absent-3.json"):
        assert (await ops.lookup(version.st_ino, name)).st_ino == 0  # a cached negative entry
    assert ops.ns.trees_loaded == 0
    assert (await ops.lookup(version.st_ino, b"present.txt")).st_ino != 0
    assert ops.ns.trees_loaded == 1


@pytest.mark.trio
async def test_paged_readdir_of_100000_entries(client: Client) -> None:
    names = sorted(f"f{i:06d}.bin" for i in range(100_000))
    manifest = Manifest(ManifestEntry(f"many/{n}", 0, EMPTY_DIGEST) for n in names)
    client.backend.commit(client.path("proj/many"), "dataset", manifest)
    ops = make_ops(client)
    many = await walk(ops, "proj", "many", "v0", "many")
    many_parent = (await walk(ops, "proj", "many", "v0")).st_ino
    collector = Collector(random.Random(1))
    fh = await ops.opendir(many.st_ino)
    original = pyfuse3.readdir_reply
    pyfuse3.readdir_reply = collector.reply
    try:
        entries = await collector.listing(ops, fh)
    finally:
        pyfuse3.readdir_reply = original
    await ops.releasedir(fh)
    dots, entries = entries[:2], entries[2:]
    assert [(name, inode) for name, inode, _ in dots] == [(b".", many.st_ino), (b"..", many_parent)]
    assert [e[0].decode() for e in entries] == names  # nothing skipped or repeated
    inodes = [e[1] for e in entries]
    assert len(set(inodes)) == 100_000
    assert all(ops.inodes.get(i).nlookup == 1 for i in inodes)  # one per entry replied
    await ops.forget([(i, 1) for i in inodes])
    await forget_all(ops)
    assert ops.ns.trees_loaded == 0


@pytest.mark.trio
async def test_listing_handles_are_snapshots_and_new_versions_appear(
    client: Client, tmp_path
) -> None:
    put(client, tmp_path / "v0", "proj/ds", {"x.txt": b"0"})
    ops = make_ops(client)
    art = await walk(ops, "proj", "ds")
    collector = Collector(random.Random(2))
    fh = await ops.opendir(art.st_ino)
    put(client, tmp_path / "v1", "proj/ds", {"x.txt": b"1"})
    ops.ns.refresh()
    original = pyfuse3.readdir_reply
    pyfuse3.readdir_reply = collector.reply
    try:
        old = [e[0] for e in await collector.listing(ops, fh)]
        collector.entries = []
        fh2 = await ops.opendir(art.st_ino)
        new = [e[0] for e in await collector.listing(ops, fh2)]
    finally:
        pyfuse3.readdir_reply = original
    assert old == [b".", b"..", b"v0", b"latest"]
    assert new == [b".", b"..", b"v0", b"v1", b"latest"]
    latest = (await walk(ops, "proj", "ds", "latest")).st_ino
    assert await ops.getxattr(latest, b"user.artfs.version") == b"v1"


async def read_all(ops: Operations, *names: str) -> bytes:
    fi = await ops.open((await walk(ops, *names)).st_ino, os.O_RDONLY)
    try:
        return await ops.read(fi.fh, 0, 1 << 20)
    finally:
        await ops.release(fi.fh)


async def forget_all(ops: Operations) -> None:
    await ops.forget([(n.inode, n.nlookup) for n in list(ops.inodes) if n.nlookup])


@pytest.mark.trio
async def test_aliases_are_directories_of_the_version_they_named(client: Client, tmp_path) -> None:
    put(client, tmp_path / "v0", "proj/ds", {"a/b/x.txt": b"x0", "top.txt": b"t0"})
    ops = make_ops(client)
    old = await walk(ops, "proj", "ds", "latest")
    assert stat.S_ISDIR(old.st_mode) and old.attr_timeout == IMMUTABLE_TIMEOUT
    assert old.entry_timeout == TTL  # the name may move; what it shows may not
    assert await ops.getxattr(old.st_ino, b"user.artfs.version") == b"v0"
    assert await ops.getxattr(old.st_ino, b"user.artfs.alias") == b"latest"
    # a file is one inode (one page cache) under the alias and the version; a directory is
    # the alias's own (the kernel allows a directory one parent)
    via_alias = await walk(ops, "proj", "ds", "latest", "a", "b", "x.txt")
    assert via_alias.st_ino == (await walk(ops, "proj", "ds", "v0", "a", "b", "x.txt")).st_ino
    dirs = [await walk(ops, "proj", "ds", top, "a") for top in ("latest", "v0")]
    assert dirs[0].st_ino != dirs[1].st_ino
    assert (await ops.lookup(old.st_ino, b"missing")).entry_timeout == IMMUTABLE_TIMEOUT
    assert ops.ns.trees_loaded == 2  # v0's, and latest's showing it

    put(client, tmp_path / "v1", "proj/ds", {"a/b/x.txt": b"x1", "top.txt": b"t1"})
    ops.ns.refresh()  # (the TTL ran out)
    new = await walk(ops, "proj", "ds", "latest")
    assert new.st_ino != old.st_ino
    assert await ops.getxattr(new.st_ino, b"user.artfs.version") == b"v1"
    assert await read_all(ops, "proj", "ds", "latest", "top.txt") == b"t1"
    # whoever is inside the old one (a cwd, an open directory) still sees v0
    assert await ops.getxattr(old.st_ino, b"user.artfs.version") == b"v0"
    fh = await ops.opendir(old.st_ino)
    await forget_all(ops)
    assert ops.ns.trees_loaded == 2  # the open directory holds the old alias's tree and v0's
    top = await ops.lookup(old.st_ino, b"top.txt")
    fi = await ops.open(top.st_ino, os.O_RDONLY)
    assert await ops.read(fi.fh, 0, 100) == b"t0"
    await ops.release(fi.fh)
    await ops.releasedir(fh)
    await forget_all(ops)
    assert ops.ns.trees_loaded == 0
    # loaded again, the old alias's tree gets the same inodes
    again = await ops.lookup(old.st_ino, b"a")
    assert again.st_ino == dirs[0].st_ino


@pytest.mark.trio
async def test_negative_entries_are_cached_long_only_inside_versions(
    client: Client, tmp_path
) -> None:
    put(client, tmp_path / "d", "proj/ds", {"x.txt": b"x"})
    ops = make_ops(client)
    version = await walk(ops, "proj", "ds", "v0")
    missing = await ops.lookup(version.st_ino, b"nope")
    assert missing.st_ino == 0 and missing.entry_timeout == IMMUTABLE_TIMEOUT
    art = await walk(ops, "proj", "ds")
    missing = await ops.lookup(art.st_ino, b"v7")
    assert missing.st_ino == 0 and missing.entry_timeout == TTL
    assert version.attr_timeout == IMMUTABLE_TIMEOUT and version.entry_timeout == TTL
    file = await walk(ops, "proj", "ds", "v0", "x.txt")
    assert file.entry_timeout == file.attr_timeout == IMMUTABLE_TIMEOUT
    assert art.entry_timeout == art.attr_timeout == TTL


@pytest.mark.trio
async def test_every_mutating_handler_refuses_with_erofs(client: Client, tmp_path) -> None:
    put(client, tmp_path / "d", "proj/ds", {"x.txt": b"x"})
    ops = make_ops(client)
    version = (await walk(ops, "proj", "ds", "v0")).st_ino
    file = (await walk(ops, "proj", "ds", "v0", "x.txt")).st_ino
    attempts = [
        ops.setattr(file, None, None, None, None),
        ops.mknod(version, b"n", 0o644, 0, None),
        ops.mkdir(version, b"d", 0o755, None),
        ops.mkdir(ROOT, b"newproj", 0o755, None),
        ops.unlink(version, b"x.txt", None),
        ops.rmdir(version, b"x", None),
        ops.symlink(version, b"l", b"x.txt", None),
        ops.rename(version, b"x.txt", version, b"y.txt", 0, None),
        ops.link(file, version, b"h", None),
        ops.create(version, b"new", 0o644, os.O_WRONLY, None),
        ops.write(1, 0, b"x"),
        ops.setxattr(file, b"user.x", b"1", None),
        ops.removexattr(file, b"user.artfs.digest", None),
        ops.open(file, os.O_WRONLY, None),
        ops.open(file, os.O_RDWR, None),
        ops.open(file, os.O_RDONLY | os.O_TRUNC, None),
        ops.access(file, os.W_OK, None),
    ]
    for attempt in attempts:
        with pytest.raises(pyfuse3.FUSEError) as caught:
            await attempt
        assert caught.value.errno == errno.EROFS
    assert await ops.access(file, os.R_OK, None)


@pytest.mark.trio
async def test_xattrs_name_the_version_and_the_content(client: Client, tmp_path) -> None:
    put(client, tmp_path / "d", "proj/ds", {"x.txt": b"x"})
    ops = make_ops(client)
    version = (await walk(ops, "proj", "ds", "v0")).st_ino
    file = (await walk(ops, "proj", "ds", "v0", "x.txt")).st_ino
    info, manifest = client.backend.manifest(client.path("proj/ds:v0"))
    assert await ops.getxattr(file, b"user.artfs.digest") == manifest.get("x.txt").digest.encode()
    assert await ops.getxattr(version, b"user.artfs.version") == b"v0"
    assert await ops.getxattr(version, b"user.artfs.artifact") == info.path.collection.encode()
    assert b"user.artfs.stats" in await ops.listxattr(ROOT)
    with pytest.raises(pyfuse3.FUSEError) as caught:
        await ops.getxattr(file, b"user.other")
    assert caught.value.errno == pyfuse3.ENOATTR
    for name in (b"security.selinux", b"system.posix_acl_access", b"trusted.x"):
        with pytest.raises(pyfuse3.FUSEError) as caught:  # ls -l then stops asking
            await ops.getxattr(file, name)
        assert caught.value.errno == errno.ENOTSUP


@pytest.mark.trio
async def test_sequential_reads_get_readahead_and_each_chunk_is_checked_once(
    client: Client, tmp_path, nursery: trio.Nursery
) -> None:
    data = random.Random(4).randbytes(4 << 20)  # 64 chunks of 64 KiB
    put(client, tmp_path / "d", "proj/big", {"big.bin": data, "small.txt": b"s"})
    ops = make_ops(client, nursery)
    inode = (await walk(ops, "proj", "big", "v0", "big.bin")).st_ino
    fi = await ops.open(inode, os.O_RDONLY)
    got = bytearray()
    for off in range(0, 768 << 10, 128 << 10):  # below the readahead threshold
        got += await ops.read(fi.fh, off, 128 << 10)
    await trio.sleep(0.2)
    assert ops.stats.readahead_chunks == 0 and ops.stats.in_place_checks == 12
    for off in range(768 << 10, 2 << 20, 128 << 10):
        got += await ops.read(fi.fh, off, 128 << 10)
    assert ops.stats.readahead_chunks > 0
    await trio.sleep(0.5)  # let readahead land: it went no further than allowed
    chunks = client.backend.manifest(client.path("proj/big:v0"))[1].get("big.bin").chunks
    opened = set(ops.reader.files.open_digests())
    furthest = max(i for i, c in enumerate(chunks) if c.digest in opened)
    assert 32 < furthest <= 31 + READAHEAD_MAX_CHUNKS
    inline = ops.stats.inline_reads
    for off in range(2 << 20, 4 << 20, 64 << 10):  # chunk-sized reads: served inline
        got += await ops.read(fi.fh, off, 64 << 10)
    assert bytes(got) == data
    assert ops.stats.inline_reads > inline
    assert await ops.read(fi.fh, 4 << 20, 4096) == b""  # at EOF
    await ops.release(fi.fh)
    assert ops.stats.in_place_checks == 64  # readahead and reads never checked one twice
    assert client.cache.fetched_chunks == 0  # the embedded store is read in place
    ops.reader.files.close()


@pytest.mark.trio
async def test_a_held_chunk_file_outlives_its_eviction(client: Client, tmp_path) -> None:
    """One open chunk file at most, 48 readers of 8 chunks, each holding its chunk across
    awaits while the others open (and so evict) theirs: each reads its own chunk's bytes,
    and once all are done no descriptor is left open but the one the LRU keeps."""
    data = random.Random(6).randbytes(8 * (64 << 10))
    put(client, tmp_path / "d", "proj/ev", {"ev.bin": data})
    chunks = client.backend.manifest(client.path("proj/ev:v0"))[1].get("ev.bin").chunks
    files = ChunkFiles(client.cache, client.backend, MountStats(), max_open=1)
    wrong, seen, evicted = [], set(), []

    async def reader(n: int) -> None:
        chunk = chunks[n % len(chunks)]
        with await files.open(chunk.digest, chunk.size) as held:
            seen.add(held)
            await trio.sleep(0.01 * (n % 3))  # others run, evicting this one from the LRU
            if digest_bytes(os.pread(held.fd, chunk.size, 0)) != chunk.digest:
                wrong.append(n)
            if held.evicted:
                evicted.append(n)

    async with trio.open_nursery() as readers:
        for n in range(48):
            readers.start_soon(reader, n)
    assert wrong == []
    assert len(evicted) > len(chunks)  # read while evicted from the LRU (and still open)
    assert [f.digest for f in seen if f.fd >= 0] == files.open_digests()  # no fd left over
    files.close()
    assert all(f.fd == -1 for f in seen)
