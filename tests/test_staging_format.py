"""Staging areas outlive upgrades of artfs: an area of artfs 0.1 (tests/data/store-0.1, left
by a daemon killed before it could commit) is read; one of a newer format than the code knows
is refused in one line, and left as it was."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from artfs.fuse.control import staging_status
from artfs.fuse.journal import DB_NAME, AreaKey
from artfs.fuse.staging import StagingArea

AREA = Path(__file__).parent / "data" / "store-0.1" / "staging-area"


def _area_root(tmp: Path) -> Path:
    """A state directory's entity folder holding the 0.1 area of alice/cv/mnist."""
    root = tmp / "alice"
    shutil.copytree(AREA, root / "cv" / "mnist")
    return root


def test_area_of_0_1_is_read(tmp_path):
    (status,) = staging_status(_area_root(tmp_path))
    assert status["artifact"] == "alice/cv/mnist" and status["base"] == 1
    assert status["counts"] == {"added": 1, "modified": 0, "deleted": 1}


def test_area_of_an_unknown_format_is_refused_in_one_line(tmp_path):
    root = _area_root(tmp_path)
    db_path = root / "cv" / "mnist" / DB_NAME
    db = sqlite3.connect(db_path)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'format'")
    db.commit()
    db.close()
    (status,) = staging_status(root)
    assert "staging format" in status["error"] and "99" in status["error"]
    assert "\n" not in status["error"]
    area = StagingArea(root / "cv" / "mnist", AreaKey("alice", "cv", "mnist"), "dataset")
    with pytest.raises(OSError, match="staging format"):
        area.load()
    db = sqlite3.connect(db_path)
    assert db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone() == ("99",)
    db.close()
