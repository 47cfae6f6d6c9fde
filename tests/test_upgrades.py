"""Upgrades: a store written by artfs 0.1.0 (tests/data/store-0.1) is upgraded on SQLite and
on PostgreSQL with nothing lost, new stores start at the head revision, the server refuses an
old schema unless told to migrate, concurrent upgrades run once, a failed one changes nothing,
and a revision's data step (``op.get_bind()``) and batch table copy work."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import sqlite3
import zlib
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

import artfs.store.migrations
from artfs.client.local import LocalBackend
from artfs.core.digest import digest_bytes
from artfs.core.names import parse_artifact_path
from artfs.store.db import Database
from artfs.store.schema import SCHEMA_REVISION, metadata
from artfs.store.service import Store
from artfs.store.settings import StoreSettings
from artfs.store.upgrades import (
    BASELINE,
    PACKAGED,
    Found,
    Migrations,
    SchemaOutdated,
    current,
    prepare,
)

from .serverutil import start_server
from .util import run_artfs

DATA = Path(__file__).parent / "data" / "store-0.1"
UPGRADE = StoreSettings(upgrade=True)


def _legacy_home(tmp: Path) -> Path:
    home = tmp / "home"
    shutil.copytree(DATA / "home", home)
    return home


def _expected() -> dict[str, Any]:
    """What the 0.1 store holds, read from its SQLite file with plain SQL (not artfs)."""
    db = sqlite3.connect(f"file:{DATA / 'home' / 'artfs.db'}?mode=ro", uri=True)
    q = db.execute
    tables = [r[0] for r in q("SELECT name FROM sqlite_master WHERE type = 'table'")]
    versions = {}
    for artifact, number, state, body in q(
        "SELECT a.name, v.number, v.state, m.body FROM versions v "
        "JOIN artifacts a ON a.id = v.artifact_id LEFT JOIN manifests m ON m.version_id = v.id"
    ):
        entries = json.loads(zlib.decompress(body))["entries"] if body else {}
        files = {p: (e["size"], e["digest"]) for p, e in entries.items() if "ref" not in e}
        refs = {p: e["ref"] for p, e in entries.items() if "ref" in e}
        versions[(artifact, number)] = {"state": state, "files": files, "refs": refs}
    expected = {
        "rows": {t: q(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables},
        "versions": versions,
        "aliases": sorted(
            q(
                "SELECT a.name, al.name, v.number FROM aliases al JOIN versions v "
                "ON v.id = al.version_id JOIN artifacts a ON a.id = v.artifact_id"
            )
        ),
        "tags": sorted(
            q("SELECT v.number, t.name FROM tags t JOIN versions v ON v.id = t.version_id")
        ),
        "runs": {
            r: (json.loads(c), json.loads(s))
            for r, c, s in q("SELECT run_id, config, summary FROM runs")
        },
        "uses": sorted(
            q(
                "SELECT r.run_id, a.name, v.number FROM uses u JOIN runs r ON r.id = u.run_pk "
                "JOIN versions v ON v.id = u.version_id JOIN artifacts a ON a.id = v.artifact_id"
            )
        ),
        "logged": sorted(
            q(
                "SELECT r.run_id, a.name, v.number FROM versions v JOIN runs r ON r.id = v.run_pk "
                "JOIN artifacts a ON a.id = v.artifact_id WHERE v.number IS NOT NULL"
            )
        ),
        "chunks": [r[0] for r in q("SELECT digest FROM chunks")],
    }
    db.close()
    return expected


def _assert_intact(home: Path, db_url: str | None = None) -> None:
    """Opened without upgrading (it must be done), the store holds everything the 0.1 store
    held, readable through its API."""
    store = Store.open(home, db_url)
    try:
        _check_contents(store)
    finally:
        store.close()


def _check_contents(store: Store) -> None:
    expected = _expected()
    with store.db.read() as conn:
        for table, count in expected["rows"].items():
            assert conn.execute(sa.text(f'SELECT count(*) FROM "{table}"')).scalar() == count, table
        compared = compare_metadata(MigrationContext.configure(conn), metadata)
    assert compared == [], compared  # what `alembic check` does: the schema is the code's
    assert current(store.db) == Found(SCHEMA_REVISION, True)
    backend = LocalBackend.for_user(store, "alice")
    aliases, tags, uses, logged = [], [], [], []
    for (artifact, number), want in expected["versions"].items():
        if want["state"] != "committed":
            continue
        path = parse_artifact_path(f"alice/cv/{artifact}:v{number}")
        info, manifest = backend.manifest(path)
        assert info.state == "committed"
        aliases += [(artifact, a, number) for a in info.aliases if a != "latest"]
        tags += [(number, t) for t in info.tags]
        uses += [(r.id, artifact, number) for r in backend.version_runs(path, "used_by")]
        logged += [(r.id, artifact, number) for r in backend.version_runs(path, "logged_by")]
        files = {e.path: e for e in manifest.entries.values() if e.ref is None}
        assert {p: e.size for p, e in files.items()} == {
            p: s for p, (s, _) in want["files"].items()
        }
        assert {e.path: e.ref for e in manifest.entries.values() if e.ref} == want["refs"]
        assert info.digest == manifest.digest  # format 2, recomputed by revision 0002
        with store.db.read() as conn:
            body = conn.execute(
                sa.text("SELECT body FROM manifests WHERE version_id = :v"), {"v": info.id}
            ).scalar_one()
        assert json.loads(zlib.decompress(body))["version"] == 2
        for path, entry in files.items():  # each file's chunks, read back, are its old bytes
            digests = [c.digest for c in entry.chunks] or ([entry.digest] if entry.size else [])
            content = b"".join(b"".join(backend.read_chunk(d)) for d in digests)
            assert digest_bytes(content) == want["files"][path][1]  # format 1: whole-file BLAKE3
    assert sorted(aliases) == [a for a in expected["aliases"] if a[1] != "latest"]
    assert sorted(tags) == expected["tags"]
    assert sorted(uses) == expected["uses"] and sorted(logged) == expected["logged"]
    for run_id, (config, summary) in expected["runs"].items():
        run = backend.get_run(f"alice/cv/{run_id}")
        assert (run.config, run.summary) == (config, summary)
    for digest in expected["chunks"]:
        assert digest_bytes(b"".join(store.blobs.iter_read(digest))) == digest


def test_packaged_revisions_have_one_head_the_schema_names():
    script = ScriptDirectory.from_config(_alembic_config(PACKAGED.location))
    assert script.get_heads() == [SCHEMA_REVISION] == [PACKAGED.head]


def _alembic_config(location: str, conn: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", location)
    config.attributes["connection"] = conn
    return config


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_revisions_from_nothing_build_the_schema_of_the_code(backend, tmp_path, request):
    """Running every revision on an empty database gives what create_all gives."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        url = request.getfixturevalue("pg").new_database()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(PACKAGED.location, conn), "head")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    engine.dispose()


