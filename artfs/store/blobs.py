"""Blob stores hold chunk bytes under their digest. Every put is verified before it is visible.

``LocalBlobStore`` layout (docs/FORMAT.md): ``chunks/<hex[:2]>/<hex[2:]>``; uploads are
written to ``tmp/`` while being hashed and renamed into place only if the digest matches,
so no process ever sees a chunk file with other bytes than its name promises. ``sync``
makes a batch durable before the store records the chunks as live.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from ..core.digest import PREFIX, Block, hex_of, verify_stream
from ..core.errors import NotFound

READ_BLOCK = 1 << 20
_libc = ctypes.CDLL(None, use_errno=True)
Data = Block | Iterable[Block]


class BlobStore(Protocol):
    def put(self, digest: str, data: Data) -> int:
        """Store ``data`` under ``digest`` after checking it; the number of bytes stored.
        Durable only once ``sync`` returns."""

    def sync(self) -> None:
        """Make every blob put so far durable (one flush for a whole batch of puts)."""

    def iter_read(self, digest: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """Stream (a range of) a blob in blocks; a missing blob raises ``NotFound`` at once."""

    def exists(self, digest: str) -> bool: ...

    def local_path(self, digest: str) -> Path | None:
        """The file holding exactly the chunk's bytes, for readers that read it in place;
        None when there is none (blobs in S3, or encrypted files): use ``iter_read``."""

    def delete(self, digest: str) -> None: ...

    def list(self) -> Iterator[tuple[str, float, int]]:
        """Every stored blob as ``(digest, mtime, size)``."""

    def clean_tmp(self, older_than: float) -> int:
        """Remove abandoned partial uploads last written before ``older_than``."""


def _blocks_of(f: BinaryIO, length: int | None) -> Iterator[bytes]:
    """Up to ``length`` bytes (all if None) of an open file, in blocks; closes it."""
    with f:
        remaining = -1 if length is None else length
        while remaining:
            block = f.read(READ_BLOCK if remaining < 0 else min(READ_BLOCK, remaining))
            if not block:
                return
            remaining -= len(block) if remaining > 0 else 0
            yield block


def remove_stale(directory: Path, older_than: float) -> int:
    """Remove the files of ``directory`` last written before ``older_than`` (abandoned
    partial writes of crashed processes); returns how many."""
    removed = 0
    for entry in os.scandir(directory):
        try:
            if entry.stat().st_mtime < older_than:
                os.unlink(entry.path)
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def make_fanout(root: Path) -> None:
    """Create ``root`` and its 256 two-hex-digit subdirectories once, not on every write."""
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "ff").is_dir():
        for i in range(256):
            (root / f"{i:02x}").mkdir(exist_ok=True)


def unique_name(digest: str) -> str:
    """A temporary file name no other writer uses: digest, process, thread."""
    return f"{hex_of(digest)}.{os.getpid()}.{threading.get_ident()}"


def write_atomically(tmp: Path, final: Path, write: Callable[[BinaryIO], int]) -> int:
    """Let ``write`` fill ``tmp``, then rename it to ``final``; if ``write`` raises (e.g. the
    bytes failed verification), nothing appears under ``final``. Returns what ``write`` does."""
    try:
        with open(tmp, "wb") as f:  # a name left by a crashed writer is overwritten
            size = write(f)
        os.rename(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return size


def write_verified(tmp: Path, final: Path, digest: str, data: Data) -> int:
    """Write ``data`` to ``tmp`` while hashing it and rename it to ``final`` only if its digest
    is ``digest``: whoever opens ``final`` sees exactly the promised bytes. Returns the size."""
    return write_atomically(tmp, final, lambda f: verify_stream(digest, data, f.write))


class LocalBlobStore:
    def __init__(self, root: Path):
        self.root = root
        self.chunk_dir = root / "chunks"
        self.tmp_dir = root / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        make_fanout(self.chunk_dir)

    def path(self, digest: str) -> Path:
        hex_ = hex_of(digest)
        return self.chunk_dir / hex_[:2] / hex_[2:]

    def put(self, digest: str, data: Data) -> int:
        return write_verified(self.tmp_dir / unique_name(digest), self.path(digest), digest, data)

    def sync(self) -> None:
        """``syncfs`` on the store's filesystem: the data and names of every chunk written
        before it, in one flush rather than two ``fsync`` calls per chunk."""
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if _libc.syncfs(fd) != 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err), str(self.root))
        finally:
            os.close(fd)

    def iter_read(self, digest: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        try:
            f = open(self.path(digest), "rb", buffering=0)  # noqa: SIM115 - closed by _blocks
        except FileNotFoundError:
            raise NotFound(f"chunk {digest} is missing from the blob store") from None
        f.seek(offset)
        return _blocks_of(f, length)

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()

    def local_path(self, digest: str) -> Path | None:
        return self.path(digest)

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
        return remove_stale(self.tmp_dir, older_than)
