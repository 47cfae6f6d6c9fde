"""Who may read and write what (docs/OPERATIONS.md, "Access"): private projects for their
entity's members, public ones readable by everyone authenticated, open ones writable too.
Every service call goes through these checks."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from ..core.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from .schema import memberships, projects

VISIBILITIES = ("private", "public", "open")


def check_visibility(value: object) -> str:
    if not isinstance(value, str) or value not in VISIBILITIES:
        raise InvalidArgument(f"visibility must be one of {', '.join(VISIBILITIES)}, not {value!r}")
    return value


@dataclass(frozen=True)
class Principal:
    """The caller: a user (``id`` is its entity id), or anonymous (``id`` None)."""

    id: int | None
    name: str
    is_admin: bool = False

    @property
    def anonymous(self) -> bool:
        return self.id is None


ANONYMOUS = Principal(None, "anonymous")


def entity_ids(conn: Connection, caller: Principal) -> dict[int, str]:
    """The entities the caller acts for, with its role: itself and its teams."""
    if caller.id is None:
        return {}
    rows = conn.execute(
        sa.select(memberships.c.team_id, memberships.c.role).where(
            memberships.c.user_id == caller.id
        )
    )
    roles = {team_id: role for team_id, role in rows}
    roles[caller.id] = "admin"
    return roles


def can_read(conn: Connection, caller: Principal, project: Row, anonymous_read: bool) -> bool:
    if caller.is_admin:
        return True
    if caller.anonymous:
        return anonymous_read and project.visibility == "public"
    return project.visibility in ("public", "open") or project.entity_id in entity_ids(conn, caller)


def readable_projects(
    conn: Connection, caller: Principal, anonymous_read: bool
) -> sa.ColumnElement[bool]:
    """``can_read`` as a condition on the ``projects`` table, for queries over many."""
    if caller.is_admin:
        return sa.true()
    if caller.anonymous:
        return sa.and_(projects.c.visibility == "public", sa.literal(anonymous_read))
    mine = list(entity_ids(conn, caller))
    return sa.or_(projects.c.visibility.in_(("public", "open")), projects.c.entity_id.in_(mine))


def can_write(conn: Connection, caller: Principal, project: Row) -> bool:
    if caller.is_admin:
        return True
    if caller.anonymous:
        return False
    return project.visibility == "open" or project.entity_id in entity_ids(conn, caller)


def require_read(conn: Connection, caller: Principal, project: Row, anonymous_read: bool) -> None:
    """Refuse without revealing that a private project exists."""
    if can_read(conn, caller, project, anonymous_read):
        return
    if caller.anonymous and not anonymous_read:
        raise Unauthenticated("authentication required: pass an API key (artfs login)")
    raise NotFound(f"project {project.entity_name}/{project.name} not found")


def require_write(conn: Connection, caller: Principal, project: Row, anonymous_read: bool) -> None:
    require_read(conn, caller, project, anonymous_read)
    if not can_write(conn, caller, project):
        if caller.anonymous:
            raise Unauthenticated("authentication required to modify a project")
        raise PermissionDenied(
            f"{caller.name} may read but not modify {project.entity_name}/{project.name}"
        )


def can_create_in(conn: Connection, caller: Principal, entity_id: int) -> bool:
    """Whether the caller may create projects in an entity: itself, or a team it belongs to."""
    return caller.is_admin or entity_id in entity_ids(conn, caller)


def require_entity_member(conn: Connection, caller: Principal, entity_id: int, name: str) -> str:
    """The caller's role in an entity, or ``PermissionDenied``."""
    if caller.is_admin:
        return "admin"
    if caller.anonymous:
        raise Unauthenticated("authentication required")
    role = entity_ids(conn, caller).get(entity_id)
    if role is None:
        raise PermissionDenied(f"{caller.name} is not a member of {name}")
    return role


def require_entity_admin(conn: Connection, caller: Principal, entity: Row) -> None:
    """Server admins, and admins of the entity (a user is the admin of its own entity)."""
    if require_entity_member(conn, caller, entity.id, entity.name) != "admin":
        raise PermissionDenied(f"{caller.name} is not an admin of {entity.name}")
