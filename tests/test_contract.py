"""The Backend contract, kept in one place (``client/backend.py``) and checked here against
what is written by hand around it: the embedded and HTTP backends, the store's parts they
call, and the server's request bodies. (mypy checks the backends' types too.)"""

from __future__ import annotations

import inspect

import pytest
from pydantic import BaseModel

from artfs.client.backend import Backend
from artfs.client.http import HttpBackend
from artfs.client.local import LocalBackend
from artfs.server.routes.runs import RunStart
from artfs.server.routes.versions import CommitBody, UpsertBody
from artfs.store.runs import Runs
from artfs.store.versions import Versions

CALLS = sorted(
    name
    for name, member in vars(Backend).items()
    if not name.startswith("_") and (inspect.isfunction(member) or isinstance(member, property))
)


def test_the_contract_lists_the_calls():
    assert {"commit", "put_chunks", "read_chunk", "gc", "claim_trial", "close"} <= set(CALLS)


@pytest.mark.parametrize("backend", [HttpBackend, LocalBackend])
@pytest.mark.parametrize("name", CALLS)
def test_backends_have_every_call_with_its_parameters(backend: type, name: str) -> None:
    expected = getattr(Backend, name)
    actual = getattr(backend, name)
    if isinstance(expected, property):
        return
    assert list(inspect.signature(actual).parameters) == list(
        inspect.signature(expected).parameters
    )


@pytest.mark.parametrize(
    "name", [n for n in CALLS if n not in ("whoami", "close", "default_entity", "expect_reads")]
)
def test_the_embedded_backend_calls_the_store_method_of_the_same_name(name: str) -> None:
    source = inspect.getsource(getattr(LocalBackend, name))
    assert f".{name}(self.caller" in source


@pytest.mark.parametrize(
    "method, body",
    [
        (Versions.commit, CommitBody),
        (Versions.upsert_version, UpsertBody),
        (Runs.init_run, RunStart),
    ],
)
def test_request_bodies_carry_every_store_option(method, body: type[BaseModel]) -> None:
    parameters = inspect.signature(method).parameters.values()
    options = {p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert options <= set(body.model_fields)
