"""Runs and lineage. A run is addressed by its full path ``/runs/{entity}/{project}/{id}``,
which the store parses and checks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, ConfigDict

from ...core.names import parse_artifact_path
from ...core.records import to_dict
from ...store.access import Principal
from ...store.service import Store
from ..auth import get_store, principal

router = APIRouter(prefix="/api/v1", tags=["runs"])
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
    entity: str,
    project: str,
    body: RunStart,
    caller: Principal = Depends(principal),
    store: Store = Depends(get_store),
) -> Json:
    """Start a run, or resume one by id."""
    options = body.model_dump(exclude={"run_id"})
    return to_dict(store.init_run(caller, entity, project, body.run_id, **options))


@router.get("/projects/{entity}/{project}/runs")
def list_runs(
    entity: str,
    project: str,
    request: Request,
    caller: Principal = Depends(principal),
    store: Store = Depends(get_store),
) -> list[Json]:
    """Runs of a project; every query parameter is a filter (group, job_type, sweep, state,
    name)."""
    filters = dict(request.query_params)
    return [to_dict(r) for r in store.list_runs(caller, entity, project, filters)]


class UseBody(BaseModel):
    artifact: str  # entity/project/artifact:alias


# The sub-resources come first: ``{run:path}`` would also match ``.../uses``.
@router.post("/runs/{run:path}/uses")
def use_version(
    run: str,
    body: UseBody,
    caller: Principal = Depends(principal),
    store: Store = Depends(get_store),
) -> Json:
    """Record that a run used a version."""
    return to_dict(store.use_version(caller, run, parse_artifact_path(body.artifact)))


@router.get("/runs/{run:path}/versions")
def run_versions(
    run: str,
    relation: str,
    caller: Principal = Depends(principal),
    store: Store = Depends(get_store),
) -> list[Json]:
    """The versions a run ``logged`` or ``used``."""
    return [to_dict(v) for v in store.run_versions(caller, run, relation)]


@router.get("/runs/{run:path}")
def get_run(
    run: str, caller: Principal = Depends(principal), store: Store = Depends(get_store)
) -> Json:
    return to_dict(store.get_run(caller, run))


@router.patch("/runs/{run:path}")
def update_run(
    run: str,
    changes: Json = Body(...),
    caller: Principal = Depends(principal),
    store: Store = Depends(get_store),
) -> Json:
    """Merge summary and config, set name or state."""
    return to_dict(store.update_run(caller, run, changes))
