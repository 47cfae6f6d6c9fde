"""JSON answers and error bodies.

Errors travel as ``{"error": {"code", "message"}}`` (``core.errors.error_payload``), with the
status of the error class, so the HTTP client raises the very class the store raised.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse as StarletteJSONResponse
from starlette.responses import Response

from ..core.errors import ArtfsError, error_payload

log = logging.getLogger("artfs.server")


class JSONResponse(StarletteJSONResponse):
    """JSON that, like the embedded store, allows NaN and infinities (common in metrics)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def error_response(status: int, code: str, message: str) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def _artfs_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ArtfsError)
    return JSONResponse(error_payload(exc), status_code=exc.http_status)


async def _invalid_request(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    return error_response(400, "invalid_request", f"invalid request: {where}: {first.get('msg')}")


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = "not_found" if exc.status_code == 404 else "error"
    return error_response(exc.status_code, code, str(exc.detail))


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal", "internal server error (see the server's log)")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ArtfsError, _artfs_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _internal_error)
