"""Templates, the filters they use, and the links between pages."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from ...core.names import ArtifactPath
from ...core.sizes import format_size

TEMPLATES = Path(__file__).parent / "templates"


def when(ts: float | None) -> str:
    """A time as UTC: the server's pages are read from anywhere."""
    if not ts:
        return "-"
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def as_json(value: Any) -> str:
    """A JSON value as text (the template escapes it like any other text)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters.update(size=format_size, when=when, json=as_json)


def _q(segment: str) -> str:
    return quote(segment, safe="")


@dataclass(frozen=True)
class Links:
    """URLs of the UI's pages, under ``base`` (where the UI is mounted)."""

    base: str

    def home(self) -> str:
        return self.base + "/"

    def static(self, name: str) -> str:
        return f"{self.base}/static/{_q(name)}"

    def login(self, next_url: str | None = None) -> str:
        query = "?" + urlencode({"next": next_url}) if next_url else ""
        return f"{self.base}/login{query}"

    def logout(self) -> str:
        return f"{self.base}/logout"

    def project(self, entity: str, project: str) -> str:
        return f"{self.base}/projects/{_q(entity)}/{_q(project)}"

    def artifact(self, entity: str, project: str, artifact: str) -> str:
        return f"{self.project(entity, project)}/artifacts/{_q(artifact)}"

    def version(self, path: ArtifactPath, part: str = "", file: str | None = None) -> str:
        """A version's page, or one of its parts (``lineage``, ``edit``, ``files``...)."""
        url = f"{self.artifact(path.entity, path.project, path.artifact)}/{_q(path.alias)}"
        if part:
            url += "/" + part
        if file is not None:
            url += "/" + quote(file, safe="/")
        return url

    def run(self, run_path: str, part: str = "") -> str:
        """A run's page (``entity/project/id``), or its ``lineage``."""
        entity, project, run_id = run_path.split("/", 2)
        url = f"{self.project(entity, project)}/runs/{_q(run_id)}"
        return f"{url}/{part}" if part else url

    def sweep(self, entity: str, project: str, sweep_id: str) -> str:
        return f"{self.project(entity, project)}/sweeps/{_q(sweep_id)}"


def links(request: Request) -> Links:
    return Links(request.scope.get("root_path", "").rstrip("/"))


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page: ``context`` plus the links and whoever is looking (set by the session)."""
    viewer = getattr(request.state, "viewer", None)
    html = environment.get_template(template).render(
        links=links(request), viewer=viewer, request_path=request.url.path, **context
    )
    return HTMLResponse(html, status_code=status)
