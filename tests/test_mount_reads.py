"""Cold reads through the mount: the embedded store's chunk files read in place and checked
once per daemon, a corrupt one refused, and readers walking through many small files served
ahead of time (the next files prefetched, neighbours located in one store call)."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest

from .conftest import StoreEnv
from .mountutil import cached_chunks, digests_of, mounted, sh

pytestmark = pytest.mark.fuse


def _many(store_env: StoreEnv, count: int, name: str = "proj/many") -> dict[str, bytes]:
    rng = random.Random(count)
    files = {f"d/f{i:04d}.bin": rng.randbytes(rng.randint(1_000, 30_000)) for i in range(count)}
    for rel, data in files.items():
        path = store_env.tmp / "data" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    store_env.cli("put", store_env.tmp / "data", "-n", name)
    return files


def _drop_pages(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def test_in_place_chunks_are_checked_once_per_daemon(embedded: StoreEnv) -> None:
    """With one open chunk file at most, reading two files in turn reopens their chunks;
    each is hashed the first time only, and the cache stays empty."""
    files = _many(embedded, 2)
    with mounted(embedded, "--open-chunks", "1") as m:
        version = m / "proj/many/v0"
        for name in [*sorted(files), *sorted(files)]:
            _drop_pages(version / name)  # so each read reaches the daemon
            assert (version / name).read_bytes() == files[name]
        stats = m.stats()
    assert stats["in_place_chunks"] == 4 and stats["in_place_checks"] == 2
    assert cached_chunks(embedded) == [] and stats["chunks_fetched"] == 0


def test_a_corrupt_store_chunk_reads_as_eio(embedded: StoreEnv) -> None:
    files = _many(embedded, 3)
    digest = digests_of(embedded, "proj/many:v0")["d/f0001.bin"]["digest"]
    hex_ = digest.split(":")[1]
    path = embedded.chunk_dir / hex_[:2] / hex_[2:]
    os.chmod(path, 0o644)
    path.write_bytes(b"!" + path.read_bytes()[1:])
    with mounted(embedded) as m:
        version = m / "proj/many/v0"
        failed = sh("cat", version / "d/f0001.bin", check=False)
        assert failed.returncode != 0 and "Input/output error" in failed.stderr
        assert (version / "d/f0002.bin").read_bytes() == files["d/f0002.bin"]
        assert "does not hold these bytes" in m.log
        assert m.stats()["read_errors"] >= 1
    assert cached_chunks(embedded) == []  # nothing served, nothing copied


def test_a_walk_through_small_files_is_served_ahead(store_env: StoreEnv) -> None:
    """``cat`` of a directory's files in order: the next files' chunks are opened (in
    place, or fetched from a server) ahead of the reader, and located in few store calls."""
    files = _many(store_env, 120)
    with mounted(store_env) as m:
        version = m / "proj/many/v0"
        out = sh("sh", "-c", f"cat '{version}'/d/*.bin | sha256sum").stdout.split()[0]
        assert out == hashlib.sha256(b"".join(files[n] for n in sorted(files))).hexdigest()
        stats = m.stats()
    assert stats["read_errors"] == 0
    if store_env.kind == "embedded":
        assert stats["readahead_chunks"] >= 100  # nearly every file was prefetched
        assert stats["checked_ahead"] >= 60  # and checked before its reader came
        assert stats["in_place_chunks"] == 120 and cached_chunks(store_env) == []
        assert stats["locate_calls"] <= 20
    else:  # fetched ahead of the reader (which may catch up): each chunk once
        assert stats["readahead_chunks"] > 0 and stats["fetched_ahead"] >= 30
        assert stats["chunks_fetched"] == 120


def test_random_order_locates_neighbourhoods_not_files(embedded: StoreEnv) -> None:
    """A data loader's shuffled epoch: each file read at random, the store asked where the
    files around it are once per neighbourhood."""
    files = _many(embedded, 600)
    order = sorted(files)
    random.Random(3).shuffle(order)
    with mounted(embedded) as m:
        version = m / "proj/many/v0"
        for name in order:
            assert (version / name).read_bytes() == files[name]
        stats = m.stats()
    # each file's chunk opened about once (a random run now and then looks like a walk)
    assert 600 <= stats["in_place_chunks"] < 800
    assert stats["locate_calls"] <= 60  # not one per file
