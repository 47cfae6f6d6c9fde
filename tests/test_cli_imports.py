"""Quick commands import only what they use: no web server, S3 or FUSE libraries for ``ls``,
nothing of the store for ``--help``, a command's included (issue 14). The property is
checked, not a time; the times are in bench/cli_start.py."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .mountutil import mounted
from .util import write_tree

SERVER_S3_FUSE = {"fastapi", "starlette", "uvicorn", "boto3", "botocore", "pyfuse3", "trio"}
TRANSFERS = {"requests", "urllib3", "tqdm"}
STORE = {"sqlalchemy"}


def imported(stderr: str) -> set[str]:
    """Top-level packages named in ``-X importtime`` output."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


@pytest.fixture
def filled(embedded, tmp_path):
    embedded.cli("put", write_tree(tmp_path / "d", {"f": b"f"}), "-n", "proj/f")
    return embedded


@pytest.mark.parametrize(
    ("args", "unwanted"),
    [
        (("ls",), SERVER_S3_FUSE),
        (("ls", "proj"), SERVER_S3_FUSE),
        (("show", "proj/f"), SERVER_S3_FUSE),
        (("alias", "set", "proj/f:v0", "best"), SERVER_S3_FUSE),
        (("--help",), SERVER_S3_FUSE | TRANSFERS | STORE),
        (("get", "--help"), SERVER_S3_FUSE | TRANSFERS | STORE),
        (("put", "--help"), SERVER_S3_FUSE | TRANSFERS | STORE),
        (("cache", "info"), SERVER_S3_FUSE | TRANSFERS | STORE),
    ],
)
def test_quick_commands_import_only_what_they_use(filled, args, unwanted):
    proc = filled.cli(*args, extra_env={"PYTHONPROFILEIMPORTTIME": "1"})
    names = imported(proc.stderr)
    assert "click" in names  # the output is what it claims to be
    assert not names & unwanted


def test_import_artfs_loads_no_backend():
    code = "import artfs; artfs.__version__"
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    names = imported(proc.stderr)
    assert "artfs" in names and not names & (SERVER_S3_FUSE | TRANSFERS | STORE)


@pytest.mark.fuse
def test_status_reads_staging_areas_without_the_mount_libraries(filled):
    """``artfs status`` reads the staging journals itself: no pyfuse3, no trio (issue 14)."""
    with mounted(filled) as m:
        (m / "proj/f/@staging/new.txt").write_text("new\n")
        proc = filled.cli("status", m.mnt, extra_env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert proc.stdout.splitlines() == [
        "proj/f: 1 added, 0 modified, 0 deleted (based on v0)",
        "A new.txt",
    ]
    names = imported(proc.stderr)
    assert "sqlite3" in names and not names & {"pyfuse3", "trio"}
