"""Runs and lineage: the bipartite graph run → logged version, version → using run."""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from ..core.errors import Conflict, InvalidArgument, NotFound
from ..core.names import ArtifactPath, check_identifier, parse_run_path
from ..core.records import RunInfo, VersionInfo
from .access import Principal
from .db import Database
from .fields import check_metadata, check_text, merged_metadata
from .lookup import COMMITTED, insert_missing, now, select_versions, version_infos
from .projects import Projects
from .schema import entities, projects, runs, uses, versions
from .versions import Versions

RESUME_MODES = ("allow", "must", "never")
RUN_STATES = ("running", "finished", "failed", "crashed")
RUN_FIELDS = ("name", "summary", "config", "state")
RUN_FILTERS = ("group", "job_type", "sweep", "state", "name")
_ALPHABET = string.ascii_lowercase + string.digits


def new_run_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(8))


def run_info(row: Row) -> RunInfo:
    return RunInfo(
        entity=row.entity_name,
        project=row.project_name,
        id=row.run_id,
        name=row.name,
        group=row.group_name,
        job_type=row.job_type,
        config=dict(row.config),
        summary=dict(row.summary),
        state=row.state,
        created_at=row.created_at,
        updated_at=row.updated_at,
        sweep=row.sweep_id,
    )


def _select_runs() -> sa.Select:
    return (
        sa.select(
            runs,
            projects.c.name.label("project_name"),
            entities.c.name.label("entity_name"),
        )
        .join(projects, projects.c.id == runs.c.project_id)
        .join(entities, entities.c.id == projects.c.entity_id)
    )


def _find_run_row(conn: Connection, project_id: int, run_id: str) -> Row | None:
    return conn.execute(
        _select_runs().where(runs.c.project_id == project_id, runs.c.run_id == run_id)
    ).first()


def run_row(conn: Connection, project_id: int, run_id: str) -> Row:
    found = _find_run_row(conn, project_id, run_id)
    if found is None:
        raise NotFound(f"run {run_id} not found")
    return found


