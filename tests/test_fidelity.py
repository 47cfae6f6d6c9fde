"""What a version keeps of a directory (kinds, modes, mtimes, links, empty directories),
checked with real programs (``find``, ``stat``, ``ls``, ``tar``, ``rsync``, ``git``) after
``artfs put`` → ``artfs get``, through a real mount, and written into ``@staging/``; and that
``get`` never writes through a symlink."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from .conftest import StoreEnv
from .mountutil import digests_of, mounted, sh
from .util import ARTFS, write_tree

SCRIPT = b"#!/bin/sh\necho script ran\n"
OLD = 1_500_000_000_123_456_789  # an mtime long ago, with nanoseconds
TIMED = ("a.txt", "run.sh", "data/latest", ".git/refs/heads")


def _tree(root: Path, outside: Path) -> Path:
    """A tree with what a version keeps, and (``python``, ``fifo``) what it cannot keep as
    it is."""
    write_tree(root, {"data/shard-7/part.bin": os.urandom(5000), "a.txt": b"a\n"})
    (root / "run.sh").write_bytes(SCRIPT)
    (root / "run.sh").chmod(0o755)
    (root / "data/latest").symlink_to("shard-7")  # a link to a directory, inside
    (root / "data/shard-7/up").symlink_to("../../a.txt")  # climbs, stays inside
    (root / ".git/refs/heads").mkdir(parents=True)  # empty: kept as a directory
    for path in ("a.txt", ".git/refs/heads"):
        os.utime(root / path, ns=(OLD, OLD))
    write_tree(outside, {"python3": b"an interpreter"})
    (root / "python").symlink_to(outside / "python3")  # absolute: followed
    os.mkfifo(root / "fifo")  # skipped
    return root


def _listing(root: Path) -> list[str]:
    """``find``: type, mode, path and link target of everything below ``root``."""
    found = sh("find", root, "-mindepth", "1", "-printf", r"%y %m %P %l\n").stdout
    return sorted(line.rstrip() for line in found.splitlines())


def _expected(umask: int, followed: bool = True) -> list[str]:
    """``_listing`` of ``_tree`` as a version gives it back (files 0666 or 0777 less the
    umask, as git makes them)."""
    exe, plain = 0o777 & ~umask, 0o666 & ~umask
    lines = [
        f"d {exe:o} .git",
        f"d {exe:o} .git/refs",
        f"d {exe:o} .git/refs/heads",
        f"f {plain:o} a.txt",
        f"d {exe:o} data",
        "l 777 data/latest shard-7",
        f"d {exe:o} data/shard-7",
        f"f {plain:o} data/shard-7/part.bin",
        "l 777 data/shard-7/up ../../a.txt",
        f"f {exe:o} run.sh",
    ]
    return sorted(lines + ([f"f {plain:o} python"] if followed else []))


def _mtimes(root: Path) -> dict[str, str]:
    """``stat``'s mtimes (nanoseconds) of the entries that keep theirs."""
    shown = sh("stat", "-c", "%.9Y", *[root / p for p in TIMED]).stdout.split()
    return dict(zip(TIMED, shown))


def _new_artifact(env: StoreEnv, mnt: Path, name: str) -> Path:
    """``mkdir MOUNT/proj/NAME`` (the project made by a put first); its ``@staging``."""
    env.cli("put", write_tree(env.tmp / "seed", {"seed": b"s"}), "-n", "proj/seed")
    (mnt / "proj" / name).mkdir()
    return mnt / "proj" / name / "@staging"


