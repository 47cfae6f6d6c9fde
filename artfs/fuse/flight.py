"""Single flight: one task computes a key's value, tasks asking meanwhile wait for it.

This is what makes sixteen readers of one missing chunk cause one fetch, and a burst of
lookups in a stale directory cause one listing call.
"""

from __future__ import annotations

import errno
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

import pyfuse3
import trio

V = TypeVar("V")


class _Flight:
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class SingleFlight(Generic[V]):
    def __init__(self) -> None:
        self._flights: dict[Hashable, _Flight] = {}

    def running(self, key: Hashable) -> bool:
        return key in self._flights

    async def run(self, key: Hashable, compute: Callable[[], Awaitable[V]]) -> V:
        flight = self._flights.get(key)
        if flight is not None:
            await flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value
        flight = self._flights[key] = _Flight()
        try:
            flight.value = await compute()
            return flight.value
        except Exception as exc:
            flight.error = exc
            raise
        except BaseException:  # cancelled (shutting down): the waiters get an error, not that
            flight.error = pyfuse3.FUSEError(errno.EINTR)
            raise
        finally:
            del self._flights[key]
            flight.done.set()
