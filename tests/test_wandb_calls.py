"""The calls a W&B user makes every day, as W&B documents them, and the entity and project a
run or a draft logs into (issue 14)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

import artfs
from artfs.core.errors import ArtfsError, Unauthenticated

from .util import run_artfs, write_tree


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    return write_tree(tmp_path / "src", {name: data}) / name


def test_run_in_another_entity_logs_uses_and_upserts_there(api_env, tmp_path):
    weights = _file(tmp_path, "w.bin", b"weights")
    with artfs.init(entity="team", project="cv", group="g") as run:
        logged = run.log_artifact(weights, name="net", type="model")
        used = run.use_artifact("net:latest")
        part = artfs.Artifact("parts")
        with part.new_file("p0.txt") as f:
            f.write("part 0")
        run.upsert_artifact(part)
        done = run.finish_artifact(artfs.Artifact("parts"))
    assert logged.qualified_name == "team/cv/net:v0"
    assert used.qualified_name == "team/cv/net:v0"
    assert done.qualified_name == "team/cv/parts:v0"
    api = artfs.Api()
    assert [a.qualified_name for a in api.run(run.path).used_artifacts()] == ["team/cv/net:v0"]
    assert [e.path for e in api.artifact("team/cv/parts:v0").files()] == ["p0.txt"]
    assert not api.artifact_exists("proj/net")  # nothing went to the default project


def test_draft_of_another_entity_logs_the_next_version_there(api_env, tmp_path):
    with artfs.init(entity="team", project="cv") as run:
        run.log_artifact(_file(tmp_path, "a.txt", b"a"), name="x")
    draft = artfs.Api().artifact("team/cv/x:v0").new_draft()
    with draft.new_file("b.txt") as f:
        f.write("b")
    draft.save()
    assert draft.qualified_name == "team/cv/x:v1"
    latest = artfs.Api().artifact("team/cv/x:latest")
    assert latest.version == "v1" and sorted(e.path for e in latest.files()) == ["a.txt", "b.txt"]
    other = artfs.Api().artifact("team/cv/x:v1").new_draft()
    other.save(project="other")  # a project alone keeps the draft's entity, as W&B does
    assert other.qualified_name == "team/other/x:v0"


def test_get_path_entry_downloads_one_file(api_env, tmp_path, monkeypatch):
    src = write_tree(tmp_path / "src", {"a.txt": b"alpha", "sub/b.txt": b"beta"})
    outside = _file(tmp_path / "refs", "ref.txt", b"kept elsewhere")
    art = artfs.Artifact("two", type="dataset")
    art.add_dir(src)
    art.add_reference(outside.as_uri(), name="ref.txt")
    art.save()
    got = artfs.Api().artifact("proj/two:latest")
    entry = got.get_path("sub/b.txt")
    assert (entry.path, entry.size, entry.ref) == ("sub/b.txt", 4, None)
    assert entry.digest == got.manifest().get("sub/b.txt").digest
    assert got.get_entry("ref.txt").ref == outside.as_uri()
    where = entry.download(tmp_path / "one")
    assert where == str(tmp_path / "one" / "sub" / "b.txt") and Path(where).read_bytes() == b"beta"
    assert sorted(p.name for p in (tmp_path / "one").rglob("*") if p.is_file()) == ["b.txt"]
    monkeypatch.chdir(tmp_path)
    default = got.get_entry("ref.txt").download()
    assert default == str(Path("artifacts") / "two:v0" / "ref.txt")
    assert Path(default).read_bytes() == b"kept elsewhere"
    with pytest.raises(ArtfsError, match="no file"):
        got.get_path("missing.txt")


def test_file_of_a_single_file_artifact(api_env, tmp_path, monkeypatch):
    with artfs.init(project="cv") as run:
        run.log_artifact(_file(tmp_path, "model.pt", b"tensor"), name="single", type="model")
        art = artfs.Artifact("many")
        art.add_dir(write_tree(tmp_path / "d", {"1": b"1", "2": b"2"}))
        run.log_artifact(art)
        single = run.use_artifact("single:latest")
        path = single.file(tmp_path / "out")
        assert path == str(tmp_path / "out" / "model.pt")
        assert Path(path).read_bytes() == b"tensor"
        monkeypatch.chdir(tmp_path)
        assert single.file() == str(Path("artifacts") / "single:v0" / "model.pt")
        with pytest.raises(ArtfsError, match="2 files"):
            run.use_artifact("many:latest").file()


def test_top_level_calls_act_on_the_current_run(api_env, tmp_path):
    data = _file(tmp_path, "d.csv", b"a,b\n")
    assert artfs.run is None
    with pytest.raises(ArtfsError, match=r"artfs.init\(\)"):
        artfs.log_artifact(data)
    with pytest.raises(ArtfsError, match=r"artfs.init\(\)"):
        artfs.use_artifact("d:latest")
    artfs.finish()  # nothing to finish: no error, as in W&B
    run = artfs.init(project="cv")
    assert artfs.run is run
    logged = artfs.log_artifact(data, name="table", aliases=["raw"])
    used = artfs.use_artifact("table:raw")
    artfs.finish()
    assert artfs.run is None
    assert logged.qualified_name == used.qualified_name and logged.project == "cv"
    back = artfs.Api().run(run.path)
    assert back.state == "finished" and [a.name for a in back.used_artifacts()] == ["table:v0"]
    run.finish(1)  # finishing twice changes nothing
    assert artfs.Api().run(run.path).state == "finished"


def test_with_block_sets_and_clears_the_current_run(api_env):
    with artfs.init(project="cv") as run:
        assert artfs.run is run
    assert artfs.run is None and artfs.Api().run(run.path).state == "finished"
    with pytest.raises(RuntimeError), artfs.init(project="cv") as failing:
        raise RuntimeError("training crashed")
    assert artfs.Api().run(failing.path).state == "failed"


def test_second_init_follows_reinit_as_in_wandb(api_env):
    first = artfs.init(project="cv")
    assert artfs.init(project="cv") is first  # W&B's default outside a notebook
    with pytest.raises(ArtfsError, match="another is active"):
        artfs.init(project="cv", id="other", resume="must")
    side = artfs.init(project="cv", reinit="create_new")
    assert artfs.run is first and side.id != first.id
    second = artfs.init(project="cv", reinit="finish_previous")
    assert artfs.run is second
    api = artfs.Api()
    assert api.run(first.path).state == api.run(side.path).state == "finished"
    assert api.run(second.path).state == "running"
    artfs.finish()
    with pytest.raises(ArtfsError, match="reinit="):
        artfs.init(project="cv", reinit="sometimes")


def test_no_project_means_uncategorized(api_env, monkeypatch, tmp_path):
    monkeypatch.delenv("ARTFS_PROJECT")
    with artfs.init() as run:
        assert run.project == "uncategorized"
        logged = run.log_artifact(_file(tmp_path, "f", b"f"), name="f")
    art = artfs.Artifact("g")
    art.add_file(_file(tmp_path, "g", b"g"))
    art.save()
    assert logged.project == art.project == "uncategorized"


def test_save_inside_a_run_logs_through_it(api_env, tmp_path):
    art = artfs.Artifact("saved")
    art.add_file(_file(tmp_path, "s.txt", b"s"))
    with artfs.init(entity="team", project="cv") as run:
        art.save()
    assert art.qualified_name == "team/cv/saved:v0"
    assert art.logged_by().id == run.id


def test_login_writes_what_artfs_login_writes(artfs_server, tmp_path, monkeypatch):
    key = artfs_server.admin_key
    cli_home, api_home = tmp_path / "cli", tmp_path / "api"
    env = {"PATH": "/usr/bin:/bin", "XDG_CONFIG_HOME": str(cli_home)}
    run_artfs("login", artfs_server.url + "/", "--key", key, env=env)
    for name in [n for n in os.environ if n.startswith("ARTFS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(api_home))
    assert artfs.login(key=key, host=artfs_server.url + "/", verify=True) is True
    saved = api_home / "artfs" / "config.json"
    assert json.loads(saved.read_text()) == json.loads(
        (cli_home / "artfs" / "config.json").read_text()
    )
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert artfs.Api().client.backend.whoami()["user"] == "admin"  # later calls use it
    with pytest.raises(Unauthenticated):
        artfs.login(key="artfs_0000_bad", verify=True)  # host: the saved server
    assert json.loads(saved.read_text())["api_key"] == key  # a refused key is not saved
    artfs.login(key="unchecked")  # W&B's verify=False: saved as given
    assert json.loads(saved.read_text())["api_key"] == "unchecked"


def test_login_needs_a_server(monkeypatch, tmp_path):
    monkeypatch.delenv("ARTFS_URL", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    with pytest.raises(ArtfsError, match="host="):
        artfs.login(key="k")
    with pytest.raises(ArtfsError, match="invalid server URL"):
        artfs.login(key="k", host="ftp://example")
