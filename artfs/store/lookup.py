"""Row lookups and record building shared by the service's parts."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from ..core.errors import InvalidArgument, NotFound
from ..core.names import LATEST, ArtifactPath, check_identifier, parse_run_path
from ..core.records import VersionInfo
from .schema import aliases, artifacts, entities, projects, runs, tags, versions

COMMITTED = "committed"
PENDING = "pending"
DELETED = "deleted"


def now() -> float:
    return time.time()


def batched(items: Sequence[Any], size: int = 500) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def insert_missing(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows, skipping any a concurrent writer inserted first (a unique key clash).

    SQLite serializes writers, but several server processes on PostgreSQL may create the
    same project, artifact or chunk row at once; both then go on with the one row.
    """
    conn.execute(_insert_or_skip(conn, table), rows)


def insert_new(conn: Connection, table: sa.Table, **values: Any) -> int | None:
    """Insert one row unless a concurrent writer inserted it first: its ``id`` if this
    transaction made it (and, on PostgreSQL, holds it until commit), else None."""
    query = _insert_or_skip(conn, table).values(**values).returning(table.c.id)
    found = conn.execute(query).scalar()
    return None if found is None else int(found)


def _insert_or_skip(conn: Connection, table: sa.Table) -> Any:
    if conn.dialect.name == "postgresql":  # (imported here: it is slow to import)
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table).on_conflict_do_nothing()


def insert_row(conn: Connection, table: sa.Table, **values: Any) -> int:
    """Insert one row; its new ``id``."""
    return int(conn.execute(table.insert().values(**values).returning(table.c.id)).scalar_one())


def entity_row(conn: Connection, name: str) -> Row | None:
    return conn.execute(sa.select(entities).where(entities.c.name == name)).first()


_PROJECT_COLUMNS = (projects, entities.c.name.label("entity_name"))


def project_row(conn: Connection, entity: str, project: str) -> Row | None:
    query = (
        sa.select(*_PROJECT_COLUMNS)
        .join(entities, entities.c.id == projects.c.entity_id)
        .where(entities.c.name == entity, projects.c.name == project)
    )
    return conn.execute(query).first()


def require_project(conn: Connection, entity: str, project: str) -> Row:
    row = project_row(conn, entity, project)
    if row is None:
        raise NotFound(f"project {entity}/{project} not found")
    return row


def artifact_row(conn: Connection, project_id: int, name: str, lock: bool = False) -> Row | None:
    query = sa.select(artifacts).where(
        artifacts.c.project_id == project_id, artifacts.c.name == name
    )
    return conn.execute(query.with_for_update() if lock else query).first()


def require_artifact(conn: Connection, project: Row, name: str, lock: bool = False) -> Row:
    """The artifact row; ``lock`` serializes writers of one artifact (PostgreSQL row lock)."""
    row = artifact_row(conn, project.id, name, lock)
    if row is None:
        raise NotFound(f"artifact {project.entity_name}/{project.name}/{name} not found")
    return row


def latest_number(conn: Connection, artifact_id: int) -> int | None:
    query = sa.select(sa.func.max(versions.c.number)).where(
        versions.c.artifact_id == artifact_id, versions.c.state == COMMITTED
    )
    return conn.execute(query).scalar()


def version_row(conn: Connection, artifact: Row, path: ArtifactPath) -> Row:
    """The committed version an alias or ``vN`` names."""
    label = path.alias
    number = path.version
    if label == LATEST:
        number = latest_number(conn, artifact.id)
        if number is None:
            raise NotFound(f"{path.collection} has no committed version")
    if number is not None:
        query = sa.select(versions).where(
            versions.c.artifact_id == artifact.id, versions.c.number == number
        )
        row = conn.execute(query).first()
        if row is None or row.state == PENDING:
            raise NotFound(f"{path} not found")
        if row.state == DELETED:
            raise NotFound(f"{path} was deleted")
        return row
    query = (
        sa.select(versions)
        .join(aliases, aliases.c.version_id == versions.c.id)
        .where(aliases.c.artifact_id == artifact.id, aliases.c.name == label)
    )
    row = conn.execute(query).first()
    if row is None or row.state != COMMITTED:
        raise NotFound(f"{path.collection} has no alias {label!r}")
    return row


