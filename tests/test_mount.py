"""The read-only mount, mounted for real by ``artfs mount`` in its own process and checked
with plain tools: layout, bytes, aliases as directories and their TTL, EROFS, lazy and
verified reads."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from artfs.core.digest import digest_bytes

from .conftest import StoreEnv
from .mountutil import cached_chunks, digests_of, mounted, sh, wait_until
from .util import tree_digests, write_tree

pytestmark = pytest.mark.fuse
SMALL_CHUNKS = str(64 << 10)


def _sample(root: Path, seed: int = 1) -> Path:
    rng = random.Random(seed)
    return write_tree(
        root,
        {
            "train/0001.png": rng.randbytes(3000),
            "train/0002.png": rng.randbytes(5000),
            "train/deep/er/still/x.bin": rng.randbytes(200_000),  # 4 chunks of 64 KiB
            "test/0001.png": rng.randbytes(100),
            "labels.csv": b"file,label\ntrain/0001.png,3\n",
            "empty.txt": b"",
            "name with spaces.txt": b"spaces\n",
            "ünïcödé.txt": b"unicode\n",
        },
    )


def version_of(directory: Path) -> str:
    """The version a version or alias directory shows, as ``getfattr`` reads it."""
    return sh("getfattr", "--only-values", "-n", "user.artfs.version", directory).stdout


def digest_of(store_env: StoreEnv, name: str) -> str:
    return json.loads(store_env.cli("show", name, "--json").stdout)["digest"]  # type: ignore[no-any-return]


def _snapshot(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def _versions(store_env: StoreEnv) -> dict[str, Path]:
    """proj/ds with v0, v1 (alias best) and v2 (latest), and a copy of each version's files."""
    store_env.env["ARTFS_CHUNK_SIZE"] = SMALL_CHUNKS
    src = _sample(store_env.tmp / "src")
    out = {}
    store_env.cli("put", src, "-n", "proj/ds")
    out["v0"] = _snapshot(src, store_env.tmp / "copy-v0")
    (src / "train" / "0002.png").write_bytes(b"changed")
    (src / "train" / "0003.png").write_bytes(os.urandom(70_000))
    store_env.cli("put", src, "-n", "proj/ds", "-a", "best")
    out["v1"] = _snapshot(src, store_env.tmp / "copy-v1")
    (src / "labels.csv").write_bytes(b"file,label\n")
    store_env.cli("put", src, "-n", "proj/ds")
    out["v2"] = _snapshot(src, store_env.tmp / "copy-v2")
    return out


@pytest.fixture
def versions(store_env: StoreEnv) -> dict[str, Path]:
    return _versions(store_env)


@pytest.fixture
def local_versions(embedded: StoreEnv) -> dict[str, Path]:
    """The same on the embedded store only, for what does not depend on the backend."""
    return _versions(embedded)


def test_versions_read_like_plain_files(store_env: StoreEnv, versions: dict[str, Path]) -> None:
    with mounted(store_env) as m:
        assert sh("ls", m.mnt).stdout.split() == ["proj"]
        assert sh("ls", m / "proj").stdout.split() == ["ds"]
        art = m / "proj/ds"
        assert sh("ls", art).stdout.split() == ["@staging", "best", "latest", "v0", "v1", "v2"]
        assert version_of(art / "latest") == "v2"
        assert version_of(art / "best") == "v1"
        for label, copy in versions.items():
            found = sh("find", art / label, "-type", "f", "-printf", "%P %s\n").stdout
            expected = {
                f"{p.relative_to(copy).as_posix()} {p.stat().st_size}"
                for p in copy.rglob("*")
                if p.is_file()
            }
            assert set(found.splitlines()) == expected
            sh("diff", "-r", art / label, copy)
        # cp -r, cat, stat, sha256sum, through an alias too
        sh("cp", "-r", art / "v1", store_env.tmp / "out-v1")
        sh("diff", "-r", store_env.tmp / "out-v1", versions["v1"])
        assert sh("cat", art / "latest/labels.csv").stdout == "file,label\n"
        assert sh("stat", "-c", "%s %A", art / "v0/train/deep/er/still/x.bin").stdout.split() == [
            "200000",
            "-rw-r--r--",  # the manifest's mode
        ]
        assert sh("stat", "-c", "%F", art / "latest").stdout.strip() == "directory"
        listed = sh("sh", "-c", "cd '%s' && find . -type f -exec sha256sum {} +" % (art / "v0"))
        sums = {line[66:].removeprefix("./"): line[:64] for line in listed.stdout.splitlines()}
        assert sums == tree_digests(versions["v0"])
        sh("diff", "-r", f"{art}/latest/", versions["v2"])


