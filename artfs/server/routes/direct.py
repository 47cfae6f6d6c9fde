"""Presigned URLs: chunk bytes travel between clients and the bucket, the server checks access
and records (``store.direct``; docs/OPERATIONS.md, "Several servers and presigned URLs").

Every answer says ``direct``: false when the store's chunks are not in a bucket (the client
then streams them through ``/chunks``), else true, with the URLs and their lifetime. Reads:
``POST /chunks/urls``. Uploads, for a project: ``POST .../chunks/uploads`` (a PUT URL per
chunk, and the headers to send with it), then ``POST .../chunks/complete`` once the PUTs
are done.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ...core.digest import MAX_CHUNK_BYTES
from ...core.errors import ArtfsError
from .. import metrics
from ..auth import Caller, StoreDep
from .chunks import MAX_BATCH, PROJECT_CHUNKS

router = APIRouter(prefix="/api/v1", tags=["chunks"])
MAX_URLS = 1000  # download URLs in one request
Digest = Annotated[str, Field(max_length=80)]
NOT_DIRECT = {"direct": False}


class DigestBatch(BaseModel):
    digests: list[Digest] = Field(max_length=MAX_URLS)


class ChunkSpec(BaseModel):
    digest: Digest
    size: int = Field(ge=1, le=MAX_CHUNK_BYTES)


class UploadBatch(BaseModel):
    chunks: list[ChunkSpec] = Field(max_length=MAX_BATCH)


class StagedChunk(ChunkSpec):
    upload: str = Field(max_length=64)


class CompleteBatch(BaseModel):
    chunks: list[StagedChunk] = Field(max_length=MAX_BATCH)


@router.post("/chunks/urls")
def chunk_urls(caller: Caller, store: StoreDep, body: DigestBatch) -> dict[str, Any]:
    """A GET URL for each of these chunks the caller may read (the others are left out)."""
    direct = store.direct
    if direct is None:
        return NOT_DIRECT
    urls = direct.download_urls(caller, body.digests)
    metrics.PRESIGNED_URLS.labels("GET").inc(len(urls))
    return {"direct": True, "expires_in": direct.presigner.ttl, "urls": urls}


@router.post(PROJECT_CHUNKS + "/uploads")
def upload_urls(
    entity: str, project: str, caller: Caller, store: StoreDep, body: UploadBatch
) -> dict[str, Any]:
    """A PUT URL (to a staging object) per chunk of a version of the project, if the caller
    may write there."""
    direct = store.direct
    if direct is None:
        return NOT_DIRECT
    items = [(c.digest, c.size) for c in body.chunks]
    uploads = [asdict(u) for u in direct.upload_urls(caller, entity, project, items)]
    metrics.PRESIGNED_URLS.labels("PUT").inc(len(uploads))
    return {"direct": True, "expires_in": direct.presigner.ttl, "uploads": uploads}


@router.post(PROJECT_CHUNKS + "/complete")
def complete_uploads(
    entity: str, project: str, caller: Caller, store: StoreDep, body: CompleteBatch
) -> dict[str, list[int]]:
    """Take chunks PUT to their upload URLs in: each chunk's size."""
    direct = store.direct
    if direct is None:
        raise ArtfsError("this server keeps no chunks in a bucket: upload them to it directly")
    items = [(c.digest, c.size, c.upload) for c in body.chunks]
    stored = direct.complete(caller, entity, project, items)
    metrics.DIRECT_UPLOADS.inc(len(stored))
    metrics.DIRECT_UPLOAD_BYTES.inc(sum(stored))
    return {"stored": stored}
