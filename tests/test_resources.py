"""Clients close what they open: many runs, saves, Api look-ups and sweeps leave no database
connection, HTTP connection or hash-cache file open behind (issue 14, item 8)."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import artfs
from artfs.client.client import Client

from .util import write_tree


def open_fds() -> list[str]:
    """What this process's descriptors point at (files, sockets)."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.append(os.readlink(f"/proc/self/fd/{fd}"))
        except FileNotFoundError:  # the descriptor listdir itself used
            continue
    return sorted(out)


@pytest.fixture
def no_gc() -> Iterator[None]:
    """Without the cycle collector, only explicit closing (or a last reference going away)
    frees a connection: what is left open is a leak, not a collection not yet run."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _everyday_calls(i: int, data: Path, out: Path) -> None:
    with artfs.init(project="cv") as run:  # the run owns its client
        run.log_artifact(data, name="d")
        run.use_artifact("d:latest").download(out)
    artfs.init(project="cv")
    artfs.finish()
    draft = artfs.Artifact("s")
    draft.add_file(data)
    draft.save(project="cv")  # a client of its own, closed once logged
    draft.new_draft().save()
    artfs.Api().artifact("cv/d:latest").files()  # never closed by hand
    with artfs.Api() as api:
        api.artifact("cv/s:latest").download(out)
    sweep = artfs.sweep({"method": "grid", "parameters": {"x": {"values": [i]}}}, project="cv")
    artfs.agent(sweep, lambda: artfs.init().summary.update(y=i), count=1)
    with Client() as client:
        client.backend.list_projects()


def test_everyday_calls_leave_nothing_open(api_env, tmp_path, no_gc):
    data = write_tree(tmp_path / "src", {"f.txt": b"payload"}) / "f.txt"
    for i in range(2):  # warm up: lazily imported modules, caches made on first use
        _everyday_calls(i, data, tmp_path / "out")
    before = open_fds()
    for i in range(2, 12):
        _everyday_calls(i, data, tmp_path / "out")
    assert open_fds() == before


def test_a_closed_client_reopens_when_used_again(api_env, tmp_path):
    with artfs.init(project="cv") as run:
        run.log_artifact(write_tree(tmp_path, {"a": b"a"}) / "a", name="a")
        used = run.use_artifact("a:latest")
    assert [a.name for a in run.logged_artifacts()] == ["a:v0"]  # after finish closed it
    assert (Path(used.download(tmp_path / "later")) / "a").read_bytes() == b"a"
