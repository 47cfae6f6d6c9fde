"""The FastAPI application over one ``Store``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from .. import __version__
from ..store.service import Store
from .bodies import BodyLimit
from .responses import JSONResponse, install_error_handlers
from .routes import admin, chunks, runs, versions


def create_app(store: Store) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        store.close()

    app = FastAPI(
        title="artfs",
        version=__version__,
        description="A versioned, deduplicated artifact store (see DESIGN.md).",
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

    for module in (chunks, versions, runs, admin):
        app.include_router(module.router)
    return app
