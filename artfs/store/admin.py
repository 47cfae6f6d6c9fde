"""Identity and administration: API keys, users, teams, members, project settings.

An API key is ``artfs_<key_id>_<secret>``: ``key_id`` finds the row, and only a SHA-256 of
the secret is stored, compared in constant time. The secret has 256 random bits, so a fast
hash is enough (no password stretching needed). Who may do what:

- server admins: everything;
- a team's admins: its members, and its projects' creation and visibility;
- every user: its own keys, and the projects of its own user entity.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from ..core.errors import Conflict, InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from ..core.names import check_identifier
from ..core.records import KeyInfo, MemberInfo, UserInfo
from .access import (
    ANONYMOUS,
    Principal,
    entity_ids,
    require_entity_admin,
    require_entity_member,
)
from .db import Database
from .lookup import entity_row, insert_missing, now
from .schema import api_keys, entities, memberships

KEY_PREFIX = "artfs"
ROLES = ("admin", "member")
BOOTSTRAP_ADMIN = "admin"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _require_admin(caller: Principal, what: str) -> None:
    if caller.anonymous:
        raise Unauthenticated("authentication required: pass an API key (artfs login)")
    if not caller.is_admin:
        raise PermissionDenied(f"{what} needs a server administrator")


def _check_role(role: object) -> str:
    if not isinstance(role, str) or role not in ROLES:
        raise InvalidArgument(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    return role


def _require_kind(conn: Connection, name: str, kind: str) -> Row:
    row = entity_row(conn, name)
    if row is None or row.kind != kind:
        raise NotFound(f"{kind} {name} not found")
    return row


def _new_entity(conn: Connection, name: str, kind: str, admin: bool = False) -> UserInfo:
    """Create a user or team; names are shared by both, so any clash is refused."""
    check_identifier(kind, name)
    if entity_row(conn, name) is not None:
        raise Conflict(f"a user or team named {name} exists")
    created = now()
    conn.execute(entities.insert().values(name=name, kind=kind, is_admin=admin, created_at=created))
    return UserInfo(name, admin, created)


def _issue_key(conn: Connection, user_id: int, user: str) -> KeyInfo:
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    created = now()
    conn.execute(
        api_keys.insert().values(
            user_id=user_id, key_id=key_id, hash=_hash(secret), created_at=created
        )
    )
    return KeyInfo(key_id, user, created, key=f"{KEY_PREFIX}_{key_id}_{secret}")


def _key_info(row: Row) -> KeyInfo:
    return KeyInfo(row.key_id, row.user_name, row.created_at, row.revoked_at)


def _select_keys() -> sa.Select:
    return sa.select(api_keys, entities.c.name.label("user_name")).join(
        entities, entities.c.id == api_keys.c.user_id
    )


class Admin:
    """Who callers are (API keys) and who may do what (users, teams, members)."""

    def __init__(self, db: Database, anonymous_read: bool = False):
        self.db = db
        self.anonymous_read = anonymous_read

    def ensure_user(self, name: str, *, is_admin: bool = False) -> Principal:
        """The principal for user ``name``, created on first use (the embedded store's
        local user)."""
        with self.db.write() as conn:
            row = entity_row(conn, name)
            if row is None:
                user = {"name": name, "kind": "user", "is_admin": is_admin, "created_at": now()}
                insert_missing(conn, entities, [user])
                row = entity_row(conn, name)
                assert row is not None
            elif is_admin and not row.is_admin:
                conn.execute(
                    sa.update(entities).where(entities.c.id == row.id).values(is_admin=True)
                )
            return Principal(row.id, row.name, bool(row.is_admin or is_admin))

    # -- identity ---------------------------------------------------------------------------

    def authenticate(self, api_key: str | None) -> Principal:
        """The caller an API key stands for; anonymous (no key) only if the store allows it."""
        if api_key is None:
            if not self.anonymous_read:
                raise Unauthenticated("authentication required: pass an API key (artfs login)")
            return ANONYMOUS
        prefix, _, rest = api_key.partition("_")
        key_id, _, secret = rest.partition("_")
        if prefix != KEY_PREFIX or not key_id or not secret:
            raise Unauthenticated("malformed API key: expected artfs_<id>_<secret>")
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(api_keys, entities.c.name, entities.c.is_admin)
                .join(entities, entities.c.id == api_keys.c.user_id)
                .where(api_keys.c.key_id == key_id)
            ).first()
        if row is None or not hmac.compare_digest(row.hash, _hash(secret)):
            raise Unauthenticated("invalid API key")
        if row.revoked_at is not None:
            raise Unauthenticated(f"API key {key_id} was revoked")
        return Principal(row.user_id, row.name, bool(row.is_admin))

    def whoami(self, caller: Principal) -> dict[str, Any]:
        """The caller's name, whether it is a server admin, and its teams with its role."""
        with self.db.read() as conn:
            roles = entity_ids(conn, caller)
            teams = conn.execute(
                sa.select(entities.c.id, entities.c.name)
                .where(entities.c.id.in_([i for i in roles if i != caller.id]))
                .order_by(entities.c.name)
            ).all()
        return {
            "user": caller.name,
            "admin": caller.is_admin,
            "teams": [{"name": name, "role": roles[id_]} for id_, name in teams],
        }

    def bootstrap_admin(
        self, save: Callable[[str], None], name: str = BOOTSTRAP_ADMIN
    ) -> str | None:
        """On a store without any server admin: create one and its first key.

        ``save`` stores the key before the transaction commits, so an admin whose key was
        lost to a crash is never left behind. Returns the key, or None if there was an admin.
        """
        with self.db.write() as conn:
            if conn.execute(sa.select(entities.c.id).where(entities.c.is_admin)).first():
                return None
            _new_entity(conn, name, "user", admin=True)
            key = _issue_key(conn, _require_kind(conn, name, "user").id, name).key
            assert key is not None
            save(key)
            return key

    # -- users and keys ---------------------------------------------------------------------

    def create_user(
        self, caller: Principal, name: str, *, admin: bool = False
    ) -> tuple[UserInfo, KeyInfo]:
        """A new user and its first API key (the only time the secret is shown)."""
        _require_admin(caller, "creating users")
        with self.db.write() as conn:
            user = _new_entity(conn, name, "user", admin)
            return user, _issue_key(conn, _require_kind(conn, name, "user").id, name)

    def list_users(self, caller: Principal) -> list[UserInfo]:
        _require_admin(caller, "listing users")
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(entities).where(entities.c.kind == "user").order_by(entities.c.name)
            )
            return [UserInfo(r.name, bool(r.is_admin), r.created_at) for r in rows]

    def _key_owner(self, conn: Connection, caller: Principal, user: str | None) -> Row:
        """The user whose keys are managed: the caller's own, or anyone's for an admin."""
        name = user or caller.name
        if caller.anonymous:
            raise Unauthenticated("authentication required: pass an API key (artfs login)")
        if name != caller.name and not caller.is_admin:
            raise PermissionDenied(f"{caller.name} may only manage its own keys")
        return _require_kind(conn, name, "user")

    def create_key(self, caller: Principal, user: str | None = None) -> KeyInfo:
        with self.db.write() as conn:
            owner = self._key_owner(conn, caller, user)
            return _issue_key(conn, owner.id, owner.name)

    def list_keys(self, caller: Principal, user: str | None = None) -> list[KeyInfo]:
        with self.db.read() as conn:
            owner = self._key_owner(conn, caller, user)
            rows = conn.execute(
                _select_keys().where(api_keys.c.user_id == owner.id).order_by(api_keys.c.id)
            )
            return [_key_info(r) for r in rows]

    def revoke_key(self, caller: Principal, key_id: str) -> KeyInfo:
        """Revoke a key (its owner or a server admin); the row stays, marked, for audit."""
        with self.db.write() as conn:
            row = conn.execute(_select_keys().where(api_keys.c.key_id == key_id)).first()
            if row is None or (row.user_id != caller.id and not caller.is_admin):
                if caller.anonymous:
                    raise Unauthenticated("authentication required")
                raise NotFound(f"API key {key_id} not found")
            if row.revoked_at is None:
                conn.execute(
                    api_keys.update().where(api_keys.c.id == row.id).values(revoked_at=now())
                )
            row = conn.execute(_select_keys().where(api_keys.c.key_id == key_id)).one()
            return _key_info(row)

    # -- teams ------------------------------------------------------------------------------

    def create_team(self, caller: Principal, name: str) -> UserInfo:
        _require_admin(caller, "creating teams")
        with self.db.write() as conn:
            return _new_entity(conn, name, "team")

    def set_member(
        self, caller: Principal, team: str, user: str, role: str = "member"
    ) -> MemberInfo:
        """Add a user to a team, or change its role (server admins and the team's admins)."""
        _check_role(role)
        with self.db.write() as conn:
            team_row = _require_kind(conn, team, "team")
            require_entity_admin(conn, caller, team_row)
            user_row = _require_kind(conn, user, "user")
            conn.execute(
                memberships.delete().where(
                    memberships.c.team_id == team_row.id, memberships.c.user_id == user_row.id
                )
            )
            conn.execute(
                memberships.insert().values(team_id=team_row.id, user_id=user_row.id, role=role)
            )
            return MemberInfo(team, user, role)

    def remove_member(self, caller: Principal, team: str, user: str) -> MemberInfo:
        with self.db.write() as conn:
            team_row = _require_kind(conn, team, "team")
            require_entity_admin(conn, caller, team_row)
            user_row = _require_kind(conn, user, "user")
            role = conn.execute(
                sa.select(memberships.c.role).where(
                    memberships.c.team_id == team_row.id, memberships.c.user_id == user_row.id
                )
            ).scalar()
            if role is None:
                raise NotFound(f"{user} is not a member of {team}")
            conn.execute(
                memberships.delete().where(
                    memberships.c.team_id == team_row.id, memberships.c.user_id == user_row.id
                )
            )
            return MemberInfo(team, user, role)

    def list_members(self, caller: Principal, team: str) -> list[MemberInfo]:
        """A team's members, for anyone in the team (and server admins)."""
        with self.db.read() as conn:
            team_row = _require_kind(conn, team, "team")
            require_entity_member(conn, caller, team_row.id, team)
            rows = conn.execute(
                sa.select(entities.c.name, memberships.c.role)
                .join(entities, entities.c.id == memberships.c.user_id)
                .where(memberships.c.team_id == team_row.id)
                .order_by(entities.c.name)
            )
            return [MemberInfo(team, name, role) for name, role in rows]
