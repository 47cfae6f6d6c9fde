"""Identity and administration: whoami, users, keys, teams, members, project settings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict

from ...core.records import to_dict
from ...store.access import Principal
from ...store.service import Store
from ..auth import get_store, principal

router = APIRouter(prefix="/api/v1", tags=["admin"])
Json = dict[str, Any]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


@router.get("/whoami")
def whoami(caller: Principal = Depends(principal), store: Store = Depends(get_store)) -> Json:
    return store.whoami(caller)


class NewUser(Strict):
    name: str
    admin: bool = False


@router.post("/admin/users")
def create_user(
    body: NewUser, caller: Principal = Depends(principal), store: Store = Depends(get_store)
) -> Json:
    """A new user and its first API key (shown only in this answer)."""
    user, key = store.create_user(caller, body.name, admin=body.admin)
    return {"user": to_dict(user), "key": to_dict(key)}


@router.get("/admin/users")
def list_users(
    caller: Principal = Depends(principal), store: Store = Depends(get_store)
) -> list[Json]:
    return [to_dict(u) for u in store.list_users(caller)]


class NewKey(Strict):
    user: str | None = None


@router.post("/admin/keys")
def create_key(
    body: NewKey, caller: Principal = Depends(principal), store: Store = Depends(get_store)
) -> Json:
    """A new key for the caller (or, for a server admin, any user)."""
    return to_dict(store.create_key(caller, body.user))


@router.get("/admin/keys")
def list_keys(
    user: str | None = None,
    caller: Principal = Depends(principal),
    store: Store = Depends(get_store),
) -> list[Json]:
    return [to_dict(k) for k in store.list_keys(caller, user)]


@router.delete("/admin/keys/{key_id}")
def revoke_key(
    key_id: str, caller: Principal = Depends(principal), store: Store = Depends(get_store)
) -> Json:
    return to_dict(store.revoke_key(caller, key_id))


class NewTeam(Strict):
    name: str


@router.post("/admin/teams")
def create_team(
    body: NewTeam, caller: Principal = Depends(principal), store: Store = Depends(get_store)
) -> Json:
    return to_dict(store.create_team(caller, body.name))


@router.get("/admin/teams/{team}/members")
def list_members(
    team: str, caller: Principal = Depends(principal), store: Store = Depends(get_store)
) -> list[Json]:
    return [to_dict(m) for m in store.list_members(caller, team)]


class Membership(Strict):
    role: str = "member"


@router.put("/admin/teams/{team}/members/{user}")
def set_member(
    team: str,
    user: str,
    body: Membership,
    caller: Principal = Depends(principal),
    store: Store = Depends(get_store),
) -> Json:
    """Add a member or change its role (server admins and the team's admins)."""
    return to_dict(store.set_member(caller, team, user, body.role))


@router.delete("/admin/teams/{team}/members/{user}")
def remove_member(
    team: str,
    user: str,
    caller: Principal = Depends(principal),
    store: Store = Depends(get_store),
) -> Json:
    return to_dict(store.remove_member(caller, team, user))


class NewProject(Strict):
    entity: str
    name: str
    visibility: str = "private"


@router.post("/projects")
def create_project(
    body: NewProject, caller: Principal = Depends(principal), store: Store = Depends(get_store)
) -> Json:
    """Create a project with a visibility (the entity's admins)."""
    return to_dict(store.create_project(caller, body.entity, body.name, body.visibility))


class ProjectSettings(Strict):
    visibility: str


@router.patch("/projects/{entity}/{project}")
def set_visibility(
    entity: str,
    project: str,
    body: ProjectSettings,
    caller: Principal = Depends(principal),
    store: Store = Depends(get_store),
) -> Json:
    return to_dict(store.set_visibility(caller, entity, project, body.visibility))
