"""A store written by artfs 0.1 (manifest format 1; tests/data/store-0.1) used through the
commands people run: it upgrades on open, reads back byte for byte, its version digests are
the ones clients now compute (so an unchanged tree is "unchanged"), and a staging area its
mount left behind (format 1) comes back in a new mount and commits."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest

from artfs.core.config import load_config
from artfs.fuse.areas import staging_root

from .conftest import StoreEnv
from .mountutil import mounted, sh
from .util import tree_digests

DATA = Path(__file__).parent / "data" / "store-0.1"


def _v1_tree(root: Path) -> Path:
    """The files of alice/cv/mnist:v1, made again as MADE_BY.md's script made them."""
    rng = random.Random(1)
    (root / "images").mkdir(parents=True)
    images = [rng.randbytes(1000 + i) for i in range(3)]
    big = rng.randbytes(200_000)
    images[1] = rng.randbytes(1500)  # v1 changed one image
    for i, data in enumerate(images):
        (root / "images" / f"{i}.png").write_bytes(data)
    (root / "labels.csv").write_text("file,label\n0.png,1\n1.png,2\n2.png,3\n")
    (root / "big.bin").write_bytes(big)
    (root / "empty.txt").write_bytes(b"")
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(root / "run.sh", 0o644)  # 0.1 kept no modes: as stored
    return root


@pytest.fixture
def old_store(tmp_path: Path) -> StoreEnv:
    home = tmp_path / "home"
    shutil.copytree(DATA / "home", home)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARTFS_")}
    env.update(
        ARTFS_HOME=str(home),
        ARTFS_CACHE_DIR=str(tmp_path / "cache"),
        ARTFS_STATE_DIR=str(tmp_path / "state"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        ARTFS_ENTITY="alice",
        ARTFS_PROJECT="cv",
        ARTFS_CHUNK_SIZE="64KiB",
    )
    return StoreEnv("embedded", tmp_path, env, home)


def test_an_old_store_reads_and_its_digests_are_todays(old_store: StoreEnv, tmp_path: Path):
    listing = old_store.cli("ls", "cv/mnist").stdout
    assert "v0" in listing and "v1" in listing and "v2" not in listing
    assert (old_store.store_dir / "artfs.db.bak-0001").exists()  # upgraded on open, copy kept
    src = _v1_tree(tmp_path / "src")
    old_store.cli("get", "cv/mnist:v1", "--root", tmp_path / "out")
    assert tree_digests(tmp_path / "out") == tree_digests(src)
    same = old_store.cli("put", src, "-n", "cv/mnist").stdout
    assert "unchanged, same content as alice/cv/mnist:v1" in same
    os.chmod(src / "run.sh", 0o755)  # what 0.1 lost: a new version, no byte sent
    moved = json.loads(old_store.cli("put", src, "-n", "cv/mnist", "--json").stdout)
    assert moved["version"]["number"] == 3 and moved["stats"]["chunks_sent"] == 0


def test_an_old_staging_area_comes_back_and_commits(
    old_store: StoreEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    for key, value in old_store.env.items():
        monkeypatch.setenv(key, value)
    area = staging_root(load_config(), "alice") / "cv" / "mnist"
    area.parent.mkdir(parents=True)
    shutil.copytree(DATA / "staging-area", area)
    with mounted(old_store) as m:
        staged = m / "cv/mnist/@staging"
        assert sorted(os.listdir(staged)) == ["big.bin", "empty.txt", "images", "new.txt", "run.sh"]
        assert (staged / "new.txt").read_text() == "staged\n"
        assert (
            sh("sha256sum", staged / "big.bin").stdout.split()[0]
            == sh("sha256sum", m / "cv/mnist/v1/big.bin").stdout.split()[0]
        )
        report = json.loads(old_store.cli("status", m.mnt, "--json").stdout)
        (only,) = report
        assert (only["added"], only["deleted"], only["modified"]) == (
            ["new.txt"],
            ["labels.csv"],
            [],  # the multi-chunk big.bin kept its base digest through the upgrade
        )
        committed = old_store.cli("commit", staged).stdout
        assert "cv/mnist: committed v3 (1 added, 1 deleted" in committed
    out = tmp_path / "v3"
    old_store.cli("get", "cv/mnist:v3", "--root", out)
    assert (out / "new.txt").read_text() == "staged\n" and not (out / "labels.csv").exists()
