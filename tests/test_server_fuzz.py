"""Property-based tests of the HTTP API from its own OpenAPI schema (schemathesis over
hypothesis): whatever a client sends, valid or not, to every operation, as the admin, as a
team member or as nobody, the server never answers 5xx. Besides the generated path
parameters, each case is sent again aimed at things that exist (a project with versions, a
run, a sweep, a chunk, a team member and its key), so that generated bodies and queries
meet real state. Bounded in examples per operation so the run stays around half a minute."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from artfs.core.digest import digest_bytes
from artfs.core.names import ArtifactPath

from .serverutil import ServerProcess, start_server
from .test_server_access import commit_bytes

EXAMPLES = 6  # per operation, generation mode and caller
CALLERS = ("admin", "member", "anonymous")


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(tmp_path_factory.mktemp("fuzz") / "server", "--allow-anonymous-read")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def world(fuzzed_server: ServerProcess) -> dict[str, Any]:
    """What exists on the server: a member's key, and the values of path parameters that
    name real things (a throwaway user's key and membership, so that revoking or removing
    them spares the member the fuzzing acts as)."""
    admin = fuzzed_server.admin()
    admin.create_team("cv")
    member = fuzzed_server.add_user("alice", {"cv": "member"})
    ghost = fuzzed_server.add_user("ghost", {"cv": "member"})
    admin.create_project("cv", "proj", "private")
    run = admin.init_run("cv", "proj", "r1", config={"lr": 0.1})
    sweep = admin.create_sweep("cv", "proj", {"parameters": {"lr": {"values": [0.1, 0.2]}}})
    return {
        "member_key": member,
        "path": {
            "entity": "cv",
            "project": "proj",
            "artifact": "ds",
            "alias": "latest",
            "run": run.path,
            "sweep": sweep.path,
            "digest": digest_bytes(b"fuzz v0"),
            "team": "cv",
            "user": "ghost",
            "key_id": ghost.split("_")[1],
        },
    }


@pytest.fixture
def versions(fuzzed_server: ServerProcess) -> None:
    """Fresh versions of cv/proj/ds for each run (a previous one may have deleted some)."""
    admin = fuzzed_server.admin()
    for label in ("v0", "v1"):
        commit_bytes(admin, ArtifactPath("cv", "proj", "ds"), f"fuzz {label}".encode())


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("caller", CALLERS)
def test_no_server_errors(
    fuzzed_server: ServerProcess,
    world: dict[str, Any],
    versions: None,
    caller: str,
    mode: GenerationMode,
) -> None:
    key = {"admin": fuzzed_server.admin_key, "member": world["member_key"]}.get(caller)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    schema = schemathesis.openapi.from_url(fuzzed_server.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 37  # every route of the API

    for operation in operations:

        @given(case=operation.as_strategy(mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def no_5xx(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=[not_a_server_error], timeout=30)
            real = {k: world["path"][k] for k in case.path_parameters or {} if k in world["path"]}
            if real and caller != "anonymous":
                case.path_parameters = {**case.path_parameters, **real}
                case.call_and_validate(headers=headers, checks=[not_a_server_error], timeout=30)

        try:
            no_5xx()
        except Unsatisfiable:  # nothing to make invalid (e.g. no parameters at all)
            assert mode == GenerationMode.NEGATIVE, operation.label