def test_xattrs_show_identity(embedded: StoreEnv, local_versions: dict[str, Path]) -> None:
    store_env = embedded
    entries = digests_of(store_env, "proj/ds:v1")
    with mounted(store_env) as m:
        shown = sh("getfattr", "-d", m / "proj/ds/v1/train/0003.png").stdout
        assert f'user.artfs.digest="{entries["train/0003.png"]["digest"]}"' in shown
        shown = sh("getfattr", "-d", m / "proj/ds/v1").stdout
        assert 'user.artfs.version="v1"' in shown
        assert "user.artfs.artifact=" in shown and '/proj/ds"' in shown
        shown = sh("getfattr", "-d", m / "proj/ds/latest").stdout
        assert 'user.artfs.version="v2"' in shown and 'user.artfs.alias="latest"' in shown
        assert f'user.artfs.digest="{digest_of(store_env, "proj/ds:v2")}"' in shown
        assert "user.artfs.stats=" in sh("getfattr", "-d", m.mnt).stdout


def test_new_versions_and_moved_aliases_appear_within_ttl(store_env: StoreEnv) -> None:
    src = _sample(store_env.tmp / "src")
    store_env.cli("put", src, "-n", "proj/ds")
    with mounted(store_env, "--metadata-ttl", "1") as m:
        art = m / "proj/ds"
        assert sh("ls", art).stdout.split() == ["@staging", "latest", "v0"]
        assert not (art / "v1").exists()  # now a cached negative entry
        (src / "labels.csv").write_bytes(b"new\n")
        store_env.cli("put", src, "-n", "proj/ds", "-a", "best")
        assert wait_until(lambda: version_of(art / "latest") == "v1", 4)
        assert sh("ls", art).stdout.split() == ["@staging", "best", "latest", "v0", "v1"]
        assert (art / "v1").is_dir()
        assert sh("cat", art / "latest/labels.csv").stdout == "new\n"
        store_env.cli("alias", "set", "proj/ds:v0", "best")
        assert wait_until(lambda: version_of(art / "best") == "v0", 4)
        store_env.cli("put", src, "-n", "proj/other")  # a new artifact shows up as well
        assert wait_until(lambda: "other" in sh("ls", m / "proj").stdout.split(), 4)


