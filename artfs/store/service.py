"""The store service: the one implementation of the domain rules, called by the embedded
backend in-process and by the HTTP server for remote callers.

A ``Store`` is composed of parts held as fields, each with one job and built on the ones
before it (as restic's Repository holds its index and backend): ``projects`` (access),
``chunks``, ``direct`` (presigned URLs, when chunks are in a bucket and the settings allow),
``versions``, ``runs``, ``sweeps``, ``admin`` (identity), ``collector`` (gc).
Every service method takes the caller (a ``Principal``) first and checks access before it
touches anything.
"""

from __future__ import annotations

from pathlib import Path

from .admin import Admin
from .blobs import BlobStore
from .chunks import Chunks
from .db import Database
from .direct import Direct
from .gc import Collector
from .presign import Presigner
from .projects import Projects
from .runs import Runs
from .s3blobs import S3BlobStore
from .settings import DEFAULT_SETTINGS, StoreSettings
from .sweeps import Sweeps
from .verify import Verifier
from .versions import Versions

DB_FILE = "artfs.db"


class Store:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        *,
        anonymous_read: bool = False,
        presigner: Presigner | None = None,
    ):
        self.db = db
        self.blobs = blobs
        self.projects = Projects(db, anonymous_read)
        # Chunks in a bucket may have been uploaded straight to it, by this or another server.
        verifier = Verifier(db, blobs) if isinstance(blobs, S3BlobStore) else None
        self.chunks = Chunks(db, blobs, self.projects, verifier)
        self.direct = (
            Direct(db, presigner.blobs, presigner, self.projects) if presigner is not None else None
        )
        self.versions = Versions(db, self.projects, self.chunks)
        self.runs = Runs(db, self.projects, self.versions)
        self.sweeps = Sweeps(db, self.projects)
        self.admin = Admin(db, anonymous_read)
        self.collector = Collector(db, blobs, self.chunks, verifier)

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
        return cls(db, blobs, presigner=settings.presigner(blobs), **options)

    def close(self) -> None:
        self.db.close()