def _get(env: StoreEnv, name: str, root: Path, umask: int) -> dict:
    """``artfs get --json`` run with ``umask``."""
    command = f'umask {umask:03o} && exec "$0" "$@"'
    got = subprocess.run(
        ["sh", "-c", command, ARTFS, "get", name, "--root", str(root), "--json"],
        env=env.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert got.returncode == 0, got.stderr
    return json.loads(got.stdout)


def test_put_then_get_keeps_modes_mtimes_links_and_empty_directories(
    store_env: StoreEnv,
) -> None:
    src = _tree(store_env.tmp / "src", store_env.tmp / "outside")
    warnings = store_env.cli("put", src, "-n", "proj/tree").stderr.splitlines()
    assert len(warnings) == 2, warnings  # one line each: links followed, a fifo skipped
    assert "followed 1 symlink" in warnings[0] and "python ->" in warnings[0]
    assert "skipped 1 device file, socket or FIFO" in warnings[1] and "fifo" in warnings[1]
    entries = digests_of(store_env, "proj/tree:v0")
    assert entries[".git/refs/heads"] == {"kind": "dir", "mtime": OLD}
    assert entries["data/latest"]["kind"] == "link" and entries["data/latest"]["link"] == "shard-7"
    assert entries["run.sh"]["mode"] == 0o755 and "mode" not in entries["a.txt"]
    root = store_env.tmp / "got"
    _get(store_env, "proj/tree", root, 0o027)
    assert _listing(root) == _expected(0o027)
    assert sh(root / "run.sh").stdout == "script ran\n"
    assert _mtimes(root) == _mtimes(src)
    assert (root / "data/shard-7/up").read_text() == "a\n"
    # a second get puts back what changed, and only that
    (root / "run.sh").chmod(0o644)
    (root / "data/latest").unlink()
    (root / "data/latest").symlink_to("elsewhere")
    os.utime(root / "a.txt", ns=(OLD, OLD + 10**9))
    again = _get(store_env, "proj/tree", root, 0o027)
    assert again["stats"]["files_written"] == 1  # run.sh, for its mode
    assert _listing(root) == _expected(0o027)
    assert _mtimes(root) == _mtimes(src)


def test_put_refuses_dangling_links_out_and_loops_in_one_line(embedded: StoreEnv) -> None:
    src = write_tree(embedded.tmp / "src", {"a.txt": b"a"})
    (src / "gone").symlink_to(embedded.tmp / "nowhere")
    refused = embedded.cli("put", src, "-n", "proj/x", check=False)
    assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1
    assert "gone is a symlink to" in refused.stderr and "does not exist" in refused.stderr
    (src / "gone").unlink()
    (src / "dangling").symlink_to("not-yet")  # inside: kept as it is, like git
    (src / "sub").mkdir()
    (src / "sub/loop").symlink_to(src)
    refused = embedded.cli("put", src, "-n", "proj/x", check=False)
    assert refused.returncode == 1 and "loop is a symlink to a directory holding it" in (
        refused.stderr
    )
    (src / "sub/loop").unlink()
    embedded.cli("put", src, "-n", "proj/x")
    assert digests_of(embedded, "proj/x")["dangling"]["link"] == "not-yet"


@pytest.mark.fuse
def test_a_sqlite_wal_beside_its_database_is_warned_about(embedded: StoreEnv) -> None:
    src = embedded.tmp / "db"
    src.mkdir()
    db = sqlite3.connect(src / "runs.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (x)")
    db.execute("INSERT INTO t VALUES (1)")
    db.commit()  # in the WAL, not checkpointed: the database file alone lacks it
    try:
        warned = embedded.cli("put", src, "-n", "proj/db").stderr.splitlines()
    finally:
        db.close()
    assert len(warned) == 1 and "runs.db-wal" in warned[0] and "immutable=1" in warned[0]
    checkpointed = embedded.cli("put", src, "-n", "proj/db").stderr  # closed: no WAL left
    assert checkpointed == ""
    with mounted(embedded) as m:  # SEMANTICS.md's recipe for reading it from a version
        uri = f"file:{m / 'proj/db/latest/runs.db'}?immutable=1"
        assert sh("sqlite3", uri, "SELECT count(*) FROM t").stdout == "1\n"


def test_get_never_writes_through_a_symlink(embedded: StoreEnv) -> None:
    src = write_tree(embedded.tmp / "src", {"sub/file.txt": b"from the version", "a.txt": b"a"})
    embedded.cli("put", src, "-n", "proj/x")
    victim = write_tree(embedded.tmp / "victim", {"file.txt": b"precious", "a.txt": b"precious"})
    # --root already holds a link where the version has a directory: refused, in one line
    root = embedded.tmp / "root"
    root.mkdir()
    (root / "sub").symlink_to(victim)
    refused = embedded.cli("get", "proj/x", "--root", root, check=False)
    assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1, refused.stderr
    assert "sub is a symlink where the version has a directory" in refused.stderr
    assert (victim / "file.txt").read_bytes() == b"precious"
    assert sorted(os.listdir(victim)) == ["a.txt", "file.txt"]
    # a link where the version has a file is replaced by the file, never written through
    other = embedded.tmp / "other"
    other.mkdir()
    (other / "a.txt").symlink_to(victim / "a.txt")
    embedded.cli("get", "proj/x", "--root", other)
    assert not (other / "a.txt").is_symlink() and (other / "a.txt").read_bytes() == b"a"
    assert (victim / "a.txt").read_bytes() == b"precious"


@pytest.mark.fuse
def test_the_mount_shows_modes_mtimes_links_and_empty_directories(embedded: StoreEnv) -> None:
    src = _tree(embedded.tmp / "src", embedded.tmp / "outside")
    embedded.cli("put", src, "-n", "proj/tree")
    with mounted(embedded) as m:
        for shown in ("proj/tree/v0", "proj/tree/latest"):  # a version, and an alias of it
            root = m / shown
            assert _listing(root) == _expected(0o022)
            assert sh(root / "run.sh").stdout == "script ran\n"
            assert os.access(root / "run.sh", os.X_OK) and not os.access(root / "a.txt", os.X_OK)
            assert _mtimes(root) == _mtimes(src)
            links = sh("find", root, "-type", "l").stdout.split()
            assert sorted(links) == [f"{root}/data/latest", f"{root}/data/shard-7/up"]
            empty = sh("find", root, "-type", "d", "-empty").stdout.split()
            assert empty == [f"{root}/.git/refs/heads"]
            assert "latest -> shard-7" in sh("ls", "-la", root / "data").stdout
            assert (root / "data/latest/part.bin").read_bytes() == (
                src / "data/shard-7/part.bin"
            ).read_bytes()
            assert (root / "data/shard-7/up").read_text() == "a\n"


@pytest.mark.fuse
def test_tar_with_symlinks_into_staging_keeps_them_after_commit(embedded: StoreEnv) -> None:
    src = write_tree(embedded.tmp / "src", {"pkg/lib/real.so": b"\x7fELF", "pkg/README": b"r\n"})
    (src / "pkg/lib/alias.so").symlink_to("real.so")
    (src / "pkg/docs").symlink_to("lib")
    (src / "pkg/bin").mkdir()
    (src / "pkg/run.sh").write_bytes(SCRIPT)
    (src / "pkg/run.sh").chmod(0o755)
    os.utime(src / "pkg/README", ns=(OLD, OLD))
    archive = embedded.tmp / "pkg.tar"
    sh("tar", "-cf", archive, "-C", src, "pkg")
    with mounted(embedded) as m:
        staging = _new_artifact(embedded, m.mnt, "pkg")
        sh("tar", "-xf", archive, "-C", staging)  # exits 0 (sh raises otherwise)
        assert os.readlink(staging / "pkg/docs") == "lib"
        # a link leading out of the version is refused (EPERM), with a log line
        out = sh("ln", "-s", "/etc/passwd", staging / "pkg/out", check=False)
        assert out.returncode != 0 and "not permitted" in out.stderr
        embedded.cli("commit", staging)
        version = m / "proj/pkg/v0/pkg"
        links = sorted(sh("find", version, "-type", "l").stdout.split())
        assert links == [f"{version}/docs", f"{version}/lib/alias.so"]
        assert (version / "docs/alias.so").read_bytes() == b"\x7fELF"
        assert sh(version / "run.sh").stdout == "script ran\n"
        assert os.stat(version / "README").st_mtime_ns == OLD // 10**9 * 10**9  # tar: seconds
        assert sh("find", version, "-type", "d", "-empty").stdout.split() == [f"{version}/bin"]
        assert "symlink pkg/out refused" in m.log
    entries = digests_of(embedded, "proj/pkg:v0")
    assert entries["pkg/docs"]["kind"] == "link" and entries["pkg/docs"]["link"] == "lib"
    assert entries["pkg/bin"]["kind"] == "dir" and entries["pkg/run.sh"]["mode"] == 0o755


@pytest.mark.fuse
def test_git_gc_then_commit_keeps_a_working_repository(embedded: StoreEnv) -> None:
    repo = embedded.tmp / "repo"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    sh(*git, "init", "-q", repo)
    write_tree(repo, {"train.py": b"print('train')\n"})
    sh(*git, "-C", repo, "add", ".")
    sh(*git, "-C", repo, "commit", "-qm", "first")
    sh(*git, "-C", repo, "gc", "-q")
    assert not os.listdir(repo / ".git/refs/heads")  # all refs packed: the directory is empty
    with mounted(embedded) as m:
        staging = _new_artifact(embedded, m.mnt, "repo")
        sh("cp", "-a", f"{repo}/.", staging)
        embedded.cli("commit", staging)
        version = m / "proj/repo/v0"
        assert "first" in sh("git", "-C", version, "log", "--oneline").stdout
        sh("git", "-C", version, "fsck", "--no-dangling")
    got = embedded.tmp / "got"
    embedded.cli("get", "proj/repo", "--root", got)
    assert "first" in sh("git", "-C", got, "log", "--oneline").stdout
    sh("git", "-C", got, "fsck")
    assert sh("git", "-C", got, "status", "--porcelain").stdout == ""


@pytest.mark.fuse
def test_rsync_into_staging_again_after_a_remount_sends_nothing(embedded: StoreEnv) -> None:
    src = _tree(embedded.tmp / "src", embedded.tmp / "outside")
    for kept_as_is_nowhere in ("fifo", "python"):
        (src / kept_as_is_nowhere).unlink()
    with mounted(embedded) as m:
        staging = _new_artifact(embedded, m.mnt, "synced")
        sh("rsync", "-a", f"{src}/", f"{staging}/")
    # the unmount committed v0; the remount starts from it
    with mounted(embedded) as m:
        staging = m / "proj/synced/@staging"
        assert _listing(staging) == _expected(0o022, followed=False)
        assert _mtimes(staging) == _mtimes(src)
        stats = sh("rsync", "-a", "--stats", f"{src}/", f"{staging}/").stdout
        assert "Number of regular files transferred: 0" in stats, stats
        assert embedded.cli("status", m.mnt).stdout == "no staged changes\n"
    listed = embedded.cli("ls", "proj/synced").stdout.splitlines()
    assert [line.split()[0] for line in listed[1:]] == ["v0"]


@pytest.mark.fuse
def test_hard_links_in_staging_are_copies(embedded: StoreEnv) -> None:
    with mounted(embedded) as m:
        staging = _new_artifact(embedded, m.mnt, "links")
        (staging / "a").write_bytes(b"one")
        os.link(staging / "a", staging / "b")
        with open(staging / "b", "r+b") as f:  # writes to b do not show in a
            f.write(b"two")
        assert (staging / "a").read_bytes() == b"one"
        assert os.stat(staging / "a").st_nlink == 1
        embedded.cli("commit", staging)
        assert (m / "proj/links/v0/a").read_bytes() == b"one"
        assert (m / "proj/links/v0/b").read_bytes() == b"two"


def test_add_dir_checkout_and_verify_know_kinds_modes_and_links(api_env: StoreEnv) -> None:
    import artfs
    from artfs.core.errors import ArtfsError, ArtfsWarning

    src = _tree(api_env.tmp / "src", api_env.tmp / "outside")
    (src / "fifo").unlink()
    victim = write_tree(api_env.tmp / "victim", {"keep.txt": b"keep"})
    art = artfs.Artifact("tree")
    with pytest.warns(ArtfsWarning, match="followed 1 symlink"):
        art.add_dir(src)
    art.save()
    logged = artfs.Api().artifact("proj/tree:latest")
    root = Path(logged.download(api_env.tmp / "got"))
    logged.verify(root)
    for change, why in [
        (lambda: (root / "run.sh").chmod(0o644), "run.sh differs"),
        (lambda: _relink(root / "data/latest", "shard-8"), "data/latest differs"),
        (lambda: (root / "stray").symlink_to(victim), "stray is not part"),
        (lambda: (root / ".git/refs/heads").rmdir(), ".git/refs/heads is missing"),
    ]:
        change()
        with pytest.raises(ArtfsError, match=why):
            logged.verify(root)
        logged.checkout(root)  # puts it right: the link removed, never followed
        logged.verify(root)
    assert (victim / "keep.txt").read_bytes() == b"keep"


def _relink(path: Path, target: str) -> None:
    path.unlink()
    path.symlink_to(target)