def test_aliases_are_directories_to_every_tool(
    embedded: StoreEnv, local_versions: dict[str, Path]
) -> None:
    store_env, copy = embedded, local_versions["v2"]
    out = store_env.tmp / "out"
    out.mkdir()
    with mounted(store_env) as m:
        art = m / "proj/ds"
        latest = art / "latest"
        found = sh("find", latest, "-name", "*.txt").stdout.splitlines()
        txt = sorted(str(latest / p.relative_to(copy)) for p in copy.rglob("*.txt"))
        assert sorted(found) == txt and len(txt) == 3
        for flags in ("-sB1", "-sh"):
            du = [sh("du", flags, art / d).stdout.split()[0] for d in ("latest", "v2")]
            assert du[0] == du[1] and du[0] not in ("0", "512")
        sh("rsync", "-a", latest, out / "named")  # the directory itself...
        sh("diff", "-r", out / "named/latest", copy)
        sh("rsync", "-a", f"{latest}/", out / "contents")  # ...or what it holds
        sh("diff", "-r", out / "contents", copy)
        lines = sh("ls", "-la", latest).stdout.splitlines()
        assert lines[1].startswith("drwxr-xr-x") and lines[1].endswith(" .")
        assert len(lines) == 3 + len(os.listdir(copy))  # total, ., .., and each entry
        assert any(line.endswith(" labels.csv") and line.startswith("-rw-r--r--") for line in lines)
        assert sh("ls", "-ld", latest).stdout.startswith("drwxr-xr-x")

        def inode(path: Path) -> str:
            return sh("stat", "-c", "%i", path).stdout.strip()

        for path in ("labels.csv", "train/deep/er/still/x.bin"):  # one inode, one page cache
            assert inode(latest / path) == inode(art / "v2" / path)
        assert inode(latest / "train") != inode(art / "v2/train")  # a directory has one parent
        assert inode(latest) != inode(art / "v2")


