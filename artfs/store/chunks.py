"""Chunks: "which do you lack?", verified and authorized upload, read, and the chunk side
of commits and deletions.

Concurrency with garbage collection (docs/FORMAT.md, "Garbage collection"): a chunk row is
``uploading``, ``unverified``, ``live``, ``lost`` or ``deleting`` (``states``). Every answer
that lets a client rely on a chunk (present in ``missing``, claimed by an upload, used by a
commit) sets ``touched_at`` to now, and gc only takes chunks no live version uses *and*
untouched for its grace period. An upload of a chunk gc is deleting is refused as
``Unavailable`` (retry).

An ``unverified`` chunk (sent straight to the bucket: ``direct``) counts without a check only
for the callers that uploaded it (its claims); anyone else's "which do you lack?" or commit
has the ``Verifier`` check it first.

A transaction that changes several chunk rows locks them first, in ascending id order
(``lock_chunks``): on PostgreSQL, commits, uploads, deletions and gc sharing chunks then
wait for each other in turn, never in a cycle (a deadlock would fail one of them).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from ..core.digest import check_digest, verify_stream
from ..core.errors import (
    InvalidManifest,
    MissingChunks,
    NotFound,
    Unauthenticated,
    Unavailable,
)
from .access import Principal, readable_projects
from .blobs import BlobStore, Data
from .db import Database
from .lookup import DELETED, batched, insert_missing, now
from .projects import Projects
from .schema import artifacts, chunk_claims, chunks, projects, version_chunks, versions
from .states import DELETING, LIVE, LOST, STORED, UNVERIFIED, UPLOADING
from .verify import Verifier

VERIFY_ON_DEMAND_BYTES = 256 << 20  # read from the bucket for one "which do you lack?"


def visible_chunk_ids(
    conn: Connection, caller: Principal, ids: Sequence[int], anonymous_read: bool
) -> set[int]:
    """Which of these chunks the caller can already read, or has uploaded itself."""
    if caller.is_admin:
        return set(ids)
    readable = readable_projects(conn, caller, anonymous_read)
    seen: set[int] = set()
    for part in batched(list(ids)):
        via_versions = (
            sa.select(version_chunks.c.chunk_id)
            .join(versions, versions.c.id == version_chunks.c.version_id)
            .join(artifacts, artifacts.c.id == versions.c.artifact_id)
            .join(projects, projects.c.id == artifacts.c.project_id)
            .where(version_chunks.c.chunk_id.in_(part), versions.c.state != DELETED, readable)
        )
        seen.update(conn.execute(via_versions).scalars())
        if caller.id is not None:
            claimed = sa.select(chunk_claims.c.chunk_id).where(
                chunk_claims.c.chunk_id.in_(part), chunk_claims.c.entity_id == caller.id
            )
            seen.update(conn.execute(claimed).scalars())
    return seen


class Chunks:
    """The chunks of a store: their rows here, their bytes in the blob store."""

    def __init__(
        self, db: Database, blobs: BlobStore, projects: Projects, verifier: Verifier | None = None
    ):
        self.db = db
        self.blobs = blobs
        self.projects = projects
        self.verifier = verifier  # for stores whose clients may upload straight to the bucket

    def missing_chunks(self, caller: Principal, digests: Sequence[str]) -> list[str]:
        """The digests the caller must upload: absent, not visible to the caller, or
        unverified and not the caller's own upload, unless checked now (up to
        ``VERIFY_ON_DEMAND_BYTES``; the rest are answered missing)."""
        wanted = sorted({check_digest(d) for d in digests})
        # Anonymous callers cannot upload, so they need no fence against gc (and no write lock).
        transaction = self.db.read() if caller.anonymous else self.db.write(durable=False)
        with transaction as conn:
            present, unchecked = self._visible(conn, caller, wanted, STORED)
            if not caller.anonymous:
                touch_chunks(conn, sorted(r.id for r in present.values()))
        checked = self._check([] if caller.anonymous else unchecked)
        relied = present.keys() - {r.digest for r in unchecked} | checked
        return [d for d in wanted if d not in relied]

    def vouch(self, caller: Principal, entity: str, project: str, digests: Sequence[str]) -> None:
        """Check the unverified chunks a commit by the caller into ``entity/project`` would
        rely on without having uploaded them (up to ``VERIFY_ON_DEMAND_BYTES``); called
        before the commit's transaction, which then finds them live (or missing). Only for
        callers who may write there: nobody else makes the server read the bucket."""
        if self.verifier is None or caller.anonymous:
            return
        with self.db.read() as conn:
            self.projects.writable(conn, caller, entity, project, create=False)
            _, unchecked = self._visible(conn, caller, sorted(set(digests)), (UNVERIFIED,))
        self._check(unchecked)

    def _visible(
        self, conn: Connection, caller: Principal, digests: Sequence[str], states: Sequence[str]
    ) -> tuple[dict[str, Row], list[Row]]:
        """The chunks in ``states`` the caller can see, by digest, and those of them that are
        unverified and not the caller's own upload (which it may rely on once checked)."""
        found: dict[str, Row] = {}
        for part in batched(digests):
            query = sa.select(chunks.c.digest, chunks.c.id, chunks.c.size, chunks.c.state).where(
                chunks.c.digest.in_(part), chunks.c.state.in_(states)
            )
            found.update((r.digest, r) for r in conn.execute(query))
        visible = visible_chunk_ids(
            conn, caller, [r.id for r in found.values()], self.projects.anonymous_read
        )
        seen = {d: r for d, r in found.items() if r.id in visible}
        unverified = [r for r in seen.values() if r.state == UNVERIFIED]
        own = claimed_ids(conn, caller, [r.id for r in unverified])
        return seen, [r for r in unverified if r.id not in own]

    def _check(self, rows: Sequence[Row]) -> set[str]:
        """Verify these unverified chunks, the first ``VERIFY_ON_DEMAND_BYTES`` of them; the
        digests found good (the rest stay unverified: missing to whoever asked)."""
        affordable: list[Row] = []
        budget = VERIFY_ON_DEMAND_BYTES
        for row in rows:
            budget -= row.size
            if budget < 0:
                break
            affordable.append(row)
        return self.verifier.verify(affordable) if self.verifier and affordable else set()

    def put_chunks(
        self, caller: Principal, entity: str, project: str, items: Sequence[tuple[str, Data]]
    ) -> list[int]:
        """Store chunks for a version of ``entity/project`` after verifying their bytes;
        returns each chunk's verified size.

        The caller must be allowed to write there before a byte is stored. Bytes are
        verified even when a chunk is already stored, so an upload can only ever claim a
        chunk by proving it holds the content. The rows are claimed (``uploading``, touched
        now) before any blob is written, which fences gc, and turn ``live`` once the blobs
        are in place: two transactions per batch, whatever its length.
        """
        if caller.anonymous:
            raise Unauthenticated("authentication required to upload: pass an API key")
        digests = [check_digest(d) for d, _ in items]
        with self.db.write(durable=False) as conn:
            self.projects.writable(conn, caller, entity, project, create=False)
            rows = chunk_rows(conn, digests)
            busy = [d for d, r in rows.items() if r.state == DELETING]
            if busy:
                raise Unavailable("the store is busy with these chunks; retry shortly")
            new = sorted(set(digests) - rows.keys())
            if new:
                fresh = {"size": 0, "state": UPLOADING, "touched_at": now()}
                insert_missing(conn, chunks, [{"digest": d, **fresh} for d in new])
            lost = [r.id for r in rows.values() if r.state == LOST]
            if lost:  # this upload restores them: off-limits to the verifier from now on
                conn.execute(
                    chunks.update()
                    .where(chunks.c.id.in_(lost), chunks.c.state == LOST)
                    .values(state=UPLOADING)
                )
            touch_chunks(conn, [r.id for r in rows.values()])
            ids = {d: r.id for d, r in chunk_rows(conn, digests).items()}
            seen = visible_chunk_ids(
                conn, caller, [r.id for r in rows.values()], self.projects.anonymous_read
            )
        stored: list[tuple[int, bool]] = []  # (size, newly written) per item
        for digest, data in items:
            row = rows.get(digest)
            # Written unless verified bytes are in place: verified bytes replace unverified ones.
            # A chunk the caller cannot see is written again (the same bytes, atomically), so
            # that an upload takes as long whether or not someone else stores the content.
            if (
                row is None
                or row.state != LIVE
                or row.id not in seen
                or not self.blobs.exists(digest)
            ):
                stored.append((self.blobs.put(digest, data), True))
            else:
                stored.append((verify_stream(digest, data), False))
        if any(written for _, written in stored):
            self.blobs.sync()  # durable before any row says live
        with self.db.write(durable=False) as conn:
            lock_chunks(conn, list(ids.values()))
            # Not a row the verifier made lost meanwhile: it may have deleted what was written.
            conn.execute(
                chunks.update()
                .where(
                    chunks.c.id == sa.bindparam("chunk"),
                    chunks.c.state != DELETING,
                    chunks.c.state != LOST,
                )
                .values(state=LIVE, size=sa.bindparam("bytes"), touched_at=now()),
                [{"chunk": ids[d], "bytes": size} for d, (size, _) in zip(digests, stored)],
            )
            taken = chunk_rows(conn, digests)
            gone = [d for d in digests if d not in taken or taken[d].state != LIVE]
            if gone:
                raise Unavailable(f"chunk {gone[0]} was removed during the upload; retry")
            if not caller.is_admin:  # admins see every chunk: no claim needed
                claim_chunks(conn, caller, sorted(set(ids.values())))
        # The verified size whether or not the store had the bytes: the answer must not tell
        # a caller that someone else stored the same content.
        return [size for size, _ in stored]

    def read_chunk(
        self, caller: Principal, digest: str, offset: int = 0, length: int | None = None
    ) -> Iterator[bytes]:
        """Stream a chunk the caller can read (unknown and invisible look the same). The blob
        is opened before this returns, so a missing one fails here, not mid-stream."""
        self.chunk_size(caller, digest)
        return self.blobs.iter_read(digest, offset, length)

    def chunk_size(self, caller: Principal, digest: str) -> int:
        """The size of a chunk the caller can read, else ``NotFound``."""
        check_digest(digest)
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(chunks.c.id, chunks.c.size).where(
                    chunks.c.digest == digest, chunks.c.state.in_(STORED)
                )
            ).first()
            readable = row is not None and visible_chunk_ids(
                conn, caller, [row.id], self.projects.anonymous_read
            )
            if row is None or not readable:
                raise NotFound(f"chunk {digest} not found")
        return int(row.size)

    def readable_chunks(self, caller: Principal, digests: Sequence[str]) -> dict[str, int]:
        """The size of each of these chunks the caller can read; the others are left out
        (unknown and invisible look the same)."""
        wanted = sorted({check_digest(d) for d in digests})
        found: dict[str, tuple[int, int]] = {}
        with self.db.read() as conn:
            for part in batched(wanted):
                query = sa.select(chunks.c.digest, chunks.c.id, chunks.c.size).where(
                    chunks.c.digest.in_(part), chunks.c.state == LIVE
                )
                found.update((r.digest, (r.id, int(r.size))) for r in conn.execute(query))
            ids = [id_ for id_, _ in found.values()]
            visible = visible_chunk_ids(conn, caller, ids, self.projects.anonymous_read)
        return {d: size for d, (id_, size) in found.items() if id_ in visible}

    def chunk_paths(self, caller: Principal, digests: Sequence[str]) -> dict[str, Path]:
        """The files holding exactly these chunks' bytes, for readers that read them in place
        (the embedded store is its own cache, docs/SEMANTICS.md "Reads"): only chunks the
        caller can read, and only where the blob store keeps plain files (not S3, not
        encrypted files). Chunks left out are read through ``read_chunk``."""
        found = {}
        for digest in self.readable_chunks(caller, digests):
            path = self.blobs.local_path(digest)
            if path is not None:
                found[digest] = path
        return found

    # -- what commits and deletions do inside their transactions ---------------------------

    def use(self, conn: Connection, caller: Principal, needed: Mapping[str, int]) -> set[int]:
        """The ids of the chunks a commit uses, each stored and verified (``live``) or the
        caller's own upload, usable by the caller and of the size its bytes were verified
        (or, unverified, checked by the bucket) to have; touched now. Else ``MissingChunks``
        or ``InvalidManifest``. (``vouch`` first, for the others' unverified chunks.)"""
        ids: list[int] = []
        for part in batched(sorted(needed)):
            ids += conn.execute(sa.select(chunks.c.id).where(chunks.c.digest.in_(part))).scalars()
        found: dict[str, Row] = {}
        for part in batched(sorted(ids)):
            # Locked until this commit is done, so gc and deletions cannot mark them; in the
            # order of ids, as every writer of many chunk rows does (no deadlocks), and for
            # update, as the touch below writes them (two share locks would wait on each other).
            rows = conn.execute(
                sa.select(chunks.c.id, chunks.c.digest, chunks.c.size, chunks.c.state)
                .where(chunks.c.id.in_(part), chunks.c.state.in_(STORED))
                .order_by(chunks.c.id)
                .with_for_update()
            )
            found.update((r.digest, r) for r in rows)
        visible = visible_chunk_ids(
            conn, caller, [r.id for r in found.values()], self.projects.anonymous_read
        )
        own = claimed_ids(conn, caller, [r.id for r in found.values() if r.state == UNVERIFIED])
        missing = [
            d
            for d in sorted(needed)
            if d not in found
            or found[d].id not in visible
            or (found[d].state == UNVERIFIED and found[d].id not in own)
        ]
        if missing:
            raise MissingChunks(missing)
        for digest, size in needed.items():
            if found[digest].size != size:
                raise InvalidManifest(
                    f"chunk {digest} is {found[digest].size} bytes, the manifest says {size}"
                )
        used = {r.id for r in found.values()}
        touch_chunks(conn, sorted(used))
        return used

    def release(self, conn: Connection, ids: Sequence[int]) -> list[Row]:
        """Mark ``deleting`` those of these chunks that no live version uses any more (a
        version was just deleted), and return them for ``sweep``.

        The rows are locked first: on PostgreSQL a commit that holds one (``use``) finishes
        before, and the next statement then sees its version; a commit that comes after
        finds the chunk ``deleting``, answers "missing chunks", and its client sends the
        chunk again. SQLite runs one writer at a time.
        """
        lock_chunks(conn, ids)
        for part in batched(sorted(ids)):
            conn.execute(
                chunks.update()
                .where(
                    chunks.c.id.in_(part),
                    chunks.c.state.in_((*STORED, LOST)),
                    ~sa.exists().where(version_chunks.c.chunk_id == chunks.c.id),
                )
                .values(state=DELETING)
            )
        return [
            row
            for part in batched(sorted(ids))
            for row in conn.execute(
                sa.select(chunks.c.id, chunks.c.digest, chunks.c.size).where(
                    chunks.c.id.in_(part), chunks.c.state == DELETING
                )
            )
        ]

    def sweep(self, doomed: Sequence[Row]) -> tuple[int, int]:
        """Remove chunks marked ``deleting``: blobs, then rows and claims, a batch at a time
        with the rows locked, and only rows still ``deleting`` by then. Two sweeps may hold
        one chunk (gc's and a deletion's): once the first removed it, the chunk may have been
        uploaded again under a new row, and the second must not delete that new blob.
        Returns (chunks, bytes) removed. A crash between the blobs and the rows leaves rows
        ``deleting``, which the next gc sweeps."""
        removed = freed = 0
        for part in batched(sorted(r.id for r in doomed)):
            with self.db.write() as conn:
                lock_chunks(conn, part)
                rows = conn.execute(
                    sa.select(chunks.c.id, chunks.c.digest, chunks.c.size).where(
                        chunks.c.id.in_(part), chunks.c.state == DELETING
                    )
                ).all()
                for row in rows:
                    self.blobs.delete(row.digest)
                ids = [r.id for r in rows]
                conn.execute(chunk_claims.delete().where(chunk_claims.c.chunk_id.in_(ids)))
                conn.execute(chunks.delete().where(chunks.c.id.in_(ids)))
            removed += len(rows)
            freed += sum(int(r.size) for r in rows)
        return removed, freed


