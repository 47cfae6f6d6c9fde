"""Identity and administration: whoami, users, keys, teams, members, project settings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from ...core.records import to_dict
from ..auth import Caller, StoreDep
from ..routing import JSONRoute

router = APIRouter(prefix="/api/v1", tags=["admin"], route_class=JSONRoute)
Json = dict[str, Any]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


@router.get("/whoami")
def whoami(
    caller: Caller,
    store: StoreDep,
) -> Json:
    return store.admin.whoami(caller)


class NewUser(Strict):
    name: str
    admin: bool = False


@router.post("/admin/users")
def create_user(caller: Caller, store: StoreDep, body: NewUser) -> Json:
    """A new user and its first API key (shown only in this answer)."""
    user, key = store.admin.create_user(caller, body.name, admin=body.admin)
    return {"user": to_dict(user), "key": to_dict(key)}


@router.get("/admin/users")
def list_users(
    caller: Caller,
    store: StoreDep,
) -> list[Json]:
    return [to_dict(u) for u in store.admin.list_users(caller)]


class NewKey(Strict):
    user: str | None = None


@router.post("/admin/keys")
def create_key(caller: Caller, store: StoreDep, body: NewKey) -> Json:
    """A new key for the caller (or, for a server admin, any user)."""
    return to_dict(store.admin.create_key(caller, body.user))


@router.get("/admin/keys")
def list_keys(
    caller: Caller,
    store: StoreDep,
    user: str | None = None,
) -> list[Json]:
    return [to_dict(k) for k in store.admin.list_keys(caller, user)]


@router.delete("/admin/keys/{key_id}")
def revoke_key(caller: Caller, store: StoreDep, key_id: str) -> Json:
    return to_dict(store.admin.revoke_key(caller, key_id))


class NewTeam(Strict):
    name: str


@router.post("/admin/teams")
def create_team(caller: Caller, store: StoreDep, body: NewTeam) -> Json:
    return to_dict(store.admin.create_team(caller, body.name))


@router.get("/admin/teams/{team}/members")
def list_members(caller: Caller, store: StoreDep, team: str) -> list[Json]:
    return [to_dict(m) for m in store.admin.list_members(caller, team)]


class Membership(Strict):
    role: str = "member"


@router.put("/admin/teams/{team}/members/{user}")
def set_member(
    caller: Caller,
    store: StoreDep,
    team: str,
    user: str,
    body: Membership,
) -> Json:
    """Add a member or change its role (server admins and the team's admins)."""
    return to_dict(store.admin.set_member(caller, team, user, body.role))


@router.delete("/admin/teams/{team}/members/{user}")
def remove_member(
    caller: Caller,
    store: StoreDep,
    team: str,
    user: str,
) -> Json:
    return to_dict(store.admin.remove_member(caller, team, user))


class NewProject(Strict):
    entity: str
    name: str
    visibility: str = "private"


@router.post("/projects")
def create_project(caller: Caller, store: StoreDep, body: NewProject) -> Json:
    """Create a project with a visibility (the entity's admins)."""
    return to_dict(store.projects.create_project(caller, body.entity, body.name, body.visibility))


class ProjectSettings(Strict):
    visibility: str


@router.patch("/projects/{entity}/{project}")
def set_visibility(
    caller: Caller,
    store: StoreDep,
    entity: str,
    project: str,
    body: ProjectSettings,
) -> Json:
    return to_dict(store.projects.set_visibility(caller, entity, project, body.visibility))
