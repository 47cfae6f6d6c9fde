"""A malicious server (``tests/hostile.py``, a process of its own speaking the artfs API):
manifests with paths or links that leave the version, chunk bytes that do not match, chunk
sizes that lie, sizes of 2**70, answers without end, malformed records. ``artfs get`` must
write nothing outside its root and no wrong byte inside it, and fail with one line."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from artfs.core.chunking import hash_path
from artfs.core.digest import digest_bytes
from artfs.core.manifest import Manifest, ManifestEntry

from .attack import one_line_error
from .serverutil import free_port
from .util import ARTFS, start_service, write_tree

CHUNK = 64 << 10
HOSTILE = Path(__file__).with_name("hostile.py")
Scenario = dict[str, Any]


def _honest(tmp: Path) -> tuple[dict[str, bytes], Scenario]:
    """The files a version should hold, and a scenario that serves them truthfully."""
    rng = random.Random(5)
    files = {"a.txt": b"alpha\n", "sub/big.bin": rng.randbytes(200_000)}
    src = write_tree(tmp / "truth", files)
    manifest = Manifest(
        ManifestEntry.of_file(path, hash_path(src / path, CHUNK)) for path in sorted(files)
    )
    chunks = {}
    for data in files.values():
        for start in range(0, len(data), CHUNK):
            piece = data[start : start + CHUNK]
            chunks[digest_bytes(piece)] = {"hex": piece.hex()}
    version = {
        "id": 1,
        "entity": "eve",
        "project": "proj",
        "artifact": "ds",
        "type": "dataset",
        "number": 0,
        "state": "committed",
        "digest": manifest.digest,
        "size": manifest.size,
        "file_count": 2,
        "description": None,
        "metadata": {},
        "aliases": ["latest"],
        "tags": [],
        "created_at": 0.0,
    }
    scenario = {
        "whoami": {"user": "eve", "admin": False, "teams": []},
        "manifest": {"json": {"version": version, "manifest": manifest.to_json()}},
        "chunks": chunks,
    }
    return files, scenario


def _entries(s: Scenario) -> dict[str, Any]:
    entries: dict[str, Any] = s["manifest"]["json"]["manifest"]["entries"]
    return entries


def _small_chunk(s: Scenario) -> str:
    return str(_entries(s)["a.txt"]["digest"])


def _traversal(s: Scenario) -> None:
    _entries(s)["../escape.txt"] = _entries(s)["a.txt"]


def _absolute(s: Scenario) -> None:
    _entries(s)["/tmp/artfs-hostile-escape.txt"] = _entries(s)["a.txt"]


def _link_out(s: Scenario) -> None:
    _entries(s)["sub/out"] = {"kind": "link", "link": "../../outside"}


def _file_through_link(s: Scenario) -> None:
    _entries(s)["sub2"] = {"kind": "link", "link": "sub"}
    _entries(s)["sub2/x.txt"] = _entries(s)["a.txt"]


def _wrong_bytes(s: Scenario) -> None:
    s["chunks"][_small_chunk(s)] = {"hex": b"omega\n".hex()}


def _longer_than_listed(s: Scenario) -> None:
    """A chunk whose bytes match its digest, but more of them than the manifest lists."""
    big = os.urandom(100)
    digest = digest_bytes(big)
    _entries(s)["a.txt"] = {"size": 60, "digest": digest}  # the manifest says 60 bytes
    s["chunks"][digest] = {"hex": big.hex()}


def _shorter_than_listed(s: Scenario) -> None:
    small = os.urandom(100)
    digest = digest_bytes(small)
    _entries(s)["a.txt"] = {"size": 5000, "digest": digest}
    s["chunks"][digest] = {"hex": small.hex()}


def _size_2_70(s: Scenario) -> None:
    _entries(s)["a.txt"]["size"] = 1 << 70


def _endless_chunk(s: Scenario) -> None:
    s["chunks"][_small_chunk(s)] = {"endless": True}


def _endless_manifest(s: Scenario) -> None:
    s["manifest"] = {"endless": True}


def _cut_short(s: Scenario) -> None:
    """A chunk answer that promises more than it sends, every time."""
    s["chunks"][_small_chunk(s)] = {"hex": b"alp".hex(), "length": 6}


def _not_json(s: Scenario) -> None:
    s["manifest"] = {"hex": b"<html>surprise</html>".hex()}


def _malformed_record(s: Scenario) -> None:
    del s["manifest"]["json"]["version"]["digest"]
    s["manifest"]["json"]["version"]["size"] = "big"


def _other_artifact(s: Scenario) -> None:
    """A record naming another artifact, whose name climbs out of ./artifacts."""
    s["manifest"]["json"]["version"]["artifact"] = "../../../escaped"


def _multiline_error(s: Scenario) -> None:
    message = "refused\nsecond line\x1b[31m\n\rthird"
    s["manifest"] = {"status": 403, "json": {"error": {"code": "x", "message": message}}}


def _deep_answer(s: Scenario) -> None:
    s["manifest"] = {"hex": ("[" * 100_000 + "]" * 100_000).encode().hex()}


ATTACKS: dict[str, Callable[[Scenario], None]] = {
    "traversal": _traversal,
    "absolute": _absolute,
    "link out": _link_out,
    "file through link": _file_through_link,
    "wrong bytes": _wrong_bytes,
    "longer than listed": _longer_than_listed,
    "shorter than listed": _shorter_than_listed,
    "size 2**70": _size_2_70,
    "endless chunk": _endless_chunk,
    "endless manifest": _endless_manifest,
    "cut short": _cut_short,
    "not json": _not_json,
    "malformed record": _malformed_record,
    "other artifact": _other_artifact,
    "multi-line error": _multiline_error,
    "deep answer": _deep_answer,
}


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[Callable[[Scenario], str]]:
    """Start the malicious server with a scenario; returns its URL."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(scenario: Scenario) -> str:
        path = tmp_path / "scenario.json"
        path.write_text(json.dumps(scenario))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        procs.append(start_service([sys.executable, str(HOSTILE), str(port), str(path)], url))
        return url

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def _files_under(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink()
    }