def test_a_process_inside_a_moved_alias_keeps_its_version(embedded: StoreEnv) -> None:
    """An alias moves (by the CLI, and by a new version for ``latest``) while a shell has its
    cwd inside, a file is open and a directory is open: they all keep the version they
    resolved, while a new lookup after the TTL sees the new one."""
    store_env = embedded
    src = _sample(store_env.tmp / "src")
    store_env.cli("put", src, "-n", "proj/ds", "-a", "best")
    with mounted(store_env, "--metadata-ttl", "1") as m:
        art = m / "proj/ds"
        shell = subprocess.Popen(
            ["sh"], cwd=art / "best", stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        held = os.open(art / "latest/labels.csv", os.O_RDONLY)
        train = os.open(art / "latest/train", os.O_RDONLY | os.O_DIRECTORY)
        try:
            (src / "labels.csv").write_bytes(b"moved\n")
            (src / "train/new.png").write_bytes(b"new")
            store_env.cli("put", src, "-n", "proj/ds")
            store_env.cli("alias", "set", "proj/ds:v1", "best")
            for alias in (art / "best", art / "latest"):
                assert wait_until(lambda a=alias: version_of(a) == "v1", 5), alias
                assert sh("cat", alias / "labels.csv").stdout == "moved\n"
                assert "new.png" in sh("ls", alias / "train").stdout.split()
            script = "cat labels.csv; ls train; getfattr --only-values -n user.artfs.version ."
            out, _ = shell.communicate(script + "\n", timeout=60)
            assert out == "file,label\ntrain/0001.png,3\n0001.png\n0002.png\ndeep\nv0"
            assert os.pread(held, 100, 0) == b"file,label\ntrain/0001.png,3\n"
            assert sorted(os.listdir(train)) == ["0001.png", "0002.png", "deep"]
        finally:
            shell.kill()
            shell.wait()
            os.close(held)
            os.close(train)


def test_every_change_fails_with_erofs(embedded: StoreEnv, local_versions: dict) -> None:
    store_env, versions = embedded, local_versions
    with mounted(store_env) as m:
        art = m / "proj/ds"
        v = art / "v1"
        attempts = [
            ["touch", v / "new-file"],
            ["sh", "-c", f"echo x > '{v}/labels.csv'"],
            ["sh", "-c", f"echo x >> '{v}/labels.csv'"],
            ["truncate", "-s", "0", v / "labels.csv"],
            ["touch", v / "labels.csv"],
            ["rm", v / "labels.csv"],
            ["rm", "-r", v / "train"],
            ["rmdir", v / "test"],
            ["mkdir", v / "newdir"],
            ["mkdir", v / "train/newdir"],
            ["mv", v / "labels.csv", v / "moved.csv"],
            ["mv", v / "train", v / "moved"],
            ["chmod", "777", v / "labels.csv"],
            ["ln", "-s", "x", v / "link"],
            ["ln", v / "labels.csv", v / "hard"],
            ["setfattr", "-n", "user.x", "-v", "1", v / "labels.csv"],
            ["cp", versions["v0"] / "labels.csv", v / "train/copied.csv"],
            ["mkdir", art / "v9"],
            ["rmdir", art / "latest"],
            ["rm", "-rf", art / "latest"],
            ["mv", art / "latest", art / "moved"],
            ["touch", art / "latest/new-file"],
            ["ln", "-sfn", "v0", art / "latest"],
            ["rmdir", art / "v0"],
            ["rmdir", art / "@staging"],
            ["mkdir", m / "newproj"],
            ["mv", m / "proj", m / "renamed"],
        ]
        for cmd in attempts:
            proc = sh(*cmd, check=False)
            assert proc.returncode != 0, cmd
            assert "Read-only file system" in proc.stderr, (cmd, proc.stderr)
        probe = "import os, sys; os.access(sys.argv[1], os.W_OK) and sys.exit(1)"
        sh("python3", "-c", probe, v / "labels.csv")
        sh("diff", "-r", v, versions["v1"])
        assert sh("ls", art).stdout.split() == ["@staging", "best", "latest", "v0", "v1", "v2"]
        assert sh("ls", m.mnt).stdout.split() == ["proj"]
        assert version_of(art / "latest") == "v2"


def _stamped(path: Path, size: int, chunk: int) -> None:
    """``size`` bytes in which every ``chunk``-sized piece differs (a stamped random block)."""
    block = bytearray(os.urandom(1 << 20))
    with open(path, "wb") as f:
        for offset in range(0, size, 1 << 20):
            block[:16] = offset.to_bytes(16, "little")
            f.write(block[: min(1 << 20, size - offset)])


@pytest.mark.slow
def test_lazy_reads_fetch_only_what_is_read(embedded: StoreEnv) -> None:
    """A 1 GiB file in 16 MiB chunks: listing opens nothing, its first MiB one chunk, read in
    place from the embedded store (the chunk cache stays empty)."""
    store_env = embedded
    data = store_env.tmp / "data"
    data.mkdir()
    _stamped(data / "big.bin", 1 << 30, 16 << 20)
    (data / "sub").mkdir()
    (data / "sub/small.txt").write_text("small\n")
    store_env.cli("put", data, "-n", "proj/big", timeout=300)
    with open(data / "big.bin", "rb") as f:
        first_mib = f.read(1 << 20)
        f.seek(700 << 20)
        middle = f.read(1 << 20)
    (data / "big.bin").unlink()
    with mounted(store_env) as m:
        version = m / "proj/big/v0"
        listing = sh("ls", "-lR", version).stdout
        assert "1073741824" in listing and "small.txt" in listing
        sh("find", version)
        sh("stat", version / "big.bin")
        assert m.stats()["in_place_chunks"] == 0
        head = sh("sh", "-c", f"head -c 1048576 '{version}/big.bin' | sha256sum").stdout
        assert head.split()[0] == hashlib.sha256(first_mib).hexdigest()
        assert 1 <= m.stats()["in_place_chunks"] <= 2
        before = m.stats()["in_place_chunks"]
        piece = sh(
            "sh", "-c", f"dd if='{version}/big.bin' bs=1M skip=700 count=1 status=none | sha256sum"
        ).stdout
        assert piece.split()[0] == hashlib.sha256(middle).hexdigest()
        assert m.stats()["in_place_chunks"] - before <= 2
        assert cached_chunks(store_env) == [] and m.stats()["chunks_fetched"] == 0


def test_concurrent_readers_fetch_each_chunk_once(store_env: StoreEnv) -> None:
    """16 threads read the same files at once, each starting at another 64 KiB of the first
    chunk, so the daemon gets many requests for one missing chunk at the same time."""
    store_env.env["ARTFS_CHUNK_SIZE"] = str(1 << 20)
    rng = random.Random(5)
    files = {f"f{i}.bin": rng.randbytes((4 << 20) - i * 1000) for i in range(3)}
    write_tree(store_env.tmp / "data", files)
    store_env.cli("put", store_env.tmp / "data", "-n", "proj/par")
    chunks = {c[0] for e in digests_of(store_env, "proj/par:v0").values() for c in e["chunks"]}
    assert len(chunks) == 12
    piece = 64 << 10
    start = threading.Barrier(16)
    with mounted(store_env) as m:
        version = m / "proj/par/v0"

        def reader(t: int) -> dict[str, bytes]:
            out = {}
            start.wait()
            for name in sorted(files):
                size = len(files[name])
                parts = {}
                with open(version / name, "rb", buffering=0) as f:
                    offsets = list(range(0, size, piece))
                    for off in offsets[t:] + offsets[:t]:
                        parts[off] = os.pread(f.fileno(), piece, off)
                out[name] = b"".join(parts[o] for o in sorted(parts))
            return out

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(reader, range(16)))
        assert all(r == files for r in results)
        stats = m.stats()
    if store_env.kind == "embedded":  # read in place: each chunk opened (and checked) once
        assert stats["in_place_chunks"] == len(chunks) and stats["chunks_fetched"] == 0
        assert cached_chunks(store_env) == []
    else:
        assert stats["chunks_fetched"] == len(chunks)
        assert len(cached_chunks(store_env)) == len(chunks)


