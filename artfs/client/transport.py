"""HTTP to one peer (the artfs server, or a bucket through presigned URLs): a pooled session,
one request under the retry policy (``retry``), its error answers turned into one-line
``ArtfsError``s, and downloads that resume where a broken connection stopped them."""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from ..core.errors import ArtfsError, NotFound, PermissionDenied, Unauthenticated, Unavailable
from .retry import TRANSIENT, Unreachable, connect_retry

POOL_SIZE = 32  # at least the transfer workers plus the mount's readers
TIMEOUT = (10, 600)  # connect, read (a commit of a huge manifest or gc may take a while)
READ_BLOCK = 1 << 20
_ERRNO_RE = re.compile(r"\[Errno -?\d+\] [^'\")]+")
BY_STATUS: dict[int, type[ArtfsError]] = {
    401: Unauthenticated,
    403: PermissionDenied,
    404: NotFound,
    429: Unavailable,
}
ERROR_BYTES = 1 << 20  # of an error answer
ErrorReader = Callable[[requests.Response, str], ArtfsError]


def reason(exc: requests.RequestException) -> str:
    """One line out of the nested connection errors requests raises."""
    found = _ERRNO_RE.search(str(exc))
    if found:
        return found.group(0).strip()
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS handshake failed (is the certificate trusted? see REQUESTS_CA_BUNDLE)"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    return type(exc).__name__


def _never_sent(exc: requests.RequestException) -> bool:
    """Whether the request failed before reaching the peer (no connection, or no trusted
    one), after ``connect_retry``'s retries: trying again at once would fail the same way."""
    if isinstance(exc, (requests.ConnectTimeout, requests.exceptions.SSLError)):
        return True
    cause = exc.args[0] if exc.args else None
    return isinstance(getattr(cause, "reason", None), NewConnectionError)


def status_error(response: requests.Response, peer: str) -> ArtfsError:
    """The error of an answer that says nothing more than its status."""
    status = response.status_code
    text = f"{peer} answered {status} {response.reason}"
    return Unavailable(text) if status >= 500 else BY_STATUS.get(status, ArtfsError)(text)


class Answer(dict[str, Any]):
    """A JSON object a peer answered: a key it lacks is a malformed answer, not a crash."""

    def __missing__(self, key: str) -> Any:
        raise ArtfsError(f"malformed answer: no {key!r}")


def read_json(response: requests.Response, limit: int, peer: str) -> Any:
    """The JSON of an answer of at most ``limit`` bytes, read as it streams in (an endless or
    malformed answer is an ``ArtfsError``, not a hang, a memory blow-up or a crash)."""
    with response:
        body = bytearray()
        try:
            for block in response.iter_content(READ_BLOCK):
                body += block
                if len(body) > limit:
                    raise ArtfsError(f"{peer} answered more than {limit} bytes")
        except requests.RequestException as exc:
            raise Unavailable(f"the answer of {peer} broke off: {reason(exc)}") from None
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise ArtfsError(f"{peer} answered malformed JSON") from None
    return Answer(value) if isinstance(value, dict) else value


class Concatenation:
    """Buffers sent back to back as one body of known length, without joining them: requests
    takes the length from ``__len__`` and urllib3 sends each buffer as it is."""

    def __init__(self, views: list[memoryview]):
        self.views = views

    def __len__(self) -> int:
        return sum(view.nbytes for view in self.views)

    def __iter__(self) -> Iterator[memoryview]:
        return iter(self.views)


class Peer:
    def __init__(self, name: str, read_error: ErrorReader, headers: dict[str, str] | None = None):
        self.name = name
        self.read_error = read_error
        self.session = requests.Session()
        adapter = HTTPAdapter(
            pool_connections=4, pool_maxsize=POOL_SIZE, max_retries=connect_retry()
        )
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = "artfs-client"
        self.session.headers.update(headers or {})

    def send(self, method: str, url: str, repeat: bool = True, **kwargs: Any) -> requests.Response:
        """One call, made again under ``TRANSIENT`` if ``repeat`` (it means the same the
        second time)."""
        if repeat:
            return TRANSIENT.call(lambda: self.send_once(method, url, **kwargs))
        return self.send_once(method, url, **kwargs)

    def send_once(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            response = self.session.request(method, url, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            error = Unreachable if _never_sent(exc) else Unavailable
            raise error(f"cannot reach {self.name}: {reason(exc)}") from None
        if response.status_code >= 400:
            try:
                raise self.read_error(response, self.name)
            finally:
                response.close()
        return response

    def download(self, open_at: Callable[[int], requests.Response], what: str) -> Iterator[bytes]:
        """The blocks of the body ``open_at(0)`` answers with (opened before this returns, so
        errors such as ``NotFound`` come here); a body cut off is asked for again from where
        it stopped, ``open_at(bytes received)``. Opening and resuming share one ``TRANSIENT``
        budget."""
        pauses = TRANSIENT.pauses()
        response = TRANSIENT.call(lambda: open_at(0), pauses)
        return self._blocks(response, open_at, what, pauses)

    def _blocks(
        self,
        response: requests.Response,
        open_at: Callable[[int], requests.Response],
        what: str,
        pauses: Iterator[float],
    ) -> Iterator[bytes]:
        expected = int(response.headers.get("Content-Length", -1))
        received = 0
        while True:
            try:
                with response:
                    for block in response.iter_content(READ_BLOCK):
                        received += len(block)
                        yield block
                if expected < 0 or received >= expected:
                    return
                problem = "the answer was cut short"
            except requests.RequestException as exc:
                problem = reason(exc)
            pause = next(pauses, None)
            if pause is None:
                raise Unavailable(f"download of {what} from {self.name} failed: {problem}")
            time.sleep(pause)
            response = TRANSIENT.call(functools.partial(open_at, received), pauses)

    def close(self) -> None:
        self.session.close()
