"""Chunk operations of the service: "which do you lack?", verified upload, read.

Concurrency with garbage collection (docs/FORMAT.md, "Garbage collection"): a chunk row is
``uploading``, ``live`` or ``deleting``. Every answer that lets a client rely on a chunk
(present in ``missing``, claimed by an upload, used by a commit) sets ``touched_at`` to now,
and gc only takes chunks no live version uses *and* untouched for its grace period. An
upload of a chunk gc is deleting is refused as ``Unavailable`` (retry).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..core.digest import Hasher, check_digest
from ..core.errors import DigestMismatch, NotFound, Unauthenticated, Unavailable
from .access import Principal, entity_ids
from .blobs import BlobStore, Data, blocks
from .db import Database
from .lookup import DELETED, batched, now
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
    readable = projects.c.entity_id.in_(list(mine)) if mine else sa.false()
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


class ChunkOps:
    db: Database
    blobs: BlobStore
    anonymous_read: bool

    def missing_chunks(self, caller: Principal, digests: Sequence[str]) -> list[str]:
        """The digests the caller must upload: absent, or not visible to the caller."""
        wanted = sorted({check_digest(d) for d in digests})
        present: dict[str, int] = {}
        with self.db.write() as conn:
            for part in batched(wanted):
                query = sa.select(chunks.c.digest, chunks.c.id).where(
                    chunks.c.digest.in_(part), chunks.c.state == LIVE
                )
                present.update((digest, id_) for digest, id_ in conn.execute(query))
            visible = visible_chunk_ids(conn, caller, list(present.values()), self.anonymous_read)
            touch = sorted(visible)
            for part in batched(touch):
                conn.execute(chunks.update().where(chunks.c.id.in_(part)).values(touched_at=now()))
        return [d for d in wanted if present.get(d) not in visible]

    def put_chunk(self, caller: Principal, digest: str, data: Data) -> int:
        """Store a chunk after verifying its bytes; returns bytes written (0 when deduplicated).

        Bytes are verified even when the chunk is already stored, so an upload can only ever
        claim a chunk by proving it holds the content.
        """
        check_digest(digest)
        if caller.anonymous:
            raise Unauthenticated("authentication required to upload: pass an API key")
        with self.db.write() as conn:
            row = conn.execute(sa.select(chunks).where(chunks.c.digest == digest)).first()
            if row is not None and row.state == DELETING:
                raise Unavailable(f"chunk {digest} is being garbage-collected; retry shortly")
            if row is None:
                chunk_id = conn.execute(
                    chunks.insert().values(digest=digest, size=0, state=UPLOADING, touched_at=now())
                ).inserted_primary_key[0]
            else:
                chunk_id = row.id
                conn.execute(
                    chunks.update().where(chunks.c.id == chunk_id).values(touched_at=now())
                )
            write = row is None or row.state == UPLOADING or not self.blobs.exists(digest)
        size = self.blobs.put(digest, data) if write else _verify(digest, data)
        with self.db.write() as conn:
            updated = conn.execute(
                chunks.update()
                .where(chunks.c.id == chunk_id, chunks.c.state != DELETING)
                .values(state=LIVE, size=size, touched_at=now())
            ).rowcount
            if not updated:
                raise Unavailable(f"chunk {digest} was garbage-collected during upload; retry")
            conn.execute(
                chunk_claims.delete().where(
                    chunk_claims.c.chunk_id == chunk_id, chunk_claims.c.entity_id == caller.id
                )
            )
            conn.execute(
                chunk_claims.insert().values(
                    chunk_id=chunk_id, entity_id=caller.id, claimed_at=now()
                )
            )
        return size if write else 0

    def read_chunk(
        self, caller: Principal, digest: str, offset: int = 0, length: int | None = None
    ) -> Iterator[bytes]:
        """Stream a chunk the caller can read (unknown and invisible look the same)."""
        return self.open_chunk(caller, digest, offset, length)[1]

    def open_chunk(
        self, caller: Principal, digest: str, offset: int = 0, length: int | None = None
    ) -> tuple[int, Iterator[bytes]]:
        """``read_chunk`` plus the chunk's whole size, which a ranged HTTP answer states."""
        check_digest(digest)
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(chunks.c.id, chunks.c.size).where(
                    chunks.c.digest == digest, chunks.c.state == LIVE
                )
            ).first()
            if row is None or not visible_chunk_ids(conn, caller, [row.id], self.anonymous_read):
                raise NotFound(f"chunk {digest} not found")
        return row.size, self.blobs.iter_read(digest, offset, length)


def _verify(digest: str, data: Data) -> int:
    hasher, size = Hasher(), 0
    for block in blocks(data):
        hasher.update(block)
        size += len(block)
    if hasher.digest() != digest:
        raise DigestMismatch(f"upload of {digest} holds bytes with another digest; not stored")
    return size
