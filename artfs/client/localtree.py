"""A local directory as a version keeps it (``artfs put DIR``, ``Artifact.add_dir``).

- regular files are files, with their executable bit and mtime (``transfer.hash_sources``);
  hard links are separate files (their bytes are stored once, by dedup);
- an empty directory is a ``dir`` entry (so ``.git/refs/heads`` survives ``git gc``);
- a symlink whose target stays inside the tree (``core.paths.check_link``) is a ``link``
  entry with its target as written; any other symlink (absolute, climbing out of the tree,
  or with ``..`` after a name) is followed and stored as the file or directory it points at;
  a dangling one of those is refused, and so is a link to a directory holding it (a loop);
- device files, sockets and FIFOs are skipped.

What was followed or skipped, and SQLite write-ahead logs stored beside their database (a
consistent copy only if the database was checkpointed), come back as one warning line each.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import ArtfsError, InvalidPath
from ..core.manifest import ManifestEntry
from ..core.paths import check_link, check_path

WAL_SUFFIX = "-wal"


@dataclass
class LocalTree:
    """What a put of a directory sends: ``files`` (manifest path -> the local file to hash)
    and ``entries`` (links and empty directories); ``followed`` (path, target) and
    ``skipped`` (path) for the warnings, and ``wal`` (paths of SQLite write-ahead logs)."""

    files: dict[str, Path] = field(default_factory=dict)
    entries: dict[str, ManifestEntry] = field(default_factory=dict)
    followed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    wal: list[str] = field(default_factory=list)

    def warnings(self, root: Path) -> list[str]:
        """One line per kind of thing a version could not keep as it was."""
        out = []
        if self.followed:
            path, target = self.followed[0]
            out.append(
                f"followed {_count(len(self.followed), 'symlink')} leading out of {root}: "
                f"the version holds what they point at (first: {path} -> {target})"
            )
        if self.skipped:
            what = _count(len(self.skipped), "device file, socket or FIFO", "special files")
            out.append(f"skipped {what} in {root}: a version holds none (first: {self.skipped[0]})")
        if self.wal:
            database = self.wal[0][: -len(WAL_SUFFIX)]
            out.append(
                f"{self.wal[0]} is the write-ahead log of the SQLite database {database}: the "
                "version holds a consistent database only if it was checkpointed before the put "
                "(PRAGMA wal_checkpoint(TRUNCATE)); read it with immutable=1"
            )
        return out


def _count(n: int, one: str, many: str = "") -> str:
    return f"1 {one}" if n == 1 else f"{n} {many or one + 's'}"


def scan_tree(root: Path, prefix: str = "") -> LocalTree:
    """What ``root`` holds, as entries under manifest path ``prefix`` (``""``: the top)."""
    found = LocalTree()
    _Scan(found).directory(root, prefix, "", frozenset({_identity(os.stat(root))}))
    return found


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


class _Scan:
    def __init__(self, found: LocalTree):
        self.found = found

    def directory(self, local: Path, path: str, scoped: str, above: frozenset) -> None:
        """Add what directory ``local`` holds under manifest ``path``. ``scoped`` is its
        path inside the tree that links must stay in (the put's directory, or a directory a
        link outside it led to); ``above`` are the directories it is in (loops)."""
        with os.scandir(local) as listing:
            children = sorted(listing, key=lambda e: e.name)
        if not children and path:
            mtime = os.stat(local).st_mtime_ns
            self.found.entries[path] = ManifestEntry.directory(path, mtime)
        for child in children:
            self.entry(child, _join(path, child.name), _join(scoped, child.name), above)

    def entry(self, child: os.DirEntry[str], path: str, scoped: str, above: frozenset) -> None:
        try:
            check_path(path)
        except InvalidPath as exc:
            raise InvalidPath(f"{child.path}: {exc}") from None
        st = child.stat(follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(child.path)
            try:
                check_link(scoped, target)
            except InvalidPath:
                self.followed(child, path, target, above)
                return
            self.found.entries[path] = ManifestEntry.symlink(path, target, st.st_mtime_ns)
        elif stat.S_ISDIR(st.st_mode):
            self.directory(Path(child.path), path, scoped, above | {_identity(st)})
        elif stat.S_ISREG(st.st_mode):
            self.file(child, path)
        else:
            self.found.skipped.append(path)

    def followed(self, child: os.DirEntry[str], path: str, target: str, above: frozenset) -> None:
        """A link leaving the tree: what it points at takes its place."""
        try:
            st = os.stat(child.path)
        except FileNotFoundError:
            raise ArtfsError(
                f"{child.path} is a symlink to {target}, outside the tree, which does not "
                "exist: remove it or point it inside"
            ) from None
        if stat.S_ISDIR(st.st_mode):
            if _identity(st) in above:
                raise ArtfsError(f"{child.path} is a symlink to a directory holding it (a loop)")
            self.found.followed.append((path, target))
            self.directory(Path(child.path), path, "", above | {_identity(st)})
        elif stat.S_ISREG(st.st_mode):
            self.found.followed.append((path, target))
            self.file(child, path)
        else:
            self.found.skipped.append(path)

    def file(self, child: os.DirEntry[str], path: str) -> None:
        self.found.files[path] = Path(child.path)
        if child.name.endswith(WAL_SUFFIX) and os.path.getsize(child.path):
            database = child.path[: -len(WAL_SUFFIX)]
            if os.path.isfile(database):
                self.found.wal.append(path)


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name
