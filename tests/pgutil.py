"""A real PostgreSQL server for tests: a throwaway cluster in a temporary directory.

PostgreSQL refuses to run as root, so when the tests run as root the cluster belongs to
the ``postgres`` user that Debian's package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from .serverutil import free_port
from .util import need


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


@dataclass
class PgCluster:
    port: int
    data: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://artfs@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh empty database; returns its URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine.dispose()
        return self.url(name)

    def load(self, url: str, sql_file: Path) -> None:
        """Run an SQL script (e.g. a ``pg_dump``) with psql on the database of ``url``."""
        psql = _bin("psql")
        assert psql is not None, "psql comes with PostgreSQL"
        where = ["-h", "127.0.0.1", "-p", str(self.port), "-U", "artfs", "-d", url.split("/")[-1]]
        subprocess.run(
            [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", *where, "-f", str(sql_file)],
            check=True,
            capture_output=True,
        )


def _as_owner(cmd: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *cmd] if owner else cmd


def start_cluster() -> Iterator[PgCluster]:
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    need(bool(initdb and pg_ctl), "PostgreSQL (apt package postgresql) is installed")
    owner = None
    if os.geteuid() == 0:
        need(_has_user("postgres"), "a 'postgres' user to own the test cluster")
        owner = "postgres"
    root = Path(tempfile.mkdtemp(prefix="artfs-pg-"))
    data = root / "data"
    if owner:
        shutil.chown(root, owner)
    port = free_port()
    subprocess.run(
        _as_owner([initdb, "-D", str(data), "-A", "trust", "-U", "artfs", "--no-sync"], owner),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_owner(
            [pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"], owner
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield PgCluster(port, data)
    finally:
        subprocess.run(
            _as_owner([pg_ctl, "-D", str(data), "-m", "immediate", "stop"], owner),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
