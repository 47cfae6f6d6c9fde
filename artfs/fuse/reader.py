"""Lazy reads: a read fetches only the chunks it touches, into the shared chunk cache.

A chunk file is checked against its digest when the daemon opens it
(``ChunkCache.open_chunk``: a corrupt one is fetched once more, then reads fail with EIO)
and then kept open, so a read that hits an open chunk is one ``os.pread`` in the handler,
with no thread hop. Opening, checking and fetching run on worker threads, one task per
chunk however many readers wait for it. Sequential readers get the next chunks opened ahead
of them, in a window that grows with the run they have read, so a reader of the first
megabyte of a big file costs one chunk, and a reader of all of it never waits for a fetch.

The lifetime of an open chunk file (a ``ChunkFile``) is what keeps a read from serving the
wrong bytes: once a descriptor is closed, the next ``open`` anywhere in the daemon may get
the same number for another file, so a reader holding a bare number across an ``await``
could read another chunk's bytes, unverified. Hence:

- the open files are an LRU of at most ``max_open``; evicting one only marks it, and its
  descriptor is closed once it is also unused;
- ``ChunkFiles.open`` returns a file with a reference taken (``with await files.open(..) as
  f:`` gives it back): while a reader holds one, ``f.fd`` stays open and is that chunk's,
  across any number of awaits (a copy on a worker thread, say);
- ``ChunkFiles.cached`` returns a file without a reference, valid until the caller's next
  await: the inline read path uses it for one ``pread`` and nothing else;
- a task that waited for another to open a chunk checks that the file is still open when
  it resumes (others ran meanwhile and may have evicted it), and opens it again if not.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterable

import pyfuse3
import trio

from ..client.backend import Backend
from ..client.cache import ChunkCache
from ..client.references import ReferenceReader
from ..core.chunking import chunk_offsets
from ..core.errors import ArtfsError, DigestMismatch
from ..core.manifest import ManifestEntry
from .errnos import fuse_error
from .flight import SingleFlight
from .nodes import Node
from .stats import MountStats

log = logging.getLogger(__name__)

MAX_OPEN_CHUNKS = 128
INLINE_CHECK_MAX = 256 << 10  # smaller cached chunks are checked inside the handler
FETCHERS = 4  # chunks opened or fetched at once
READAHEAD_MIN_RUN = 1 << 20  # a sequential run this long starts readahead
READAHEAD_MAX = 64 << 20  # never further ahead than this...
READAHEAD_MAX_CHUNKS = 8  # ...or this many chunks
SEQUENTIAL_SLACK = 4 << 20  # requests arriving a little out of order still count as sequential


class ChunkFile:
    """A verified chunk file the daemon holds open; ``fd`` is -1 once closed. ``refs``
    counts the readers holding it; ``evicted``, that it left the LRU."""

    __slots__ = ("digest", "evicted", "fd", "refs")

    def __init__(self, digest: str, fd: int):
        self.digest = digest
        self.fd = fd
        self.refs = 0
        self.evicted = False

    def __enter__(self) -> ChunkFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.refs -= 1
        self._close_if_done()

    def evict(self) -> None:
        self.evicted = True
        self._close_if_done()

    def _close_if_done(self) -> None:
        if self.evicted and not self.refs and self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class ChunkFiles:
    """Open, verified chunk files shared by every reader: an LRU of at most ``max_open``
    (plus the evicted ones readers still hold)."""

    def __init__(
        self,
        cache: ChunkCache,
        backend: Backend,
        stats: MountStats,
        max_open: int = MAX_OPEN_CHUNKS,
    ) -> None:
        self.cache = cache
        self.backend = backend
        self.stats = stats
        self.max_open = max(max_open, 1)
        self._files: OrderedDict[str, ChunkFile] = OrderedDict()
        self._flights: SingleFlight[ChunkFile] = SingleFlight()
        self._limiter = trio.CapacityLimiter(FETCHERS)
        self.nursery: trio.Nursery | None = None

    def cached(self, digest: str) -> ChunkFile | None:
        """The chunk's file if it is open: no reference, so valid until the next await."""
        found = self._files.get(digest)
        if found is not None:
            self._files.move_to_end(digest)
        return found

    async def open(self, digest: str, size: int) -> ChunkFile:
        """The chunk's file, opened (fetched, checked) if need be, with a reference for the
        caller: ``with await files.open(digest, size) as f:``."""
        while True:
            found = self.cached(digest)
            if found is None:
                found = await self._flights.run(digest, lambda: self._open(digest, size))
            if found.fd >= 0:  # (a waiter resumes after others ran: it may be closed now)
                found.refs += 1
                return found

    async def _open(self, digest: str, size: int) -> ChunkFile:
        failures = 0
        if size <= INLINE_CHECK_MAX:
            try:
                fd = self.cache.open_checked(digest)
            except DigestMismatch:
                fd, failures = None, 1
            except OSError as exc:
                raise self._failed(digest, exc) from None
            if fd is not None:
                return self._keep(digest, fd)

        def fetch() -> Iterable[bytes]:
            return self.backend.read_chunk(digest)

        try:
            fd = await trio.to_thread.run_sync(
                self.cache.open_chunk, digest, fetch, failures, limiter=self._limiter
            )
        except Exception as exc:
            raise self._failed(digest, exc) from None
        log.debug("chunk %s ready (%d bytes)", digest, size)
        return self._keep(digest, fd)

    def _failed(self, digest: str, exc: Exception) -> pyfuse3.FUSEError:
        self.stats.read_errors += 1
        if isinstance(exc, DigestMismatch):
            what = f"chunk {digest} failed verification twice; reads of it fail with EIO"
        else:
            what = f"cannot fetch chunk {digest}; reads of it fail with EIO"
        return fuse_error(exc, what, data=True)

    def _keep(self, digest: str, fd: int) -> ChunkFile:
        self.drop(digest)
        found = self._files[digest] = ChunkFile(digest, fd)
        while len(self._files) > self.max_open:
            self._files.popitem(last=False)[1].evict()
        return found

    def prefetch(self, digest: str, size: int) -> None:
        """Open (fetching if needed) a chunk in the background."""
        if self.nursery is None or digest in self._files or self._flights.running(digest):
            return
        self.stats.readahead_chunks += 1
        self.nursery.start_soon(self._prefetch, digest, size)

    async def _prefetch(self, digest: str, size: int) -> None:
        with contextlib.suppress(pyfuse3.FUSEError), await self.open(digest, size):
            pass  # (logged; a reader gets the error)

    def drop(self, digest: str) -> None:
        found = self._files.pop(digest, None)
        if found is not None:
            found.evict()

    def open_digests(self) -> list[str]:
        return list(self._files)

    def close(self) -> None:
        """Close every file (the mount is over: no reader is left)."""
        while self._files:
            found = self._files.popitem()[1]
            found.refs = 0
            found.evict()