def test_every_byte_is_right_while_open_chunks_are_evicted(embedded: StoreEnv) -> None:
    """Two open chunk files at most, 16 readers of 128 chunks at once: chunk files are evicted
    (closed) while readers still wait for them, and their descriptor numbers are reused for
    other chunks at once. Every byte read must still be the right one."""
    store_env = embedded
    store_env.env["ARTFS_CHUNK_SIZE"] = SMALL_CHUNKS
    chunk, piece, readers = 64 << 10, 4096, 16
    rng = random.Random(11)
    files = {f"f{i}.bin": rng.randbytes(16 * chunk) for i in range(8)}
    write_tree(store_env.tmp / "data", files)
    store_env.cli("put", store_env.tmp / "data", "-n", "proj/evict")
    start = threading.Barrier(readers)
    with mounted(store_env, "--open-chunks", "2") as m:
        version = m / "proj/evict/v0"

        def reader(t: int) -> list[tuple[str, int, bytes]]:
            """A page of every chunk of every file, each reader another page of the chunk,
            so the daemon gets 16 requests for each chunk at about the same time."""
            got = []
            order = sorted(files)
            random.Random(t).shuffle(order)
            start.wait()
            for name in order:
                fd = os.open(version / name, os.O_RDONLY)
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)  # no readahead
                    for offset in range(t * piece, len(files[name]), chunk):
                        got.append((name, offset, os.pread(fd, piece, offset)))
                finally:
                    os.close(fd)
            return got

        with ThreadPoolExecutor(readers) as pool:
            results = [r for part in pool.map(reader, range(readers)) for r in part]
        assert len(results) == readers * 16 * len(files)
        wrong = [(n, o) for n, o, data in results if data != files[n][o : o + piece]]
        assert wrong == []
        for name, data in files.items():  # and whole files, read again after eviction
            out = sh("sha256sum", version / name).stdout.split()[0]
            assert out == hashlib.sha256(data).hexdigest(), name
        stats = m.stats()
        assert stats["read_errors"] == 0 and stats["open_chunks"] <= 2
        assert stats["waiting_reads"] > 128  # readers did wait for chunks being opened


