"""Opening a server's data directory: the store, and on first start an admin and its key.

Layout of ``DIR``: ``artfs.db`` (SQLite), ``chunks/`` (blobs), ``tmp/`` (uploads in flight)
and ``admin.key`` (the first admin's API key, mode 0600, written once). With ``--db`` and
``--blobs`` the metadata and chunks live elsewhere and ``DIR`` keeps only ``tmp/`` and the key.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..core.config import write_private_file
from ..store.service import Store
from ..store.settings import DEFAULT_SETTINGS, StoreSettings

ADMIN_KEY_FILE = "admin.key"
log = logging.getLogger("artfs.server")


def open_data_dir(
    data: Path,
    *,
    db_url: str | None = None,
    blobs_url: str | None = None,
    settings: StoreSettings = DEFAULT_SETTINGS,
    anonymous_read: bool = False,
) -> Store:
    """The store of a server: SQLite and chunks in ``data`` unless ``db_url`` (PostgreSQL,
    shared by several servers) or ``blobs_url`` (S3) say otherwise."""
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    store = Store.open(data, db_url, blobs_url, settings, anonymous_read=anonymous_read)
    key_file = data / ADMIN_KEY_FILE
    key = store.admin.bootstrap_admin(lambda key: write_private_file(key_file, key + "\n"))
    if key:
        log.warning("created the admin user; its API key is in %s", key_file)
    return store
