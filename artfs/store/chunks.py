"""Chunks: "which do you lack?", verified and authorized upload, read, and the chunk side
of commits and deletions.

Concurrency with garbage collection (docs/FORMAT.md, "Garbage collection"): a chunk row is
``uploading``, ``live`` or ``deleting``. Every answer that lets a client rely on a chunk
(present in ``missing``, claimed by an upload, used by a commit) sets ``touched_at`` to now,
and gc only takes chunks no live version uses *and* untouched for its grace period. An
upload of a chunk gc is deleting is refused as ``Unavailable`` (retry).

A transaction that changes several chunk rows locks them first, in ascending id order
(``lock_chunks``): on PostgreSQL, commits, uploads, deletions and gc sharing chunks then
wait for each other in turn, never in a cycle (a deadlock would fail one of them).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

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
from .access import Principal, entity_ids
from .blobs import BlobStore, Data
from .db import Database
from .lookup import DELETED, batched, insert_missing, now
from .projects import Projects
from .schema import artifacts, chunk_claims, chunks, projects, version_chunks, versions

LIVE = "live"
UPLOADING = "uploading"
DELETING = "deleting"


def visible_chunk_ids(
    conn: Connection, caller: Principal, ids: Sequence[int], anonymous_read: bool
) -> set[int]:
    """Which of these chunks the caller can already read, or has uploaded itself."""
    if caller.is_admin:
        return set(ids)
    mine = entity_ids(conn, caller)
    readable: sa.ColumnElement[bool] = projects.c.entity_id.in_(list(mine)) if mine else sa.false()
    if caller.anonymous:
        readable = sa.and_(projects.c.visibility == "public", sa.literal(anonymous_read))
    else:
        readable = sa.or_(readable, projects.c.visibility.in_(("public", "open")))
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

    def __init__(self, db: Database, blobs: BlobStore, projects: Projects):
        self.db = db
        self.blobs = blobs
        self.projects = projects

    def missing_chunks(self, caller: Principal, digests: Sequence[str]) -> list[str]:
        """The digests the caller must upload: absent, or not visible to the caller."""
        wanted = sorted({check_digest(d) for d in digests})
        present: dict[str, int] = {}
        # Anonymous callers cannot upload, so they need no fence against gc (and no write lock).
        transaction = self.db.read() if caller.anonymous else self.db.write(durable=False)
        with transaction as conn:
            for part in batched(wanted):
                query = sa.select(chunks.c.digest, chunks.c.id).where(
                    chunks.c.digest.in_(part), chunks.c.state == LIVE
                )
                present.update((digest, id_) for digest, id_ in conn.execute(query))
            visible = visible_chunk_ids(
                conn, caller, list(present.values()), self.projects.anonymous_read
            )
            if not caller.anonymous:
                touch_chunks(conn, sorted(visible))
        return [d for d in wanted if present.get(d) not in visible]

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
            rows = _chunk_rows(conn, digests)
            busy = [d for d, r in rows.items() if r.state == DELETING]
            if busy:
                raise Unavailable("the store is busy with these chunks; retry shortly")
            new = sorted(set(digests) - rows.keys())
            if new:
                fresh = {"size": 0, "state": UPLOADING, "touched_at": now()}
                insert_missing(conn, chunks, [{"digest": d, **fresh} for d in new])
            touch_chunks(conn, [r.id for r in rows.values()])
            ids = {d: r.id for d, r in _chunk_rows(conn, digests).items()}
        stored: list[tuple[int, bool]] = []  # (size, newly written) per item
        for digest, data in items:
            row = rows.get(digest)
            if row is None or row.state == UPLOADING or not self.blobs.exists(digest):
                stored.append((self.blobs.put(digest, data), True))
            else:
                stored.append((verify_stream(digest, data), False))
        if any(written for _, written in stored):
            self.blobs.sync()  # durable before any row says live
        with self.db.write(durable=False) as conn:
            lock_chunks(conn, ids.values())
            conn.execute(
                chunks.update()
                .where(chunks.c.id == sa.bindparam("chunk"), chunks.c.state != DELETING)
                .values(state=LIVE, size=sa.bindparam("bytes"), touched_at=now()),
                [{"chunk": ids[d], "bytes": size} for d, (size, _) in zip(digests, stored)],
            )
            taken = _chunk_rows(conn, digests)
            gone = [d for d in digests if d not in taken or taken[d].state != LIVE]
            if gone:
                raise Unavailable(f"chunk {gone[0]} was garbage-collected during upload; retry")
            if not caller.is_admin:  # admins see every chunk: no claim needed
                claimed = sorted(set(ids.values()))
                claims = [
                    {"chunk_id": c, "entity_id": caller.id, "claimed_at": now()} for c in claimed
                ]
                insert_missing(conn, chunk_claims, claims)
                conn.execute(
                    chunk_claims.update()
                    .where(
                        chunk_claims.c.chunk_id.in_(claimed), chunk_claims.c.entity_id == caller.id
                    )
                    .values(claimed_at=now())
                )
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
                    chunks.c.digest == digest, chunks.c.state == LIVE
                )
            ).first()
            readable = row is not None and visible_chunk_ids(
                conn, caller, [row.id], self.projects.anonymous_read
            )
            if row is None or not readable:
                raise NotFound(f"chunk {digest} not found")
        return int(row.size)

    # -- what commits and deletions do inside their transactions ---------------------------

    def use(self, conn: Connection, caller: Principal, needed: Mapping[str, int]) -> set[int]:
        """The ids of the chunks a commit uses, each stored (``live``), usable by the caller
        and of the size its bytes were verified to have; touched now. Else ``MissingChunks``
        or ``InvalidManifest``."""
        known: list[int] = []
        for part in batched(sorted(needed)):
            query = sa.select(chunks.c.id).where(chunks.c.digest.in_(part))
            known += conn.execute(query).scalars()
        # locked: gc and deletions cannot mark these rows until this commit is done
        found = {r.digest: r for r in lock_chunks(conn, known) if r.state == LIVE}
        visible = visible_chunk_ids(
            conn, caller, [r.id for r in found.values()], self.projects.anonymous_read
        )
        missing = [d for d in sorted(needed) if d not in found or found[d].id not in visible]
        if missing:
            raise MissingChunks(missing)
        for digest, size in needed.items():
            if found[digest].size != size:
                raise InvalidManifest(
                    f"chunk {digest} is {found[digest].size} bytes, the manifest says {size}"
                )
        ids = {r.id for r in found.values()}
        touch_chunks(conn, sorted(ids))
        return ids

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
                    chunks.c.state == LIVE,
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
        """Remove the blobs of chunks marked ``deleting``, then their rows and claims;
        returns (chunks, bytes) removed. A crash in between leaves rows ``deleting``, which
        the next gc sweeps."""
        for row in doomed:
            self.blobs.delete(row.digest)
        with self.db.write() as conn:
            lock_chunks(conn, [r.id for r in doomed])
            for part in batched([r.id for r in doomed]):
                conn.execute(chunk_claims.delete().where(chunk_claims.c.chunk_id.in_(part)))
                conn.execute(
                    chunks.delete().where(chunks.c.id.in_(part), chunks.c.state == DELETING)
                )
        return len(doomed), sum(int(r.size) for r in doomed)


def _chunk_rows(conn: Connection, digests: Sequence[str]) -> dict[str, Row]:
    rows: dict[str, Row] = {}
    for part in batched(sorted(set(digests))):
        for row in conn.execute(sa.select(chunks).where(chunks.c.digest.in_(part))):
            rows[row.digest] = row
    return rows


def lock_chunks(conn: Connection, ids: Iterable[int]) -> list[Row]:
    """Lock chunk rows against concurrent changes, in ascending id order (see the module's
    docstring), and return them as they are now: id, digest, size, state. (SQLite runs one
    writer at a time and needs no row locks.)"""
    rows: list[Row] = []
    for part in batched(sorted(set(ids))):
        rows += conn.execute(
            sa.select(chunks.c.id, chunks.c.digest, chunks.c.size, chunks.c.state)
            .where(chunks.c.id.in_(part))
            .order_by(chunks.c.id)
            .with_for_update(key_share=True)
        )
    return rows


def touch_chunks(conn: Connection, ids: Sequence[int]) -> None:
    lock_chunks(conn, ids)
    for part in batched(sorted(ids)):
        conn.execute(chunks.update().where(chunks.c.id.in_(part)).values(touched_at=now()))
