"""Lazy reads: a read opens only the chunks it touches.

On the embedded store a chunk is read in place, from the store's own file (the store is its
own cache, docs/SEMANTICS.md "Reads": nothing is copied into the chunk cache). Elsewhere (a
server, an encrypted store) it is fetched into the shared chunk cache. Either way the file
is checked against its digest before its first byte is served: an in-place file once per
daemon (it is remembered by its device, inode, size, mtime and ctime, so reopening it costs no
hashing), a cached one each time the daemon opens it (``ChunkCache.open_chunk``: a corrupt
one is fetched once more, then reads fail with EIO). Then the file is kept open, so a read
that hits an open chunk is one ``os.pread`` in the handler, with no thread hop; so is
reopening an in-place file checked before, and checking a small cached one. Opening a new
in-place file (the disk may have to be read), hashing and fetching run on worker threads,
one task per chunk however many readers wait for it.

Readers get their next bytes opened ahead of them: within a file, the next chunks, in a
window that grows with the sequential run they have read (a reader of the first megabyte of
a big file costs one chunk, a reader of all of it never waits); across files, when a reader
walks a version's files in path order (``cat *``, ``tar``, a data loader without
shuffling), the first chunks of the next files, located in one store call and, when they
come from a server, fetched with their URLs asked for in one round trip
(``Backend.expect_reads``). A reader that jumps to a
file locates the files around it in one call too, so reading a version's files in random
order asks the store about each neighbourhood once, not each file.

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
import functools
import logging
import os
import weakref
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path

import pyfuse3
import trio
from cachetools import LRUCache

from ..client.backend import Backend
from ..client.cache import ChunkCache
from ..client.references import ReferenceReader
from ..core.chunking import ChunkRef, chunk_offsets, read_checked
from ..core.errors import ArtfsError, DigestMismatch
from ..core.manifest import ManifestEntry
from .errnos import fuse_error
from .flight import SingleFlight
from .nodes import FileNode, Node
from .stats import MountStats
from .tree import Tree

log = logging.getLogger(__name__)

MAX_OPEN_CHUNKS = 128
INLINE_CHECK_MAX = 256 << 10  # smaller cached chunks are checked inside the handler
FETCHERS = 4  # chunks opened or fetched at once
READAHEAD_MIN_RUN = 1 << 20  # a sequential run this long starts readahead
READAHEAD_MAX = 64 << 20  # never further ahead than this...
READAHEAD_MAX_CHUNKS = 8  # ...or this many chunks
SEQUENTIAL_SLACK = 4 << 20  # requests arriving a little out of order still count as sequential
KNOWN_MAX = 1 << 18  # chunks whose place (in place or not) and check the daemon remembers
LOCATE_AROUND = 256  # files located at once around a file a reader jumps to
WALK_SLACK = 8  # a file this few places after the last one a walk read continues it
WALK_STEPS = 2  # files read in order before the next ones are prefetched
WALKS_MAX = 8  # walks followed at once per version (e.g. the workers of a data loader)
EPOCH_FILES = 64  # files of a version read before random reads count as an epoch over it
PREFETCH_FILES = 16  # a walk has the first chunks of up to this many next files opened...
PREFETCH_BYTES = 32 << 20  # ...and up to this many bytes
PREFETCH_PENDING = 64  # chunks waiting to be prefetched, at most
Identity = tuple[int, int, int, int, int]  # a file's device, inode, size, mtime and ctime


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
        self._checks: SingleFlight[Identity | None] = SingleFlight()
        self._limiter = trio.CapacityLimiter(FETCHERS)  # for readers
        self._background = trio.CapacityLimiter(FETCHERS)  # for prefetching: readers go first
        self._pending = 0  # chunks being prefetched
        self.nursery: trio.Nursery | None = None
        # where each chunk is read in place (None: through the cache), as the store said
        self._paths: LRUCache[str, Path | None] = LRUCache(KNOWN_MAX)
        # in-place files this daemon checked: (device, inode, size, mtime) by digest
        self._checked: LRUCache[str, Identity] = LRUCache(KNOWN_MAX)

    def cached(self, digest: str) -> ChunkFile | None:
        """The chunk's file if it is open: no reference, so valid until the next await."""
        found = self._files.get(digest)
        if found is not None:
            self._files.move_to_end(digest)
        return found

    async def open(
        self, digest: str, size: int, limiter: trio.CapacityLimiter | None = None
    ) -> ChunkFile:
        """The chunk's file, opened (fetched, checked) if need be, with a reference for the
        caller: ``with await files.open(digest, size) as f:``."""
        threads = limiter or self._limiter
        while True:
            found = self.cached(digest)
            if found is None:
                found = await self._flights.run(digest, lambda: self._open(digest, size, threads))
            if found.fd >= 0:  # (a waiter resumes after others ran: it may be closed now)
                found.refs += 1
                return found

    def located(self, digest: str) -> bool:
        return digest in self._paths

    async def locate(self, digests: Sequence[str]) -> None:
        """Ask the store, in one call, which of these chunks are read in place."""
        wanted = [d for d in dict.fromkeys(digests) if d not in self._paths]
        if not wanted:
            return
        self.stats.locate_calls += 1
        try:
            found = await trio.to_thread.run_sync(self.backend.chunk_paths, wanted)
        except Exception as exc:  # (then through the cache, whose fetch reports the error)
            log.warning("cannot locate %d chunks in the store: %s", len(wanted), exc)
            return  # (read through the cache meanwhile; asked again next time)
        for digest in wanted:
            self._paths[digest] = found.get(digest)

    async def _open(self, digest: str, size: int, threads: trio.CapacityLimiter) -> ChunkFile:
        if not self.located(digest):
            if self.cache.path(digest).exists():  # fetched before: a hit needs no store call
                self._paths[digest] = None
            else:
                await self.locate([digest])
        path = self._paths.get(digest)
        if path is not None:
            fd = await self._open_in_place(digest, size, path, threads)
            if fd is not None:
                self.stats.in_place_chunks += 1
                return self._keep(digest, fd)
            self._paths[digest] = None  # gone from the store: fetching it says why
        return await self._open_cached(digest, size, threads)

    async def _open_in_place(
        self, digest: str, size: int, path: Path, threads: trio.CapacityLimiter
    ) -> int | None:
        """A verified fd on the store's own file of the chunk; None if the file is gone.

        The file is hashed once per daemon, on a worker thread (``check``), and remembered by
        its identity; opening it is then inline: no hashing, no thread hop."""
        for _ in range(2):  # (a file replaced since its check is checked again)
            identity = await self.check(digest, size, path, threads)
            if identity is None:
                return None
            fd = _reopen(path, identity)
            if fd is not None:
                return fd
            self._checked.pop(digest, None)
        return None

    async def check(
        self, digest: str, size: int, path: Path, threads: trio.CapacityLimiter
    ) -> Identity | None:
        """The identity (device, inode, size, mtime) of the store's file of the chunk once
        its bytes were checked, by this daemon, once; None if there is no such file."""
        known = self._checked.get(digest)
        if known is not None:
            return known
        return await self._checks.run(digest, lambda: self._check(digest, size, path, threads))

    async def _check(
        self, digest: str, size: int, path: Path, threads: trio.CapacityLimiter
    ) -> Identity | None:
        try:
            identity = await trio.to_thread.run_sync(
                _check_file, path, digest, size, limiter=threads
            )
        except Exception as exc:
            raise self._failed(digest, exc) from None
        if identity is not None:
            self._checked[digest] = identity
            self.stats.in_place_checks += 1
        return identity

    async def _open_cached(
        self, digest: str, size: int, threads: trio.CapacityLimiter
    ) -> ChunkFile:
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
                self.cache.open_chunk, digest, fetch, failures, limiter=threads
            )
        except Exception as exc:
            raise self._failed(digest, exc) from None
        log.debug("chunk %s ready (%d bytes)", digest, size)
        return self._keep(digest, fd)

    def _failed(self, digest: str, exc: Exception) -> pyfuse3.FUSEError:
        self.stats.read_errors += 1
        if isinstance(exc, DigestMismatch):
            what = f"chunk {digest} failed verification ({exc}): reads of it fail with EIO"
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
        with (
            contextlib.suppress(pyfuse3.FUSEError),
            await self.open(digest, size, self._background),
        ):
            pass  # (logged; a reader gets the error)

    def prefetch_files(self, chunks: Sequence[tuple[str, int]]) -> None:
        """Make the first chunks of the files readers go to next ready, in the background:
        located in one store call; read in place, checked (once, as a reader would); else
        fetched into the cache, their presigned URLs asked for in one round trip
        (``Backend.expect_reads``). Chunks open or checked
        already are skipped, and all of them while too many are pending."""
        todo = [(d, s) for d, s in chunks if d not in self._files and d not in self._checked]
        if self.nursery is None or not todo or self._pending >= PREFETCH_PENDING:
            return
        self.stats.readahead_chunks += len(todo)
        self._pending += len(todo)
        self.nursery.start_soon(self._prefetch_files, todo)

    async def _prefetch_files(self, chunks: Sequence[tuple[str, int]]) -> None:
        """Locate the chunks, then check the in-place ones and fetch the others, each group
        in one worker-thread call (a thread hop per chunk would cost the handlers' thread
        more than the check saves readers)."""
        try:
            await self.locate([d for d, _ in chunks])
            remote = [(d, s) for d, s in chunks if self._paths.get(d) is None]
            if remote:
                await trio.to_thread.run_sync(self._fetch_batch, remote, limiter=self._background)
            local: list[tuple[str, int, Path]] = []
            for digest, size in chunks:
                path = self._paths.get(digest)
                if path is not None and digest not in self._checked:
                    local.append((digest, size, path))
            if local:
                checked = await trio.to_thread.run_sync(
                    _check_files, local, limiter=self._background
                )
                self._checked.update(checked)
                self.stats.in_place_checks += len(checked)
                self.stats.checked_ahead += len(checked)
        finally:
            self._pending -= len(chunks)

    def _fetch_batch(self, chunks: list[tuple[str, int]]) -> None:
        """Fetch the chunks the cache lacks into it, each verified (and of its size) as it
        is written; one that fails is left for its reader, who gets the error."""
        wanted = [(d, s) for d, s in chunks if not self.cache.path(d).exists()]
        if not wanted:
            return
        self.backend.expect_reads([d for d, _ in wanted])
        for digest, size in wanted:
            try:
                self.cache.ensure(digest, functools.partial(self.backend.read_chunk, digest), size)
            except (ArtfsError, OSError) as exc:  # (its reader fetches it and reports this)
                log.warning("prefetching chunk %s: %s", digest, exc)
                return
            self.stats.fetched_ahead += 1

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