def test_new_store_starts_at_head(tmp_path):
    store = Store.open(tmp_path / "home")
    try:
        assert current(store.db) == Found(SCHEMA_REVISION, True)
        with store.db.read() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        store.close()


def test_store_of_0_1_upgrades_on_sqlite(tmp_path):
    home = _legacy_home(tmp_path)
    with pytest.raises(SchemaOutdated, match="artfs admin migrate"):
        Store.open(home)  # a server's default: refuse
    Store.open(home, settings=UPGRADE).close()  # the embedded store's
    _assert_intact(home)
    backup = home / f"artfs.db.bak-{BASELINE}"
    assert backup.exists() == (SCHEMA_REVISION != "0001")  # kept when a revision ran


def test_store_of_0_1_upgrades_on_postgres(pg, tmp_path):
    home = _legacy_home(tmp_path)
    url = pg.new_database()
    pg.load(url, DATA / "postgres.sql")
    proc = run_artfs("admin", "migrate", "--db", url, "--data", home, "--check", check=False)
    assert proc.returncode == 1 and "written by artfs 0.1" in proc.stdout
    run_artfs("admin", "migrate", "--db", url, "--data", home)
    assert "up to date" in run_artfs("admin", "migrate", "--db", url, "--data", home).stdout
    _assert_intact(home, url)


def test_embedded_cli_upgrades_on_open(embedded):
    shutil.copytree(DATA / "home", embedded.store_dir)
    listed = embedded.cli("ls", "cv", extra_env={"ARTFS_ENTITY": "alice"}).stdout
    assert "mnist" in listed and "net" in listed
    _assert_intact(embedded.store_dir)


def test_server_refuses_old_schema_unless_told_to_migrate(tmp_path):
    data = _legacy_home(tmp_path)
    proc = run_artfs("server", "--data", data, "--port", "0", check=False, timeout=60)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "--migrate" in lines[0] and "artfs admin migrate" in lines[0]
    start_server(data, "--migrate").stop()
    _assert_intact(data)  # the server upgraded it: it opens without an upgrade


