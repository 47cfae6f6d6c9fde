"""Runs, lineage, sweeps, distributed writers, tables, TTL and cleanup (issue 6)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from datetime import timedelta

import pytest

import artfs
from artfs.core.errors import Conflict, NotFound

from .util import need

_WRITER = """
import sys, artfs
part, group = int(sys.argv[1]), sys.argv[2]
with artfs.init(project="proj", group=group, job_type="writer") as run:
    art = artfs.Artifact("rows", type="dataset")
    art.add(artfs.Table(["part", "i"], [[part, i] for i in range(10)]), f"parts/part-{part}")
    run.upsert_artifact(art)
"""


def test_distributed_writers_build_one_version(api_env):
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(i), "grp1"],
            env=api_env.env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(5)
    ]
    errors = [w.communicate(timeout=120)[1] for w in writers]
    assert [w.returncode for w in writers] == [0] * 5, errors
    with pytest.raises(NotFound):
        artfs.Api().artifact("proj/rows:latest")  # still pending: not visible as a version
    with artfs.init(project="proj", group="grp1", job_type="finisher") as run:
        art = artfs.Artifact("rows", type="dataset")
        art.add(artfs.PartitionedTable("parts"), "all")
        run.finish_artifact(art)
    logged = artfs.Api().artifact("proj/rows:latest")
    assert logged.version == "v0"
    assert sorted(e.path for e in logged.files()) == [
        "all.partitioned-table.json",
        *[f"parts/part-{i}.table.json" for i in range(5)],
    ]
    rows = [row for _, row in logged.get("all").iterrows()]
    assert sorted(map(tuple, rows)) == [(p, i) for p in range(5) for i in range(10)]

    late = artfs.Artifact("rows", type="dataset")
    with late.new_file("late.txt") as f:
        f.write("too late")
    with artfs.init(project="proj", group="grp1") as run, pytest.raises(Conflict, match="finished"):
        run.upsert_artifact(late)


def test_distributed_same_path_other_content_is_refused(api_env):
    with (
        artfs.init(project="proj", group="g2") as first,
        artfs.init(project="proj", group="g2", reinit="create_new") as second,
    ):
        a = artfs.Artifact("clash", type="dataset")
        with a.new_file("x.txt") as f:
            f.write("first")
        first.upsert_artifact(a)
        b = artfs.Artifact("clash", type="dataset")
        with b.new_file("x.txt") as f:
            f.write("second")
        with pytest.raises(Conflict, match="different content"):
            second.upsert_artifact(b)
        same = artfs.Artifact("clash", type="dataset")
        with same.new_file("x.txt") as f:
            f.write("first")
        second.finish_artifact(same)
    assert artfs.Api().artifact("proj/clash").get_entry("x.txt").size == 5


def _log(run, name: str, type_: str, content: bytes, tmp_path):
    path = tmp_path / f"{name}-{time.monotonic_ns()}"
    path.write_bytes(content)
    art = artfs.Artifact(name, type=type_)
    art.add_file(path, name="data.bin")
    return run.log_artifact(art)


def test_lineage_both_ways_and_dot(api_env, tmp_path):
    with artfs.init(project="proj", job_type="ingest") as ingest:
        _log(ingest, "raw", "dataset", b"raw", tmp_path)
    with artfs.init(project="proj", job_type="train") as train:
        train.use_artifact("raw:latest")
        _log(train, "net", "model", b"weights", tmp_path)
    with artfs.init(project="proj", job_type="eval") as evaluate:
        evaluate.use_artifact("net:latest")

    api = artfs.Api()
    model = api.artifact("proj/net:v0")
    assert model.logged_by().id == train.id
    assert [a.name for a in model.logged_by().used_artifacts()] == ["raw:v0"]
    assert model.logged_by().used_artifacts()[0].logged_by().id == ingest.id
    assert [r.id for r in api.artifact("proj/raw:v0").used_by()] == [train.id]
    assert [r.id for r in model.used_by()] == [evaluate.id]

    text = api_env.cli("lineage", "proj/raw:v0", "--depth", "4").stdout
    assert f"{ingest.id}" in text and f"{evaluate.id}" in text and "net:v0" in text
    dot = api_env.cli("lineage", "proj/net:v0", "--format", "dot").stdout
    assert dot.startswith("digraph") and dot.count("->") == 4
    need(shutil.which("dot") is not None, "graphviz renders the dot output")
    rendered = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True)
    assert rendered.returncode == 0 and "<svg" in rendered.stdout, rendered.stderr


def test_sweep_grid_best_run_and_its_model(api_env, tmp_path):
    config = {
        "method": "grid",
        "metric": {"name": "acc", "goal": "maximize"},
        "parameters": {"lr": {"values": [0.1, 0.01, 0.001]}, "depth": {"values": [2, 4]}},
    }
    sweep_id = artfs.sweep(config, project="proj")
    seen = []

    def train():
        run = artfs.init(project="proj")
        lr, depth = run.config["lr"], run.config["depth"]
        seen.append((lr, depth))
        run.summary["acc"] = depth / 10 - lr  # best: depth 4, lr 0.001
        _log(run, "sweep-model", "model", f"{lr}-{depth}".encode(), tmp_path)

    assert artfs.agent(sweep_id, train, count=10) == 6
    assert sorted(seen) == sorted((lr, d) for lr in (0.1, 0.01, 0.001) for d in (2, 4))
    sweep = artfs.Api().sweep(sweep_id)
    assert len(sweep.runs) == 6 and all(r.sweep == sweep.id for r in sweep.runs)
    best = sweep.best_run()
    assert (best.config["lr"], best.config["depth"]) == (0.001, 4)
    model = best.logged_artifacts()[0]
    root = model.download(tmp_path / "best")
    assert (tmp_path / "best" / "data.bin").read_bytes() == b"0.001-4" and root
    assert sweep.best_run(goal="minimize").config == {"lr": 0.1, "depth": 2}


def test_random_sweep_respects_ranges_and_count(api_env):
    config = {
        "method": "random",
        "parameters": {"lr": {"min": 0.0, "max": 1.0}, "n": {"min": 1, "max": 3}},
    }
    sweep_id = artfs.sweep(config, project="proj")
    values = []
    artfs.agent(sweep_id, lambda: values.append(dict(artfs.init().config)), count=4)
    assert len(values) == 4
    assert all(0 <= v["lr"] <= 1 and v["n"] in (1, 2, 3) for v in values)


def test_ttl_expired_versions_go_at_gc_unless_aliased(api_env, tmp_path):
    for i, aliases in enumerate(([], ["keep"], [])):
        art = artfs.Artifact("ttl", type="dataset")
        with art.new_file("f") as f:
            f.write(str(i))
        art.ttl = timedelta(seconds=1) if i < 2 else None
        art.aliases = aliases
        art.save(project="proj")
    assert artfs.Api().artifact("proj/ttl:v0").ttl == timedelta(seconds=1)
    time.sleep(1.2)
    out = api_env.cli("gc", "--grace", "0").stdout
    assert "expired 1 versions" in out
    versions = [v.version for v in artfs.Api().artifact_versions("dataset", "proj/ttl")]
    assert versions == ["v1", "v2"]


def test_rm_unaliased(api_env):
    for i in range(4):
        art = artfs.Artifact("many", type="dataset")
        with art.new_file("f") as f:
            f.write(str(i))
        art.aliases = ["pinned"] if i == 1 else []
        art.save(project="proj")
    out = api_env.cli("rm", "--unaliased", "proj/many").stdout
    assert "2 version(s) deleted" in out
    remaining = [(v.version, v.aliases) for v in artfs.Api().artifact_versions(None, "proj/many")]
    assert remaining == [("v1", ["pinned"]), ("v3", ["latest"])]


def test_save_code_logs_the_main_script(api_env, tmp_path):
    script = tmp_path / "train.py"
    script.write_text(
        "import artfs\n"
        "run = artfs.init(project='proj', save_code=True)\n"
        "print(run.path)\n"
        "run.finish()\n"
    )
    out = subprocess.run(
        [sys.executable, script], env=api_env.env, capture_output=True, text=True, check=True
    ).stdout.strip()
    run = artfs.Api().run(out)
    code = run.used_artifacts()
    assert [a.type for a in code] == ["code"] and code[0].logged_by().id == run.id
    assert artfs.Api().artifact(f"proj/{code[0].name}").get_entry("train.py").size > 0


def test_tables_round_trip(api_env):
    art = artfs.Artifact("tab", type="dataset")
    table = artfs.Table(columns=["a", "b"], data=[[1, "x"], [2, "y"]])
    table.add_data(3, "z")
    art.add(table, "tables/t0")
    art.save(project="proj")
    got = artfs.Api().artifact("proj/tab").get("tables/t0")
    assert got.columns == ["a", "b"] and got.data == [[1, "x"], [2, "y"], [3, "z"]]


def test_run_groups_and_filters(api_env):
    for job in ("train", "train", "eval"):
        artfs.init(project="proj", group="exp1", job_type=job).finish()
    api = artfs.Api()
    assert len(api.runs("proj", {"job_type": "train"})) == 2
    assert {r.group for r in api.runs("proj")} == {"exp1"}
