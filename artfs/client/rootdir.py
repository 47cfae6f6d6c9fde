"""The directory ``get``, ``download`` and ``checkout`` write a version into (``--root``),
and how they look at it.

What a client writes stays inside the root: nothing is ever written through a symlink. Each
entry is placed from a descriptor on its parent directory, reached from the root one name at
a time with ``O_NOFOLLOW`` (missing directories are made on the way), and files and links
are made under a temporary name there and renamed over the entry's name, which replaces
whatever was there (a link included) instead of writing into what it points at. A symlink
where the version has a directory, whether the root held it before or not, is refused with
one line. Reading the root (``entries``, ``real_parents``) never follows a link either.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

from ..core.errors import ArtfsError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class RootDir:
    """``root``, made if missing, open for placing entries below it."""

    def __init__(self, root: Path):
        root.mkdir(parents=True, exist_ok=True)
        self.path = root
        self.fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> RootDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open_dir(self, path: str) -> int:
        """A descriptor on the directory at manifest ``path`` (``""``: the root), made if
        missing; the caller closes it."""
        fd = os.dup(self.fd)
        done: list[str] = []
        for name in path.split("/") if path else ():
            fd = self._step(fd, name, done)
            done.append(name)
        return fd

    def _step(self, parent: int, name: str, done: list[str]) -> int:
        """The directory ``name`` in ``parent`` (made if missing); ``parent`` is closed."""
        try:
            try:
                child = os.open(name, _DIR_FLAGS, dir_fd=parent)
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):  # (another thread made it)
                    os.mkdir(name, 0o777, dir_fd=parent)
                child = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            where = self.path.joinpath(*done, name)
            if stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
                raise ArtfsError(
                    f"{where} is a symlink where the version has a directory: artfs never "
                    "writes through a symlink (remove it and get again)"
                ) from None
            raise ArtfsError(f"{where} is not a directory, but the version has one") from None
        finally:
            os.close(parent)
        return child

    @contextlib.contextmanager
    def parent(self, path: str) -> Iterator[tuple[int, str]]:
        """The directory holding manifest ``path`` (a descriptor) and the entry's name."""
        folder, _, name = path.rpartition("/")
        fd = self.open_dir(folder)
        try:
            yield fd, name
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def replacing(self, path: str) -> Iterator[tuple[int, str]]:
        """A temporary name beside ``path`` to make its new version under (the directory's
        descriptor and the name); renamed over ``path`` if the block succeeds."""
        with self.parent(path) as (fd, name):
            tmp = f".artfs-{os.getpid()}-{threading.get_ident()}.tmp"  # short: any name fits
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=fd)
            try:
                yield fd, tmp
                os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp, dir_fd=fd)

    def set_mtime(self, path: str, mtime_ns: int) -> None:
        """Set an entry's mtime (a link's own, not its target's)."""
        with self.parent(path) as (fd, name):
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            os.utime(name, ns=(st.st_atime_ns, mtime_ns), dir_fd=fd, follow_symlinks=False)


def entries(root: Path) -> dict[str, os.stat_result]:
    """Everything below ``root`` by relative path, as ``lstat`` sees it: links are not
    followed (a link to a directory is a link, and nothing below it is listed)."""
    found: dict[str, os.stat_result] = {}
    stack = [("", str(root))]
    while stack:
        prefix, directory = stack.pop()
        with os.scandir(directory) as listing:
            for item in listing:
                path = prefix + item.name
                st = found[path] = item.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    stack.append((path + "/", item.path))
    return found


class RealParents:
    """Whether the directories above a path under ``root`` are all real directories (no
    link among them); each is looked at once."""

    def __init__(self, root: Path):
        self.root = root
        self._known: dict[str, bool] = {"": True}

    def __call__(self, path: str) -> bool:
        return self._real(path.rpartition("/")[0])

    def _real(self, folder: str) -> bool:
        known = self._known.get(folder)
        if known is None:
            above, _, _ = folder.rpartition("/")
            try:
                known = self._real(above) and stat.S_ISDIR(
                    os.lstat(self.root.joinpath(*folder.split("/"))).st_mode
                )
            except OSError:
                known = False
            self._known[folder] = known
        return known
