"""Projects, artifacts and versions: list, resolve, manifest, commit, edit, delete, gc.

A version is addressed ``/projects/{entity}/{project}/artifacts/{artifact}/versions/{alias}``
where ``alias`` is ``latest``, ``vN`` or any alias. Manifests travel as the JSON of
``Manifest.to_json()`` and are parsed here with ``Manifest.from_json``, which applies the
path rules whatever the client checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, ConfigDict

from ...core.manifest import Manifest
from ...core.names import ArtifactPath, parse_artifact_path
from ...core.records import CommitResult, to_dict
from ...store.access import Principal
from ...store.gc import DEFAULT_GRACE_S
from ..auth import Caller, StoreDep
from ..routing import JSONRoute

router = APIRouter(prefix="/api/v1", tags=["versions"], route_class=JSONRoute)
ARTIFACT = "/projects/{entity}/{project}/artifacts/{artifact}"
VERSION = ARTIFACT + "/versions/{alias}"
Json = dict[str, Any]


def version_path(entity: str, project: str, artifact: str, alias: str = "latest") -> ArtifactPath:
    """The version a URL names (its path parameters, checked by the name rules)."""
    return parse_artifact_path(f"{entity}/{project}/{artifact}:{alias}")


VersionPath = Annotated[ArtifactPath, Depends(version_path)]


@router.get("/projects")
def list_projects(
    caller: Caller,
    store: StoreDep,
    entity: str | None = None,
) -> list[Json]:
    """The projects the caller can read (of one entity, if given)."""
    return [to_dict(p) for p in store.projects.list_projects(caller, entity)]


@router.get("/projects/{entity}/{project}/artifacts")
def list_collections(
    caller: Caller,
    store: StoreDep,
    entity: str,
    project: str,
    type: str | None = None,
) -> list[Json]:
    return [to_dict(c) for c in store.versions.list_collections(caller, entity, project, type)]


@router.get(ARTIFACT + "/versions")
def list_versions(
    caller: Caller,
    store: StoreDep,
    entity: str,
    project: str,
    artifact: str,
    include_deleted: bool = False,
) -> list[Json]:
    path = version_path(entity, project, artifact)
    return [to_dict(v) for v in store.versions.list_versions(caller, path, include_deleted)]


class ManifestBody(BaseModel):
    """What every committing call carries: the artifact type, the manifest, the labels."""

    model_config = ConfigDict(extra="forbid")
    type: str
    manifest: Json
    description: str | None = None
    metadata: Json | None = None
    aliases: list[str] = []
    tags: list[str] = []
    run: str | None = None


class CommitBody(ManifestBody):
    base: int | None = None
    ttl: float | None = None  # seconds until gc may delete the version (unless aliased)


@router.post(ARTIFACT + "/versions")
def commit(
    caller: Caller,
    store: StoreDep,
    entity: str,
    project: str,
    artifact: str,
    body: CommitBody,
) -> Json:
    """Commit a new version (or find the latest one has the same content)."""
    return _commit_with(
        store.versions.commit, caller, version_path(entity, project, artifact), body
    )


class UpsertBody(CommitBody):
    distributed_id: str
    finish: bool = False


@router.post(ARTIFACT + "/pending")
def upsert_version(
    caller: Caller, store: StoreDep, entity: str, project: str, artifact: str, body: UpsertBody
) -> Json:
    """Add entries to the pending version of ``distributed_id``; commit it if ``finish``."""
    return _commit_with(
        store.versions.upsert_version, caller, version_path(entity, project, artifact), body
    )


def _commit_with(
    method: Callable[..., CommitResult], caller: Principal, path: ArtifactPath, body: ManifestBody
) -> Json:
    """Call a committing store method with the body's manifest (checked there) and options."""
    options = body.model_dump(exclude={"type", "manifest"})
    return to_dict(method(caller, path, body.type, Manifest.from_json(body.manifest), **options))


@router.get(VERSION)
def resolve(caller: Caller, store: StoreDep, path: VersionPath) -> Json:
    return to_dict(store.versions.resolve(caller, path))


@router.get(VERSION + "/manifest")
def manifest(caller: Caller, store: StoreDep, path: VersionPath) -> Json:
    info, found = store.versions.manifest(caller, path)
    return {"version": to_dict(info), "manifest": found.to_json()}


@router.patch(VERSION)
def update_version(
    caller: Caller, store: StoreDep, path: VersionPath, changes: Annotated[Json, Body()]
) -> Json:
    """Change description, metadata, aliases (the full list), tags or expires_at."""
    return to_dict(store.versions.update_version(caller, path, changes))


@router.delete(VERSION)
def delete_version(
    caller: Caller, store: StoreDep, path: VersionPath, delete_aliases: bool = False
) -> Json:
    return to_dict(store.versions.delete_version(caller, path, delete_aliases))


@router.get(VERSION + "/runs")
def version_runs(caller: Caller, store: StoreDep, path: VersionPath, relation: str) -> list[Json]:
    """The run that logged the version (``logged_by``) or the runs that used it (``used_by``)."""
    return [to_dict(r) for r in store.runs.version_runs(caller, path, relation)]


class GcBody(BaseModel):
    grace: float = DEFAULT_GRACE_S


@router.post("/gc")
def gc(caller: Caller, store: StoreDep, body: GcBody) -> Json:
    """Expire versions and remove unused chunks (server admins)."""
    return to_dict(store.collector.gc(caller, body.grace))
