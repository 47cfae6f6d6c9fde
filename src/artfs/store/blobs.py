"""Blob stores hold chunk bytes under their digest. Every put is verified before it is visible.

``LocalBlobStore`` layout (docs/FORMAT.md): ``chunks/<hex[:2]>/<hex[2:]>``; uploads are
written to ``tmp/`` while being hashed, fsynced, then renamed into place, so a chunk file
either does not exist or holds exactly the bytes its name promises.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

from ..core.digest import PREFIX, Hasher, hex_of
from ..core.errors import DigestMismatch, NotFound

READ_BLOCK = 1 << 20
Data = bytes | bytearray | memoryview | Iterable[bytes]


class BlobStore(Protocol):
    def put(self, digest: str, data: Data) -> int:
        """Store ``data`` under ``digest`` after checking it; the number of bytes stored."""

    def iter_read(self, digest: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """Stream (a range of) a blob in blocks."""

    def exists(self, digest: str) -> bool: ...

    def delete(self, digest: str) -> None: ...

    def list(self) -> Iterator[tuple[str, float, int]]:
        """Every stored blob as ``(digest, mtime, size)``."""

    def clean_tmp(self, older_than: float) -> int:
        """Remove abandoned partial uploads last written before ``older_than``."""


def blocks(data: Data) -> Iterable[bytes | bytearray | memoryview]:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return (data,)
    return data


class LocalBlobStore:
    def __init__(self, root: Path):
        self.root = root
        self.chunk_dir = root / "chunks"
        self.tmp_dir = root / "tmp"
        self.chunk_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        hex_ = hex_of(digest)
        return self.chunk_dir / hex_[:2] / hex_[2:]

    def put(self, digest: str, data: Data) -> int:
        final = self.path(digest)
        tmp = self.tmp_dir / f"{hex_of(digest)}.{os.getpid()}.{secrets.token_hex(4)}"
        hasher, written = Hasher(), 0
        try:
            with open(tmp, "xb") as f:
                for block in blocks(data):
                    hasher.update(block)
                    f.write(block)
                    written += len(block)
                actual = hasher.digest()
                if actual != digest:
                    raise DigestMismatch(
                        f"upload of {digest} holds bytes whose digest is {actual}; not stored"
                    )
                f.flush()
                os.fsync(f.fileno())
            final.parent.mkdir(exist_ok=True)
            os.rename(tmp, final)
            _fsync_dir(final.parent)
        finally:
            tmp.unlink(missing_ok=True)
        return written

    def iter_read(self, digest: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        try:
            f = open(self.path(digest), "rb", buffering=0)  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise NotFound(f"chunk {digest} is missing from the blob store") from None
        with f:
            f.seek(offset)
            end = None if length is None else offset + length
            position = offset
            while end is None or position < end:
                want = READ_BLOCK if end is None else min(READ_BLOCK, end - position)
                block = f.read(want)
                if not block:
                    break
                position += len(block)
                yield block

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    def list(self) -> Iterator[tuple[str, float, int]]:
        for sub in sorted(self.chunk_dir.iterdir()):
            if not sub.is_dir():
                continue
            for entry in os.scandir(sub):
                st = entry.stat()
                yield PREFIX + sub.name + entry.name, st.st_mtime, st.st_size

    def clean_tmp(self, older_than: float) -> int:
        removed = 0
        for entry in os.scandir(self.tmp_dir):
            try:
                if entry.stat().st_mtime < older_than:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                continue
        return removed


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:  # some filesystems refuse fsync on directories
        if exc.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)
