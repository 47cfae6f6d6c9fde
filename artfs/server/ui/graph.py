"""The lineage graph as a picture: a layered left-to-right layout computed on the server.

Each node sits in the column of its signed distance from the start along the data flow (a
run's inputs to its left, its outputs to its right); within a column nodes are ordered by
the rows of their neighbours in the column before, which keeps most edges from crossing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

from ...client.lineage import Graph, Node
from ...core.records import RunInfo, VersionInfo

NODE_W, NODE_H = 240, 46
GAP_X, GAP_Y, PAD = 90, 22, 16
MAX_LABEL = 32


@dataclass(frozen=True)
class PlacedNode:
    key: str
    kind: str  # "artifact" | "run"
    title: str  # the full label (a tooltip)
    line1: str
    line2: str
    href: str
    start: bool
    x: int
    y: int


@dataclass(frozen=True)
class PlacedEdge:
    relation: str  # "logged" | "used"
    d: str  # the SVG path


@dataclass(frozen=True)
class Picture:
    width: int
    height: int
    nodes: list[PlacedNode]
    edges: list[PlacedEdge]
    node_w: int = NODE_W
    node_h: int = NODE_H


def _short(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def _lines(node: Node, home: tuple[str, str]) -> tuple[str, str]:
    """Two short lines: what the node is, then its type or job (and project if elsewhere)."""
    record = node.record
    where = ""
    if record is not None and (record.entity, record.project) != home:
        where = f" · {record.entity}/{record.project}"
    if isinstance(record, VersionInfo):
        return f"{record.artifact}:{record.label}", f"{record.type}{where}"
    if isinstance(record, RunInfo):
        return record.name or record.id, f"run {record.id}" + (
            f" · {record.job_type}" if record.job_type else ""
        )
    return node.label, node.kind


def _columns(graph: Graph, start: str) -> dict[str, int]:
    """Each node's signed distance from ``start`` following edges forwards (+1) or back."""
    neighbours: dict[str, list[tuple[str, int]]] = {key: [] for key in graph.nodes}
    for src, dst, _ in graph.edges:
        neighbours[src].append((dst, 1))
        neighbours[dst].append((src, -1))
    column = {start: 0}
    queue = deque([start])
    while queue:
        key = queue.popleft()
        for other, step in neighbours[key]:
            if other not in column:
                column[other] = column[key] + step
                queue.append(other)
    return column


def _rows(graph: Graph, column: dict[str, int]) -> list[list[str]]:
    """Nodes by column, left to right, each column ordered by its neighbours to the left."""
    first = min(column.values())
    grid: list[list[str]] = [[] for _ in range(max(column.values()) - first + 1)]
    for key in column:  # discovery order
        grid[column[key] - first].append(key)
    links: dict[str, set[str]] = {key: set() for key in column}
    for src, dst, _ in graph.edges:
        links[src].add(dst)
        links[dst].add(src)
    for left, current in pairwise(grid):
        place = {key: i for i, key in enumerate(left)}

        def weight(key: str, place: dict[str, int] = place) -> float:
            rows = [place[n] for n in links[key] if n in place]
            return sum(rows) / len(rows) if rows else float(len(place))

        current.sort(key=weight)
    return grid


def layout(graph: Graph, start: str, href: Callable[[Node], str]) -> Picture:
    """Place ``graph`` (grown from the node ``start``) as a picture whose nodes link to
    ``href(node)``."""
    column = _columns(graph, start)
    grid = _rows(graph, column)
    tallest = max(len(col) for col in grid)
    home_record = graph.nodes[start].record
    home = (home_record.entity, home_record.project) if home_record else ("", "")
    placed: dict[str, PlacedNode] = {}
    for c, keys in enumerate(grid):
        offset = (tallest - len(keys)) * (NODE_H + GAP_Y) // 2
        for r, key in enumerate(keys):
            node = graph.nodes[key]
            line1, line2 = _lines(node, home)
            placed[key] = PlacedNode(
                key=key,
                kind=node.kind,
                title=node.label,
                line1=_short(line1),
                line2=_short(line2),
                href=href(node),
                start=key == start,
                x=PAD + c * (NODE_W + GAP_X),
                y=PAD + offset + r * (NODE_H + GAP_Y),
            )
    edges = [PlacedEdge(rel, _path(placed[a], placed[b])) for a, b, rel in graph.edges]
    return Picture(
        width=2 * PAD + len(grid) * NODE_W + (len(grid) - 1) * GAP_X,
        height=2 * PAD + tallest * NODE_H + tallest * GAP_Y,  # room for loops below
        nodes=list(placed.values()),
        edges=edges,
    )


def _path(src: PlacedNode, dst: PlacedNode) -> str:
    """A curve from the right side of ``src`` to the left side of ``dst``; between nodes of
    one column (or backwards), a loop below them."""
    if dst.x > src.x:
        x1, y1, x2, y2 = src.x + NODE_W, src.y + NODE_H // 2, dst.x, dst.y + NODE_H // 2
        mid = (x1 + x2) // 2
        return f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"
    x1, y1 = src.x + NODE_W // 2, src.y + NODE_H
    x2, y2 = dst.x + NODE_W // 2, dst.y + NODE_H
    dip = max(y1, y2) + GAP_Y
    return f"M{x1},{y1} C{x1},{dip} {x2},{dip} {x2},{y2}"
