"""Fixed-size chunking and file hashing.

A file's content is an ordered list of chunks of ``chunk_size`` bytes (the last one shorter).
A file no bigger than one chunk is one chunk whose digest is the file digest; an empty file
has no chunks. Hashing maps one chunk-sized window of the file at a time, so memory stays
flat for files of any size and no byte is copied into Python.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import blake3

from .digest import PREFIX, digest_bytes

DEFAULT_CHUNK_SIZE = 16 << 20
_SMALL_FILE = 256 << 10


@dataclass(frozen=True)
class ChunkRef:
    digest: str
    size: int


@dataclass(frozen=True)
class FileContent:
    """What hashing a file yields: enough to write its manifest entry."""

    size: int
    digest: str
    chunks: tuple[ChunkRef, ...]


@contextmanager
def mapped(fd: int, offset: int, length: int) -> Iterator[memoryview]:
    """A read-only view of ``length`` bytes of ``fd`` at ``offset`` (zero-copy for big spans)."""
    if length < _SMALL_FILE:
        view = memoryview(os.pread(fd, length, offset))
        yield view
        return
    skip = offset % mmap.ALLOCATIONGRANULARITY
    with mmap.mmap(fd, length + skip, offset=offset - skip, access=mmap.ACCESS_READ) as mm:
        whole = memoryview(mm)
        view = whole[skip:]
        try:
            yield view
        finally:
            view.release()
            whole.release()


def hash_fd(fd: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> FileContent:
    """Hash an open file: its digest and its chunks' digests, in one pass over the bytes."""
    size = os.fstat(fd).st_size
    if size <= chunk_size:
        with mapped(fd, 0, size) as view:
            if len(view) != size:
                raise OSError("file shrank while it was read")
            digest = digest_bytes(view)
        return FileContent(size, digest, (ChunkRef(digest, size),) if size else ())
    whole = blake3.blake3(max_threads=blake3.blake3.AUTO)
    chunks = []
    for offset in range(0, size, chunk_size):
        length = min(chunk_size, size - offset)
        with mapped(fd, offset, length) as view:
            chunks.append(ChunkRef(digest_bytes(view), length))
            whole.update(view)
    return FileContent(size, PREFIX + whole.hexdigest(), tuple(chunks))


def hash_path(path: str | os.PathLike[str], chunk_size: int = DEFAULT_CHUNK_SIZE) -> FileContent:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return hash_fd(fd, chunk_size)
    finally:
        os.close(fd)


def chunk_offsets(chunks: tuple[ChunkRef, ...] | list[ChunkRef]) -> list[int]:
    """The byte offset at which each chunk starts."""
    offsets, position = [], 0
    for chunk in chunks:
        offsets.append(position)
        position += chunk.size
    return offsets
