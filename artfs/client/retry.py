"""The client's one retry policy, for every call to a server or a bucket.

Two layers, never nested for the same failure:

- ``connect_retry()``, urllib3's ``Retry`` on every session: a connection that could not be
  made (the request never left) is tried again, with backoff, for about 10 s, long enough to
  ride out a server restart. What still fails is ``Unreachable``, which nothing above retries.
- ``TRANSIENT``: a call answered "unavailable" (429, 5xx, a store busy with these chunks) or
  cut off after it was sent is made again, at most ``tries`` times in all, with jittered
  exponential pauses. Only calls that mean the same the second time go through it (the HTTP
  backend decides which); a download resumed mid-body takes its pauses from the same budget.

``REFETCH``: bytes that failed verification against their digest are fetched once more, then
the error stands.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from ..core.errors import DigestMismatch, Unavailable

if TYPE_CHECKING:  # urllib3 loads with the HTTP backend, not for local commands
    from urllib3.util.retry import Retry

R = TypeVar("R")


def connect_retry() -> Retry:
    from urllib3.util.retry import Retry

    return Retry(
        total=8,
        connect=8,
        read=0,  # a request that may have reached the peer is TRANSIENT's decision
        status=0,
        other=0,  # e.g. an untrusted certificate: retrying cannot help
        redirect=0,
        backoff_factor=0.2,
        backoff_max=2,
        raise_on_status=False,
    )


class Unreachable(Unavailable):
    """No connection could be made, after ``connect_retry``'s retries: not retried again."""


@dataclass(frozen=True)
class RetryPolicy:
    tries: int  # attempts in all, the first included
    first_pause: float  # seconds before the second attempt; doubles each time
    max_pause: float
    retry_on: tuple[type[Exception], ...]
    never: tuple[type[Exception], ...] = ()

    def retryable(self, exc: Exception) -> bool:
        return isinstance(exc, self.retry_on) and not isinstance(exc, self.never)

    def pauses(self) -> Iterator[float]:
        """The pauses before each attempt after the first (``tries - 1`` of them), for loops
        that cannot be wrapped in one ``call`` (a download resumed where it broke off)."""
        for attempt in range(self.tries - 1):
            pause = min(self.max_pause, self.first_pause * 2**attempt)
            yield pause * random.uniform(0.5, 1.0)  # writers that failed together spread out

    def call(self, fn: Callable[[], R], pauses: Iterator[float] | None = None) -> R:
        """``fn()``, tried again after each retryable failure until ``tries`` are spent (or
        the ``pauses`` of a budget shared with other attempts)."""
        pauses = self.pauses() if pauses is None else pauses
        while True:
            try:
                return fn()
            except Exception as exc:
                pause = next(pauses, None) if self.retryable(exc) else None
                if pause is None:
                    raise
            time.sleep(pause)


TRANSIENT = RetryPolicy(
    tries=6, first_pause=0.25, max_pause=4.0, retry_on=(Unavailable,), never=(Unreachable,)
)
REFETCH = RetryPolicy(tries=2, first_pause=0.0, max_pause=0.0, retry_on=(DigestMismatch,))
