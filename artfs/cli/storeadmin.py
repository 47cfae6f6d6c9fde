"""``artfs admin migrate``, ``encryption-key`` and ``reencrypt``: maintenance that works on a
store's own files and database (the embedded store, or a server's ``--data``/``--db``), not
through a server."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..core.config import load_config
from ..core.errors import ArtfsError

if TYPE_CHECKING:  # the store loads when a command runs, not for --help
    from ..store.db import Database

DATA_OPTION = click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    help="A server's data directory (default: the embedded store, $ARTFS_HOME).",
)
DB_OPTION = click.option(
    "--db",
    "db_url",
    envvar="ARTFS_SERVER_DB",
    help="The server's metadata database URL, as given to 'artfs server --db'.",
)

KEY_FILE_OPTION = click.option(
    "--encryption-key",
    "key_file",
    envvar="ARTFS_ENCRYPTION_KEY_FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Key file sealing local chunk files with AES-256-GCM (made by 'artfs admin "
    "encryption-key'; default: $ARTFS_ENCRYPTION_KEY_FILE).",
)


def _home(data: Path | None) -> Path:
    return data if data is not None else load_config().home


def _database(home: Path, db_url: str | None) -> Database:
    from ..store.db import Database
    from ..store.service import DB_FILE

    if db_url:
        return Database(db_url)
    if not (home / DB_FILE).exists():
        raise ArtfsError(f"no store in {home} (no {DB_FILE})")
    return Database.sqlite(home / DB_FILE)


@click.command()
@DATA_OPTION
@DB_OPTION
@click.option("--check", is_flag=True, help="Only say whether an upgrade is due (exit 1 if so).")
def migrate(data: Path | None, db_url: str | None, check: bool) -> None:
    """Upgrade a store's schema to this artfs's (one transaction; a SQLite database is copied
    to artfs.db.bak-<revision> first). Servers on the store may keep running on PostgreSQL:
    concurrent upgrades queue on a lock."""
    from ..store.upgrades import PACKAGED, Found, current, prepare

    db = _database(_home(data), db_url)
    try:
        found = current(db)
        if found == Found(PACKAGED.head, True):
            click.echo(f"the store's schema is at revision {PACKAGED.head}: up to date")
            return
        if check:
            where = "an empty database" if found.revision is None else found.describe()
            click.echo(f"the store's schema is at {where}; this artfs uses {PACKAGED.head}")
            raise SystemExit(1)
        upgraded = prepare(db, upgrade=True)
        click.echo(upgraded.describe() if upgraded else f"created the schema ({PACKAGED.head})")
    finally:
        db.close()


@click.command("encryption-key")
@click.argument("key_file", type=click.Path(dir_okay=False, path_type=Path))
def encryption_key(key_file: Path) -> None:
    """Add a new random key to KEY_FILE (created, mode 0600, if missing). Once the server
    restarts (or, embedded, from the next command on), new chunk files are sealed with it;
    older ones stay readable while the file holds their keys."""
    from ..store.encryption import add_key

    key_id = add_key(key_file)
    click.echo(f"added key {key_id} to {key_file}: back the file up now, and keep every key")


@click.command()
@DATA_OPTION
@DB_OPTION
@KEY_FILE_OPTION
def reencrypt(data: Path | None, db_url: str | None, key_file: Path | None) -> None:
    """Seal every chunk file with the newest key of the key file: files written before
    encryption was turned on, and those of older keys. Safe while the store is in use."""
    from ..store.encryption import EncryptedBlobStore
    from ..store.service import Store
    from ..store.settings import StoreSettings

    key_file = key_file or load_config().encryption_key_file
    if key_file is None:
        raise ArtfsError("reencrypt needs the key file: --encryption-key FILE")
    store = Store.open(_home(data), db_url, settings=StoreSettings(encryption_key_file=key_file))
    try:
        assert isinstance(store.blobs, EncryptedBlobStore)
        done = store.blobs.reencrypt(lambda digest, exc: click.echo(f"{digest}: {exc}", err=True))
    finally:
        store.close()
    click.echo(
        f"sealed {done.rewritten} chunk files with key {store.blobs.keyring.current}; "
        f"{done.current} already were" + (f"; {done.failed} failed" if done.failed else "")
    )
    if done.failed:
        raise SystemExit(1)