def _identity(fd: int) -> Identity:
    """What tells a file from its replacement or a rewrite (ctime: no one can set it)."""
    st = os.fstat(fd)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _reopen(path: Path, known: Identity) -> int | None:
    """An fd on ``path`` if it is still the file checked before, else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    if _identity(fd) == known:
        return fd
    os.close(fd)
    return None


def _check_file(path: Path, digest: str, size: int) -> Identity | None:
    """The identity of ``path`` once its bytes are checked to be the chunk; None if there is
    no such file; ``DigestMismatch`` if it holds other bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        before = _identity(fd)
        if read_checked(fd, digest, size) is None or _identity(fd) != before:
            raise DigestMismatch(f"the store's file {path} does not hold these bytes")
        return before
    finally:
        os.close(fd)


def _check_files(chunks: Sequence[tuple[str, int, Path]]) -> dict[str, Identity]:
    """``_check_file`` for each chunk, ahead of its readers: those that pass, by digest
    (one that fails is left for its reader, who gets the error)."""
    checked = {}
    for digest, size, path in chunks:
        try:
            identity = _check_file(path, digest, size)
        except (DigestMismatch, OSError) as exc:
            log.warning("prefetching: %s", exc)
            continue
        if identity is not None:
            checked[digest] = identity
    return checked


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


