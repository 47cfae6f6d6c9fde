"""The bytes of staged files: reads and writes on their local files (``localfiles``), the
hand-over of copy-on-write (``new_local`` for ``cow`` to fill, then ``use_local``), and
dropping a local copy once a commit made its bytes an entry's. Which file backs which node
is recorded in the area's journal before the request that changed it returns; the bytes
themselves are the local file's, so a write costs no database work.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from .localfiles import LocalFile, local_mode
from .staged import StagedFile

if TYPE_CHECKING:
    from .staging import StagingArea


class FileBytes:
    """The bytes of the files of ``area``. Runs on the thread that owns the area."""

    def __init__(self, area: StagingArea):
        self.area = area
        self.files = area.files

    def writable(self, node: StagedFile) -> bool:
        """Whether writes may go straight to the node's local file (else ``new_local`` and
        a copy of its bytes, then ``use_local``)."""
        return node.local is not None and not node.local.frozen

    def new_local(self) -> LocalFile:
        """An empty local file, to fill with a copy of a file's bytes before ``use_local``."""
        self.area.changing()
        local, fd = self.files.create(0)
        os.close(fd)
        return local

    def use_local(self, node: StagedFile, local: LocalFile) -> None:
        """Back ``node`` by ``local`` from now on: its bytes differ from any entry."""
        self.area.changing().set_backing(node.id, None, local.id)
        os.chmod(local.path, local_mode(node.mode))
        self.close_fd(node)
        old = node.local
        node.local, node.entry = local, None
        local.node = node
        if old is not None:
            old.node = None
            self.files.drop(old)
        node.size = os.stat(local.path).st_size
        node.mtime_ns = time.time_ns()
        node.changed()

    def fd(self, node: StagedFile) -> int:
        """The open local file of a node backed by one."""
        assert node.local is not None
        if node.fd is None:
            node.fd = self.files.open(node.local)
        return node.fd

    def close_fd(self, node: StagedFile) -> None:
        if node.fd is not None:
            os.close(node.fd)
            node.fd = None

    def write(self, node: StagedFile, offset: int, data: bytes) -> int:
        """Write to a ``writable`` node's local file."""
        written = os.pwrite(self.fd(node), data, offset)
        self._modified(node, max(node.size, offset + written))
        return written

    def truncate(self, node: StagedFile, size: int) -> None:
        """Set a ``writable`` node's size."""
        os.ftruncate(self.fd(node), size)
        self._modified(node, size)

    def _modified(self, node: StagedFile, size: int) -> None:
        if node.entry is not None:  # local bytes equal to a committed entry until now
            assert node.local is not None
            self.area.changing().set_backing(node.id, None, node.local.id)
            node.entry = None
        self.area.generation += 1
        node.size = size
        node.mtime_ns = time.time_ns()
        node.changed()

    def closed(self, node: StagedFile) -> None:
        """The last handle on ``node`` was released: close its local file, and drop it if
        its bytes are a committed entry's (reads then come from the chunks)."""
        self.close_fd(node)
        local = node.local
        if node.entry is not None and local is not None and not local.frozen:
            if self.area.journal.db is not None:
                self.area.journal.set_backing(node.id, node.entry, None)
            node.local = None
            local.node = None
            self.files.drop(local)

    def release(self, node: StagedFile) -> None:
        """A node is forgotten: close and drop its local file."""
        self.close_fd(node)
        if node.local is not None:
            node.local.node = None
            self.files.drop(node.local)
            node.local = None
