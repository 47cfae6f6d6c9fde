"""Checking chunks that clients sent straight to the bucket (docs/FORMAT.md, "Chunk states").

The server never saw those bytes, so their row says ``unverified`` until it has read them
from the bucket and hashed them: on demand, the moment someone other than their uploader
would rely on them, and in the background (``artfs gc``). A chunk whose bytes match becomes
``live``. One that does not (or whose object is gone) is deleted and becomes ``lost``: it
counts as missing, its claims go, and the next upload of it restores it.

Every change of a chunk's object other than a verified upload through the server happens
under its row's lock (``SELECT ... FOR UPDATE``; SQLite's write lock), so the check deletes
only the object it read: if the ETag changed meanwhile, a verified upload replaced it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from sqlalchemy.engine import Row

from ..core.digest import verify_stream
from ..core.errors import DigestMismatch, NotFound
from .db import Database
from .s3blobs import S3BlobStore
from .schema import chunk_claims, chunks
from .states import LIVE, LOST, UNVERIFIED

VERIFY_THREADS = 8
log = logging.getLogger(__name__)


class Verifier:
    """Checks chunks; whoever relies on one touches it (a check alone keeps nothing alive)."""

    def __init__(self, db: Database, blobs: S3BlobStore):
        self.db = db
        self.blobs = blobs

    def verify(self, rows: Sequence[Row]) -> set[str]:
        """Check these ``unverified`` chunks (rows with ``id``, ``digest``, ``size``), several
        at a time; the digests that are ``live`` afterwards."""
        with ThreadPoolExecutor(max_workers=VERIFY_THREADS) as pool:
            results = list(pool.map(self._verify_one, rows))
        return {row.digest for row, ok in zip(rows, results) if ok}

    def backlog(self, seconds: float) -> tuple[int, int, int]:
        """Check the oldest ``unverified`` chunks for about ``seconds``; returns (verified,
        lost, still unverified)."""
        deadline = time.monotonic() + seconds
        verified = lost = 0
        while time.monotonic() < deadline:
            with self.db.read() as conn:
                rows = conn.execute(
                    sa.select(chunks.c.id, chunks.c.digest, chunks.c.size)
                    .where(chunks.c.state == UNVERIFIED)
                    .order_by(chunks.c.id)
                    .limit(VERIFY_THREADS * 4)
                ).all()
            if not rows:
                break
            good = self.verify(rows)
            verified += len(good)
            lost += len(rows) - len(good)
        with self.db.read() as conn:
            left = conn.execute(
                sa.select(sa.func.count()).where(chunks.c.state == UNVERIFIED)
            ).scalar_one()
        return verified, lost, int(left)

    def _verify_one(self, row: Row) -> bool:
        etag = None
        try:
            # One byte more than the row says, so an object of another length cannot match.
            etag, blocks = self.blobs.read_object(self.blobs.key(row.digest), 0, row.size + 1)
            verify_stream(row.digest, blocks)
        except (DigestMismatch, NotFound):
            return self._lose(row, etag)
        with self.db.write(durable=False) as conn:
            conn.execute(
                chunks.update()
                .where(chunks.c.id == row.id, chunks.c.state == UNVERIFIED)
                .values(state=LIVE)
            )
            state = conn.execute(sa.select(chunks.c.state).where(chunks.c.id == row.id)).scalar()
        return state == LIVE

    def _lose(self, row: Row, etag: str | None) -> bool:
        """Delete the object that failed its check and mark the chunk ``lost``, unless it
        changed meanwhile; whether the chunk is ``live`` after all."""
        with self.db.write(durable=False) as conn:
            state = conn.execute(
                sa.select(chunks.c.state).where(chunks.c.id == row.id).with_for_update()
            ).scalar()
            if state != UNVERIFIED:
                return state == LIVE
            found = self.blobs.head(self.blobs.key(row.digest))
            if found is not None and found[1] != etag:
                return False  # replaced by a verified upload: checked again next time
            self.blobs.delete(row.digest)
            conn.execute(chunks.update().where(chunks.c.id == row.id).values(state=LOST))
            conn.execute(chunk_claims.delete().where(chunk_claims.c.chunk_id == row.id))
        log.warning("chunk %s sent straight to the bucket failed verification; deleted", row.digest)
        return False