@pytest.mark.parametrize("store_env", ["server"], indirect=True)  # (embedded: no cache)
def test_corrupt_cached_chunks_are_refetched_or_fail_with_eio(store_env: StoreEnv) -> None:
    store_env.env["ARTFS_CHUNK_SIZE"] = SMALL_CHUNKS
    rng = random.Random(9)
    files = {"multi.bin": rng.randbytes(200_000), "single.bin": rng.randbytes(40_000)}
    write_tree(store_env.tmp / "data", files)
    store_env.cli("put", store_env.tmp / "data", "-n", "proj/c")
    entries = digests_of(store_env, "proj/c:v0")
    store_env.cli("warm", "proj/c:v0")
    assert len(cached_chunks(store_env)) == 5

    def flip(path: Path) -> None:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        os.chmod(path, 0o644)
        path.write_bytes(bytes(data))

    def chunk_file(root: Path, digest: str) -> Path:
        hex_ = digest.split(":")[1]
        return root / hex_[:2] / hex_[2:]

    first = entries["multi.bin"]["chunks"][1][0]
    flip(chunk_file(store_env.cache / "chunks", first))  # in the cache only: refetched
    single = entries["single.bin"]["digest"]
    flip(chunk_file(store_env.cache / "chunks", single))  # in the cache and in the store
    flip(chunk_file(store_env.chunk_dir, single))
    with mounted(store_env) as m:
        out = sh("sha256sum", m / "proj/c/v0/multi.bin").stdout.split()[0]
        assert out == hashlib.sha256(files["multi.bin"]).hexdigest()
        failed = sh("cat", m / "proj/c/v0/single.bin", check=False)
        assert failed.returncode != 0 and "Input/output error" in failed.stderr
        stats = m.stats()
        assert stats["chunks_fetched"] == 1  # the refetched chunk; the bad one never landed
        assert stats["chunks_corrupt"] == 2
        assert f"cached chunk {first} is corrupt" in m.log
        assert f"chunk {single} failed verification" in m.log
    assert digest_bytes(chunk_file(store_env.cache / "chunks", first).read_bytes()) == first


def test_ls_l_costs_no_xattr_request_per_file(embedded: StoreEnv) -> None:
    """``ls -l`` asks for the SELinux label and the ACL of every file; the kernel caches no
    extended attribute, so each would be a round trip to the daemon. ENOTSUP makes ``ls``
    stop asking; ``user.artfs.*`` stay."""
    store_env = embedded
    write_tree(store_env.tmp / "data", {f"d{i % 3}/f{i:03d}.txt": b"x" for i in range(300)})
    store_env.cli("put", store_env.tmp / "data", "-n", "proj/many")
    with mounted(store_env) as m:
        version = m / "proj/many/v0"
        sh("find", version)
        before = m.stats()["requests"].get("getxattr", 0)
        listing = sh("ls", "-lR", version).stdout
        assert listing.count(" f") == 300
        assert m.stats()["requests"].get("getxattr", 0) - before <= 4
        shown = sh("getfattr", "-d", version / "d0/f000.txt").stdout
        assert "user.artfs.digest=" in shown
        failed = sh("getfattr", "-n", "security.selinux", version / "d0/f000.txt", check=False)
        assert failed.returncode != 0 and "Operation not supported" in failed.stderr


def test_large_directory_lists_completely(embedded: StoreEnv) -> None:
    """100,000 entries in one directory: paged listing neither skips nor repeats."""
    store_env = embedded
    from artfs.core.digest import EMPTY_DIGEST
    from artfs.core.manifest import Manifest, ManifestEntry

    names = [f"f{i:06d}.txt" for i in range(100_000)]
    client = store_env.client()
    try:
        manifest = Manifest(ManifestEntry(f"many/{n}", 0, EMPTY_DIGEST) for n in names)
        client.backend.commit(client.path("proj/many"), "dataset", manifest)
    finally:
        client.close()
    with mounted(store_env) as m:
        listed = sh("ls", "-f", m / "proj/many/v0/many").stdout.split()
        assert sorted(n for n in listed if n not in (".", "..")) == names
        found = sh("find", m / "proj/many/v0", "-type", "f").stdout.splitlines()
        assert len(found) == len(set(found)) == 100_000
        assert m.stats()["chunks_fetched"] == 0
