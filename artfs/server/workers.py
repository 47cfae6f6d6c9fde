"""The application as each server process builds it.

``artfs server`` prepares the store once (schema, first admin key), leaves its options in the
environment (``ARTFS_SERVER_OPTIONS``) and has uvicorn run ``app`` in every worker: with
``--workers N`` uvicorn starts N processes (spawned, not forked), each opening the store
itself; they share the port, the database and the blobs, nothing else (docs/OPERATIONS.md,
"Several servers and presigned URLs"). ``PROMETHEUS_MULTIPROC_DIR`` must be set before a
worker imports prometheus_client, so this module imports the application only inside ``app``.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..store.s3blobs import ServerSideEncryption
from ..store.settings import StoreSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

OPTIONS_ENV = "ARTFS_SERVER_OPTIONS"


@dataclass(frozen=True)
class ServerOptions:
    data: str
    db_url: str | None
    blobs_url: str | None
    key_file: str | None
    s3_sse: str | None
    s3_kms_key_id: str | None
    presign_ttl: int
    s3_public_endpoint: str | None
    anonymous_read: bool
    log_level: str

    def settings(self, migrate: bool = False) -> StoreSettings:
        sse = ServerSideEncryption(self.s3_sse, self.s3_kms_key_id) if self.s3_sse else None
        return StoreSettings(
            upgrade=migrate,
            encryption_key_file=Path(self.key_file) if self.key_file else None,
            s3_sse=sse,
            presign_ttl=self.presign_ttl,
            s3_public_endpoint=self.s3_public_endpoint,
        )

    def export(self) -> None:
        os.environ[OPTIONS_ENV] = json.dumps(asdict(self))

    @classmethod
    def imported(cls) -> ServerOptions:
        return cls(**json.loads(os.environ[OPTIONS_ENV]))


def configure_logging(level: str) -> None:
    """One logfmt line per event on stderr, uvicorn's included (once per process)."""
    from .observe import LogfmtFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(LogfmtFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler])


def app() -> FastAPI:
    """uvicorn's application factory: this process's store and app."""
    from ..store.service import Store
    from .app import create_app

    options = ServerOptions.imported()
    configure_logging(options.log_level)
    store = Store.open(
        Path(options.data),
        options.db_url,
        options.blobs_url,
        options.settings(),
        anonymous_read=options.anonymous_read,
    )
    return create_app(store)
