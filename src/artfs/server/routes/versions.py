"""Projects, artifacts and versions: list, resolve, manifest, commit, edit, delete, gc.

A version is addressed ``/projects/{entity}/{project}/artifacts/{artifact}/versions/{alias}``
where ``alias`` is ``latest``, ``vN`` or any alias. Manifests travel as the JSON of
``Manifest.to_json()`` and are parsed here with ``Manifest.from_json``, which applies the
path rules whatever the client checked.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, ConfigDict

from ...core.manifest import Manifest
from ...core.names import ArtifactPath, parse_artifact_path
from ...core.records import to_dict
from ...store.access import Principal
from ...store.gc import DEFAULT_GRACE_S
from ...store.service import Store
from ..auth import get_store, principal

router = APIRouter(prefix="/api/v1", tags=["versions"])
ARTIFACT = "/projects/{entity}/{project}/artifacts/{artifact}"
VERSION = ARTIFACT + "/versions/{alias}"
Json = dict[str, Any]


def version_path(entity: str, project: str, artifact: str, alias: str = "latest") -> ArtifactPath:
    return parse_artifact_path(f"{entity}/{project}/{artifact}:{alias}")


@router.get("/projects")
def list_projects(
    entity: str | None = None,
    caller: Principal = Depends(principal),
    store: Store = Depends(get_store),
) -> list[Json]:
    """The projects the caller can read (of one entity, if given)."""
    return [to_dict(p) for p in store.list_projects(caller, entity)]


@router.get("/projects/{entity}/{project}/artifacts")
def list_collections(
    entity: str,
    project: str,
    type: str | None = None,  # noqa: A002 - the API's name for it
    caller: Principal = Depends(principal),
    store: Store = Depends(get_store),
) -> list[Json]:
    return [to_dict(c) for c in store.list_collections(caller, entity, project, type)]


@router.get(ARTIFACT + "/versions")
def list_versions(
    entity: str,
    project: str,
    artifact: str,
    include_deleted: bool = False,
    caller: Principal = Depends(principal),
    store: Store = Depends(get_store),
) -> list[Json]:
    path = version_path(entity, project, artifact)
    return [to_dict(v) for v in store.list_versions(caller, path, include_deleted)]


class CommitBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str
    manifest: Json
    description: str | None = None
    metadata: Json | None = None
    aliases: list[str] = []
    tags: list[str] = []
    run: str | None = None
    base: int | None = None


@router.post(ARTIFACT + "/versions")
def commit(
    entity: str,
    project: str,
    artifact: str,
    body: CommitBody,
    caller: Principal = Depends(principal),
    store: Store = Depends(get_store),
) -> Json:
    """Commit a new version (or find the latest one has the same content)."""
    options = body.model_dump(exclude={"type", "manifest"})
    result = store.commit(
        caller,
        version_path(entity, project, artifact),
        body.type,
        Manifest.from_json(body.manifest),
        **options,
    )
    return to_dict(result)


@router.get(VERSION)
def resolve(
    entity: str,
    project: str,
    artifact: str,
    alias: str,
    caller: Principal = Depends(principal),
    store: Store = Depends(get_store),
) -> Json:
    return to_dict(store.resolve(caller, version_path(entity, project, artifact, alias)))


@router.get(VERSION + "/manifest")
def manifest(
    entity: str,
    project: str,
    artifact: str,
    alias: str,
    caller: Principal = Depends(principal),
    store: Store = Depends(get_store),
) -> Json:
    info, found = store.manifest(caller, version_path(entity, project, artifact, alias))
    return {"version": to_dict(info), "manifest": found.to_json()}


@router.patch(VERSION)
def update_version(
    entity: str,
    project: str,
    artifact: str,
    alias: str,
    changes: Json = Body(...),
    caller: Principal = Depends(principal),
    store: Store = Depends(get_store),
) -> Json:
    """Change description, metadata, aliases (the full list), tags or expires_at."""
    path = version_path(entity, project, artifact, alias)
    return to_dict(store.update_version(caller, path, changes))


@router.delete(VERSION)
def delete_version(
    entity: str,
    project: str,
    artifact: str,
    alias: str,
    delete_aliases: bool = False,
    caller: Principal = Depends(principal),
    store: Store = Depends(get_store),
) -> Json:
    path = version_path(entity, project, artifact, alias)
    return to_dict(store.delete_version(caller, path, delete_aliases))


@router.get(VERSION + "/runs")
def version_runs(
    entity: str,
    project: str,
    artifact: str,
    alias: str,
    relation: str,
    caller: Principal = Depends(principal),
    store: Store = Depends(get_store),
) -> list[Json]:
    """The run that logged the version (``logged_by``) or the runs that used it (``used_by``)."""
    path = version_path(entity, project, artifact, alias)
    return [to_dict(r) for r in store.version_runs(caller, path, relation)]


class GcBody(BaseModel):
    grace: float = DEFAULT_GRACE_S


@router.post("/gc")
def gc(
    body: GcBody, caller: Principal = Depends(principal), store: Store = Depends(get_store)
) -> Json:
    """Expire versions and remove unused chunks (server admins)."""
    return to_dict(store.gc(caller, body.grace))
