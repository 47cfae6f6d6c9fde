"""What committing a staging area would change (``git status``-like), and the frozen view
of the area a commit sends."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..core.manifest import ManifestEntry
from .staged import LocalFile


@dataclass
class Changes:
    """What a commit of the area would change, like ``git status``."""

    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.modified or self.deleted)

    def counts(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "modified": len(self.modified),
            "deleted": len(self.deleted),
        }

    def summary(self) -> str:
        return ", ".join(f"{n} {what}" for what, n in self.counts().items())

    def lines(self) -> list[str]:
        marked = [(p, "A") for p in self.added] + [(p, "M") for p in self.modified]
        marked += [(p, "D") for p in self.deleted]
        return [f"{mark} {path}" for path, mark in sorted(marked)]


def diff(files: dict[str, str | None], base: dict[str, str]) -> Changes:
    """Compare ``path -> digest`` of the staged files (None: local bytes, not hashed yet)
    with the base version's."""
    changes = Changes()
    for path, digest in files.items():
        known = base.get(path)
        if known is None:
            changes.added.append(path)
        elif digest != known:
            changes.modified.append(path)
    changes.deleted = [p for p in base if p not in files]
    for paths in (changes.added, changes.modified, changes.deleted):
        paths.sort()
    return changes


@dataclass
class Snapshot:
    """The area as a commit sends it: base-backed files as their entries (no hashing),
    local ones as files to hash, frozen until the commit is over."""

    generation: int
    base: int | None
    entries: list[ManifestEntry]
    sources: dict[str, Path]
    frozen: list[tuple[str, LocalFile]]
    changes: Changes
