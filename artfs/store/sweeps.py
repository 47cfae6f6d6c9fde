"""Sweeps: a search over run parameters; each trial is a run tied to its sweep."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from ..core.errors import NotFound
from ..core.names import check_identifier, parse_run_path
from ..core.records import RunInfo, SweepInfo
from ..core.sweeps import check_sweep_config, trial_count, trial_params
from .access import Principal
from .db import Database
from .fields import check_metadata
from .lookup import now
from .projects import Projects
from .runs import new_run_id, run_info, run_row
from .schema import entities, projects, runs, sweeps


def _sweep_info(row: Any) -> SweepInfo:
    return SweepInfo(
        row.entity_name, row.project_name, row.sweep_id, dict(row.config), row.created_at
    )


def _select_sweeps() -> sa.Select:
    return (
        sa.select(
            sweeps, projects.c.name.label("project_name"), entities.c.name.label("entity_name")
        )
        .join(projects, projects.c.id == sweeps.c.project_id)
        .join(entities, entities.c.id == projects.c.entity_id)
    )


class Sweeps:
    def __init__(self, db: Database, projects: Projects):
        self.db = db
        self.projects = projects

    def create_sweep(
        self, caller: Principal, entity: str, project: str, config: Mapping[str, Any]
    ) -> SweepInfo:
        checked = check_sweep_config(check_metadata(config, "sweep config"))
        sweep_id = new_run_id()
        with self.db.write() as conn:
            proj = self.projects.writable(conn, caller, entity, project)
            assert proj is not None
            conn.execute(
                sweeps.insert().values(
                    project_id=proj.id, sweep_id=sweep_id, config=checked, created_at=now()
                )
            )
            return _sweep_info(
                conn.execute(
                    _select_sweeps().where(
                        sweeps.c.project_id == proj.id, sweeps.c.sweep_id == sweep_id
                    )
                ).one()
            )

    def get_sweep(self, caller: Principal, sweep: str) -> SweepInfo:
        entity, project, sweep_id = parse_run_path(sweep, "sweep")
        with self.db.read() as conn:
            proj = self.projects.readable(conn, caller, entity, project)
            row = conn.execute(
                _select_sweeps().where(
                    sweeps.c.project_id == proj.id, sweeps.c.sweep_id == sweep_id
                )
            ).first()
            if row is None:
                raise NotFound(f"sweep {sweep} not found")
            return _sweep_info(row)

    def claim_trial(
        self, caller: Principal, sweep: str, job_type: str | None = None
    ) -> RunInfo | None:
        """Start the run of the sweep's next trial, with its parameters as config; None when
        every trial is taken. Agents on several machines never get the same trial."""
        info = self.get_sweep(caller, sweep)
        with self.db.write() as conn:
            proj = self.projects.writable(conn, caller, info.entity, info.project)
            assert proj is not None
            conn.execute(  # agents queue here: each counts the trials the others took
                sa.select(sweeps.c.id)
                .where(sweeps.c.project_id == proj.id, sweeps.c.sweep_id == info.id)
                .with_for_update()
            )
            taken = conn.execute(
                sa.select(sa.func.count()).where(
                    runs.c.project_id == proj.id, runs.c.sweep_id == info.id
                )
            ).scalar_one()
            total = trial_count(info.config)
            if total is not None and taken >= total:
                return None
            run_id = check_identifier("run id", new_run_id())
            conn.execute(
                runs.insert().values(
                    project_id=proj.id,
                    run_id=run_id,
                    name=f"{info.id}-{taken}",
                    group_name=info.id,
                    job_type=job_type or "sweep",
                    config=trial_params(info.config, info.id, taken),
                    summary={},
                    state="running",
                    sweep_id=info.id,
                    created_at=now(),
                    updated_at=now(),
                )
            )
            return run_info(run_row(conn, proj.id, run_id))