# -- the framework, with a revision written for the test -------------------------------------

STEP = '''
"""A test revision: a batch table copy and a data step over every manifest."""
import json
import zlib

import sqlalchemy as sa
from alembic import op

revision = "0099"
down_revision = "{head}"


def upgrade() -> None:
    bind = op.get_bind()
    copy = "always" if bind.dialect.name == "sqlite" else "auto"  # SQLite: move and copy
    with op.batch_alter_table("projects", recreate=copy) as batch:
        batch.add_column(sa.Column("note", sa.Text))
    bind.execute(sa.text("UPDATE projects SET note = name"))
    manifests = sa.table("manifests", sa.column("version_id"), sa.column("body"))
    for version_id, body in bind.execute(sa.select(manifests)).all():
        doc = json.loads(zlib.decompress(body))
        doc["rewritten"] = True
        bind.execute(
            manifests.update().where(manifests.c.version_id == version_id),
            {{"body": zlib.compress(json.dumps(doc).encode())}},
        )
    bind.execute(sa.text("INSERT INTO meta (key, value) VALUES ('test_step', 'ran')"))
    {fail}
'''


def _migrations(tmp: Path, fail: bool = False) -> Migrations:
    where = tmp / "migrations"
    shutil.copytree(Path(artfs.store.migrations.__file__).parent, where)
    failure = 'raise RuntimeError("the step failed")' if fail else ""
    step = STEP.format(head=SCHEMA_REVISION, fail=failure)
    (where / "versions" / "0099_test.py").write_text(step)
    return Migrations(str(where), "0099")


def _prepare(url: str, tmp: str) -> bool:
    """One process's upgrade; True if it ran the revisions."""
    db = Database(url)
    try:
        return prepare(db, upgrade=True, migrations=_migrations_at(Path(tmp))) is not None
    finally:
        db.close()


def _migrations_at(tmp: Path) -> Migrations:
    return Migrations(str(tmp / "migrations"), "0099")


def _rows(db: Database, sql: str) -> list[Any]:
    with db.read() as conn:
        return list(conn.execute(sa.text(sql)))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_upgrades_run_the_revisions_once(backend, tmp_path, request):
    home = _legacy_home(tmp_path)
    if backend == "sqlite":
        url = f"sqlite:///{home / 'artfs.db'}"
    else:
        pg = request.getfixturevalue("pg")
        url = pg.new_database()
        pg.load(url, DATA / "postgres.sql")
    _migrations(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        ran = pool.starmap(_prepare, [(url, str(tmp_path))] * 4)
    assert sorted(ran) == [False, False, False, True]
    db = Database(url)
    try:
        assert current(db) == Found("0099", True)
        assert _rows(db, "SELECT value FROM meta WHERE key = 'test_step'") == [("ran",)]
        notes = _rows(db, "SELECT name, note FROM projects")
        assert notes and all(name == note for name, note in notes)
        bodies = _rows(db, "SELECT body FROM manifests")
        assert bodies and all(json.loads(zlib.decompress(b))["rewritten"] for (b,) in bodies)
        # The batch copy of `projects` (referenced by artifacts, runs, sweeps) kept every row
        # that references it: nothing cascaded, no foreign key is left dangling.
        assert _rows(db, "SELECT count(*) FROM artifacts") == [(3,)]
        if backend == "sqlite":
            assert _rows(db, "PRAGMA foreign_key_check") == []
            assert (home / "artfs.db.bak-0001").exists()
    finally:
        db.close()


def test_failed_upgrade_changes_nothing(tmp_path):
    home = _legacy_home(tmp_path)
    migrations = _migrations(tmp_path, fail=True)
    db = Database.sqlite(home / "artfs.db")
    try:
        with pytest.raises(RuntimeError, match="the step failed"):
            prepare(db, upgrade=True, migrations=migrations)
        assert current(db) == Found("0001", False)  # not even stamped
        assert _rows(db, "SELECT count(*) FROM meta WHERE key = 'test_step'") == [(0,)]
    finally:
        db.close()
    assert (home / "artfs.db.bak-0001").exists()
    Store.open(home, settings=UPGRADE).close()
    _assert_intact(home)


def test_store_newer_than_the_code_is_refused(tmp_path):
    home = _legacy_home(tmp_path)
    db = Database.sqlite(home / "artfs.db")
    try:
        prepare(db, upgrade=True, migrations=_migrations(tmp_path))
    finally:
        db.close()
    with pytest.raises(Exception, match="newer than this artfs"):
        Store.open(home, settings=UPGRADE)
