"""Who is looking: the session cookie, the backend bound to its owner, CSRF tokens, forms.

The cookie holds the API key itself (HttpOnly, SameSite=Strict), so any server process of a
deployment can serve any request; forms carry a token derived from it. Under ``artfs ui``
there is no login and no cookie: the token derives from a random secret of the process.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qsl

import blake3
from fastapi import Depends, Request
from starlette.responses import Response

from ...client.backend import Backend
from ...client.local import LocalBackend
from ...core.errors import ArtfsError, PermissionDenied
from ...store.access import Principal
from ...store.service import Store

COOKIE = "artfs_session"
CSRF_CONTEXT = "artfs web ui 2025-01 CSRF token of a session cookie"
MAX_COOKIE = 512
MAX_FORM_BYTES = 1 << 20
MAX_FORM_FIELDS = 16


def csrf_token(session: str) -> str:
    """The token forms carry: keyed BLAKE3 of the cookie (which a foreign page cannot read)."""
    return blake3.blake3(session.encode(), derive_key_context=CSRF_CONTEXT).hexdigest()


@dataclass(frozen=True)
class Viewer:
    """The person a page is for, and the backend acting as them."""

    backend: Backend
    principal: Principal
    session: str | None  # what CSRF tokens derive from; None for anonymous readers
    local: bool  # served by ``artfs ui``: no login

    @property
    def csrf(self) -> str | None:
        return csrf_token(self.session) if self.session else None


@dataclass(frozen=True)
class UiSettings:
    """What the UI application is configured with (kept on ``app.state.ui``)."""

    store: Store
    local_user: Principal | None = None  # set: ``artfs ui``, every page acts as this user
    local_session: str | None = None  # the secret of this ``artfs ui`` process


def settings(request: Request) -> UiSettings:
    return request.app.state.ui


def viewer(request: Request) -> Viewer:
    """Authenticate the cookie's key (``Unauthenticated`` sends the browser to the login)."""
    ui = settings(request)
    if ui.local_user is not None:
        found = Viewer(LocalBackend(ui.store, ui.local_user), ui.local_user, ui.local_session, True)
    else:
        key = request.cookies.get(COOKIE) or None
        principal = ui.store.admin.authenticate(key[:MAX_COOKIE] if key else None)
        found = Viewer(LocalBackend(ui.store, principal), principal, key, False)
    request.state.viewer = found
    return found


ViewerDep = Annotated[Viewer, Depends(viewer)]


async def form_fields(request: Request) -> dict[str, str]:
    """A posted urlencoded form, bounded, and only from a page of this site (browsers say
    where a request comes from in ``Sec-Fetch-Site``)."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise PermissionDenied("forms are accepted only from this site's pages")
    body = bytearray()
    async for block in request.stream():
        body += block
        if len(body) > MAX_FORM_BYTES:
            raise ArtfsError(f"a form may hold at most {MAX_FORM_BYTES >> 10} KiB")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if body and kind != "application/x-www-form-urlencoded":
        raise ArtfsError("a form must be sent as application/x-www-form-urlencoded")
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise ArtfsError("malformed form") from None
    return dict(pairs)


FormDep = Annotated[dict[str, str], Depends(form_fields)]


def check_csrf(viewer: Viewer, form: dict[str, str]) -> None:
    """Refuse a form without the token of the session it was posted under."""
    expected = viewer.csrf
    given = form.get("csrf", "")
    if expected is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise PermissionDenied("the form's CSRF token is missing or wrong: reload the page")


def set_session(response: Response, value: str | None, secure: bool) -> None:
    """Set the session cookie on ``response``, or clear it (``value`` None)."""
    if value is None:
        response.delete_cookie(COOKIE, path="/", secure=secure, httponly=True, samesite="strict")
    else:
        response.set_cookie(
            COOKIE, value, httponly=True, samesite="strict", secure=secure, path="/"
        )
