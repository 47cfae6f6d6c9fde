"""A version's files: the tree on the version page, one file's page with its preview, and
the bytes (downloads as attachments; images inline only if they are images)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from ...core.errors import ArtfsError, NotFound
from ...core.manifest import ManifestEntry
from ...core.names import ArtifactPath
from ..routes.versions import VersionPath
from .content import chunks, file_kind, head, stored_entry
from .previews import IMAGE_BYTES, image_type, preview
from .render import render
from .session import Viewer, ViewerDep

router = APIRouter()
VERSION = "/projects/{entity}/{project}/artifacts/{artifact}/{alias}"
MAX_TREE_FILES = 2000


@dataclass
class Folder:
    """A directory of the tree: its folders and files, and the size and count below it."""

    name: str
    folders: dict[str, Folder] = field(default_factory=dict)
    files: list[ManifestEntry] = field(default_factory=list)
    size: int = 0
    count: int = 0


def file_tree(entries: Iterable[ManifestEntry], limit: int = MAX_TREE_FILES) -> Folder:
    """The tree of a version's files: sizes and counts cover every file, while only the
    first ``limit`` files (by path) are listed."""
    root = Folder("")
    for listed, entry in enumerate(sorted(entries, key=lambda e: e.path)):
        *dirs, _ = entry.path.split("/")
        folder = root
        root.size += entry.size
        root.count += 1
        for name in dirs:
            folder = folder.folders.setdefault(name, Folder(name))
            folder.size += entry.size
            folder.count += 1
        if listed < limit:
            folder.files.append(entry)
    return root


def entry_details(entry: ManifestEntry) -> dict[str, object]:
    """The optional fields of newer manifests (kind, mode, mtime) when an entry has them."""
    return {
        "kind": file_kind(entry),
        "mode": getattr(entry, "mode", None),
        "mtime": getattr(entry, "mtime", None),
    }


@router.get(VERSION + "/files/{file_path:path}")
def file_page(
    request: Request, viewer: ViewerDep, path: VersionPath, file_path: str
) -> HTMLResponse:
    info, manifest = viewer.backend.manifest(path)
    entry = manifest.get(file_path)
    if entry is None:
        raise NotFound(f"no file {file_path!r} in {info.path}")
    return render(
        request,
        "file.html",
        info=info,
        entry=entry,
        details=entry_details(entry),
        preview=preview(viewer.backend, manifest, entry),
    )


def attachment(path: str) -> str:
    """``Content-Disposition`` for a download under the file's own name."""
    name = path.rsplit("/", 1)[-1]
    plain = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


def _stored(viewer: Viewer, path: ArtifactPath, file_path: str) -> ManifestEntry:
    _, manifest = viewer.backend.manifest(path)
    return stored_entry(manifest, file_path)


@router.get(VERSION + "/raw/{file_path:path}")
def download(viewer: ViewerDep, path: VersionPath, file_path: str) -> Response:
    """The file as an attachment of no particular type, so a browser never renders it."""
    entry = _stored(viewer, path, file_path)
    stream = chunks(viewer.backend, entry)
    first = next(stream, b"")  # a missing or corrupt first chunk is an error page, not a cut
    return StreamingResponse(
        itertools.chain([first], stream),
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": attachment(file_path),
            "Content-Length": str(entry.size),
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get(VERSION + "/image/{file_path:path}")
def image(viewer: ViewerDep, path: VersionPath, file_path: str) -> Response:
    """An image for an ``<img>``: only PNG, JPEG, GIF or WebP, typed by its own bytes."""
    entry = _stored(viewer, path, file_path)
    if entry.size > IMAGE_BYTES:
        raise ArtfsError(f"{file_path} is too large to show")
    data = head(viewer.backend, entry, entry.size)
    kind = image_type(data)
    if kind is None:
        raise ArtfsError(f"{file_path} is not a PNG, JPEG, GIF or WebP image")
    return Response(data, media_type=kind, headers={"X-Content-Type-Options": "nosniff"})