VERSION_COLUMNS = (
    versions,
    artifacts.c.name.label("artifact_name"),
    artifacts.c.type.label("artifact_type"),
    projects.c.name.label("project_name"),
    entities.c.name.label("entity_name"),
)


def select_versions() -> sa.Select:
    """Versions joined with the names a ``VersionInfo`` needs."""
    return (
        sa.select(*VERSION_COLUMNS)
        .join(artifacts, artifacts.c.id == versions.c.artifact_id)
        .join(projects, projects.c.id == artifacts.c.project_id)
        .join(entities, entities.c.id == projects.c.entity_id)
    )


def version_info(conn: Connection, version_id: int) -> VersionInfo:
    row = conn.execute(select_versions().where(versions.c.id == version_id)).one()
    return version_infos(conn, [row])[0]


def version_infos(conn: Connection, rows: Sequence[Row]) -> list[VersionInfo]:
    """Records for rows of ``select_versions()``, with aliases, tags and logging run."""
    ids = [r.id for r in rows]
    alias_map: dict[int, list[str]] = {i: [] for i in ids}
    tag_map: dict[int, list[str]] = {i: [] for i in ids}
    run_map: dict[int, str] = {}
    for part in batched(ids):
        q = sa.select(aliases.c.version_id, aliases.c.name).where(aliases.c.version_id.in_(part))
        for vid, name in conn.execute(q.order_by(aliases.c.name)):
            alias_map[vid].append(name)
        q = sa.select(tags.c.version_id, tags.c.name).where(tags.c.version_id.in_(part))
        for vid, name in conn.execute(q.order_by(tags.c.name)):
            tag_map[vid].append(name)
    run_pks = sorted({r.run_pk for r in rows if r.run_pk is not None})
    for part in batched(run_pks):
        q = (
            sa.select(runs.c.id, runs.c.run_id, projects.c.name, entities.c.name)
            .join(projects, projects.c.id == runs.c.project_id)
            .join(entities, entities.c.id == projects.c.entity_id)
            .where(runs.c.id.in_(part))
        )
        for row in conn.execute(q):
            run_map[row[0]] = f"{row[3]}/{row[2]}/{row[1]}"
    latest = {a: latest_number(conn, a) for a in {r.artifact_id for r in rows}}
    out = []
    for r in rows:
        names = alias_map[r.id]
        if r.state == COMMITTED and r.number == latest[r.artifact_id]:
            names = [LATEST, *names]
        out.append(
            VersionInfo(
                id=r.id,
                entity=r.entity_name,
                project=r.project_name,
                artifact=r.artifact_name,
                type=r.artifact_type,
                number=r.number,
                state=r.state,
                digest=r.digest,
                size=r.size,
                file_count=r.file_count,
                description=r.description,
                metadata=dict(r.metadata),
                aliases=names,
                tags=tag_map[r.id],
                created_at=r.created_at,
                run=run_map.get(r.run_pk) if r.run_pk is not None else None,
                expires_at=r.expires_at,
                base_number=r.base_number,
            )
        )
    return out


def run_pk(conn: Connection, run: str, project: Row) -> int:
    """The row id of the run that logs a version, which must belong to the version's
    project: a version's readers see its run's path, so a run in a more private project
    must not log into it."""
    entity, project_name, run_id = parse_run_path(run)
    if (entity, project_name) != (project.entity_name, project.name):
        raise InvalidArgument(
            f"run {run} belongs to another project than {project.entity_name}/{project.name}"
        )
    pk = conn.execute(
        sa.select(runs.c.id).where(runs.c.project_id == project.id, runs.c.run_id == run_id)
    ).scalar()
    if pk is None:
        raise NotFound(f"run {run} not found")
    return int(pk)


def check_tags(values: Iterable[object]) -> list[str]:
    return sorted({check_identifier("tag", v) for v in values})
