"""How a file's bytes get from verified chunks into a file (``get``, ``download``).

A chunk's bytes come from the embedded store's own file, read in place (the store is its own
cache, docs/SEMANTICS.md "Reads": nothing is copied into the chunk cache), or else from the
chunk cache, fetched first. Either way they are hashed from the very mapping they are then
copied from (hash-while-copy: each byte is read once), and the chunks of a big file are
written by several threads at once, each at its offset.

The link mode (``artfs get --link``) chooses how a verified chunk becomes the file:

- ``copy`` (the default): its bytes are written into a new file;
- ``reflink``: the file shares the chunk file's blocks (``FICLONERANGE``) where the filesystem
  can (Btrfs, XFS); an edit of the file copies the blocks it changes, so the store never sees
  it. Where it cannot (ext4, another filesystem than the store's), the bytes are copied and a
  note says so;
- ``hardlink``: a file of one chunk becomes a hard link to the chunk's file (the store's, or
  the cache's on a remote store) and is made read-only, for everyone: the file *is* the
  stored copy, so making it writable and editing it in place would corrupt that chunk for
  every version that holds it (reads verify and refuse it, but its bytes are lost). So a
  link is kept only where this process cannot write into it (not for root, whom modes do
  not stop), and it keeps the stored copy's mode and mtime: executable files, files of
  several chunks, and chunks on another filesystem than the target are copied, with a note.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import os
import struct
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from ..core.chunking import ChunkRef, chunk_offsets, read_checked
from ..core.errors import ArtfsError, DigestMismatch
from ..core.manifest import EXEC_MODE, ManifestEntry
from .backend import Backend
from .cache import ChunkCache

LINK_MODES = ("copy", "reflink", "hardlink")
LOCATE_BATCH = 5000  # digests per chunk_paths call
CHUNK_WORKERS = 4  # threads writing the chunks of one big file
READ_ONLY = 0o444
_FICLONERANGE = 0x4020940D  # _IOW(0x94, 13, struct file_clone_range)
# what a filesystem answers when it cannot share blocks or link across
_CANNOT_SHARE = {
    errno.EXDEV,
    errno.EOPNOTSUPP,
    errno.EINVAL,
    errno.ENOTTY,
    errno.ENOSYS,
    errno.EPERM,
    errno.EMLINK,
}


class ChunkSource:
    """Where the verified bytes of chunks come from, and how they get into files: ``locate``
    first (which chunks the store lets this caller read in place), then ``write`` per file.
    Safe to use from several threads. ``notes`` say where a link mode fell back to copying."""

    def __init__(self, backend: Backend, cache: ChunkCache, link: str = "copy"):
        if link not in LINK_MODES:
            raise ArtfsError(f"unknown link mode {link!r}: use one of {', '.join(LINK_MODES)}")
        self.backend = backend
        self.cache = cache
        self.link_mode = link
        self.paths: dict[str, Path] = {}
        self.notes: set[str] = set()
        self._can_share = True
        self._mutex = threading.Lock()

    def locate(self, digests: Iterable[str]) -> list[str]:
        """Learn which of these chunks are read in place; return the others, which come
        through the chunk cache."""
        wanted = sorted(set(digests) - self.paths.keys())
        for start in range(0, len(wanted), LOCATE_BATCH):
            self.paths.update(self.backend.chunk_paths(wanted[start : start + LOCATE_BATCH]))
        return [d for d in wanted if d not in self.paths]

    @contextmanager
    def verified(self, chunk: ChunkRef) -> Iterator[tuple[int, bytes, Path]]:
        """An fd on a file holding the chunk, its bytes checked against the digest, and the
        file's path: the store's own file if it was located, else the cache's."""
        path = self.paths.get(chunk.digest)
        fd = _open(path) if path is not None else None
        if fd is not None and path is not None:
            try:
                data = read_checked(fd, chunk.digest, chunk.size)
                if data is None:
                    raise DigestMismatch(f"the store's file of chunk {chunk.digest} is corrupt")
                yield fd, data, path
                return
            finally:
                os.close(fd)
        fetch = functools.partial(self.backend.read_chunk, chunk.digest)
        with self.cache.verified(chunk.digest, chunk.size, fetch) as (fd, data):
            yield fd, data, self.cache.path(chunk.digest)

    def read(self, entry: ManifestEntry) -> bytes:
        """A (small) file's bytes, verified."""
        parts = []
        for chunk in entry.chunks:
            with self.verified(chunk) as (_, data, _):
                parts.append(data)
        return b"".join(parts)

    def link(self, entry: ManifestEntry, folder: int, name: str) -> bool:
        """In ``hardlink`` mode, make ``name`` in directory ``folder`` a hard link to the
        entry's one verified chunk file; False where the file is to be written instead."""
        if self.link_mode != "hardlink" or not entry.chunks:
            return False
        if len(entry.chunks) != 1:
            self._note("hard links are made only for files of one chunk: bigger files copied")
            return False
        if entry.mode == EXEC_MODE:
            self._note("executable files are copied (a hard link has the stored copy's mode)")
            return False
        return self._hard_link(entry.chunks[0], folder, name)

    def write(self, entry: ManifestEntry, out: int) -> None:
        """Write the entry's bytes into the new file ``out``, each chunk verified (big files'
        chunks by several threads, each at its offset; clones in order)."""
        places = list(zip(chunk_offsets(entry.chunks), entry.chunks))
        if len(places) <= 1 or self.link_mode == "reflink":
            for offset, chunk in places:
                self._place(out, offset, chunk)
            return
        with ThreadPoolExecutor(max_workers=min(CHUNK_WORKERS, len(places))) as pool:
            list(pool.map(lambda place: self._place(out, *place), places))

    def _place(self, out: int, offset: int, chunk: ChunkRef) -> None:
        with self.verified(chunk) as (fd, data, _):
            if self.link_mode == "reflink" and self._clone(fd, out, offset, chunk.size):
                return
            _write_all(out, data, offset)

    def _clone(self, src: int, out: int, offset: int, size: int) -> bool:
        if not self._can_share:
            return False
        try:
            fcntl.ioctl(out, _FICLONERANGE, struct.pack("qQQQ", src, 0, size, offset))
        except OSError as exc:
            if exc.errno not in _CANNOT_SHARE:
                raise
            self._can_share = False
            self._note(f"reflinks are not possible here ({exc.strerror}): files copied instead")
            return False
        return True

    def _hard_link(self, chunk: ChunkRef, folder: int, name: str) -> bool:
        if not self._can_share:
            return False
        with self.verified(chunk) as (fd, _, source):
            try:  # (the checked file itself, by its descriptor, not whatever has its name now)
                os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=folder, follow_symlinks=True)
            except OSError as exc:
                if exc.errno not in _CANNOT_SHARE:
                    raise
                self._can_share = False
                self._note(
                    f"hard links from {source.parents[2]} are not possible here "
                    f"({exc.strerror}): files copied instead"
                )
                return False
        with contextlib.suppress(PermissionError):  # (not ours: not writable by us either)
            os.chmod(name, READ_ONLY, dir_fd=folder)  # the stored copy's own mode: no edit in place
        if os.access(name, os.W_OK, dir_fd=folder, effective_ids=True):
            os.unlink(name, dir_fd=folder)
            self._can_share = False
            self._note(
                "hard links are not kept where this user may write into a read-only file "
                "(root): files copied instead"
            )
            return False
        return True

    def _note(self, text: str) -> None:
        with self._mutex:
            self.notes.add(text)


def _open(path: Path) -> int | None:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:  # collected meanwhile: the cache's path reports it
        return None


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written
