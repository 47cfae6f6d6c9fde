"""Committing a staging area: its snapshot becomes the artifact's next version through
``Client.put`` (only local files are hashed, through the hash cache; only chunks the store
lacks are sent), and what happened becomes a ``CommitReport`` for the log, ``artfs commit``
and ``artfs umount``.

``send`` is the blocking part (the mount runs it on a worker thread); taking the snapshot
and ``finish`` run on the thread that owns the area.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..client.client import Client
from ..core.manifest import Manifest
from ..core.names import ArtifactPath
from ..core.sizes import format_size
from . import snapshots
from .changes import Snapshot
from .staging import StagingArea

if TYPE_CHECKING:
    from .areas import StagingAreas

log = logging.getLogger(__name__)


@dataclass
class CommitOptions:
    """What ``artfs commit -m DESC --alias A`` asks for (kept with a commit left pending)."""

    description: str | None = None
    aliases: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, obj: Any) -> CommitOptions:
        if not isinstance(obj, dict):
            raise ValueError("commit options must be a JSON object")
        description, aliases = obj.get("description"), obj.get("aliases") or []
        if description is not None and not isinstance(description, str):
            raise ValueError("description must be a string")
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise ValueError("aliases must be a list of strings")
        return cls(description, aliases)


@dataclass
class CommitReport:
    artifact: str  # entity/project/artifact
    staging: str  # project/artifact, as the mount shows it
    changes: dict[str, int]
    base: int | None
    version: int | None = None  # the version committed, or found with the same content
    created: bool = False
    moved_on: bool = False  # the base was no longer the latest version
    stats: dict[str, int] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "text": self.text()}

    def text(self) -> str:
        where = self.staging
        if self.error is not None:
            return f"{where}: commit failed, the staged changes are kept: {self.error}"
        if self.version is None:
            return f"{where}: no changes"
        changed = ", ".join(f"{n} {what}" for what, n in self.changes.items() if n)
        if not self.created:
            return f"{where}: no new version, v{self.version} has the same content ({changed})"
        stats = self.stats or {}
        text = (
            f"{where}: committed v{self.version} ({changed}; hashed "
            f"{stats.get('hashed_files', 0)} files, sent {stats.get('chunks_sent', 0)} "
            f"chunks, {format_size(stats.get('bytes_sent', 0))})"
        )
        if self.moved_on:
            text += f"; {self._meanwhile()}"
        return text

    def _meanwhile(self) -> str:
        assert self.version is not None
        first, last = (0 if self.base is None else self.base + 1), self.version - 1
        span = f"v{first}" if first == last else f"v{first}..v{last}"
        based = "no version" if self.base is None else f"v{self.base}"
        return f"based on {based}: {span} {'was' if first == last else 'were'} logged meanwhile"


class Committer:
    """Commits snapshots of staging areas to the store of ``client``."""

    def __init__(self, client: Client):
        self.client = client

    def send(
        self, area: StagingArea, snapshot: Snapshot, options: CommitOptions
    ) -> tuple[CommitReport, Manifest | None]:
        """Commit ``snapshot`` (blocking; touches nothing of the area but its key and type).
        Returns the report and, on success, the version's manifest (the new base)."""
        key = area.key
        report = CommitReport(key.collection, key.short, snapshot.changes.counts(), snapshot.base)
        path = ArtifactPath(key.entity, key.project, key.artifact)
        try:
            result, stats = self.client.put(
                path,
                area.type,
                snapshot.sources,
                snapshot.entries,
                progress=False,
                base=snapshot.base,
                description=options.description,
                aliases=list(options.aliases),
            )
        except Exception as exc:
            report.error = str(exc) or type(exc).__name__
            log.error("%s", report.text())
            log.debug("traceback", exc_info=exc)
            return report, None
        version = result.version
        report.version, report.created, report.stats = version.number, result.created, asdict(stats)
        report.moved_on = result.created and (
            result.moved_on or (snapshot.base is None and (version.number or 0) > 0)
        )
        log.info("%s", report.text())
        try:
            _, manifest = self.client.backend.manifest(version.path)
        except Exception as exc:  # committed; the area keeps its changes until the next commit
            log.warning(
                "%s: cannot read back %s (%s); the staging area keeps its changes, "
                "the next commit finds them committed",
                key.short,
                version.path,
                exc,
            )
            return report, None
        return report, manifest


def finish(
    area: StagingArea, snapshot: Snapshot, report: CommitReport, manifest: Manifest | None
) -> None:
    """Settle the area after a commit of ``snapshot``: the version is its new base, or (the
    commit failed) nothing changes."""
    if manifest is not None and report.version is not None:
        snapshots.committed(area, snapshot, manifest, report.version)
    else:
        snapshots.released(area, snapshot)


def unchanged(area: StagingArea) -> CommitReport:
    """The report of a commit that had nothing to do."""
    return CommitReport(area.key.collection, area.key.short, {}, area.base)


def commit_all(committer: Committer, areas: StagingAreas) -> list[CommitReport]:
    """Commit every area with changes, on the calling thread (the daemon has stopped
    serving: it is unmounted). An area without changes loses its state on disk; a failed
    commit is kept for the next mount to do (``pending``)."""
    reports = []
    for area in areas.stored():
        try:
            report = _commit_at_exit(committer, area)
        except Exception as exc:  # its staged data stays on disk, for the next mount
            log.exception("committing %s failed", area.key.short)
            report = CommitReport(
                area.key.collection,
                area.key.short,
                {},
                area.base,
                error=f"{type(exc).__name__}: {exc}",
            )
        if report is not None:
            reports.append(report)
    return reports


def _commit_at_exit(committer: Committer, area: StagingArea) -> CommitReport | None:
    options = CommitOptions.from_json(area.pending or {})
    snapshot = snapshots.take(area)
    if not snapshot.changes:
        snapshots.released(area, snapshot)
        area.clear()
        return None
    report, manifest = committer.send(area, snapshot, options)
    finish(area, snapshot, report, manifest)
    if not report.ok:
        area.set_pending(asdict(options))
    return report
