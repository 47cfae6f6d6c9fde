"""The content-addressed chunk cache shared by the mount, ``artfs get`` and the Python API.

Layout: ``chunks/<hex[:2]>/<hex[2:]>`` hold verified chunk bytes; ``tmp/`` holds downloads in
progress; ``locks/<hex[:3]>`` are lock files striping the digest space. A chunk is fetched
by one thread of one process at a time (an in-process lock, then ``flock`` on its stripe),
written to ``tmp/`` while hashed, and renamed into place only if its digest matches, so a
cache file always holds exactly the bytes its name promises. Recency for LRU eviction is
the file's mtime, refreshed on every use. Readers keep working on an evicted chunk because
Linux keeps an unlinked open file readable. ``open_chunk`` also re-checks a cached file's
bytes before handing it out, for readers (the mount) that must never serve a corrupt byte.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..core.chunking import mapped, read_checked
from ..core.digest import digest_bytes, hex_of
from ..core.errors import DigestMismatch, InvalidManifest
from ..store.blobs import make_fanout, remove_stale, unique_name, write_verified
from .retry import REFETCH

Fetch = Callable[[], Iterable[bytes]]
TMP_MAX_AGE_S = 3600
VERIFY_TRIES = REFETCH.tries  # a chunk failing verification is fetched once more
log = logging.getLogger(__name__)


@dataclass
class CacheInfo:
    chunks: int
    bytes: int
    path: Path


class ChunkCache:
    def __init__(self, root: Path):
        self.root = root
        self.chunk_dir = root / "chunks"
        self.tmp_dir = root / "tmp"
        self.lock_dir = root / "locks"
        self.ref_dir = root / "refs"
        for d in (self.tmp_dir, self.lock_dir, self.ref_dir):
            d.mkdir(parents=True, exist_ok=True)
        make_fanout(self.chunk_dir)
        self._mutex = threading.Lock()
        self._locks: dict[str, list] = {}
        self.fetched_chunks = 0
        self.fetched_bytes = 0
        self.corrupt_chunks = 0
        self.hit_chunks = 0  # lookups that found the chunk here: no fetch needed

    def path(self, digest: str) -> Path:
        hex_ = hex_of(digest)
        return self.chunk_dir / hex_[:2] / hex_[2:]

    def lookup(self, digest: str) -> Path | None:
        """The cached file for a chunk, marked as recently used, or None."""
        path = self.path(digest)
        try:
            os.utime(path)
        except FileNotFoundError:
            return None
        with self._mutex:
            self.hit_chunks += 1
        return path

    def ensure(self, digest: str, fetch: Fetch, size: int | None = None) -> Path:
        """The cached file for a chunk, fetching and verifying it first if needed (and its
        size, when the manifest gives it: a store sending more or fewer bytes is refused
        before they are kept, an endless answer as soon as it exceeds the size)."""
        path = self.lookup(digest)
        if path is not None:
            return path
        with self._locked(digest):
            path = self.lookup(digest)
            if path is not None:
                return path
            return self._download(digest, fetch, size)

    @contextmanager
    def verified(self, digest: str, size: int, fetch: Fetch) -> Iterator[tuple[int, bytes]]:
        """An fd on the cached chunk (fetched first if missing) and its ``size`` bytes,
        checked against ``digest``. A cached file of the wrong size or content is
        evicted, counted and fetched again; bytes failing twice raise ``DigestMismatch``."""
        for _ in range(VERIFY_TRIES):
            fd = self._open_cached(digest, fetch, size)
            try:
                data = read_checked(fd, digest, size)
                if data is not None:
                    yield fd, data
                    return
            finally:
                os.close(fd)
            self._corrupt(digest, "cached chunk of the wrong size or content")
        raise DigestMismatch(f"chunk {digest} failed verification twice")

    def _open_cached(self, digest: str, fetch: Fetch, size: int) -> int:
        """A read-only fd on the cached chunk, fetched first if it is missing or if another
        process evicts it between the fetch and the open."""
        while True:
            try:
                return os.open(self.ensure(digest, fetch, size), os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # evicted by a concurrent cleanup: fetch it again

    def reference(self, key: str, write: Callable[[IO[bytes]], None]) -> Path:
        """A local copy of a reference entry's bytes (``key``: the entry's digest), made by
        ``write`` (which checks what it fetches) on first use and kept with the chunks, LRU."""
        path = self.ref_dir / hex_of(key)
        with contextlib.suppress(FileNotFoundError):
            os.utime(path)
            return path
        with self._locked(key):
            if path.exists():
                return path
            tmp = self.tmp_dir / unique_name(key)
            try:
                with open(tmp, "wb") as f:
                    write(f)
                os.rename(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        return path

    def open_checked(self, digest: str) -> int | None:
        """A read-only fd on the cached chunk whose bytes were just checked against the digest;
        None if the chunk is not cached. A cached file that fails the check is evicted, counted
        and logged, and ``DigestMismatch`` is raised."""
        path = self.lookup(digest)
        if path is None:
            return None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            with mapped(fd, 0, os.fstat(fd).st_size) as view:
                actual = digest_bytes(view)
        except BaseException:
            os.close(fd)
            raise
        if actual == digest:
            return fd
        os.close(fd)
        self._corrupt(digest, f"its bytes hash to {actual}")
        raise DigestMismatch(f"cached chunk {digest} failed verification")

    def _corrupt(self, digest: str, why: str) -> None:
        """Drop a cached chunk that failed verification, and count it."""
        self.evict(digest)
        with self._mutex:
            self.corrupt_chunks += 1
        log.warning("cached chunk %s is corrupt (%s); evicted", digest, why)

    def open_chunk(self, digest: str, fetch: Fetch, failures: int = 0) -> int:
        """A read-only fd on the chunk's verified bytes, fetching it if it is missing or corrupt.

        Bytes that fail verification, cached or fetched, are fetched once more; the second
        failure (``failures`` counts earlier ones) raises ``DigestMismatch``.
        """
        while True:
            try:
                fd = self.open_checked(digest)
                if fd is not None:
                    return fd
                with self._locked(digest):
                    fd = self.open_checked(digest)  # another reader fetched it meanwhile
                    if fd is not None:
                        return fd
                    path = self._download(digest, fetch)  # verified while it was written
                    try:
                        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                    except FileNotFoundError:
                        continue  # evicted by a cleanup at once: fetch it again
            except DigestMismatch as exc:
                failures += 1
                if failures >= VERIFY_TRIES:
                    raise
                log.warning("%s; fetching it again", exc)

    def _download(self, digest: str, fetch: Fetch, size: int | None = None) -> Path:
        final = self.path(digest)
        blocks = fetch() if size is None else _sized(digest, size, fetch())
        size = write_verified(self.tmp_dir / unique_name(digest), final, digest, blocks)
        with self._mutex:
            self.fetched_chunks += 1
            self.fetched_bytes += size
        return final

    @contextmanager
    def _locked(self, digest: str) -> Iterator[None]:
        with self._mutex:
            entry = self._locks.setdefault(digest, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                fd = os.open(self.lock_dir / hex_of(digest)[:3], os.O_CREAT | os.O_RDWR, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    yield
                finally:
                    os.close(fd)
        finally:
            with self._mutex:
                entry[1] -= 1
                if not entry[1]:
                    del self._locks[digest]

    def evict(self, digest: str) -> None:
        """Drop one chunk (e.g. found corrupt); later reads fetch it again."""
        self.path(digest).unlink(missing_ok=True)

    def _entries(self) -> list[tuple[float, int, str]]:
        out = []
        for sub in [*self.chunk_dir.iterdir(), self.ref_dir]:
            if not sub.is_dir():
                continue
            for entry in os.scandir(sub):
                try:
                    st = entry.stat()
                except FileNotFoundError:
                    continue
                out.append((st.st_mtime, st.st_size, entry.path))
        return out

    def info(self) -> CacheInfo:
        entries = self._entries()
        return CacheInfo(len(entries), sum(size for _, size, _ in entries), self.root)

    def cleanup(self, target_bytes: int) -> tuple[int, int]:
        """Evict least-recently-used chunks until the cache holds at most ``target_bytes``.

        Returns (chunks removed, bytes removed). Stale partial downloads go too.
        """
        remove_stale(self.tmp_dir, time.time() - TMP_MAX_AGE_S)
        entries = sorted(self._entries())
        total = sum(size for _, size, _ in entries)
        removed = removed_bytes = 0
        for _, size, path in entries:
            if total <= target_bytes:
                break
            try:
                os.unlink(path)
            except FileNotFoundError:
                continue
            total -= size
            removed += 1
            removed_bytes += size
        return removed, removed_bytes


def _sized(digest: str, size: int, blocks: Iterable[bytes]) -> Iterator[bytes]:
    """The blocks of a chunk listed as ``size`` bytes; more or fewer is an error."""
    seen = 0
    for block in blocks:
        seen += len(block)
        if seen > size:
            raise InvalidManifest(f"the store sent more than the {size} bytes of chunk {digest}")
        yield block
    if seen != size:
        raise InvalidManifest(f"the store sent {seen} bytes of chunk {digest}, not {size}")