@pytest.mark.parametrize("attack", ["honest", *ATTACKS])
def test_a_hostile_server_gets_nothing_written_outside_nor_wrong(
    tmp_path: Path, hostile: Callable[[Scenario], str], attack: str
) -> None:
    files, scenario = _honest(tmp_path)
    if attack != "honest":
        ATTACKS[attack](scenario)
    url = hostile(scenario)
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARTFS_")}
    env.update(
        ARTFS_URL=url,
        ARTFS_API_KEY="artfs_x_y",
        ARTFS_CACHE_DIR=str(tmp_path / "cache"),
        ARTFS_STATE_DIR=str(tmp_path / "state"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        ARTFS_CHUNK_SIZE=str(CHUNK),
    )
    outside_before = _files_under(tmp_path)
    root = work / "out"
    with_root = attack != "other artifact"  # that one writes to its default root
    args = ["get", "proj/ds", *(["--root", str(root)] if with_root else [])]
    proc = subprocess.run(
        [ARTFS, *args], env=env, cwd=work, capture_output=True, text=True, timeout=120
    )
    if attack == "honest":
        assert proc.returncode == 0, proc.stderr
        assert _files_under(root) == files
        return
    message = one_line_error(proc)
    assert "\x1b" not in message
    written = _files_under(work)
    for rel, data in written.items():  # whatever was written is right, and inside work/
        assert data == files[rel.split("/", 2)[-1]], rel
    after = {k: v for k, v in _files_under(tmp_path).items() if not k.startswith("work/")}
    new = set(after) - set(outside_before)
    assert all(p.startswith(("cache/", "scenario.")) for p in new), new
    for p in new:
        if p.startswith("cache/chunks/"):
            assert digest_bytes(after[p]) == "blake3:" + "".join(p.split("/")[-2:])
        assert not p.startswith("cache/tmp/"), p
    assert not Path("/tmp/artfs-hostile-escape.txt").exists()
