"""Pages to find things: projects, a project's artifacts and runs, an artifact's versions,
a run, a sweep."""

from __future__ import annotations

from itertools import groupby

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ...core.names import ArtifactPath, check_identifier
from ...core.sweeps import rank_runs, sweep_metric
from .render import render
from .session import ViewerDep

router = APIRouter()
MAX_RUNS_LISTED = 200


def run_path(entity: str, project: str, run_id: str) -> str:
    check_identifier("run id", run_id)
    return f"{entity}/{project}/{run_id}"


@router.get("/")
def projects(request: Request, viewer: ViewerDep) -> HTMLResponse:
    return render(request, "projects.html", projects=viewer.backend.list_projects())


@router.get("/projects/{entity}/{project}")
def project(request: Request, viewer: ViewerDep, entity: str, project: str) -> HTMLResponse:
    """The project's artifacts grouped by type, and its latest runs and their sweeps."""
    collections = sorted(
        viewer.backend.list_collections(entity, project), key=lambda c: (c.type, c.name)
    )
    runs = sorted(viewer.backend.list_runs(entity, project), key=lambda r: -r.created_at)
    return render(
        request,
        "project.html",
        entity=entity,
        project=project,
        by_type=[(t, list(group)) for t, group in groupby(collections, lambda c: c.type)],
        runs=runs[:MAX_RUNS_LISTED],
        more_runs=max(0, len(runs) - MAX_RUNS_LISTED),
        sweeps=sorted({r.sweep for r in runs if r.sweep}),
    )


@router.get("/projects/{entity}/{project}/artifacts/{artifact}")
def artifact(
    request: Request, viewer: ViewerDep, entity: str, project: str, artifact: str
) -> HTMLResponse:
    versions = viewer.backend.list_versions(ArtifactPath(entity, project, artifact))
    return render(
        request,
        "artifact.html",
        entity=entity,
        project=project,
        artifact=artifact,
        versions=sorted(versions, key=lambda v: -(v.number or 0)),
    )


@router.get("/projects/{entity}/{project}/runs/{run_id}")
def run(
    request: Request, viewer: ViewerDep, entity: str, project: str, run_id: str
) -> HTMLResponse:
    path = run_path(entity, project, run_id)
    return render(
        request,
        "run.html",
        run=viewer.backend.get_run(path),
        logged=viewer.backend.run_versions(path, "logged"),
        used=viewer.backend.run_versions(path, "used"),
    )


@router.get("/projects/{entity}/{project}/sweeps/{sweep_id}")
def sweep(
    request: Request, viewer: ViewerDep, entity: str, project: str, sweep_id: str
) -> HTMLResponse:
    """The sweep's runs, those scored by its metric first (best first), then the others."""
    info = viewer.backend.get_sweep(run_path(entity, project, sweep_id))
    runs = viewer.backend.list_runs(entity, project, {"sweep": info.id})
    metric, goal = sweep_metric(info.config)
    ranked = rank_runs(runs, metric, goal) if metric else []
    scored = {r.id for r in ranked}
    return render(
        request,
        "sweep.html",
        sweep=info,
        metric=metric,
        goal=goal,
        runs=ranked + [r for r in runs if r.id not in scored],
        best=ranked[0].id if ranked else None,
        parameters=sorted(info.config.get("parameters") or {}),
    )
