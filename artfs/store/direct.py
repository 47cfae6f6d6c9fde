"""Chunk bytes straight between clients and the bucket: the store checks access and hands out
presigned URLs (``Presigner``), the bytes never pass through the server.

Reads: a URL per chunk the caller may read. Uploads, for a project the caller may write into:
a PUT URL to a staging key of its own per chunk, never to the chunk's key (S3 overwrites, so a
URL there would let a member replace verified bytes). ``complete`` then checks each staged
object's size (HEAD) and:

- if no row has the digest yet, claims one (an insert only one racing transaction wins,
  holding the row until it commits), copies the object into place inside the bucket and
  records the chunk ``unverified``, with the caller's claim: its own commits may use it, and
  everyone else relies on it only once the ``Verifier`` checked it;
- if a row exists (someone else's upload), the staged bytes are read from the bucket and
  hashed: the caller proves it holds the content before it may rely on the chunk, and if the
  chunk in place is not verified yet, these checked bytes replace it (under the row's lock).

The staging object is then deleted; ``artfs gc`` removes staged uploads never completed.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from ..core.digest import MAX_CHUNK_BYTES, check_digest, verify_stream
from ..core.errors import (
    DigestMismatch,
    InvalidArgument,
    NotFound,
    Unauthenticated,
    Unavailable,
)
from .access import Principal
from .chunks import chunk_rows, claim_chunks, claimed_ids, visible_chunk_ids
from .db import Database
from .lookup import insert_new, now
from .presign import Presigner
from .projects import Projects
from .s3blobs import S3BlobStore
from .schema import chunks
from .states import DELETING, LIVE, STORED, UNVERIFIED, UPLOADING

_TOKEN = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class UploadUrl:
    digest: str
    upload: str  # names the staging object in ``complete``
    url: str
    headers: dict[str, str]  # to send with the PUT, exactly


class Direct:
    def __init__(
        self,
        db: Database,
        blobs: S3BlobStore,
        presigner: Presigner,
        projects: Projects,
    ):
        self.db = db
        self.blobs = blobs
        self.presigner = presigner
        self.projects = projects

    def download_urls(self, caller: Principal, digests: Sequence[str]) -> dict[str, str]:
        """A GET URL for each of these chunks the caller may read (the others are left out,
        as unknown and invisible chunks look the same)."""
        with self.db.read() as conn:
            found = chunk_rows(conn, [check_digest(d) for d in digests])
            stored = {d: r.id for d, r in found.items() if r.state in STORED}
            visible = visible_chunk_ids(
                conn, caller, list(stored.values()), self.projects.anonymous_read
            )
        return {d: self.presigner.get(d) for d, id_ in sorted(stored.items()) if id_ in visible}

    def upload_urls(
        self, caller: Principal, entity: str, project: str, items: Sequence[tuple[str, int]]
    ) -> list[UploadUrl]:
        """PUT URLs for chunks (digest, size) of a version of ``entity/project``; refused
        before any URL is made unless the caller may write there."""
        self._authorize(caller, entity, project)
        urls = []
        for digest, size in items:
            check_digest(digest)
            if not 0 < size <= MAX_CHUNK_BYTES:
                raise InvalidArgument(f"chunk {digest}: a size of 1 to {MAX_CHUNK_BYTES} bytes")
            token = secrets.token_hex(16)
            url, headers = self.presigner.put(self._staging(caller, digest, token), size)
            urls.append(UploadUrl(digest, token, url, headers))
        return urls

    def complete(
        self,
        caller: Principal,
        entity: str,
        project: str,
        items: Sequence[tuple[str, int, str]],
    ) -> list[int]:
        """Take the staged uploads (digest, size, upload) in; returns each chunk's size. A
        repeated ``complete`` finds the chunks already the caller's and answers the same."""
        self._authorize(caller, entity, project)
        return [self._complete(caller, digest, size, upload) for digest, size, upload in items]

    def _complete(self, caller: Principal, digest: str, size: int, upload: str) -> int:
        key = self._staging(caller, digest, upload)
        with self.db.read() as conn:
            row = chunk_rows(conn, [digest]).get(digest)
            if row is not None and row.state in STORED and claimed_ids(conn, caller, [row.id]):
                self.blobs.delete_object(key)
                return int(row.size)
        if row is not None and row.state == DELETING:
            raise Unavailable("the store is busy with this chunk; retry shortly")
        found = self.blobs.head(key)
        if found is None:
            raise NotFound(f"the upload of chunk {digest} never reached the bucket; send it again")
        if found[0] != size:
            self.blobs.delete_object(key)
            raise InvalidArgument(
                f"chunk {digest}: {found[0]} bytes reached the bucket, {size} were announced"
            )
        with self.db.write(durable=False) as conn:
            fresh = {"size": size, "state": UPLOADING, "touched_at": now()}
            new = insert_new(conn, chunks, digest=digest, **fresh)
            if new is not None:  # ours alone until this transaction ends
                self.blobs.adopt(key, digest)
                conn.execute(chunks.update().where(chunks.c.id == new).values(state=UNVERIFIED))
                claim_chunks(conn, caller, [new])
        if new is None:
            self._prove(caller, digest, size, key)
        self.blobs.delete_object(key)
        return size

    def _prove(self, caller: Principal, digest: str, size: int, key: str) -> None:
        """The chunk exists: check the staged bytes against the digest (reading them from the
        bucket), then let them replace bytes in place that are not verified."""
        try:
            verify_stream(digest, self.blobs.read_object(key, 0, size + 1)[1])
        except DigestMismatch:
            self.blobs.delete_object(key)
            raise DigestMismatch(f"the bytes uploaded for chunk {digest} do not match it") from None
        with self.db.write(durable=False) as conn:
            row = conn.execute(
                sa.select(chunks.c.id, chunks.c.state)
                .where(chunks.c.digest == digest)
                .with_for_update()
            ).first()
            if row is None or row.state == DELETING:
                raise Unavailable(f"chunk {digest} was removed during the upload; retry")
            if row.state != LIVE:
                self.blobs.adopt(key, digest)
            conn.execute(
                chunks.update()
                .where(chunks.c.id == row.id)
                .values(state=LIVE, size=size, touched_at=now())
            )
            claim_chunks(conn, caller, [row.id])

    def _authorize(self, caller: Principal, entity: str, project: str) -> None:
        if caller.anonymous or caller.id is None:
            raise Unauthenticated("authentication required to upload: pass an API key")
        with self.db.read() as conn:
            self.projects.writable(conn, caller, entity, project, create=False)

    def _staging(self, caller: Principal, digest: str, upload: str) -> str:
        if not _TOKEN.fullmatch(upload):
            raise InvalidArgument(f"malformed upload id {upload[:40]!r}")
        assert caller.id is not None
        return self.blobs.staging_key(caller.id, check_digest(digest), upload)
