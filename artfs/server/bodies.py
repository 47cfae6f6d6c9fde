"""Request bodies: chunk uploads streamed to blocking store code, never held whole in
memory; every other body bounded before it is read.

``BodyReader`` turns the ASGI body stream into a blocking iterator for a worker thread
started by ``anyio.to_thread``: each block is fetched from the event loop when the store
asks for it. ``Frames`` cuts a body of chunks sent back to back into one iterable per chunk.
``BodyLimit`` refuses (413) any other body larger than ``MAX_JSON_BODY``: those are JSON,
which FastAPI reads whole and parses in memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

import anyio
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.errors import ArtfsError
from ..core.records import MAX_JSON_BODY
from .responses import error_response

HANDOVER_BYTES = 1 << 20  # blocks reach the worker thread in about this size
# the streamed chunk uploads of routes/chunks.py: POST .../chunks and PUT .../chunks/<digest>
# (not .../chunks/uploads or .../chunks/complete, which are JSON)
_UPLOAD = {
    "POST": re.compile(r"/api/v1/projects/[^/]+/[^/]+/chunks\Z"),
    "PUT": re.compile(r"/api/v1/projects/[^/]+/[^/]+/chunks/blake3:[0-9a-f]{64}\Z"),
}


class BodyLimit:
    """ASGI middleware: a body announced or found larger than ``MAX_JSON_BODY`` answers
    413 and is not read further. Chunk uploads stream to disk and are bounded per chunk."""

    def __init__(self, app: ASGIApp, limit: int = MAX_JSON_BODY):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        upload = scope["type"] == "http" and _UPLOAD.get(scope["method"])
        if scope["type"] != "http" or (upload and upload.match(scope["path"])):
            await self.app(scope, receive, send)
            return
        too_large = f"the request body is larger than {self.limit} bytes"
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.limit:
            await error_response(413, "too_large", too_large)(scope, receive, send)
            return
        received = 0

        async def bounded() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise HTTPException(413, too_large)
            return message

        await self.app(scope, bounded, send)


class BodyReader:
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
        """Read what is left, so that a refusal reaches a client still sending its body."""
        while await self._next():
            pass


class Frames:
    """Consecutive pieces of a body, of announced sizes, each read only after the one before."""

    def __init__(self, blocks: Iterable[bytes]):
        self._blocks = iter(blocks)
        self._view: memoryview = memoryview(b"")

    def take(self, size: int) -> Iterator[memoryview]:
        while size:
            if not self._view:
                block = next(self._blocks, b"")
                self._view = memoryview(block)
                if not self._view:
                    raise ArtfsError("the body is shorter than the chunk sizes announced")
            piece, self._view = self._view[:size], self._view[size:]
            size -= len(piece)
            yield piece

    def end(self) -> None:
        if len(self._view) or len(next(self._blocks, b"")):
            raise ArtfsError("the body is longer than the chunk sizes announced")
