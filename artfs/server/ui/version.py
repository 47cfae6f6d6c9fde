"""One version: its metadata, aliases, files and runs; and the edits W&B allows in its UI
(description, metadata keys, aliases), made through ``update_version`` like the API's."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.responses import Response

from ...client.backend import Backend
from ...core.errors import ArtfsError, InvalidArgument, InvalidName, Unauthenticated
from ...core.names import LATEST, ArtifactPath, check_settable_alias
from ..routes.versions import VersionPath
from .files import MAX_TREE_FILES, entry_details, file_tree
from .render import links, render
from .session import FormDep, Viewer, ViewerDep, check_csrf

router = APIRouter()
VERSION = "/projects/{entity}/{project}/artifacts/{artifact}/{alias}"
MAX_KEY = 256
MAX_VALUE = 64 << 10


def version_page(
    request: Request,
    viewer: Viewer,
    path: ArtifactPath,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    info, manifest = viewer.backend.manifest(path)
    return render(
        request,
        "version.html",
        status,
        info=info,
        error=error,
        tree=file_tree(manifest),
        listed_limit=MAX_TREE_FILES,
        details=entry_details,
        logged_by=viewer.backend.version_runs(info.path, "logged_by"),
        used_by=viewer.backend.version_runs(info.path, "used_by"),
        get_command=f"artfs get {info.path}",
        mount_command=f"artfs mount --entity {info.entity} MOUNT",
        mount_path=f"MOUNT/{info.project}/{info.artifact}/{info.label}/",
    )


@router.get(VERSION)
def version(request: Request, viewer: ViewerDep, path: VersionPath) -> HTMLResponse:
    return version_page(request, viewer, path)


def json_or_text(text: str) -> Any:
    """A metadata value typed in a form: JSON if it parses (``3``, ``true``, ``[1]``), else
    the text itself."""
    if len(text) > MAX_VALUE:
        raise InvalidArgument(f"a metadata value typed here is at most {MAX_VALUE} characters")
    try:
        return json.loads(text)
    except ValueError:
        return text
    except RecursionError:
        raise InvalidArgument("the metadata value is nested too deeply") from None


def _key(form: Mapping[str, str]) -> str:
    key = form.get("key", "").strip()
    if not key or len(key) > MAX_KEY:
        raise InvalidArgument(f"a metadata key is 1 to {MAX_KEY} characters")
    return key


def changes_from(backend: Backend, path: ArtifactPath, form: Mapping[str, str]) -> dict[str, Any]:
    """The ``update_version`` changes one form asks for (keys and aliases one at a time)."""
    action = form.get("action", "")
    if action == "description":
        return {"description": form.get("description", "").strip() or None}
    info = backend.resolve(path)
    if action == "set-metadata":
        return {"metadata": {**info.metadata, _key(form): json_or_text(form.get("value", ""))}}
    if action == "remove-metadata":
        key = _key(form)
        return {"metadata": {k: v for k, v in info.metadata.items() if k != key}}
    alias = form.get("alias", "").strip()
    if action == "add-alias":
        return {"aliases": [*info.aliases, check_settable_alias(alias)]}
    if action == "remove-alias":
        if alias == LATEST:
            raise InvalidName("alias 'latest' is managed and cannot be removed")
        return {"aliases": [a for a in info.aliases if a != alias]}
    raise ArtfsError(f"unknown edit {action!r}")


@router.post(VERSION + "/edit")
def edit(request: Request, viewer: ViewerDep, form: FormDep, path: VersionPath) -> Response:
    """Apply one edit, then show the version again (with the store's refusal, if any)."""
    check_csrf(viewer, form)
    try:
        info = viewer.backend.update_version(path, changes_from(viewer.backend, path, form))
    except Unauthenticated:
        raise
    except ArtfsError as exc:
        return version_page(request, viewer, path, str(exc), exc.http_status)
    return RedirectResponse(links(request).version(info.path), 303)
