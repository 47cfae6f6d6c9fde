"""Chunk transfer: "which do you lack?", streamed verified uploads, ranged reads.

An upload is never buffered whole: the body is handed, as it arrives, to the store's
``put_chunk`` running on a worker thread, which hashes and writes it to a temporary file
and keeps it only if the digest matches.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, Field
from starlette.requests import ClientDisconnect
from starlette.responses import Response, StreamingResponse

from ...core.errors import ArtfsError
from ...store.access import Principal
from ...store.service import Store
from ..auth import api_key, get_store, principal
from ..ranges import Unsatisfiable, byte_range
from ..responses import error_response

router = APIRouter(prefix="/api/v1/chunks", tags=["chunks"])
HANDOVER_BYTES = 1 << 20  # the body reaches the worker thread in blocks of about this size
MAX_QUERY = 10_000


class DigestList(BaseModel):
    digests: list[str] = Field(max_length=MAX_QUERY)


@router.post("/missing")
def missing(
    body: DigestList, caller: Principal = Depends(principal), store: Store = Depends(get_store)
) -> dict[str, list[str]]:
    """The digests the caller must upload: absent, or not readable by the caller."""
    return {"missing": store.missing_chunks(caller, body.digests)}


class BodyReader:
    """The request body as a blocking iterator, for code on a worker thread started by
    ``anyio.to_thread``; blocks are fetched from the event loop as they are consumed."""

    def __init__(self, request: Request):
        self._stream = request.stream().__aiter__()
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        while block := anyio.from_thread.run(self._next):
            yield block

    async def _next(self) -> bytes:
        parts: list[bytes] = []
        size = 0
        while size < HANDOVER_BYTES and not self._done:
            try:
                piece = await self._stream.__anext__()
            except StopAsyncIteration:
                self._done = True
                break
            parts.append(piece)
            size += len(piece)
        return b"".join(parts)

    async def drain(self) -> None:
        """Read what is left, so a refusal reaches a client still sending its body."""
        while await self._next():
            pass


@router.put(
    "/{digest}",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def put_chunk(
    digest: str, request: Request, key: str | None = Depends(api_key)
) -> dict[str, object]:
    """Store a chunk; refused (and nothing kept) unless the bytes hash to ``digest``."""
    store: Store = request.app.state.store
    body = BodyReader(request)
    try:
        caller = await anyio.to_thread.run_sync(store.authenticate, key)
        stored = await anyio.to_thread.run_sync(store.put_chunk, caller, digest, body)
    except ArtfsError:
        await body.drain()
        raise
    except ClientDisconnect:
        return error_response(400, "error", "the client went away during the upload")
    return {"digest": digest, "stored": stored}


@router.get("/{digest}", response_class=StreamingResponse)
def get_chunk(
    digest: str,
    range: str | None = Header(None),  # noqa: A002 - the header's name
    caller: Principal = Depends(principal),
    store: Store = Depends(get_store),
) -> Response:
    """A chunk's bytes, or one ``Range`` of them."""
    size, blocks = store.open_chunk(caller, digest)
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(size)}
    try:
        wanted = byte_range(range, size)
    except Unsatisfiable:
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    if wanted is None:
        return StreamingResponse(blocks, media_type="application/octet-stream", headers=headers)
    offset, length = wanted
    headers["Content-Length"] = str(length)
    headers["Content-Range"] = f"bytes {offset}-{offset + length - 1}/{size}"
    blocks = store.read_chunk(caller, digest, offset, length)
    return StreamingResponse(
        blocks, status_code=206, media_type="application/octet-stream", headers=headers
    )