def claimed_ids(conn: Connection, caller: Principal, ids: Sequence[int]) -> set[int]:
    """Which of these chunks the caller uploaded itself (holds a claim on)."""
    if caller.id is None:
        return set()
    found: set[int] = set()
    for part in batched(sorted(ids)):
        query = sa.select(chunk_claims.c.chunk_id).where(
            chunk_claims.c.chunk_id.in_(part), chunk_claims.c.entity_id == caller.id
        )
        found.update(conn.execute(query).scalars())
    return found


def claim_chunks(conn: Connection, caller: Principal, ids: Sequence[int]) -> None:
    """Record (or renew) that the caller uploaded these chunks: it may rely on them before a
    version of its own uses them, and on its own unverified uploads."""
    claims = [{"chunk_id": c, "entity_id": caller.id, "claimed_at": now()} for c in ids]
    insert_missing(conn, chunk_claims, claims)
    for part in batched(sorted(ids)):
        conn.execute(
            chunk_claims.update()
            .where(chunk_claims.c.chunk_id.in_(part), chunk_claims.c.entity_id == caller.id)
            .values(claimed_at=now())
        )


def chunk_rows(conn: Connection, digests: Sequence[str]) -> dict[str, Row]:
    rows: dict[str, Row] = {}
    for part in batched(sorted(set(digests))):
        for row in conn.execute(sa.select(chunks).where(chunks.c.digest.in_(part))):
            rows[row.digest] = row
    return rows


def lock_chunks(conn: Connection, ids: Sequence[int]) -> None:
    """Lock chunk rows in the order of their ids, as every writer of many of them does before
    it writes: an UPDATE alone locks rows in whatever order its plan visits them, and two
    such orders deadlock on PostgreSQL. (SQLite has one writer at a time.)"""
    for part in batched(sorted(ids)):
        locked = sa.select(chunks.c.id).where(chunks.c.id.in_(part)).order_by(chunks.c.id)
        conn.execute(locked.with_for_update())


def touch_chunks(conn: Connection, ids: Sequence[int]) -> None:
    lock_chunks(conn, ids)
    for part in batched(sorted(ids)):
        conn.execute(chunks.update().where(chunks.c.id.in_(part)).values(touched_at=now()))
