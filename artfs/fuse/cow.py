"""Copy-on-write for staged files: a file backed by a version's entry gets a local file of
its own the first time it changes.

Its bytes are copied from verified chunks (fetched if needed) on a worker thread, once
however many writers wait; truncating to zero copies nothing. A file frozen by a commit in
progress is copied from its local file, so the commit sees what it snapshotted. A hard link
into ``@staging/`` is a copy made the same way (a version keeps no hard links).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pyfuse3
import trio

from ..client.transfer import copy_fd
from ..core.manifest import ManifestEntry
from .flight import SingleFlight
from .reader import Reader
from .staged import StagedDir, StagedFile, StagedLink
from .stats import MountStats


def _copy_file(source: Path, dest: Path) -> None:
    with open(source, "rb") as src, open(dest, "r+b") as out:
        copy_fd(src.fileno(), out.fileno(), os.fstat(src.fileno()).st_size)


def _copy_chunk(fd: int, out: int, size: int) -> None:
    """Append a verified chunk (a descriptor of our own, closed here) to ``out``."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        copy_fd(fd, out, size)
    finally:
        os.close(fd)


class CopyOnWrite:
    def __init__(self, reader: Reader, stats: MountStats):
        self.reader = reader
        self.stats = stats
        self._copies: SingleFlight[None] = SingleFlight()

    async def writable(self, node: StagedFile) -> None:
        """Give ``node`` a local file of its own that writes may change."""
        area = node.area
        while not area.bytes.writable(node):
            await self._copies.run((area.key, node.id), lambda: self._copy(node))

    async def _copy(self, node: StagedFile) -> None:
        area = node.area
        if area.bytes.writable(node):
            return
        source, entry = node.local, node.entry
        if source is None and entry is not None and entry.ref is not None:
            raise pyfuse3.FUSEError(errno.EOPNOTSUPP)  # its bytes live elsewhere
        local = area.bytes.new_local()
        try:
            if source is not None:  # frozen by a commit in progress
                await trio.to_thread.run_sync(_copy_file, source.path, local.path)
            else:
                assert entry is not None
                await self._copy_chunks(entry, local.path)
        except BaseException:
            local.path.unlink(missing_ok=True)
            raise
        if node.local is not source or node.entry is not entry:  # truncated meanwhile
            local.path.unlink(missing_ok=True)
            return
        area.bytes.use_local(node, local)
        self.stats.copied_files += 1

    async def _copy_chunks(self, entry: ManifestEntry, dest: Path) -> None:
        out = os.open(dest, os.O_WRONLY | os.O_CLOEXEC)
        try:
            for chunk in entry.chunks:
                with await self.reader.files.open(chunk.digest, chunk.size) as opened:
                    fd = os.dup(opened.fd)  # (a position of its own)
                await trio.to_thread.run_sync(_copy_chunk, fd, out, chunk.size)
        finally:
            os.close(out)

    async def truncate(self, node: StagedFile, size: int) -> None:
        area = node.area
        if area.bytes.writable(node):
            area.bytes.truncate(node, size)
        elif size == node.size:
            return
        elif size == 0:
            area.bytes.use_local(node, area.bytes.new_local())
        else:
            await self.writable(node)
            area.bytes.truncate(node, size)

    async def link(
        self, node: StagedFile | StagedLink, parent: StagedDir, name: bytes
    ) -> StagedFile | StagedLink:
        """``link(2)`` in ``@staging/``: a copy of ``node`` named ``name`` in ``parent``,
        sharing its entry if it has one, else with a copy of its local bytes."""
        area = node.area
        if isinstance(node, StagedLink) or node.entry is not None:
            return area.copy(node, parent, name, None)
        assert node.local is not None
        local = area.bytes.new_local()
        try:
            await trio.to_thread.run_sync(_copy_file, node.local.path, local.path)
            return area.copy(node, parent, name, local)
        except BaseException:
            local.path.unlink(missing_ok=True)
            raise