class Reading:
    """How a version's files are being read: the walks going on, and how many files were
    started (many, read out of order, is an epoch over the version)."""

    __slots__ = ("files", "walks")

    def __init__(self) -> None:
        self.files = 0
        self.walks: list[Walk] = []


class Walk:
    """A reader going through a version's files in path order: ``last`` is the position
    (in ``Tree.nodes``) of the file it read last, ``ahead`` the last one prefetched,
    ``steps`` how many files it went on in order (one could be chance: random readers)."""

    __slots__ = ("ahead", "last", "steps")

    def __init__(self, position: int):
        self.last = self.ahead = position
        self.steps = 0


class Reader:
    def __init__(self, files: ChunkFiles, stats: MountStats, references: ReferenceReader):
        self.files = files
        self.stats = stats
        self.references = references
        self._readings: weakref.WeakKeyDictionary[Tree, Reading] = weakref.WeakKeyDictionary()

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

    async def opened(self, f: OpenFile) -> None:
        """Follow the walks through a version's files as they are opened (the earliest sign
        of the next file): a file opened just after the last one of a walk continues it,
        and has the next files prefetched; a file opened out of order starts a walk, and has
        the files around it located in one store call. Once many files of the version were
        opened out of order (a training epoch), a jump also has the files after it
        prefetched: they too will be read soon."""
        tree, node = f.node.owner, f.node
        if tree is None or not isinstance(node, FileNode) or not f.entry.chunks:
            return
        nodes = tree.nodes
        position = node.inode - nodes[0].inode  # nodes are numbered in order
        if not 0 <= position < len(nodes) or nodes[position] is not node:
            return
        reading = self._readings.setdefault(tree, Reading())
        reading.files += 1
        walks = reading.walks
        walk = next((w for w in walks if w.last < position <= w.last + WALK_SLACK), None)
        if walk is None:
            walk = Walk(position)
            walks.append(walk)
            del walks[:-WALKS_MAX]
            if not self.files.located(f.entry.chunks[0].digest):
                around = nodes[
                    max(position - LOCATE_AROUND // 2, 0) : position + LOCATE_AROUND // 2
                ]
                await self.files.locate([c.digest for c, _ in _first_chunks(around)])
            if reading.files < EPOCH_FILES:
                return
        else:
            walk.last = position
            walk.steps += 1
            if walk.steps < WALK_STEPS:
                return  # perhaps by chance
        if walk.ahead - position >= PREFETCH_FILES // 2:
            return  # still far enough ahead
        start = max(walk.ahead, position) + 1
        walk.ahead = min(position + PREFETCH_FILES, len(nodes) - 1)
        wanted: list[tuple[str, int]] = []
        total = 0
        for chunk, at in _first_chunks(nodes[start : walk.ahead + 1]):
            if wanted and total + chunk.size > PREFETCH_BYTES:
                walk.ahead = start + at - 1
                break
            wanted.append((chunk.digest, chunk.size))
            total += chunk.size
        self.files.prefetch_files(wanted)

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


def _first_chunks(nodes: Sequence[Node]) -> Iterable[tuple[ChunkRef, int]]:
    """The first chunk of each file among ``nodes`` with bytes of its own, and its place."""
    for at, node in enumerate(nodes):
        if isinstance(node, FileNode) and node.entry.ref is None and node.entry.chunks:
            yield node.entry.chunks[0], at
