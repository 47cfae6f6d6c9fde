"""Moving bytes: hashing local files, sending the chunks a store lacks, fetching chunks into
the cache and materializing files from it. All of it runs on a thread pool; hashing,
``mmap`` and file copies release the GIL."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from ..core.chunking import FileContent, chunk_offsets, mapped
from ..core.errors import ArtfsError, DigestMismatch
from ..core.manifest import DIR, EXEC_MODE, FILE, LINK, ManifestEntry, file_mode
from ..core.names import ArtifactPath
from ..core.paths import local_target
from .backend import Backend
from .cache import ChunkCache
from .filebytes import ChunkSource
from .hashcache import HashCache, stat_and_hash
from .references import ReferenceReader, is_checked
from .retry import REFETCH
from .rootdir import RealParents, RootDir

if TYPE_CHECKING:  # tqdm loads when a transfer starts
    from tqdm import tqdm

WORKERS = 8
_NO_COPY_RANGE = (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL)
MISSING_BATCH = 5000
BATCH_CHUNKS = 32
BATCH_BYTES = 16 << 20
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
    notes: list[str] = field(default_factory=list)  # e.g. a link mode that fell back to copies


def progress_bar(total: int, desc: str, enabled: bool | None) -> tqdm:
    """A byte progress bar on a terminal; silent in a pipe (``enabled=None``) or when off."""
    from tqdm import tqdm

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
    for a version of ``target``'s project (the backend retries what may be retried)."""
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
                backend.put_chunks(target.entity, target.project, items)
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
    once more (``REFETCH``) before the error is raised."""
    bar = progress_bar(sum(chunks.values()), "downloading", progress)
    backend.expect_reads([d for d in sorted(chunks) if not cache.path(d).exists()])

    def fetch(digest: str) -> None:
        read = functools.partial(backend.read_chunk, digest)
        REFETCH.call(lambda: cache.ensure(digest, read, chunks[digest]))
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


def unchanged_at(
    dest: Path,
    entry: ManifestEntry,
    hash_cache: HashCache,
    chunk_size: int,
    st: os.stat_result | None = None,
) -> bool:
    """Whether ``dest`` (whose ``lstat`` is ``st``, if the caller has it) already is the
    entry, never following a link there: a directory; a link to the same target; a regular
    file with the same executable bit and bytes (hashed only if the cache can't say, chunked
    as the entry is so that the digests compare)."""
    try:
        st = os.lstat(dest) if st is None else st
        if entry.kind != FILE:
            if entry.kind == DIR:
                return stat.S_ISDIR(st.st_mode)
            return stat.S_ISLNK(st.st_mode) and os.readlink(dest) == entry.link
        if not stat.S_ISREG(st.st_mode) or file_mode(st.st_mode) != entry.mode:
            return False
        if len(entry.chunks) > 1:
            chunk_size = entry.chunks[0].size
        content = hash_cache.content(dest, chunk_size)
    except OSError:
        return False
    return content.digest == entry.digest


def write_file(
    source: ChunkSource,
    references: ReferenceReader,
    entry: ManifestEntry,
    root: RootDir,
) -> os.stat_result:
    """Assemble a file beside its place under ``root``, then rename it into place: from
    verified chunks (``ChunkSource``: copied, cloned or hard-linked) or through its reference
    (checked against what was logged). A copy's mode is 0666 or 0777 less the umask, as git
    does, and its mtime the entry's; a hard link keeps the stored copy's (``filebytes``)."""
    with root.replacing(entry.path) as (folder, tmp):
        if entry.ref is None and source.link(entry, folder, tmp):
            return os.stat(tmp, dir_fd=folder, follow_symlinks=False)
        mode = 0o777 if entry.mode == EXEC_MODE else 0o666
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with open(os.open(tmp, flags, mode, dir_fd=folder), "wb") as out:
            if entry.ref is not None:
                references.fetch(entry, out)
            else:
                source.write(entry, out.fileno())
            out.flush()
            if entry.mtime_ns is not None:
                os.utime(out.fileno(), ns=(time.time_ns(), entry.mtime_ns))
            return os.fstat(out.fileno())


def write_link(entry: ManifestEntry, root: RootDir) -> None:
    """Make the link under ``root`` (replacing what has its name), with its mtime."""
    assert entry.link is not None
    with root.replacing(entry.path) as (folder, tmp):
        os.symlink(entry.link, tmp, dir_fd=folder)
        if entry.mtime_ns is not None:
            os.utime(tmp, ns=(time.time_ns(), entry.mtime_ns), dir_fd=folder, follow_symlinks=False)


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
    link: str = "copy",
) -> None:
    """Write ``entries`` under ``root`` (never through a symlink: ``rootdir``): entries
    already right are left alone, files come from the store's own files (embedded) or the
    cache (fetched first where missing), as copies or links (``link``: ``filebytes``), then
    every mtime the manifest records is set, directories' last."""
    real_parents = RealParents(root)
    untimed: list[ManifestEntry] = []  # right, but for their mtime

    def right(entry: ManifestEntry) -> bool:
        dest = local_target(root, entry.path)
        try:
            st = os.lstat(dest)
        except OSError:
            return False
        if not real_parents(entry.path) or not unchanged_at(
            dest, entry, hash_cache, chunk_size, st
        ):
            return False
        # a hard link of --link hardlink is the stored copy: it keeps that inode's mtime
        shared = link == "hardlink" and entry.kind == FILE and st.st_nlink > 1
        if entry.mtime_ns is not None and entry.mtime_ns != st.st_mtime_ns and not shared:
            untimed.append(entry)
        return True

    stale = [e for e in entries if not right(e)]
    files = [e for e in stale if e.kind == FILE]
    source = ChunkSource(backend, cache, link)
    remote = set(source.locate(c.digest for e in files for c in e.chunks))
    chunks = {c.digest: c.size for e in files for c in e.chunks if c.digest in remote}
    fetch_chunks(backend, cache, chunks, stats, progress)
    started = time.time_ns()
    with RootDir(root) as target, counted(cache, stats):
        for entry in stale:
            if entry.kind == DIR:
                os.close(target.open_dir(entry.path))
        written = run_parallel(lambda e: (write_file(source, references, e, target), e), files)
        run_parallel(lambda e: write_link(e, target), [e for e in stale if e.kind == LINK])
        # directories last, deepest first: writing inside one changes its mtime
        late = {e.path for e in untimed} if not stale else {e.path for e in entries}
        dirs = sorted((e for e in entries if e.kind == DIR), key=lambda e: -e.path.count("/"))
        for entry in [*(e for e in untimed if e.kind != DIR), *dirs]:
            if entry.mtime_ns is not None and entry.path in late:
                target.set_mtime(entry.path, entry.mtime_ns)
    hash_cache.store_many(
        [(st, e.content) for st, e in written if e.ref is None],
        chunk_size,
        started,
    )
    regular = [e for e in entries if e.kind == FILE]
    stats.files += len(regular)
    stats.bytes += sum(e.size for e in regular)
    stats.files_written += len(files)
    stats.unchecked += [e.path for e in regular if not is_checked(e)]
    stats.files_unchanged += len(regular) - len(files)
    stats.notes += sorted(source.notes)
