"""The lineage graph as a picture: a layered left-to-right layout computed on the server.

Each node sits in the column of its signed distance from the start along the data flow (a
run's inputs to its left, its outputs to its right). An edge that spans several columns
passes through a thin lane in each column between, so it never runs behind a node; within a
column, nodes and lanes are ordered by the rows of their neighbours in the column before,
which keeps most edges from crossing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

from ...client.lineage import Graph, Node
from ...core.records import RunInfo, VersionInfo

NODE_W, NODE_H, LANE_H = 190, 46, 10
GAP_X, GAP_Y, PAD = 56, 22, 16
MAX_LABEL = 24


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
        job = f" · {record.job_type}" if record.job_type else ""
        return record.name or record.id, f"run {record.id}{job}{where}"
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


def _chains(graph: Graph, column: dict[str, int]) -> list[tuple[str, list[str]]]:
    """Each edge as the chain of places it passes: its ends and a lane (added to ``column``)
    in every column between them."""
    chains = []
    for i, (src, dst, relation) in enumerate(graph.edges):
        lanes = [f"lane {i} {c}" for c in range(column[src] + 1, column[dst])]
        for lane, c in zip(lanes, range(column[src] + 1, column[dst])):
            column[lane] = c
        chains.append((relation, [src, *lanes, dst]))
    return chains


def _grid(column: dict[str, int], chains: list[tuple[str, list[str]]]) -> list[list[str]]:
    """Places by column, left to right, each column ordered by its neighbours to the left."""
    first = min(column.values())
    grid: list[list[str]] = [[] for _ in range(max(column.values()) - first + 1)]
    for key in column:  # discovery order
        grid[column[key] - first].append(key)
    links: dict[str, set[str]] = {key: set() for key in column}
    for _, chain in chains:
        for a, b in pairwise(chain):
            links[a].add(b)
            links[b].add(a)
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
    chains = _chains(graph, column)
    grid = _grid(column, chains)

    def height(keys: list[str]) -> int:
        return sum(NODE_H if k in graph.nodes else LANE_H for k in keys) + GAP_Y * (len(keys) - 1)

    tallest = max(map(height, grid))
    home_record = graph.nodes[start].record
    home = (home_record.entity, home_record.project) if home_record else ("", "")
    top: dict[str, tuple[int, int]] = {}  # the top left corner of every node and lane
    placed: list[PlacedNode] = []
    for c, keys in enumerate(grid):
        x, y = PAD + c * (NODE_W + GAP_X), PAD + (tallest - height(keys)) // 2
        for key in keys:
            top[key] = (x, y)
            node = graph.nodes.get(key)
            if node is None:
                y += LANE_H + GAP_Y
                continue
            line1, line2 = _lines(node, home)
            placed.append(
                PlacedNode(key, node.kind, node.label, _short(line1), _short(line2), href(node),
                           key == start, x, y)
            )  # fmt: skip
            y += NODE_H + GAP_Y
    mid = {k: (NODE_H if k in graph.nodes else LANE_H) // 2 for k in top}
    edges = [PlacedEdge(relation, _path(chain, top, mid)) for relation, chain in chains]
    loops = any(len(chain) == 2 and top[chain[1]][0] <= top[chain[0]][0] for _, chain in chains)
    return Picture(
        width=2 * PAD + len(grid) * NODE_W + (len(grid) - 1) * GAP_X,
        height=2 * PAD + tallest + loops * GAP_Y,
        nodes=placed,
        edges=edges,
    )


def _path(chain: list[str], top: dict[str, tuple[int, int]], mid: dict[str, int]) -> str:
    """A curve from the right side of the first place through each lane (straight across)
    to the left side of the last; between places of one column (or backwards), a loop below
    them."""
    (x1, y1), (x2, y2) = top[chain[0]], top[chain[-1]]
    if x2 <= x1:
        a, b = (
            (x1 + NODE_W // 2, y1 + 2 * mid[chain[0]]),
            (x2 + NODE_W // 2, y2 + 2 * mid[chain[-1]]),
        )
        dip = max(a[1], b[1]) + GAP_Y
        return f"M{a[0]},{a[1]} C{a[0]},{dip} {b[0]},{dip} {b[0]},{b[1]}"
    x, y = x1 + NODE_W, y1 + mid[chain[0]]
    steps = [f"M{x},{y}"]
    for key in chain[1:]:
        nx, ny = top[key][0], top[key][1] + mid[key]
        half = (x + nx) // 2
        steps.append(f"C{half},{y} {half},{ny} {nx},{ny}")
        x, y = nx, ny
        if key != chain[-1]:
            x += NODE_W
            steps.append(f"L{x},{y}")
    return " ".join(steps)
