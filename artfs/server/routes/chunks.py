"""Chunk transfer: "which do you lack?", streamed verified uploads, ranged reads.

An upload is never buffered whole: the body is handed, as it arrives, to the store's
``put_chunks`` running on a worker thread, which hashes and writes each chunk to a temporary
file and keeps it only if its digest matches. Many small chunks travel in one request:
``POST /chunks`` with their bytes back to back and ``Artfs-Chunks: <digest>:<size>,...``.
"""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, Field
from starlette.requests import ClientDisconnect
from starlette.responses import Response, StreamingResponse

from ...core.errors import ArtfsError
from ..auth import ApiKey, Caller, StoreDep, get_store
from ..bodies import BodyReader, Frames
from ..ranges import Unsatisfiable, byte_range
from ..responses import JSONResponse, error_response
from ..routing import JSONRoute

router = APIRouter(prefix="/api/v1", tags=["chunks"], route_class=JSONRoute)
PROJECT_CHUNKS = "/projects/{entity}/{project}/chunks"
MAX_BATCH = 256  # chunks in one POST /chunks
MAX_QUERY = 10_000  # digests in one "which do you lack?"
BINARY_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


class DigestList(BaseModel):
    digests: list[str] = Field(max_length=MAX_QUERY)


@router.post("/chunks/missing")
def missing(caller: Caller, store: StoreDep, body: DigestList) -> dict[str, list[str]]:
    """The digests the caller must upload: absent, or not readable by the caller."""
    return {"missing": store.chunks.missing_chunks(caller, body.digests)}


def parse_batch(header: str) -> list[tuple[str, int]]:
    """``[(digest, size), ...]`` out of ``Artfs-Chunks: <digest>:<size>,...``."""
    items = []
    for part in header.split(","):
        digest, _, size = part.strip().rpartition(":")
        if not digest or not size.isdigit() or int(size) == 0:
            raise ArtfsError(
                f"malformed Artfs-Chunks entry {part[:90]!r}: expected <digest>:<size>"
            )
        items.append((digest, int(size)))
    if len(items) > MAX_BATCH:
        raise ArtfsError(f"at most {MAX_BATCH} chunks per request")
    return items


async def _upload(
    request: Request,
    key: str | None,
    entity: str,
    project: str,
    digest: str | None,
    batch: str = "",
) -> Response:
    """Authenticate, then hand the streamed body to ``put_chunks`` on a worker thread (which
    checks the caller may write into ``entity/project`` before it stores a byte): as one
    chunk (``digest``), or cut into the chunks a ``batch`` header says it holds."""
    store = get_store(request)
    body = BodyReader(request)

    def work() -> list[int]:
        caller = store.admin.authenticate(key)
        if digest is not None:
            return store.chunks.put_chunks(caller, entity, project, [(digest, body)])
        sizes = parse_batch(batch)
        length = request.headers.get("content-length")
        if length is not None and int(length) != sum(size for _, size in sizes):
            raise ArtfsError("the body's length is not the sum of the chunk sizes announced")
        frames = Frames(body)
        items = [(d, frames.take(size)) for d, size in sizes]
        stored = store.chunks.put_chunks(caller, entity, project, items)
        frames.end()
        return stored

    try:
        return JSONResponse({"stored": await anyio.to_thread.run_sync(work)})
    except ArtfsError:
        await body.drain()
        raise
    except ClientDisconnect:
        return error_response(400, "error", "the client went away during the upload")


@router.put(PROJECT_CHUNKS + "/{digest}", openapi_extra=BINARY_BODY)
async def put_chunk(
    entity: str, project: str, digest: str, request: Request, key: ApiKey
) -> Response:
    """Store one chunk for a version of the project; refused (and nothing kept) unless the
    caller may write there and the bytes hash to ``digest``."""
    return await _upload(request, key, entity, project, digest)


@router.post(PROJECT_CHUNKS, openapi_extra=BINARY_BODY)
async def put_chunks(
    entity: str,
    project: str,
    request: Request,
    key: ApiKey,
    artfs_chunks: Annotated[str, Header()],
) -> Response:
    """Store several chunks sent back to back, of the sizes ``Artfs-Chunks`` announces."""
    return await _upload(request, key, entity, project, None, artfs_chunks)


@router.get("/chunks/{digest}", response_class=StreamingResponse)
def get_chunk(
    caller: Caller,
    store: StoreDep,
    digest: str,
    range: Annotated[str | None, Header()] = None,
) -> Response:
    """A chunk's bytes, or one ``Range`` of them."""
    size = store.chunks.chunk_size(caller, digest)
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(size)}
    try:
        wanted = byte_range(range, size)
    except Unsatisfiable:
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    if wanted is None:
        blocks = store.chunks.read_chunk(caller, digest)
        return StreamingResponse(blocks, media_type="application/octet-stream", headers=headers)
    offset, length = wanted
    headers["Content-Length"] = str(length)
    headers["Content-Range"] = f"bytes {offset}-{offset + length - 1}/{size}"
    blocks = store.chunks.read_chunk(caller, digest, offset, length)
    return StreamingResponse(
        blocks, status_code=206, media_type="application/octet-stream", headers=headers
    )
