"""Moving bytes: hashing local files, sending the chunks a store lacks, fetching chunks into
the cache and materializing files from it. All of it runs on a thread pool; hashing,
``mmap`` and file copies release the GIL."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from tqdm import tqdm

from ..core.chunking import FileContent, chunk_offsets, mapped
from ..core.errors import ArtfsError, DigestMismatch, Unavailable
from ..core.manifest import ManifestEntry, file_mode
from ..core.names import ArtifactPath
from ..core.paths import local_target, parent_fd
from .backend import Backend
from .cache import ChunkCache
from .hashcache import HashCache, stat_and_hash
from .references import ReferenceReader, is_checked

WORKERS = 8
_NO_COPY_RANGE = (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL)
MISSING_BATCH = 5000
BATCH_CHUNKS = 32
BATCH_BYTES = 16 << 20
RETRIES = 4
T = TypeVar("T")
R = TypeVar("R")


@dataclass
class TransferStats:
    files: int = 0
    bytes: int = 0
    hashed_files: int = 0
    hashed_bytes: int = 0
    chunks_sent: int = 0
    bytes_sent: int = 0
    chunks_fetched: int = 0
    bytes_fetched: int = 0
    chunks_corrupt: int = 0  # cached chunks that failed verification (fetched again)
    files_written: int = 0
    files_unchanged: int = 0
    unchecked: list[str] = field(default_factory=list)  # references whose bytes no one checked


def progress_bar(total: int, desc: str, enabled: bool | None) -> tqdm:
    """A byte progress bar on a terminal; silent in a pipe (``enabled=None``) or when off."""
    return tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        disable=None if enabled is None else not enabled,
        leave=False,
    )


def run_parallel(fn: Callable[[T], R], items: Iterable[T], workers: int = WORKERS) -> list[R]:
    """Apply ``fn`` to every item on a thread pool; the first error is raised."""
    items = list(items)
    if len(items) <= 1:
        return [fn(item) for item in items]
    pool = ThreadPoolExecutor(max_workers=min(workers, len(items)))
    try:
        return list(pool.map(fn, items))
    finally:  # after an error, items not started yet are dropped, not run in vain
        pool.shutdown(cancel_futures=True)


def with_retries(fn: Callable[[], R]) -> R:
    """Retry calls the store answers with ``Unavailable`` (busy, or gc in progress)."""
    for attempt in range(RETRIES):
        try:
            return fn()
        except Unavailable:
            if attempt == RETRIES - 1:
                raise
            time.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable")


def hash_sources(
    sources: Mapping[str, Path],
    hash_cache: HashCache,
    chunk_size: int,
    stats: TransferStats,
    progress: bool | None = None,
) -> dict[str, ManifestEntry]:
    """Manifest entries for local files; unchanged files (by the hash cache) are not read."""
    started = time.time_ns()
    paths = sorted(sources)
    stat_list = [os.stat(sources[p]) for p in paths]
    cached = hash_cache.lookup_many(stat_list, chunk_size)
    entries: dict[str, ManifestEntry] = {}
    todo = []
    for path, st, content in zip(paths, stat_list, cached):
        if content is None:
            todo.append(path)
        else:
            entries[path] = _file_entry(path, st, content)
    bar = progress_bar(
        sum(st.st_size for st, c in zip(stat_list, cached) if c is None), "hashing", progress
    )

    def hash_one(path: str) -> tuple[os.stat_result, FileContent]:
        st, content = stat_and_hash(sources[path], chunk_size)
        bar.update(content.size)
        return st, content

    with bar:
        hashed = run_parallel(hash_one, todo)
    hash_cache.store_many(hashed, chunk_size, started)
    for path, (st, content) in zip(todo, hashed):
        entries[path] = _file_entry(path, st, content)
    stats.files += len(entries)
    stats.bytes += sum(e.size for e in entries.values())
    stats.hashed_files += len(hashed)
    stats.hashed_bytes += sum(c.size for _, c in hashed)
    return entries


def _file_entry(path: str, st: os.stat_result, content: FileContent) -> ManifestEntry:
    return ManifestEntry.of_file(path, content, file_mode(st.st_mode), st.st_mtime_ns)


def send_missing(
    backend: Backend,
    target: ArtifactPath,
    entries: Iterable[ManifestEntry],
    sources: Mapping[str, Path],
    stats: TransferStats,
    progress: bool | None = None,
    only: Sequence[str] | None = None,
) -> None:
    """Upload the chunks of ``entries`` the store lacks (or just ``only``), from local files,
    for a version of ``target``'s project."""
    where: dict[str, tuple[Path, int, int]] = {}
    for entry in entries:
        if entry.path not in sources:
            continue
        for chunk, offset in zip(entry.chunks, chunk_offsets(entry.chunks)):
            where.setdefault(chunk.digest, (sources[entry.path], offset, chunk.size))
    if only is None:
        digests = sorted(where)
        missing = []
        for start in range(0, len(digests), MISSING_BATCH):
            missing += backend.missing_chunks(digests[start : start + MISSING_BATCH])
    else:
        missing = [d for d in only if d in where]
    bar = progress_bar(sum(where[d][2] for d in missing), "uploading", progress)

    def send(batch: list[str]) -> int:
        with contextlib.ExitStack() as stack:
            items = []
            for digest in batch:
                local, offset, size = where[digest]
                fd = os.open(local, os.O_RDONLY | os.O_CLOEXEC)
                stack.callback(os.close, fd)
                items.append((digest, stack.enter_context(mapped(fd, offset, size))))
            try:
                with_retries(lambda: backend.put_chunks(target.entity, target.project, items))
            except DigestMismatch:
                names = ", ".join(sorted({str(where[d][0]) for d in batch}))
                raise ArtfsError(f"{names} changed while being put; run the put again") from None
        sent = sum(where[d][2] for d in batch)
        bar.update(sent)
        return sent

    with bar:
        sent = run_parallel(send, _batches(missing, where))
    stats.chunks_sent += len(missing)
    stats.bytes_sent += sum(sent)