class Runs:
    """Runs depend on versions: they log and use them."""

    def __init__(self, db: Database, projects: Projects, versions: Versions):
        self.db = db
        self.projects = projects
        self.versions = versions

    def init_run(
        self,
        caller: Principal,
        entity: str,
        project: str,
        run_id: str | None = None,
        *,
        resume: str = "allow",
        name: str | None = None,
        group: str | None = None,
        job_type: str | None = None,
        config: Mapping[str, Any] | None = None,
        sweep: str | None = None,
    ) -> RunInfo:
        """Start a run, or resume one by id (``resume``: allow, must or never)."""
        if resume not in RESUME_MODES:
            raise InvalidArgument(f"resume must be one of {', '.join(RESUME_MODES)}")
        run_id = check_identifier("run id", run_id or new_run_id())
        settings = check_metadata(config or {})
        with self.db.write() as conn:
            proj = self.projects.writable(conn, caller, entity, project)
            assert proj is not None
            row = _find_run_row(conn, proj.id, run_id)
            if row is not None and resume == "never":
                raise Conflict(f"run {entity}/{project}/{run_id} exists and resume='never'")
            if row is None and resume == "must":
                raise NotFound(f"run {entity}/{project}/{run_id} not found (resume='must')")
            if row is None:
                new = {
                    "project_id": proj.id,
                    "run_id": run_id,
                    "name": check_text("name", name) or run_id,
                    "group_name": check_text("group", group),
                    "job_type": check_text("job_type", job_type),
                    "config": settings,
                    "summary": {},
                    "state": "running",
                    "sweep_id": check_text("sweep", sweep),
                    "created_at": now(),
                    "updated_at": now(),
                }
                insert_missing(conn, runs, [new])
            else:
                values: dict[str, Any] = {"state": "running", "updated_at": now()}
                if settings:
                    values["config"] = merged_metadata("config", row.config, settings)
                conn.execute(runs.update().where(runs.c.id == row.id).values(**values))
            return run_info(run_row(conn, proj.id, run_id))

    def _find_run(self, conn: Connection, caller: Principal, run: str, write: bool) -> Row:
        entity, project, run_id = parse_run_path(run)
        find = self.projects.modifiable if write else self.projects.readable
        proj = find(conn, caller, entity, project)
        row = _find_run_row(conn, proj.id, run_id)
        if row is None:
            raise NotFound(f"run {run} not found")
        return row

    def get_run(self, caller: Principal, run: str) -> RunInfo:
        with self.db.read() as conn:
            return run_info(self._find_run(conn, caller, run, write=False))

    def update_run(self, caller: Principal, run: str, changes: Mapping[str, Any]) -> RunInfo:
        """Set summary and config (merged key by key), name or state."""
        unknown = set(changes) - set(RUN_FIELDS)
        if unknown:
            raise InvalidArgument(f"cannot change {', '.join(sorted(unknown))} of a run")
        if "state" in changes and changes["state"] not in RUN_STATES:
            raise InvalidArgument(f"run state must be one of {', '.join(RUN_STATES)}")
        if "name" in changes and changes["name"] is None:
            raise InvalidArgument("a run's name cannot be removed")
        check_text("name", changes.get("name"))
        with self.db.write() as conn:
            row = self._find_run(conn, caller, run, write=True)
            values: dict[str, Any] = {"updated_at": now()}
            for key in ("summary", "config"):
                if key in changes:
                    values[key] = merged_metadata(key, row._mapping[key], changes[key])
            for key in ("name", "state"):
                if key in changes:
                    values[key] = changes[key]
            conn.execute(runs.update().where(runs.c.id == row.id).values(**values))
            return run_info(run_row(conn, row.project_id, row.run_id))

    def list_runs(
        self, caller: Principal, entity: str, project: str, filters: Mapping[str, Any] | None = None
    ) -> list[RunInfo]:
        columns = {
            "group": runs.c.group_name,
            "job_type": runs.c.job_type,
            "sweep": runs.c.sweep_id,
            "state": runs.c.state,
            "name": runs.c.name,
        }
        with self.db.read() as conn:
            proj = self.projects.readable(conn, caller, entity, project)
            query = _select_runs().where(runs.c.project_id == proj.id)
            for key, value in (filters or {}).items():
                if key not in columns:
                    raise InvalidArgument(
                        f"unknown run filter {key!r}: use {', '.join(RUN_FILTERS)}"
                    )
                query = query.where(columns[key] == value)
            return [run_info(r) for r in conn.execute(query.order_by(runs.c.created_at))]

    def use_version(self, caller: Principal, run: str, path: ArtifactPath) -> VersionInfo:
        """Record that a run used a version (idempotent)."""
        with self.db.write() as conn:
            using = self._find_run(conn, caller, run, write=True)
            version = self.versions.version(conn, caller, path)
            insert_missing(
                conn, uses, [{"run_pk": using.id, "version_id": version.id, "used_at": now()}]
            )
            rows = conn.execute(select_versions().where(versions.c.id == version.id)).all()
            return version_infos(conn, rows)[0]

    def run_versions(self, caller: Principal, run: str, relation: str) -> list[VersionInfo]:
        """The versions a run ``logged`` or ``used`` (those the caller may read)."""
        with self.db.read() as conn:
            row = self._find_run(conn, caller, run, write=False)
            query = select_versions().where(versions.c.state == COMMITTED)
            if relation == "logged":
                query = query.where(versions.c.run_pk == row.id)
            elif relation == "used":
                query = query.join(uses, uses.c.version_id == versions.c.id).where(
                    uses.c.run_pk == row.id
                )
            else:
                raise InvalidArgument("relation must be 'logged' or 'used'")
            rows = [
                r
                for r in conn.execute(query.order_by(versions.c.id))
                if self.projects.can_read_names(conn, caller, r.entity_name, r.project_name)
            ]
            return version_infos(conn, rows)

    def version_runs(self, caller: Principal, path: ArtifactPath, relation: str) -> list[RunInfo]:
        """The run that logged a version (``logged_by``) or the runs that used it (``used_by``)."""
        with self.db.read() as conn:
            version = self.versions.version(conn, caller, path)
            query = _select_runs()
            if relation == "logged_by":
                if version.run_pk is None:
                    return []
                query = query.where(runs.c.id == version.run_pk)
            elif relation == "used_by":
                query = query.join(uses, uses.c.run_pk == runs.c.id).where(
                    uses.c.version_id == version.id
                )
            else:
                raise InvalidArgument("relation must be 'logged_by' or 'used_by'")
            return [
                run_info(r)
                for r in conn.execute(query.order_by(runs.c.created_at))
                if self.projects.can_read_names(conn, caller, r.entity_name, r.project_name)
            ]
