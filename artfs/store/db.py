"""The metadata database: engine set-up and the two kinds of transaction the service uses.

SQLite runs in WAL mode; a write transaction starts with ``BEGIN IMMEDIATE`` so writers queue
on the database lock (up to the busy timeout) instead of failing on upgrade, which is what
keeps version numbers gap-free when several processes commit at once. Within one process,
writers queue on a mutex first: SQLite's own busy handler sleeps in steps of milliseconds.
Durable transactions (the default) sync the WAL on commit; chunk bookkeeping, which the next
durable commit makes durable with it, skips that sync. PostgreSQL relies on row locks
(``SELECT ... FOR UPDATE``) taken by the service.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..core.errors import Unavailable

BUSY_TIMEOUT_S = 120
SCHEMA_LOCK_KEY = 0x61727466  # "artf": the PostgreSQL advisory lock held by schema changes
log = logging.getLogger(__name__)


class Database:
    def __init__(self, url: str):
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.engine = sa.create_engine(
                url, connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False}
            )
            sa.event.listen(self.engine, "connect", _sqlite_on_connect)
            sa.event.listen(self.engine, "begin", _sqlite_on_begin)
        else:
            self.engine = sa.create_engine(url, pool_pre_ping=True)
        self._writer = threading.Lock() if self.is_sqlite else contextlib.nullcontext()

    @classmethod
    def sqlite(cls, path: Path) -> Database:
        return cls(f"sqlite:///{path}")

    @property
    def sqlite_file(self) -> Path | None:
        """The SQLite database file (None on PostgreSQL)."""
        name = self.engine.url.database
        return Path(name) if self.is_sqlite and name else None

    @contextlib.contextmanager
    def write(self, durable: bool = True) -> Iterator[Connection]:
        """A transaction that may write; commits on success, rolls back on any error.

        ``durable=False`` is for bookkeeping that may be lost in a power cut without harm.
        """
        options = {"artfs_write": True, "artfs_sync": "FULL" if durable else "NORMAL"}
        with (
            _database_errors(self.is_sqlite),
            self._writer,
            self.engine.connect().execution_options(**options) as conn,
            conn.begin(),
        ):
            yield conn

    @contextlib.contextmanager
    def schema_change(self) -> Iterator[Connection]:
        """The transaction that creates or upgrades the schema, one process at a time.

        SQLite: ``BEGIN IMMEDIATE`` holds the write lock; foreign keys are off, as batch
        migrations copy and drop tables that others reference (a drop would otherwise cascade
        or fail), and are checked before commit. PostgreSQL: an advisory lock held until the
        transaction ends, so concurrent starts queue, and DDL is transactional.
        """
        options = {"artfs_write": True, "artfs_sync": "FULL", "artfs_schema": True}
        with (
            _database_errors(self.is_sqlite),
            self._writer,
            self.engine.connect().execution_options(**options) as conn,
        ):
            try:
                with conn.begin():
                    if not self.is_sqlite:
                        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(SCHEMA_LOCK_KEY)))
                    yield conn
                    if self.is_sqlite:
                        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").first()
                        if broken is not None:
                            raise Unavailable(
                                f"schema upgrade aborted: a row of {broken[0]} lost its "
                                f"{broken[2]} row"
                            )
            finally:
                if self.is_sqlite:  # back to the pool as every connection is
                    conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction: one consistent snapshot, no write lock."""
        with _database_errors(self.is_sqlite), self.engine.connect() as conn, conn.begin():
            yield conn

    def close(self) -> None:
        self.engine.dispose()


@contextlib.contextmanager
def _database_errors(detailed: bool) -> Iterator[None]:
    """Turn driver failures (disk full, I/O error, lock timeout, lost connection) into
    one-line errors. A database server's messages name hosts and users, so they go to the
    log, not to callers; a local SQLite file's ("database or disk is full") are shown."""
    try:
        yield
    except sa.exc.OperationalError as exc:
        log.error("metadata database error: %s", exc.orig)
        raise Unavailable(
            f"metadata database error: {exc.orig}" if detailed else "metadata database unavailable"
        ) from None


def _sqlite_on_connect(dbapi_conn: object, _record: object) -> None:
    dbapi_conn.isolation_level = None  # type: ignore[attr-defined]  # we emit BEGIN ourselves
    cursor = dbapi_conn.cursor()  # type: ignore[attr-defined]
    for pragma in (
        "journal_mode=WAL",
        "synchronous=FULL",
        "foreign_keys=ON",
        f"busy_timeout={BUSY_TIMEOUT_S * 1000}",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    options = conn.get_execution_options()
    if options.get("artfs_write", False):
        conn.exec_driver_sql(f"PRAGMA synchronous={options['artfs_sync']}")
        if options.get("artfs_schema", False):
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")  # a no-op inside a transaction
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")