def _batches(digests: list[str], where: Mapping[str, tuple[Path, int, int]]) -> list[list[str]]:
    """Group uploads so each store round trip carries up to BATCH_CHUNKS or BATCH_BYTES."""
    batches: list[list[str]] = []
    size = 0
    for digest in digests:
        if not batches or len(batches[-1]) >= BATCH_CHUNKS or size >= BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(digest)
        size += where[digest][2]
    return batches


def fetch_chunks(
    backend: Backend,
    cache: ChunkCache,
    chunks: Mapping[str, int],
    stats: TransferStats,
    progress: bool | None = None,
) -> None:
    """Make sure every chunk is in the cache; a chunk that fails verification is fetched
    once more before the error is raised."""
    bar = progress_bar(sum(chunks.values()), "downloading", progress)

    def fetch(digest: str) -> None:
        read = functools.partial(backend.read_chunk, digest)
        try:
            cache.ensure(digest, read, chunks[digest])
        except DigestMismatch:
            cache.ensure(digest, read, chunks[digest])
        bar.update(chunks[digest])

    with bar, counted(cache, stats):
        run_parallel(fetch, sorted(chunks))


@contextlib.contextmanager
def counted(cache: ChunkCache, stats: TransferStats) -> Iterator[None]:
    """Add to ``stats`` what the cache fetched, and the cached chunks it found corrupt
    (and fetched again), while the block ran."""
    before = (cache.fetched_chunks, cache.fetched_bytes, cache.corrupt_chunks)
    try:
        yield
    finally:
        stats.chunks_fetched += cache.fetched_chunks - before[0]
        stats.bytes_fetched += cache.fetched_bytes - before[1]
        stats.chunks_corrupt += cache.corrupt_chunks - before[2]


def unchanged_at(dest: Path, entry: ManifestEntry, hash_cache: HashCache, chunk_size: int) -> bool:
    """Whether ``dest`` already holds the entry's bytes (hashing it only if the cache can't
    say), chunked as the entry is so that the digests compare."""
    try:
        if not dest.is_file():
            return False
        if len(entry.chunks) > 1:
            chunk_size = entry.chunks[0].size
        content = hash_cache.content(dest, chunk_size)
    except OSError:
        return False
    return content.digest == entry.digest


_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC


def write_file(
    cache: ChunkCache,
    backend: Backend,
    references: ReferenceReader,
    entry: ManifestEntry,
    root: Path,
) -> os.stat_result:
    """Assemble a file next to its place under ``root``, then rename it into place: from
    cached chunks, each checked against its digest as it is copied (a bad cached chunk is
    fetched again), or through its reference (checked against what was logged). Reached
    through directory descriptors, so paths of any length work."""
    with parent_fd(root, entry.path, create=True) as (parent, name):
        tmp = f".artfs-{os.getpid()}-{threading.get_ident()}.tmp"  # short: any name fits
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666, dir_fd=parent
        )
        try:
            with open(fd, "wb") as out:
                if entry.ref is not None:
                    references.fetch(entry, out)
                for chunk in entry.chunks:
                    fetch = functools.partial(backend.read_chunk, chunk.digest)
                    cache.read_verified(chunk.digest, chunk.size, fetch, out.write)
            os.replace(tmp, name, src_dir_fd=parent, dst_dir_fd=parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=parent)
        return os.stat(name, dir_fd=parent)


def copy_fd(src: int, dst: int, size: int) -> None:
    """Copy ``size`` bytes from ``src``'s position to ``dst``'s, in the kernel:
    ``copy_file_range`` where the filesystems allow it, else ``sendfile`` (across
    filesystems, e.g. a cache on another disk than the target)."""
    remaining = size
    copy: Callable[[int, int, int], int] = os.copy_file_range
    while remaining:
        try:
            n = copy(src, dst, remaining)
        except OSError as exc:
            if copy is _sendfile or exc.errno not in _NO_COPY_RANGE:
                raise
            copy = _sendfile
            continue
        if n == 0:
            raise ArtfsError("the file to copy is shorter than its size")
        remaining -= n


def _sendfile(src: int, dst: int, count: int) -> int:
    return os.sendfile(dst, src, None, count)


def materialize(
    backend: Backend,
    cache: ChunkCache,
    hash_cache: HashCache,
    references: ReferenceReader,
    entries: Sequence[ManifestEntry],
    root: Path,
    chunk_size: int,
    stats: TransferStats,
    progress: bool | None = None,
) -> None:
    """Write ``entries`` under ``root``: files already right are left alone, the rest come
    from the cache (fetched first where missing)."""
    root.mkdir(parents=True, exist_ok=True)
    stale = [
        e
        for e in entries
        if not unchanged_at(local_target(root, e.path), e, hash_cache, chunk_size)
    ]
    fetch_chunks(
        backend, cache, {c.digest: c.size for e in stale for c in e.chunks}, stats, progress
    )
    started = time.time_ns()
    with counted(cache, stats):
        written = run_parallel(
            lambda e: (write_file(cache, backend, references, e, root), e), stale
        )
    hash_cache.store_many(
        [(st, e.content) for st, e in written if e.ref is None],
        chunk_size,
        started,
    )
    stats.files += len(entries)
    stats.bytes += sum(e.size for e in entries)
    stats.files_written += len(stale)
    stats.unchecked += [e.path for e in entries if not is_checked(e)]
    stats.files_unchanged += len(entries) - len(stale)
