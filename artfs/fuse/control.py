"""How commands outside the daemon reach it and its state: ``artfs commit`` through an xattr
of the ``@staging`` directory, ``artfs umount`` and ``artfs status`` through the mount's
record file, which says where its staging areas live and what its unmount committed.

The record is ``$ARTFS_STATE_DIR/mounts/<mount point, '/' as '-'>.json``, written when the
mount starts and again when its unmount commits; the daemon names it in the
``user.artfs.state`` xattr of the mount root, so commands run with another environment find it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
import threading
from pathlib import Path
from typing import Any

from ..core.config import Config
from ..core.errors import ArtfsError
from .journal import DB_NAME, AreaKey, stored_changes

COMMIT_XATTR = "user.artfs.commit"
RESULT_PREFIX = COMMIT_XATTR + "."
STATE_XATTR = "user.artfs.state"
PID_XATTR = "user.artfs.pid"


def mount_name(mountpoint: str) -> str:
    return mountpoint.strip("/").replace("/", "-") or "root"


def record_path(config: Config, mountpoint: str) -> Path:
    return config.state_dir / "mounts" / f"{mount_name(mountpoint)}.json"


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Replace the record atomically (a reader sees the old one or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
    os.replace(tmp, path)


def read_record(path: Path) -> dict[str, Any]:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def root_xattr(mountpoint: str, name: str, timeout: float = 5.0) -> str | None:
    """An xattr of the mount root, or None if the daemon does not answer in time."""
    found: list[str] = []

    def ask() -> None:
        with contextlib.suppress(OSError):
            found.append(os.getxattr(mountpoint, name).decode())

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    thread.join(timeout)
    return found[0] if found else None


def request_commit(staging: str, description: str | None, aliases: list[str]) -> dict[str, Any]:
    """Ask the daemon serving ``staging`` (a ``@staging`` directory) to commit it now; returns
    its report once the commit is done."""
    request_id = secrets.token_hex(8)
    request = {"id": request_id, "description": description, "aliases": aliases}
    try:
        os.setxattr(staging, COMMIT_XATTR, json.dumps(request).encode())
        report = os.getxattr(staging, RESULT_PREFIX + request_id)
    except OSError as exc:
        raise ArtfsError(
            f"{staging}: not the @staging directory of a running artfs mount ({exc.strerror})"
        ) from None
    return json.loads(report)


def staging_status(staging_root: Path) -> list[dict[str, Any]]:
    """Each staging area under ``staging_root`` (``.../<entity>``) that has changes or a
    pending commit: what ``artfs status`` shows, read from disk (the daemon need not run)."""
    out: list[dict[str, Any]] = []
    if not staging_root.is_dir():
        return out
    for db in sorted(staging_root.glob(f"*/*/{DB_NAME}")):
        directory = db.parent
        key = AreaKey(staging_root.name, directory.parent.name, directory.name)
        try:
            meta, changes = stored_changes(directory)
            base, pending = meta["base"], meta["pending"]
            settings = {"type": meta["type"], "base": int(base) if base else None}
        except (OSError, sqlite3.Error, ValueError, KeyError) as exc:
            out.append({"staging": key.short, "error": str(exc)})
            continue
        if changes or pending:
            out.append(
                {
                    "staging": key.short,
                    "artifact": key.collection,
                    **settings,
                    "pending": bool(pending),
                    "counts": changes.counts(),
                    "added": changes.added,
                    "modified": changes.modified,
                    "deleted": changes.deleted,
                }
            )
    return out
