"""The HTTP backend and the server keep up with the Backend protocol and the store's options:
a method or option added to the store but not to the wire fails here, not in a user's run."""

from __future__ import annotations

import inspect

import pytest
from pydantic import BaseModel

from artfs.client.backend import SERVICE_CALLS, Backend
from artfs.client.http import HttpBackend
from artfs.server.routes.runs import RunStart
from artfs.server.routes.versions import CommitBody, UpsertBody
from artfs.store.service import Store


@pytest.mark.parametrize("name", sorted(SERVICE_CALLS | {"whoami", "close"}))
def test_http_backend_has_every_backend_method(name: str) -> None:
    expected = inspect.signature(getattr(Backend, name))
    actual = inspect.signature(getattr(HttpBackend, name))
    assert list(actual.parameters) == list(expected.parameters)


@pytest.mark.parametrize(
    "method, body",
    [("commit", CommitBody), ("upsert_version", UpsertBody), ("init_run", RunStart)],
)
def test_request_bodies_carry_every_store_option(method: str, body: type[BaseModel]) -> None:
    parameters = inspect.signature(getattr(Store, method)).parameters.values()
    options = {p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert options <= set(body.model_fields)
