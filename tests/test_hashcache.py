"""The hash cache: an unchanged tree is re-put without reading a byte of it."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from artfs.client.hashcache import FORMAT, HashCache

from .util import settle, write_tree

DATA = Path(__file__).parent / "data" / "store-0.1"

# Runs ``artfs`` in-process under an audit hook that records every file opened below ROOT.
_TRACED_CLI = """
import json, sys
root, args = sys.argv[1], sys.argv[2:]
opened = []
def hook(event, hook_args):
    if event == "open" and isinstance(hook_args[0], str) and hook_args[0].startswith(root):
        opened.append(hook_args[0])
sys.addaudithook(hook)
from artfs.cli.main import main
try:
    main(args)
finally:
    print(json.dumps(sorted(set(opened))), file=sys.stderr)
"""


def traced_put(store_env, data: Path, name: str) -> tuple[dict, list[str]]:
    """``artfs put --json`` in a separate process; returns its output and the files it opened."""
    proc = subprocess.run(
        [sys.executable, "-c", _TRACED_CLI, str(data), "put", str(data), "-n", name, "--json"],
        env=store_env.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    opened = json.loads(proc.stderr.strip().splitlines()[-1])
    return json.loads(proc.stdout), [os.path.relpath(p, data) for p in opened]


def test_unchanged_tree_is_not_read_again(store_env, tmp_path):
    data = write_tree(
        tmp_path / "d", {f"dir{i}/f{j}": os.urandom(300_000) for i in range(3) for j in range(4)}
    )
    settle()
    _, opened = traced_put(store_env, data, "proj/hc")
    assert len(opened) == 12
    second, opened = traced_put(store_env, data, "proj/hc")
    assert opened == []
    assert not second["created"] and second["stats"]["hashed_files"] == 0

    (data / "dir1/f2").write_bytes(os.urandom(300_000))
    os.utime(data / "dir0/f0")  # same bytes, new mtime: re-read, but no new content
    settle()
    third, opened = traced_put(store_env, data, "proj/hc")
    assert sorted(opened) == ["dir0/f0", "dir1/f2"]
    assert third["version"]["number"] == 1 and third["stats"]["chunks_sent"] == 1


def test_files_changed_within_the_racy_window_are_read_again(store_env, tmp_path):
    client = store_env.client()
    data = write_tree(tmp_path / "d", {"f": b"fresh"})
    client.put(client.path("proj/racy"), "dataset", {"f": data / "f"})  # hashed at once
    _, opened = traced_put(store_env, data, "proj/racy")
    assert opened == ["f"]  # written less than a tick before it was hashed: not trusted yet


def _cache_db(path: Path) -> tuple[int, int]:
    """(format, entries) of a hash cache file."""
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA user_version").fetchone()[0], db.execute(
            "SELECT count(*) FROM files"
        ).fetchone()[0]
    finally:
        db.close()


def test_hash_cache_of_0_1_is_kept(tmp_path):
    path = tmp_path / "hashes.db"
    shutil.copy(DATA / "cache" / "hashes.db", path)
    entries = _cache_db(path)[1]
    assert entries > 0
    HashCache(path)
    assert _cache_db(path) == (FORMAT, entries)


def test_hash_cache_of_another_format_is_rebuilt(tmp_path):
    path = tmp_path / "hashes.db"
    shutil.copy(DATA / "cache" / "hashes.db", path)
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")  # e.g. written by a newer artfs
    db.close()
    cache = HashCache(path)
    assert _cache_db(path) == (FORMAT, 0)
    data = write_tree(tmp_path / "d", {"f": b"hashed again"})
    settle()
    first = cache.content(data / "f", 1 << 20)
    assert _cache_db(path) == (FORMAT, 1)
    assert cache.content(data / "f", 1 << 20) == first
