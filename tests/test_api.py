"""The Python API as a W&B Artifacts user drives it: runs, drafts, edits, lineage, downloads."""

from __future__ import annotations

import os

import pytest

import artfs
from artfs.core.errors import ArtfsError, Conflict, InvalidName, NotFound

from .util import tree_digests, write_tree


def test_log_use_and_lineage(api_env, tmp_path):
    data = write_tree(tmp_path / "raw", {"a.csv": b"x,y\n1,2\n", "imgs/0.png": os.urandom(5000)})
    with artfs.init(project="cv", job_type="prep", config={"seed": 1}) as prep:
        art = artfs.Artifact("ds", type="dataset", description="raw", metadata={"rows": 1})
        art.add_dir(data)
        with art.new_file("notes/readme.txt") as f:
            f.write("made by prep")
        prep.log_artifact(art, aliases=["best"], tags=["raw"])
        prep.summary["rows"] = 1
    assert art.version == "v0" and art.aliases == ["latest", "best"] and art.tags == ["raw"]
    assert art.qualified_name.endswith("/cv/ds:v0")

    with artfs.init(project="cv", job_type="train") as train:
        used = train.use_artifact("ds:best")
        root = used.download(tmp_path / "got")
        model = artfs.Artifact("net", type="model")
        model_file = tmp_path / "w.bin"
        model_file.write_bytes(b"weights")
        model.add_file(model_file)
        train.log_artifact(model)

    assert tree_digests(tmp_path / "got") == {
        **tree_digests(data),
        "notes/readme.txt": tree_digests(tmp_path / "got")["notes/readme.txt"],
    }
    assert (tmp_path / "got" / "notes/readme.txt").read_text() == "made by prep"
    assert root == str(tmp_path / "got")

    api = artfs.Api()
    ds = api.artifact("cv/ds:v0")
    assert ds.logged_by().id == prep.id
    assert [r.id for r in ds.used_by()] == [train.id]
    assert [a.name for a in train.used_artifacts()] == ["ds:v0"]
    assert [a.name for a in train.logged_artifacts()] == ["net:v0"]
    assert api.artifact("cv/net:latest").logged_by().used_artifacts()[0].name == "ds:v0"
    assert api.run(f"cv/{prep.id}").summary["rows"] == 1
    assert api.run(prep.path).config["seed"] == 1
    assert api.run(prep.path).state == "finished"


def test_edit_aliases_metadata_description_and_tags(api_env, tmp_path):
    write_tree(tmp_path / "d", {"f": b"1"})
    art = artfs.Artifact("m", type="model")
    art.add_dir(tmp_path / "d")
    art.save(project="proj")
    a = artfs.Api().artifact("proj/m:latest")
    a.description = "edited"
    a.metadata["acc"] = 0.93
    a.aliases.append("prod")
    a.tags.append("good")
    a.save()
    again = artfs.Api().artifact("proj/m:prod")
    assert again.description == "edited" and again.metadata == {"acc": 0.93}
    assert again.aliases == ["latest", "prod"] and again.tags == ["good"]
    again.aliases.remove("prod")
    again.save()
    with pytest.raises(NotFound):
        artfs.Api().artifact("proj/m:prod")


def test_new_draft_logs_incremental_version(api_env, tmp_path):
    write_tree(tmp_path / "d", {"keep.txt": b"keep", "drop.txt": b"drop"})
    base = artfs.Artifact("inc", type="dataset")
    base.add_dir(tmp_path / "d")
    base.save(project="proj")
    draft = artfs.Api().artifact("proj/inc:v0").new_draft()
    draft.remove("drop.txt")
    with draft.new_file("added.txt") as f:
        f.write("new")
    draft.save()
    assert draft.version == "v1"
    assert draft.last_transfer.bytes_sent == 3  # only the new file's bytes travel
    v1 = artfs.Api().artifact("proj/inc:v1")
    assert sorted(e.path for e in v1.files()) == ["added.txt", "keep.txt"]
    assert v1.get_entry("keep.txt").digest == base.get_entry("keep.txt").digest


def test_download_checkout_verify(api_env, tmp_path):
    write_tree(tmp_path / "d", {"a/1": b"one", "a/2": b"two", "b/3": b"three"})
    art = artfs.Artifact("dl", type="dataset")
    art.add_dir(tmp_path / "d")
    art.save(project="proj")
    a = artfs.Api().artifact("proj/dl")
    part = a.download(tmp_path / "part", path_prefix="a")
    assert sorted(tree_digests(tmp_path / "part")) == ["a/1", "a/2"]
    with pytest.raises(ArtfsError, match="missing"):
        a.verify(part)
    root = tmp_path / "co"
    write_tree(root, {"stray/file": b"x", "a/1": b"tampered"})
    a.checkout(root)
    a.verify(root)
    assert tree_digests(root) == tree_digests(tmp_path / "d")
    (root / "b/3").write_bytes(b"changed!")
    with pytest.raises(ArtfsError, match="differs"):
        a.verify(root)


def test_versions_and_collections(api_env, tmp_path):
    for i in range(3):
        write_tree(tmp_path / "d", {"f": str(i).encode()})
        art = artfs.Artifact("col", type="dataset")
        art.add_dir(tmp_path / "d")
        art.save(project="proj")
    model = artfs.Artifact("mod", type="model")
    model.add_dir(tmp_path / "d")
    model.save(project="proj")
    api = artfs.Api()
    versions = api.artifact_versions("dataset", "proj/col")
    assert [v.version for v in versions] == ["v0", "v1", "v2"]
    for v in versions:
        if not v.aliases:
            v.delete()
    assert [v.version for v in api.artifact_versions("dataset", "proj/col")] == ["v2"]
    collections = api.artifact_collections("proj", "dataset")
    assert [(c.name, c.version_count, c.latest) for c in collections] == [("col", 1, 2)]
    assert [c.name for c in api.artifact_collections("proj")] == ["col", "mod"]


def test_run_resume_by_id(api_env):
    run = artfs.init(project="proj", id="fixed1", name="first", config={"lr": 0.1})
    run.summary["loss"] = 1.0
    run.finish()
    with pytest.raises(Conflict):
        artfs.init(project="proj", id="fixed1")
    resumed = artfs.init(project="proj", id="fixed1", resume="allow", config={"epochs": 3})
    assert resumed.summary["loss"] == 1.0 and resumed.state == "running"
    assert dict(resumed.config) == {"lr": 0.1, "epochs": 3}
    resumed.summary.update(loss=0.5)
    resumed.finish()
    assert artfs.Api().run("proj/fixed1").summary["loss"] == 0.5
    with pytest.raises(NotFound):
        artfs.init(project="proj", id="nosuchrun", resume="must")


def test_errors_are_specific(api_env, tmp_path):
    api = artfs.Api()
    with pytest.raises(InvalidName):
        api.artifact("proj/bad name")
    with pytest.raises(NotFound):
        api.artifact("proj/none:latest")
    write_tree(tmp_path / "d", {"f": b"1"})
    art = artfs.Artifact("typed", type="dataset")
    art.add_dir(tmp_path / "d")
    art.save(project="proj")
    other = artfs.Artifact("typed", type="model")
    other.add_file(tmp_path / "d" / "f", name="g")
    with pytest.raises(Conflict, match="type"):
        other.save(project="proj")
    with pytest.raises(ArtfsError, match="already"):
        art2 = artfs.Artifact("x")
        art2.add_file(tmp_path / "d" / "f")
        art2.add_file(tmp_path / "d" / "f")
    with pytest.raises(NotFound, match="no alias"):
        api.artifact("proj/typed:nope")
