"""Who is calling: ``Authorization: Bearer <API key>`` → a store ``Principal``.

The store decides what a key is worth (valid, revoked, anonymous allowed); this module only
reads the header.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..core.errors import Unauthenticated
from ..store.access import Principal
from ..store.service import Store

bearer = HTTPBearer(auto_error=False, description="An artfs API key (artfs_<id>_<secret>).")


def get_store(request: Request) -> Store:
    return request.app.state.store


def api_key(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> str | None:
    """The key the request carries; a malformed ``Authorization`` header is refused, not
    mistaken for an anonymous call."""
    if credentials is None and "authorization" in request.headers:
        raise Unauthenticated("the Authorization header must be 'Bearer <API key>'")
    return credentials.credentials if credentials else None


ApiKey = Annotated[str | None, Depends(api_key)]
StoreDep = Annotated[Store, Depends(get_store)]


def principal(key: ApiKey, store: StoreDep) -> Principal:
    return store.admin.authenticate(key)


Caller = Annotated[Principal, Depends(principal)]
