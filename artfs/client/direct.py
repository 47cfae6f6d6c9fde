"""Chunk bytes straight between this client and the bucket, through the presigned URLs the
server hands out after its access checks (docs/OPERATIONS.md, "Several servers and presigned
URLs"); the server is then off the data path.

Download URLs come in batches (``expect``: one round trip for the chunks a get is about to
read, else one per chunk) and are kept until shortly before they expire; a URL the bucket
refuses (expired, or signed with credentials since rotated) is asked for again once. Uploads:
URLs for a batch, one PUT each with exactly the headers the server names, then one
``complete``. A server whose chunks are not in a bucket says so on the first call, and this
client streams through it from then on. Everything read is verified by the caller, as always.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import requests
from cachetools import TLRUCache

from ..core.errors import ArtfsError, NotFound, PermissionDenied
from .transport import Concatenation, Peer, status_error

Ask = Callable[[str, dict[str, Any]], Any]  # POST to a path of the server's API, JSON back
MAX_URLS = 1000  # download URLs per request (the server's limit)
URL_MARGIN = 0.25  # of a URL's lifetime: a cached URL is not used that close to its end
KEPT_URLS = 100_000
_S3_CODE = re.compile(r"<Code>([A-Za-z0-9.]{1,64})</Code>")


def bucket_error(response: requests.Response, peer: str) -> ArtfsError:
    """An S3 error answer in one line: its status and the bucket's error code."""
    error = status_error(response, peer)
    code = _S3_CODE.search(response.text[:4096])
    return type(error)(f"{error} ({code.group(1)})") if code else error


def range_header(offset: int, length: int | None) -> dict[str, str]:
    """The ``Range`` of ``length`` bytes (None: to the end) from ``offset``; none for all."""
    if not offset and length is None:
        return {}
    last = "" if length is None else str(offset + length - 1)
    return {"Range": f"bytes={offset}-{last}"}


class DirectTransfers:
    def __init__(self, ask: Ask):
        self.ask = ask
        self.bucket = Peer("the bucket", bucket_error)
        self.available: bool | None = None  # None until the server said
        self._probe = threading.Lock()  # one question until then, not one per thread
        self._urls: TLRUCache[str, tuple[str, float]] = TLRUCache(
            KEPT_URLS, lambda _key, value, _now: value[1], timer=time.monotonic
        )
        self._lock = threading.Lock()

    def expect(self, digests: Sequence[str]) -> None:
        """Get the URLs of chunks about to be read, ``MAX_URLS`` per round trip."""
        with self._lock:
            wanted = [d for d in digests if d not in self._urls]
        for start in range(0, len(wanted), MAX_URLS):
            if self.available is False:
                return
            self._ask_urls(wanted[start : start + MAX_URLS])

    def _offer(self, path: str, body: dict[str, Any]) -> Any:
        """The server's answer to a request for URLs, None if it offers none (then never
        asked again)."""
        with self._probe if self.available is None else contextlib.nullcontext():
            if self.available is False:
                return None
            try:
                answer = self.ask(path, body)
            except NotFound:  # a server from before presigned URLs: it streams
                answer = {}
            self.available = bool(answer.get("direct"))
        return answer if self.available else None

    def _ask_urls(self, digests: Sequence[str]) -> None:
        answer = self._offer("/chunks/urls", {"digests": list(digests)})
        if answer is None:
            return
        lifetime = float(answer["expires_in"])
        until = time.monotonic() + lifetime * (1 - URL_MARGIN)
        with self._lock:
            for digest, url in answer["urls"].items():
                if digest in digests and isinstance(url, str):
                    self._urls[digest] = (url, until)

    def _url(self, digest: str, fresh: bool) -> str | None:
        """The chunk's URL (None if the server streams); ``NotFound`` if it has none for the
        caller."""
        with self._lock:
            kept = None if fresh else self._urls.get(digest)
        if kept is None:
            self._ask_urls([digest])
            if not self.available:
                return None
            with self._lock:
                kept = self._urls.get(digest)
        if kept is None:
            raise NotFound(f"chunk {digest} not found")
        return kept[0]

    def read(self, digest: str, offset: int, length: int | None) -> Iterator[bytes] | None:
        """A chunk's bytes (a range of them) from the bucket; None if the server streams."""
        if self.available is False:
            return None
        try:
            return self._read(digest, offset, length, fresh=False)
        except PermissionDenied:  # an expired URL, or one the bucket no longer honours
            return self._read(digest, offset, length, fresh=True)

    def _read(
        self, digest: str, offset: int, length: int | None, fresh: bool
    ) -> Iterator[bytes] | None:
        url = self._url(digest, fresh)
        if url is None:
            return None

        def open_at(received: int) -> requests.Response:
            rest = None if length is None else length - received
            headers = range_header(offset + received, rest)
            return self.bucket.send_once("GET", url, headers=headers, stream=True)

        return self.bucket.download(open_at, f"chunk {digest}")

    def upload(self, project_url: str, items: Sequence[tuple[str, memoryview]]) -> list[int] | None:
        """Send chunks for a version of the project whose chunk URL is ``project_url``;
        their sizes, or None if the server streams."""
        if self.available is False:
            return None
        chunks = [{"digest": d, "size": view.nbytes} for d, view in items]
        answer = self._offer(f"{project_url}/uploads", {"chunks": chunks})
        if answer is None:
            return None
        uploads = answer["uploads"]
        if [u.get("digest") for u in uploads] != [d for d, _ in items]:
            raise ArtfsError("the server answered upload URLs for other chunks than asked")
        for (_, view), upload in zip(items, uploads):
            self.bucket.send(
                "PUT", upload["url"], data=Concatenation([view]), headers=upload["headers"]
            ).close()
        staged = [{**c, "upload": u["upload"]} for c, u in zip(chunks, uploads)]
        stored: list[int] = self.ask(f"{project_url}/complete", {"chunks": staged})["stored"]
        return stored

    def close(self) -> None:
        self.bucket.close()
