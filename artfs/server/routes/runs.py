"""Runs, lineage and sweeps. A run (or sweep) is addressed by its full path
``/runs/{entity}/{project}/{id}``, which the store parses and checks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from pydantic import BaseModel, ConfigDict

from ...core.names import parse_artifact_path
from ...core.records import to_dict
from ..auth import Caller, StoreDep
from ..routing import JSONRoute

router = APIRouter(prefix="/api/v1", tags=["runs"], route_class=JSONRoute)
Json = dict[str, Any]


class RunStart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run_id: str | None = None
    resume: str = "allow"
    name: str | None = None
    group: str | None = None
    job_type: str | None = None
    config: Json | None = None
    sweep: str | None = None


@router.post("/projects/{entity}/{project}/runs")
def init_run(
    caller: Caller,
    store: StoreDep,
    entity: str,
    project: str,
    body: RunStart,
) -> Json:
    """Start a run, or resume one by id."""
    options = body.model_dump(exclude={"run_id"})
    return to_dict(store.runs.init_run(caller, entity, project, body.run_id, **options))


@router.get("/projects/{entity}/{project}/runs")
def list_runs(
    caller: Caller,
    store: StoreDep,
    entity: str,
    project: str,
    request: Request,
) -> list[Json]:
    """Runs of a project; every query parameter is a filter (group, job_type, sweep, state,
    name)."""
    filters = dict(request.query_params)
    return [to_dict(r) for r in store.runs.list_runs(caller, entity, project, filters)]


class UseBody(BaseModel):
    artifact: str  # entity/project/artifact:alias


# The sub-resources come first: ``{run:path}`` would also match ``.../uses``.
@router.post("/runs/{run:path}/uses")
def use_version(
    caller: Caller,
    store: StoreDep,
    run: str,
    body: UseBody,
) -> Json:
    """Record that a run used a version."""
    return to_dict(store.runs.use_version(caller, run, parse_artifact_path(body.artifact)))


@router.get("/runs/{run:path}/versions")
def run_versions(
    caller: Caller,
    store: StoreDep,
    run: str,
    relation: str,
) -> list[Json]:
    """The versions a run ``logged`` or ``used``."""
    return [to_dict(v) for v in store.runs.run_versions(caller, run, relation)]


@router.get("/runs/{run:path}")
def get_run(caller: Caller, store: StoreDep, run: str) -> Json:
    return to_dict(store.runs.get_run(caller, run))


@router.patch("/runs/{run:path}")
def update_run(
    caller: Caller,
    store: StoreDep,
    run: str,
    changes: Annotated[Json, Body()],
) -> Json:
    """Merge summary and config, set name or state."""
    return to_dict(store.runs.update_run(caller, run, changes))


class SweepBody(BaseModel):
    config: Json


@router.post("/projects/{entity}/{project}/sweeps")
def create_sweep(
    caller: Caller, store: StoreDep, entity: str, project: str, body: SweepBody
) -> Json:
    return to_dict(store.sweeps.create_sweep(caller, entity, project, body.config))


class TrialBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    job_type: str | None = None


@router.post("/sweeps/{sweep:path}/trials")
def claim_trial(caller: Caller, store: StoreDep, sweep: str, body: TrialBody) -> Json | None:
    """Start the run of the sweep's next trial; null when every trial is taken."""
    run = store.sweeps.claim_trial(caller, sweep, body.job_type)
    return None if run is None else to_dict(run)


@router.get("/sweeps/{sweep:path}")
def get_sweep(caller: Caller, store: StoreDep, sweep: str) -> Json:
    """A sweep by its path ``entity/project/sweep_id``."""
    return to_dict(store.sweeps.get_sweep(caller, sweep))
