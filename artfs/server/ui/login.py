"""Logging in with an API key, and out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from ...core.errors import Unauthenticated
from .render import links, render
from .session import MAX_COOKIE, FormDep, ViewerDep, check_csrf, set_session, settings

router = APIRouter()


def safe_next(request: Request, target: str) -> str:
    """Where to go after logging in: a page of the UI, never another site."""
    home = links(request).home()
    return target if target.startswith(home) and "//" not in target else home


@router.get("/login")
def login_page(request: Request, next: str = "") -> Response:
    if settings(request).local_user is not None:
        return RedirectResponse(links(request).home(), 303)
    return render(request, "login.html", next=safe_next(request, next), error=None)


@router.post("/login")
def login(request: Request, form: FormDep) -> Response:
    """Check the key with the store, then keep it in the session cookie."""
    next_url = safe_next(request, form.get("next", ""))
    if settings(request).local_user is not None:
        return RedirectResponse(next_url, 303)
    key = form.get("api_key", "").strip()
    try:
        if not key or len(key) > MAX_COOKIE:
            raise Unauthenticated("enter an API key (artfs_<id>_<secret>)")
        settings(request).store.admin.authenticate(key)
    except Unauthenticated as exc:
        return render(request, "login.html", status=401, next=next_url, error=str(exc))
    response = RedirectResponse(next_url, 303)
    set_session(response, key, secure=request.url.scheme == "https")
    return response


@router.post("/logout")
def logout(request: Request, viewer: ViewerDep, form: FormDep) -> Response:
    check_csrf(viewer, form)
    response = RedirectResponse(links(request).login(), 303)
    set_session(response, None, secure=request.url.scheme == "https")
    return response
