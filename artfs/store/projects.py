"""Projects: the unit of access. Every other part asks this one for the project it is about
to read or change, so the visibility rules (``access``) are applied in one place."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from ..core.errors import Conflict, NotFound
from ..core.names import check_identifier
from ..core.records import ProjectInfo
from .access import (
    Principal,
    can_create_in,
    can_read,
    check_visibility,
    require_entity_admin,
    require_read,
    require_write,
)
from .db import Database
from .lookup import entity_row, insert_missing, now, project_row, require_project
from .schema import entities, projects


def project_info(row: Row) -> ProjectInfo:
    return ProjectInfo(row.entity_name, row.name, row.visibility, row.created_at)


class Projects:
    def __init__(self, db: Database, anonymous_read: bool = False):
        self.db = db
        self.anonymous_read = anonymous_read

    # -- rules other parts apply inside their transactions ---------------------------------

    def readable(self, conn: Connection, caller: Principal, entity: str, project: str) -> Row:
        """A project the caller may read (someone else's private one is "not found")."""
        row = require_project(conn, entity, project)
        require_read(conn, caller, row, self.anonymous_read)
        return row

    def modifiable(self, conn: Connection, caller: Principal, entity: str, project: str) -> Row:
        """An existing project the caller may change."""
        row = require_project(conn, entity, project)
        require_write(conn, caller, row, self.anonymous_read)
        return row

    def writable(
        self, conn: Connection, caller: Principal, entity: str, name: str, create: bool = True
    ) -> Row | None:
        """The project to write into. A member's first write creates it (private) when
        ``create``; otherwise None says it would be created."""
        project = project_row(conn, entity, name)
        if project is not None:
            require_write(conn, caller, project, self.anonymous_read)
            return project
        ent = entity_row(conn, entity)
        if not caller.is_admin and (ent is None or not can_create_in(conn, caller, ent.id)):
            # the same answer as for someone else's private project: nothing is revealed
            raise NotFound(f"project {entity}/{name} not found")
        check_identifier("project", name)
        if not create:
            return None
        if ent is None:
            insert_missing(conn, entities, [{"name": entity, "kind": "team", "created_at": now()}])
            ent = entity_row(conn, entity)
        assert ent is not None
        return self.create_row(conn, ent.id, name, "private")

    def create_row(self, conn: Connection, entity_id: int, name: str, visibility: str) -> Row:
        check_identifier("project", name)
        row = {"entity_id": entity_id, "name": name, "visibility": check_visibility(visibility)}
        insert_missing(conn, projects, [{**row, "created_at": now()}])
        entity = conn.execute(sa.select(entities.c.name).where(entities.c.id == entity_id))
        found = project_row(conn, entity.scalar_one(), name)
        assert found is not None
        return found

    def can_read_names(self, conn: Connection, caller: Principal, entity: str, name: str) -> bool:
        row = project_row(conn, entity, name)
        return row is not None and can_read(conn, caller, row, self.anonymous_read)

    # -- service calls ---------------------------------------------------------------------

    def list_projects(self, caller: Principal, entity: str | None = None) -> list[ProjectInfo]:
        """The projects the caller can read (of one entity, if given)."""
        with self.db.read() as conn:
            query = sa.select(projects, entities.c.name.label("entity_name")).join(
                entities, entities.c.id == projects.c.entity_id
            )
            if entity is not None:
                query = query.where(entities.c.name == entity)
            rows = conn.execute(query.order_by(entities.c.name, projects.c.name)).all()
            return [project_info(r) for r in rows if can_read(conn, caller, r, self.anonymous_read)]

    def create_project(
        self, caller: Principal, entity: str, name: str, visibility: str = "private"
    ) -> ProjectInfo:
        """A new project (server admins and the entity's admins)."""
        check_visibility(visibility)
        with self.db.write() as conn:
            ent = entity_row(conn, check_identifier("entity", entity))
            if ent is None:
                raise NotFound(f"entity {entity} not found")
            require_entity_admin(conn, caller, ent)
            if project_row(conn, entity, name) is not None:
                raise Conflict(f"project {entity}/{name} exists")
            return project_info(self.create_row(conn, ent.id, name, visibility))

    def set_visibility(
        self, caller: Principal, entity: str, name: str, visibility: str
    ) -> ProjectInfo:
        check_visibility(visibility)
        with self.db.write() as conn:
            row = self.readable(conn, caller, entity, name)
            ent = entity_row(conn, entity)
            assert ent is not None
            require_entity_admin(conn, caller, ent)
            conn.execute(
                projects.update().where(projects.c.id == row.id).values(visibility=visibility)
            )
            return ProjectInfo(entity, name, visibility, row.created_at)
