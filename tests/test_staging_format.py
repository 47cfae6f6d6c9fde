"""Staging areas outlive upgrades of artfs: an area of artfs 0.1 (tests/data/store-0.1, left
by a daemon killed before it could commit) is read; one of a newer format is refused in one
line; an older one is brought up to date by the upgrade steps when it is loaded."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from artfs.fuse import staging_format
from artfs.fuse.control import staging_status
from artfs.fuse.staging import DB_NAME, AreaKey, StagingArea

AREA = Path(__file__).parent / "data" / "store-0.1" / "staging-area"


def _area_root(tmp: Path) -> Path:
    """A state directory's entity folder holding the 0.1 area of alice/cv/mnist."""
    root = tmp / "alice"
    shutil.copytree(AREA, root / "cv" / "mnist")
    return root


def _format(root: Path) -> str:
    db = sqlite3.connect(root / "cv" / "mnist" / DB_NAME)
    try:
        return db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()[0]
    finally:
        db.close()


def test_area_of_0_1_is_read(tmp_path):
    (status,) = staging_status(_area_root(tmp_path))
    assert status["artifact"] == "alice/cv/mnist" and status["base"] == 1
    assert status["counts"] == {"added": 1, "modified": 0, "deleted": 1}


def test_area_of_a_newer_format_is_refused_in_one_line(tmp_path):
    root = _area_root(tmp_path)
    db = sqlite3.connect(root / "cv" / "mnist" / DB_NAME)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'format'")
    db.commit()
    db.close()
    (status,) = staging_status(root)
    assert "newer artfs (staging format 99" in status["error"]
    assert "\n" not in status["error"]
    area = StagingArea(root / "cv" / "mnist", AreaKey("alice", "cv", "mnist"), "dataset")
    with pytest.raises(OSError, match="newer artfs"):
        area.load()


def test_older_format_is_upgraded_when_loaded(tmp_path, monkeypatch):
    """The mechanism, with a step written for the test (format 1 -> 2 marks every node)."""
    ran: list[int] = []

    def step(db: sqlite3.Connection) -> None:
        ran.append(1)
        db.execute("UPDATE nodes SET mtime_ns = 7")

    monkeypatch.setattr(staging_format, "FORMAT_VERSION", 2)
    monkeypatch.setattr(staging_format, "UPGRADES", {1: step})
    root = _area_root(tmp_path)
    (status,) = staging_status(root)  # read only: upgraded in memory, the file stays as it is
    assert status["counts"]["added"] == 1 and ran == [1] and _format(root) == "1"
    area = StagingArea(root / "cv" / "mnist", AreaKey("alice", "cv", "mnist"), "dataset")
    area.load()
    try:
        assert ran == [1, 1] and _format(root) == "2"
        assert {n.mtime_ns for n in area.nodes.values() if n.is_dir} == {7}
    finally:
        area.close()
    area = StagingArea(root / "cv" / "mnist", AreaKey("alice", "cv", "mnist"), "dataset")
    area.load()  # now current: no step runs again
    area.close()
    assert ran == [1, 1]