class OpenFile:
    """One open() of a file with ``entry``'s bytes: its chunk layout and where its
    sequential run stands."""

    __slots__ = ("ahead", "entry", "fd", "node", "offsets", "pos", "run_start")

    def __init__(self, node: Node, entry: ManifestEntry, fd: int | None = None):
        self.node = node
        self.entry = entry
        self.fd = fd  # a reference entry's local copy (no chunks)
        self.offsets = chunk_offsets(self.entry.chunks)
        self.run_start = 0
        self.pos = 0
        self.ahead = 0  # the last chunk readahead was asked for


class Reader:
    def __init__(self, files: ChunkFiles, stats: MountStats, references: ReferenceReader):
        self.files = files
        self.stats = stats
        self.references = references

    async def read(self, f: OpenFile, off: int, size: int) -> bytes:
        entry = f.entry
        end = min(off + size, entry.size)
        if off >= end:
            return b""
        self.stats.read(size)
        if f.fd is not None:
            return os.pread(f.fd, end - off, off)
        chunks, offsets = entry.chunks, f.offsets
        index = bisect_right(offsets, off) - 1
        start, chunk = offsets[index], chunks[index]
        try:
            if end <= start + chunk.size:  # the usual case: inside one chunk
                found = self.files.cached(chunk.digest)
                if found is not None:  # no await until the pread: no reference needed
                    self.stats.inline_reads += 1
                    data = os.pread(found.fd, end - off, off - start)
                else:
                    self.stats.waiting_reads += 1
                    with await self.files.open(chunk.digest, chunk.size) as opened:
                        data = os.pread(opened.fd, end - off, off - start)
                if len(data) != end - off:
                    raise self._short(chunk.digest)
            else:
                data = await self._read_span(f, index, off, end)
        except OSError as exc:
            self.stats.read_errors += 1
            raise fuse_error(exc, f"reading {entry.path}", data=True) from None
        self._readahead(f, index, off, end)
        return data

    async def open_reference(self, entry: ManifestEntry) -> int:
        """An fd on a local copy of a reference entry's bytes, fetched through the reference
        on first use (refused, with ``EIO`` and a log line, if the target changed)."""

        def fetch() -> int:
            path = self.files.cache.reference(
                entry.digest, lambda out: self.references.fetch(entry, out)
            )
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC)

        try:
            return await trio.to_thread.run_sync(fetch)
        except (ArtfsError, OSError) as exc:
            self.stats.read_errors += 1
            raise fuse_error(
                exc, f"reading {entry.path} through its reference", data=True
            ) from None

    async def _read_span(self, f: OpenFile, index: int, off: int, end: int) -> bytes:
        parts = []
        chunks, offsets = f.entry.chunks, f.offsets
        while off < end:
            start, chunk = offsets[index], chunks[index]
            stop = min(end, start + chunk.size)
            with await self.files.open(chunk.digest, chunk.size) as opened:
                part = os.pread(opened.fd, stop - off, off - start)
            if len(part) != stop - off:
                raise self._short(chunk.digest)
            parts.append(part)
            off, index = stop, index + 1
        self.stats.waiting_reads += 1
        return b"".join(parts)

    def _short(self, digest: str) -> pyfuse3.FUSEError:
        """A verified chunk file came up short: it changed on disk since it was checked."""
        self.files.drop(digest)
        self.stats.read_errors += 1
        log.error("cached chunk %s changed under the daemon; the read fails with EIO", digest)
        return pyfuse3.FUSEError(errno.EIO)

    def _readahead(self, f: OpenFile, index: int, off: int, end: int) -> None:
        if f.run_start <= off <= f.pos + SEQUENTIAL_SLACK:
            f.pos = max(f.pos, end)
        else:
            f.run_start, f.pos, f.ahead = off, end, index
        run = f.pos - f.run_start
        if run < READAHEAD_MIN_RUN:
            return
        limit = f.pos + min(2 * run, READAHEAD_MAX)
        chunks, offsets = f.entry.chunks, f.offsets
        last = min(len(chunks), index + 1 + READAHEAD_MAX_CHUNKS)
        nxt = max(f.ahead, index) + 1
        while nxt < last and offsets[nxt] < limit:
            self.files.prefetch(chunks[nxt].digest, chunks[nxt].size)
            f.ahead = nxt
            nxt += 1
