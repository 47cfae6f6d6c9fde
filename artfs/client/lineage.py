"""The lineage graph around a version: runs that logged and used versions, walked both ways."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ..core.names import ArtifactPath
from ..core.records import RunInfo, VersionInfo
from .backend import Backend


@dataclass(frozen=True)
class Node:
    key: str  # "artifact:<entity/project/name:vN>" or "run:<entity/project/id>"
    kind: str  # "artifact" | "run"
    label: str
    record: VersionInfo | RunInfo | None = field(default=None, compare=False, repr=False)


@dataclass
class Graph:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[tuple[str, str, str]] = field(default_factory=list)  # (from, to, "logged"|"used")

    def add_edge(self, src: Node, dst: Node, relation: str) -> None:
        self.nodes.setdefault(src.key, src)
        self.nodes.setdefault(dst.key, dst)
        if (src.key, dst.key, relation) not in self.edges:
            self.edges.append((src.key, dst.key, relation))

    def to_text(self) -> str:
        verbs = {"logged": "logged", "used": "was used by"}
        return "\n".join(
            f"{self.nodes[a].label}  {verbs[rel]}  {self.nodes[b].label}"
            for a, b, rel in self.edges
        )

    def to_dot(self) -> str:
        lines = ["digraph lineage {", "  rankdir=LR;"]
        for node in self.nodes.values():
            shape = "box" if node.kind == "artifact" else "ellipse"
            lines.append(f'  "{node.key}" [label="{node.label}", shape={shape}];')
        for a, b, rel in self.edges:
            lines.append(f'  "{a}" -> "{b}" [label="{rel}"];')
        lines.append("}")
        return "\n".join(lines) + "\n"


def _version_node(info: VersionInfo) -> Node:
    return Node(f"artifact:{info.path}", "artifact", f"{info.path} ({info.type})", info)


def _run_node(info: RunInfo) -> Node:
    job = f", {info.job_type}" if info.job_type else ""
    return Node(f"run:{info.path}", "run", f"run {info.path} ({info.name}{job})", info)


def lineage(backend: Backend, start: ArtifactPath | str, depth: int = 3) -> Graph:
    """Breadth-first over logged/used edges, up to ``depth`` hops from ``start`` (a version,
    or a run given as ``entity/project/id``).

    Edges point the way data flows: run -> version it logged, version -> run that used it.
    """
    graph = Graph()
    first = backend.resolve(start) if isinstance(start, ArtifactPath) else backend.get_run(start)
    start_node = _version_node(first) if isinstance(first, VersionInfo) else _run_node(first)
    graph.nodes[start_node.key] = start_node
    queue: deque[tuple[VersionInfo | RunInfo, int]] = deque([(first, 0)])
    seen = {start_node.key}

    def visit(item: VersionInfo | RunInfo, node: Node, distance: int) -> None:
        if node.key not in seen:
            seen.add(node.key)
            queue.append((item, distance + 1))

    while queue:
        item, distance = queue.popleft()
        if distance >= depth:
            continue
        if isinstance(item, VersionInfo):
            version = _version_node(item)
            for run in backend.version_runs(item.path, "logged_by"):
                graph.add_edge(_run_node(run), version, "logged")
                visit(run, _run_node(run), distance)
            for run in backend.version_runs(item.path, "used_by"):
                graph.add_edge(version, _run_node(run), "used")
                visit(run, _run_node(run), distance)
        else:
            run_node = _run_node(item)
            for logged in backend.run_versions(item.path, "logged"):
                graph.add_edge(run_node, _version_node(logged), "logged")
                visit(logged, _version_node(logged), distance)
            for used in backend.run_versions(item.path, "used"):
                graph.add_edge(_version_node(used), run_node, "used")
                visit(used, _version_node(used), distance)
    return graph
