"""Schema versions: a new store is created at the head revision, an older one upgraded.

A store's revision is the row of Alembic's ``alembic_version`` table. A store written by artfs
0.1.0 has no such table but ``meta.schema_version`` 1: it is at the baseline, revision 0001,
and is stamped so before it is upgraded. ``prepare`` runs whenever a store is opened: one read
when the store is current; otherwise, under the schema lock (``Database.schema_change``), it
creates the schema in an empty database, upgrades an older one if the caller allows it (else
raises ``SchemaOutdated``), and refuses one newer than this artfs. On SQLite the database
file is first copied to ``<file>.bak-<revision>``. Every revision runs in the one
transaction, so a failed upgrade leaves the store as it was (docs/FORMAT.md, "Schema
versions").
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..core.errors import Unavailable
from .db import Database
from .schema import SCHEMA_REVISION, SCHEMA_VERSION, meta, metadata

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

BASELINE = "0001"  # the schema of artfs 0.1.0
VERSION_TABLE = "alembic_version"
log = logging.getLogger(__name__)
_alembic = threading.Lock()  # Alembic's migration context is one per process
for _name in ("alembic.runtime.plugins", "alembic.runtime.migration"):
    logging.getLogger(_name).setLevel(logging.WARNING)  # what it did, the caller logs


class SchemaOutdated(Unavailable):
    """The store needs an upgrade that the caller did not allow."""


@dataclass(frozen=True)
class Migrations:
    """Where the revisions are (an Alembic ``script_location``) and the last one's id."""

    location: str = "artfs.store:migrations"
    head: str = SCHEMA_REVISION


PACKAGED = Migrations()


@dataclass(frozen=True)
class Found:
    """A database's revision: None for an empty database; ``stamped`` False for a store of
    artfs 0.1.0, which predates Alembic."""

    revision: str | None
    stamped: bool

    def describe(self) -> str:
        legacy = "" if self.stamped else " (written by artfs 0.1)"
        return f"revision {self.revision}{legacy}"


@dataclass(frozen=True)
class Upgraded:
    found: Found
    head: str
    backup: Path | None

    @property
    def changed(self) -> bool:
        """False if only the revision of a store of artfs 0.1 was recorded."""
        return self.found.revision != self.head

    def describe(self) -> str:
        if not self.changed:
            return f"recorded the schema revision {self.head} of a store written by artfs 0.1"
        kept = f"; the database before it is {self.backup}" if self.backup else ""
        return f"upgraded the store's schema from {self.found.describe()} to {self.head}{kept}"


def found_revision(conn: Connection) -> Found:
    tables = set(sa.inspect(conn).get_table_names())
    if VERSION_TABLE in tables:
        query = sa.text(f"SELECT version_num FROM {VERSION_TABLE}")
        rows: list[str] = list(conn.execute(query).scalars())
        if len(rows) != 1:
            raise Unavailable(f"the store's {VERSION_TABLE} table holds {len(rows)} revisions")
        return Found(rows[0], True)
    if meta.name in tables:
        version = conn.execute(
            sa.select(meta.c.value).where(meta.c.key == "schema_version")
        ).scalar()
        if version != "1":
            raise Unavailable(f"the store's schema version {version} is unknown to this artfs")
        return Found(BASELINE, False)
    return Found(None, False)


def current(db: Database) -> Found:
    """The store's revision, read without changing anything."""
    with db.read() as conn:
        return found_revision(conn)


def prepare(db: Database, *, upgrade: bool, migrations: Migrations = PACKAGED) -> Upgraded | None:
    """Make the store's schema this artfs's: create it in an empty database, upgrade an older
    one if ``upgrade`` (else raise ``SchemaOutdated``). Returns what an upgrade did."""
    if current(db) == Found(migrations.head, True):
        return None
    with db.schema_change() as conn:
        found = found_revision(conn)  # again: another process may have done it meanwhile
        if found.revision is None:
            metadata.create_all(conn)
            conn.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
            _run(conn, migrations, stamp=migrations.head)
            return None
        if found == Found(migrations.head, True):
            return None
        _check_known(found, migrations)
        if not upgrade:
            raise SchemaOutdated(
                f"the store's schema is at {found.describe()} and this artfs uses "
                f"{migrations.head}: back it up, then run 'artfs admin migrate' "
                "(or start the server with --migrate)"
            )
        backup = None
        if found.revision != migrations.head and db.sqlite_file is not None:
            backup = _copy_sqlite(db.sqlite_file, f"bak-{found.revision}")
        _run(conn, migrations, stamp=None if found.stamped else found.revision, upgrade=True)
        return Upgraded(found, migrations.head, backup)


def _check_known(found: Found, migrations: Migrations) -> None:
    from alembic.util import CommandError

    try:
        _script(migrations).get_revision(str(found.revision))
    except CommandError:
        raise Unavailable(
            f"the store's schema is at revision {found.revision}, newer than this artfs "
            f"(which knows up to {migrations.head}): upgrade artfs"
        ) from None


def _script(migrations: Migrations) -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config(migrations))


def _config(migrations: Migrations, conn: Connection | None = None) -> Config:
    """Alembic's configuration, made in code: no alembic.ini at run time. Alembic is imported
    only here, when a schema changes, as it takes a while to load."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", migrations.location)
    config.attributes["connection"] = conn  # env.py runs the revisions on it
    return config


def _run(
    conn: Connection, migrations: Migrations, *, stamp: str | None = None, upgrade: bool = False
) -> None:
    """``alembic stamp REVISION`` and/or ``alembic upgrade head`` inside ``conn``'s transaction."""
    from alembic import command

    with _alembic:
        config = _config(migrations, conn)
        if stamp is not None:
            command.stamp(config, stamp)
        if upgrade:
            command.upgrade(config, "head")


def _copy_sqlite(path: Path, suffix: str) -> Path:
    """A consistent copy of a SQLite database (its committed state), as ``<path>.<suffix>``."""
    final = path.with_name(f"{path.name}.{suffix}")
    tmp = path.with_name(f"{final.name}.tmp")
    source, copy = sqlite3.connect(path), sqlite3.connect(tmp)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    os.replace(tmp, final)
    return final
