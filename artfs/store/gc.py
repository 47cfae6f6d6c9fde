"""Garbage collection: expire versions past their TTL, then mark and sweep unused chunks.

Deleting a version removes the chunks only it used at once (``Versions.delete_version``);
gc is the backstop for what a crash interrupted, and collects uploads no commit used. On a
store whose clients upload straight to the bucket, it also checks unverified chunks (for up
to ``VERIFY_SECONDS``; the report says how many are left) and removes staged uploads never
completed.
Mark: in one write transaction, chunks that no live version uses and that nobody touched
within the grace period become ``deleting``. Sweep: their blobs are removed, then their
rows. Blobs with no row at all (a crash between write and record) and abandoned partial
uploads go once they are older than the grace period. A crash anywhere leaves rows in
``deleting``, which the next run finishes.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Row

from ..core.errors import PermissionDenied
from ..core.records import GcReport
from .access import Principal
from .blobs import BlobStore
from .chunks import Chunks, lock_chunks
from .db import Database
from .lookup import COMMITTED, batched, now, version_info
from .schema import chunk_claims, chunks, version_chunks, versions
from .states import DELETING, LOST, STORED, UPLOADING
from .verify import Verifier
from .versions import delete_version_rows

DEFAULT_GRACE_S = 24 * 3600
VERIFY_SECONDS = 300.0  # of checking unverified chunks per gc (the rest wait for the next)


class Collector:
    """Garbage collection: the backstop for what a crash interrupted, and expiry."""

    def __init__(
        self, db: Database, blobs: BlobStore, chunks: Chunks, verifier: Verifier | None = None
    ):
        self.db = db
        self.blobs = blobs
        self.chunks = chunks
        self.verifier = verifier

    def gc(self, caller: Principal, grace: float = DEFAULT_GRACE_S) -> GcReport:
        if not caller.is_admin:
            raise PermissionDenied("garbage collection needs an administrator")
        report = GcReport()
        started = now()
        cutoff = started - grace
        self._expire_versions(started, report)
        if self.verifier is not None:
            checked = self.verifier.backlog(VERIFY_SECONDS)
            report.chunks_verified, report.chunks_lost, report.unverified_left = checked
        with self.db.write() as conn:
            # The candidates are locked first (in the order every writer locks chunk rows),
            # then the conditions are checked again on the locked rows: a chunk a commit
            # relied on meanwhile (touched_at now, or used by its version) is never marked.
            unused = sa.and_(
                chunks.c.state.in_((*STORED, UPLOADING, LOST)),
                chunks.c.touched_at < cutoff,
                ~sa.exists().where(version_chunks.c.chunk_id == chunks.c.id),
            )
            candidates: list[int] = list(
                conn.execute(sa.select(chunks.c.id).where(unused)).scalars()
            )
            lock_chunks(conn, candidates)
            for part in batched(candidates):
                conn.execute(
                    chunks.update().where(chunks.c.id.in_(part), unused).values(state=DELETING)
                )
            doomed = conn.execute(
                sa.select(chunks.c.id, chunks.c.digest, chunks.c.size).where(
                    chunks.c.state == DELETING
                )
            ).all()
            conn.execute(chunk_claims.delete().where(chunk_claims.c.claimed_at < cutoff))
        removed, freed = self.chunks.sweep(doomed)
        report.chunks_deleted += removed
        report.bytes_freed += freed
        self._sweep_orphans(cutoff, report)
        self.blobs.clean_tmp(cutoff)
        return report

    def _expire_versions(self, at: float, report: GcReport) -> None:
        """Delete the versions past their expiry (unless aliased), and the chunks only they
        used, as ``delete_version`` does."""
        doomed: list[Row] = []
        with self.db.write() as conn:
            expired = conn.execute(
                sa.select(versions.c.id).where(
                    versions.c.state == COMMITTED, versions.c.expires_at < at
                )
            ).scalars()
            for version_id in list(expired):
                info = version_info(conn, version_id)
                if info.aliases:
                    report.details.append(f"{info.path} expired but is aliased; kept")
                    continue
                doomed += self.chunks.release(conn, delete_version_rows(conn, version_id))
                report.versions_expired += 1
        removed, freed = self.chunks.sweep(doomed)
        report.chunks_deleted += removed
        report.bytes_freed += freed

    def _sweep_orphans(self, cutoff: float, report: GcReport) -> None:
        """Remove blobs that have no row, once older than the grace period. Each batch is
        looked up again and deleted inside a write transaction: an upload commits its row
        before it writes its blob, so on SQLite (one writer) a blob uploaded again meanwhile
        is always kept; on PostgreSQL only a row committed between the lookup and the delete
        of its batch is missed."""
        listed = {d: s for d, m, s in self.blobs.list() if m < cutoff}
        for part in batched(sorted(listed)):
            with self.db.write() as conn:
                known = set(
                    conn.execute(sa.select(chunks.c.digest).where(chunks.c.digest.in_(part)))
                    .scalars()
                    .all()
                )
                for digest in part:
                    if digest not in known:
                        self.blobs.delete(digest)
                        report.chunks_deleted += 1
                        report.bytes_freed += listed[digest]
