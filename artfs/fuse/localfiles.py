"""The bytes of a staging area's changed files: ``<area>/files/<n>``, one local file per
staged file created or changed in the area (docs/FORMAT.md, "Mount staging areas").

A local file's size and mtime are the staged file's own, and so are its permission bits
(with the owner's read and write added, so the daemon can always use it): a commit hashes it
like any file ``artfs put`` reads, executable bit and mtime included.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .staged import StagedFile

OWNER_RW = 0o600


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalFile:
    """The bytes of one staged file, in ``files/<id>``. ``node`` is the file using it (None
    once replaced or freed); ``frozen`` counts the commits reading it, which must see it
    unchanged, so a write to a frozen file first copies it."""

    __slots__ = ("frozen", "id", "node", "path")

    def __init__(self, id: int, path: Path):
        self.id = id
        self.path = path
        self.node: StagedFile | None = None
        self.frozen = 0


def local_mode(st_mode: int) -> int:
    """The permission bits of the local file of a staged file of ``st_mode``."""
    return (st_mode & 0o777) | OWNER_RW


class LocalFiles:
    """The ``files/`` directory of an area; ids are never reused within it."""

    def __init__(self, directory: Path):
        self.dir = directory
        self._next = 1

    def seen(self, id: int) -> None:
        """Ids up to ``id`` are taken (by a file found on disk)."""
        self._next = max(self._next, id + 1)

    def new(self) -> LocalFile:
        """A name for a new local file (nothing made yet)."""
        id = self._next
        self._next += 1
        return LocalFile(id, self.dir / str(id))

    def create(self, st_mode: int) -> tuple[LocalFile, int]:
        """A new empty local file, and a descriptor open on it for reading and writing."""
        local = self.new()
        return local, self.open(local, os.O_CREAT | os.O_EXCL, st_mode)

    def open(self, local: LocalFile, flags: int = 0, st_mode: int = 0) -> int:
        fd = os.open(local.path, os.O_RDWR | os.O_CLOEXEC | flags, OWNER_RW)
        if st_mode:
            os.fchmod(fd, local_mode(st_mode))
        return fd

    def drop(self, local: LocalFile) -> None:
        """Delete a local file nothing uses any more (no node, no commit reading it)."""
        if local.node is None and not local.frozen:
            local.path.unlink(missing_ok=True)

    def tidy(self, used: set[int]) -> None:
        """Delete local files no row names: bytes of a file unlinked while open, or of a
        copy cut short by a crash."""
        self.dir.mkdir(exist_ok=True)
        for entry in os.scandir(self.dir):
            if not entry.name.isdigit() or int(entry.name) not in used:
                os.unlink(entry.path)

    def sync(self) -> bool:
        """fsync the directory (new and renamed names); False if it is gone (the area was
        committed and cleared meanwhile)."""
        try:
            fsync_dir(self.dir)
        except FileNotFoundError:
            return False
        return True
