"""The one place where failures become errnos, and where they are logged.

Only ``FUSEError`` may leave a request handler (anything else would end the mount), so every
layer below hands what it caught to ``fuse_error``: the store's "not found" is ``ENOENT``,
its refusals ``EACCES``, the staging model's ``OSError`` its own errno, a full disk under
the staging journal ``ENOSPC``, anything else ``EIO``. Reading a file's bytes is different:
there every failure is ``EIO`` (``data=True``), since a read that says ``ENOENT`` or
``EACCES`` would lie about the file. Errnos that answer a request (``ENOENT`` for a missing
name, ``EEXIST``, ...) are not logged; failures are, once, in one line.
"""

from __future__ import annotations

import errno
import functools
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pyfuse3

from ..core.errors import ArtfsError, NotFound, PermissionDenied, Unauthenticated

log = logging.getLogger(__name__)
H = TypeVar("H", bound=Callable[..., Awaitable[Any]])
ANSWERS = frozenset(
    {
        errno.ENOENT,
        errno.EEXIST,
        errno.ENOTEMPTY,
        errno.EISDIR,
        errno.ENOTDIR,
        errno.EINVAL,
        errno.EPERM,
        errno.EXDEV,
        errno.EROFS,
        errno.ENAMETOOLONG,
        errno.EOPNOTSUPP,
    }
)


def errno_of(exc: BaseException) -> int:
    if isinstance(exc, pyfuse3.FUSEError):
        return exc.errno
    if isinstance(exc, NotFound):
        return errno.ENOENT
    if isinstance(exc, (PermissionDenied, Unauthenticated)):
        return errno.EACCES
    if isinstance(exc, OSError):
        return exc.errno or errno.EIO
    if isinstance(exc, sqlite3.Error) and "full" in str(exc):
        return errno.ENOSPC
    return errno.EIO


def fuse_error(exc: BaseException, what: str, data: bool = False) -> pyfuse3.FUSEError:
    """The ``FUSEError`` that ``exc`` becomes, logged as ``what: exc`` unless it is an
    answer; ``data``: while reading a file's bytes, where every failure is ``EIO``."""
    if isinstance(exc, pyfuse3.FUSEError):
        return exc
    code = errno.EIO if data else errno_of(exc)
    if code in ANSWERS and not data:
        log.debug("%s: %s", what, exc)
    elif code == errno.EACCES:
        log.warning("%s: %s", what, exc)
    elif isinstance(exc, (ArtfsError, OSError, sqlite3.Error)):
        log.error("%s: %s", what, exc)
        log.debug("traceback", exc_info=exc)
    else:
        log.error("%s", what, exc_info=exc)
    return pyfuse3.FUSEError(code)


def errors(handler: H) -> H:
    """Give a request handler's failures their errno (``fuse_error``)."""

    @functools.wraps(handler)
    async def wrapper(*args: Any) -> Any:
        try:
            return await handler(*args)
        except Exception as exc:
            raise fuse_error(exc, handler.__name__) from None

    return wrapper  # type: ignore[return-value]
