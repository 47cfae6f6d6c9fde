"""The lineage of a version or a run, drawn as a picture whose nodes move through it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from ...client.lineage import Graph, Node, lineage
from ...core.names import ArtifactPath, parse_artifact_path
from ...core.records import RunInfo, VersionInfo
from ..routes.versions import VersionPath
from .browse import run_path
from .graph import layout
from .render import Links, links, render
from .session import Viewer, ViewerDep

router = APIRouter()
MAX_DEPTH = 5
Depth = Annotated[int, Query(ge=1, le=MAX_DEPTH)]


def node_page(link: Links, node: Node, part: str = "") -> str:
    """The page of a node (``part="lineage"``: its lineage)."""
    kind, _, name = node.key.partition(":")
    if kind == "run":
        return link.run(name, part)
    return link.version(parse_artifact_path(name), part)


def _page(request: Request, viewer: Viewer, start: ArtifactPath | str, depth: int) -> HTMLResponse:
    graph: Graph = lineage(viewer.backend, start, depth)
    first = next(iter(graph.nodes.values()))  # lineage() puts the start node first
    link = links(request)
    picture = layout(graph, first.key, lambda n: f"{node_page(link, n, 'lineage')}?depth={depth}")
    record = first.record
    return render(
        request,
        "lineage.html",
        start=first,
        record=record,
        is_run=isinstance(record, RunInfo),
        is_version=isinstance(record, VersionInfo),
        start_page=node_page(link, first),
        here=node_page(link, first, "lineage"),
        depth=depth,
        depths=range(1, MAX_DEPTH + 1),
        picture=picture,
        edges=[(graph.nodes[a], rel, graph.nodes[b]) for a, b, rel in graph.edges],
        node_page=lambda n: f"{node_page(link, n, 'lineage')}?depth={depth}",
    )


@router.get("/projects/{entity}/{project}/artifacts/{artifact}/{alias}/lineage")
def version_lineage(
    request: Request, viewer: ViewerDep, path: VersionPath, depth: Depth = 2
) -> HTMLResponse:
    return _page(request, viewer, path, depth)


@router.get("/projects/{entity}/{project}/runs/{run_id}/lineage")
def run_lineage(
    request: Request, viewer: ViewerDep, entity: str, project: str, run_id: str, depth: Depth = 2
) -> HTMLResponse:
    return _page(request, viewer, run_path(entity, project, run_id), depth)
