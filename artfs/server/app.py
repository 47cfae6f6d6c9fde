"""The FastAPI application over one ``Store``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.responses import Response

from .. import __version__
from ..store.service import Store
from . import metrics
from .bodies import BodyLimit
from .observe import Observe
from .responses import JSONResponse, install_error_handlers
from .routes import admin, chunks, direct, runs, versions
from .ui import create_ui, mount_ui


def create_app(store: Store) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        store.close()

    app = FastAPI(
        title="artfs",
        version=__version__,
        description="A versioned, deduplicated artifact store (see docs/OPERATIONS.md).",
        default_response_class=JSONResponse,
        lifespan=lifespan,
    )
    app.state.store = store
    app.add_middleware(BodyLimit)
    install_error_handlers(app)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers (no store access)."""
        return {"status": "ok", "version": __version__}

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        """Prometheus metrics (docs/OPERATIONS.md, "Metrics")."""
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    app.add_middleware(Observe)

    for module in (chunks, direct, versions, runs, admin):
        app.include_router(module.router)
    mount_ui(app, create_ui(store))
    return app
