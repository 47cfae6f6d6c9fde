"""Fixed-size chunking, file digests and file hashing.

A file's content is an ordered list of chunks of ``chunk_size`` bytes (the last one shorter).
A file no bigger than one chunk is one chunk whose digest is the file digest; an empty file
has no chunks. The digest of a file of several chunks is derived from its chunk list
(``file_digest``), never from a claim: a store that verified every chunk can check it.
Hashing maps one chunk-sized window of the file at a time, so memory stays flat for files
of any size and no byte is copied into Python.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from .digest import EMPTY_DIGEST, derived_digest, digest_bytes

DEFAULT_CHUNK_SIZE = 16 << 20
_SMALL_FILE = 256 << 10


@dataclass(frozen=True)
class ChunkRef:
    digest: str
    size: int


def file_digest(chunks: Sequence[ChunkRef]) -> str:
    """A file's digest from its chunks: the empty digest, the one chunk's digest, or for
    several chunks a derived digest of the ``"<digest> <size>\\n"`` lines in order."""
    if not chunks:
        return EMPTY_DIGEST
    if len(chunks) == 1:
        return chunks[0].digest
    lines = "".join(f"{c.digest} {c.size}\n" for c in chunks)
    return derived_digest("file digest from chunks", lines.encode())


@dataclass(frozen=True)
class FileContent:
    """What hashing a file yields: enough to write its manifest entry."""

    size: int
    chunks: tuple[ChunkRef, ...]

    @property
    def digest(self) -> str:
        return file_digest(self.chunks)


@contextmanager
def mapped(fd: int, offset: int, length: int) -> Iterator[memoryview]:
    """A read-only view of ``length`` bytes of ``fd`` at ``offset`` (zero-copy for big spans)."""
    if length < _SMALL_FILE:
        view = memoryview(os.pread(fd, length, offset))
        yield view
        return
    skip = offset % mmap.ALLOCATIONGRANULARITY
    mm = mmap.mmap(fd, length + skip, offset=offset - skip, access=mmap.ACCESS_READ)
    whole = memoryview(mm)
    view = whole[skip:]
    try:
        yield view
    finally:
        try:
            view.release()
            whole.release()
            mm.close()
        except BufferError:
            pass  # a caller (an aborted HTTP request) still holds a slice: the GC closes it


def read_checked(fd: int, digest: str, size: int) -> bytes | None:
    """The file's bytes if they are exactly the chunk ``digest`` (``size`` bytes), else None:
    what is hashed is what the caller then copies, so no byte is read twice. (Read into
    memory: for chunk-sized reads, faster than mapping the file and faulting its pages in.)"""
    data = _read_all(fd, size) if os.fstat(fd).st_size == size else None
    return data if data is not None and digest_bytes(data) == digest else None


def _read_all(fd: int, size: int) -> bytes | None:
    """The file's first ``size`` bytes; None if it is shorter."""
    data = os.pread(fd, size, 0)
    parts = [data]
    got = len(data)
    while data and got < size:
        data = os.pread(fd, size - got, got)
        parts.append(data)
        got += len(data)
    return b"".join(parts) if got == size else None


def hash_fd(fd: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> FileContent:
    """Hash an open file: its chunks' digests, in one pass over the bytes."""
    size = os.fstat(fd).st_size
    chunks = []
    for offset in range(0, size, chunk_size):
        length = min(chunk_size, size - offset)
        with mapped(fd, offset, length) as view:
            if len(view) != length:
                raise OSError("file shrank while it was read")
            chunks.append(ChunkRef(digest_bytes(view), length))
    return FileContent(size, tuple(chunks))


def hash_path(path: str | os.PathLike[str], chunk_size: int = DEFAULT_CHUNK_SIZE) -> FileContent:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return hash_fd(fd, chunk_size)
    finally:
        os.close(fd)


def chunk_offsets(chunks: Sequence[ChunkRef]) -> list[int]:
    """The byte offset at which each chunk starts."""
    offsets, position = [], 0
    for chunk in chunks:
        offsets.append(position)
        position += chunk.size
    return offsets
