"""The store service: the one implementation of the domain rules, called by the embedded
backend in-process and by the HTTP server for remote callers. Every method takes the caller
(a ``Principal``) first and checks access before it touches anything."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from .access import Principal
from .admin import AdminOps
from .blobs import BlobStore
from .chunks import ChunkOps
from .db import Database
from .distributed import DistributedOps
from .gc import GcOps
from .lookup import entity_row, insert_missing, now
from .schema import entities
from .settings import DEFAULT_SETTINGS, StoreSettings
from .sweeps import SweepOps

DB_FILE = "artfs.db"


class Store(ChunkOps, DistributedOps, SweepOps, GcOps, AdminOps):
    def __init__(self, db: Database, blobs: BlobStore, *, anonymous_read: bool = False):
        self.db = db
        self.blobs = blobs
        self.anonymous_read = anonymous_read

    @classmethod
    def open(
        cls,
        home: Path,
        db_url: str | None = None,
        blobs_url: str | None = None,
        settings: StoreSettings = DEFAULT_SETTINGS,
        **options: bool,
    ) -> Store:
        """A store whose metadata is in ``db_url`` (default SQLite ``home/artfs.db``; or
        ``postgresql+psycopg://...``) and whose chunks are in ``blobs_url`` (default
        ``home/chunks``; or ``s3://bucket/prefix``), opened as ``settings`` say."""
        home.mkdir(parents=True, exist_ok=True)
        db = Database(db_url) if db_url else Database.sqlite(home / DB_FILE)
        try:
            settings.prepare(db)
            blobs = settings.blob_store(home, blobs_url, db)
        except BaseException:
            db.close()
            raise
        return cls(db, blobs, **options)

    def ensure_user(self, name: str, *, is_admin: bool = False) -> Principal:
        """The principal for user ``name``, created on first use."""
        with self.db.write() as conn:
            row = entity_row(conn, name)
            if row is None:
                user = {"name": name, "kind": "user", "is_admin": is_admin, "created_at": now()}
                insert_missing(conn, entities, [user])
                row = entity_row(conn, name)
            elif is_admin and not row.is_admin:
                conn.execute(
                    sa.update(entities).where(entities.c.id == row.id).values(is_admin=True)
                )
            return Principal(row.id, row.name, bool(row.is_admin or is_admin))  # type: ignore[union-attr]

    def close(self) -> None:
        self.db.close()
