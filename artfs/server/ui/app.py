"""The UI application, mounted at ``/ui`` on the API's app (``artfs server``) or on its own
(``artfs ui``): routes, static files, error pages and the headers every response carries."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import Response

from ...core.errors import ArtfsError, Unauthenticated
from ...store.access import Principal
from ...store.service import Store
from . import browse, files, lineage_pages, login, version
from .render import links, render
from .session import COOKIE, UiSettings, set_session

log = logging.getLogger("artfs.server.ui")
UI_PREFIX = "/ui"
STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def secured(request: Request, response: Response) -> Response:
    """Add the security headers; pages (not static files) are never cached."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.url.path.startswith(links(request).static("")):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


async def _artfs_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ArtfsError)
    if isinstance(exc, Unauthenticated):  # to the login page (dropping a key that failed)
        back = request.url.path if request.method == "GET" else None
        response = RedirectResponse(links(request).login(back), 303)
        if COOKIE in request.cookies:
            set_session(response, None, secure=request.url.scheme == "https")
        return response
    return render(request, "error.html", exc.http_status, message=str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = "page not found" if exc.status_code == 404 else str(exc.detail)
    return render(request, "error.html", exc.status_code, message=message)


async def _invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    return render(request, "error.html", 400, message=f"invalid {where}: {first.get('msg')}")


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    page = render(request, "error.html", 500, message="internal error (see the server's log)")
    return secured(request, page)


def create_ui(store: Store, local_user: Principal | None = None) -> FastAPI:
    """The UI over ``store``: with ``local_user`` (``artfs ui``) every page acts as that user,
    without login, and only requests naming this machine (127.0.0.1, localhost) are served."""
    ui = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    ui.state.ui = UiSettings(store, local_user, secrets.token_urlsafe(32) if local_user else None)

    @ui.middleware("http")
    async def headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]):
        return secured(request, await call_next(request))

    if local_user is not None:  # a page of another site must not reach it by DNS rebinding
        ui.add_middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost"])
    ui.add_exception_handler(ArtfsError, _artfs_error)
    ui.add_exception_handler(HTTPException, _http_error)
    ui.add_exception_handler(RequestValidationError, _invalid_request)
    ui.add_exception_handler(Exception, _internal_error)
    ui.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (login, browse, version, files, lineage_pages):
        ui.include_router(module.router)
    return ui


def mount_ui(app: FastAPI, ui: FastAPI) -> None:
    """Serve ``ui`` under ``/ui/`` of ``app``, and send ``/`` there."""
    app.mount(UI_PREFIX, ui)
    app.add_api_route(
        "/", lambda: RedirectResponse(UI_PREFIX + "/"), methods=["GET"], include_in_schema=False
    )
