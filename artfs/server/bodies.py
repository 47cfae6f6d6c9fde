"""Request bodies streamed to blocking store code, never held whole in memory.

``BodyReader`` turns the ASGI body stream into a blocking iterator for a worker thread
started by ``anyio.to_thread``: each block is fetched from the event loop when the store
asks for it. ``Frames`` cuts a body of chunks sent back to back into one iterable per chunk.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import anyio
from starlette.requests import Request

from ..core.errors import ArtfsError

HANDOVER_BYTES = 1 << 20  # blocks reach the worker thread in about this size


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
