"""The access rules of docs/OPERATIONS.md ("Users, keys and access") over HTTP: visibility
× caller × operation.

Two real servers hold the same data: one refuses anonymous callers, one started with
``--allow-anonymous-read``. Team ``cv`` owns one project per visibility (named after it);
``alice`` is a member of ``cv``, ``bob`` is not, ``carol`` is a member whose key was revoked.
Every refused request must answer 401/403/404 with a one-line message and change nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from artfs.client.http import HttpBackend
from artfs.core.chunking import ChunkRef
from artfs.core.digest import digest_bytes, hex_of
from artfs.core.errors import ArtfsError, NotFound
from artfs.core.manifest import Manifest, ManifestEntry
from artfs.core.names import ArtifactPath

from .serverutil import ServerProcess, start_server

VISIBILITIES = ("private", "public", "open")
CALLERS = ("admin", "member", "other", "anonymous", "anonymous_read", "revoked")
OPERATIONS = ("list", "manifest", "chunk", "put", "alias", "delete")
READS = ("list", "manifest", "chunk")
OK = None


def expected(visibility: str, caller: str, op: str) -> int | None:
    """The documented answer: None when allowed, else the HTTP status."""
    if caller in ("admin", "member"):
        return OK
    if caller in ("anonymous", "revoked"):
        return 401
    if caller == "other":
        if visibility == "private":
            return 404  # a private project's existence is not revealed
        return OK if op in READS or visibility == "open" else 403
    # anonymous on a server that allows anonymous reads: public projects, read only
    readable = visibility == "public"
    if op in READS:
        return OK if readable else 404
    if op == "put":
        return 401  # the upload comes first, and uploading needs a key
    return 401 if readable else 404


def file_manifest(path: str, data: bytes) -> Manifest:
    digest = digest_bytes(data)
    return Manifest([ManifestEntry(path, len(data), digest, (ChunkRef(digest, len(data)),))])


def commit_bytes(backend: HttpBackend, path: ArtifactPath, data: bytes) -> None:
    digest = digest_bytes(data)
    if backend.missing_chunks([digest]):
        backend.put_chunks(path.entity, path.project, [(digest, data)])
    backend.commit(path, "dataset", file_manifest("data.bin", data))


def content(visibility: str, label: str) -> bytes:
    return f"{visibility} project, {label}\n".encode() * 100


@dataclass
class World:
    strict: ServerProcess  # refuses anonymous callers
    lenient: ServerProcess  # --allow-anonymous-read
    keys: dict[str, dict[str, str | None]]  # server url -> caller -> key

    def server(self, caller: str) -> ServerProcess:
        return self.lenient if caller == "anonymous_read" else self.strict

    def backend(self, caller: str) -> HttpBackend:
        server = self.server(caller)
        return HttpBackend(server.url, self.keys[server.url][caller])


def populate(server: ServerProcess) -> dict[str, str | None]:
    admin = server.admin()
    admin.create_team("cv")
    keys: dict[str, str | None] = {"admin": server.admin_key}
    keys["member"] = server.add_user("alice", {"cv": "member"})
    keys["other"] = server.add_user("bob")
    keys["revoked"] = server.add_user("carol", {"cv": "member"})
    admin.revoke_key(keys["revoked"].split("_")[1])  # type: ignore[union-attr]
    keys["anonymous"] = keys["anonymous_read"] = None
    for vis in VISIBILITIES:
        admin.create_project("cv", vis, vis)
        for label in ("v0", "v1"):
            commit_bytes(admin, ArtifactPath("cv", vis, "ds"), content(vis, label))
            for caller in CALLERS:
                commit_bytes(admin, ArtifactPath("cv", vis, f"del-{caller}"), content(vis, label))
        admin.update_version(ArtifactPath("cv", vis, "ds", "v1"), {"aliases": ["best"]})
    return keys


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("access")
    strict = start_server(root / "strict")
    lenient = start_server(root / "lenient", "--allow-anonymous-read")
    try:
        keys = {s.url: populate(s) for s in (strict, lenient)}
        yield World(strict, lenient, keys)
    finally:
        strict.stop()
        lenient.stop()


def chunk_files(server: ServerProcess) -> set[str]:
    """The hex digests of the blobs on the server's disk."""
    return {p.parent.name + p.name for p in (server.data / "chunks").rglob("*") if p.is_file()}


def snapshot(server: ServerProcess) -> list[tuple[object, ...]]:
    """Everything a request could change, as the admin sees it."""
    admin = server.admin()
    state: list[tuple[object, ...]] = []
    for p in admin.list_projects():
        state.append((p.entity, p.name, p.visibility))
        for c in admin.list_collections(p.entity, p.name):
            path = ArtifactPath(p.entity, p.name, c.name)
            for v in admin.list_versions(path, include_deleted=True):
                state.append((v.artifact, v.number, v.state, tuple(v.aliases), v.digest))
    return state


def run_operation(backend: HttpBackend, vis: str, caller: str, op: str) -> object:
    ds = ArtifactPath("cv", vis, "ds", "v0")
    if op == "list":
        return backend.list_collections("cv", vis)
    if op == "manifest":
        return backend.manifest(ds)
    if op == "chunk":
        data = b"".join(backend.read_chunk(digest_bytes(content(vis, "v0"))))
        assert data == content(vis, "v0")
        return data
    if op == "put":
        data = f"{caller} puts into {vis}".encode()
        return commit_bytes(backend, ArtifactPath("cv", vis, f"put-{caller}"), data)
    if op == "alias":
        info = backend.resolve(ds)
        return backend.update_version(ds, {"aliases": [*info.aliases, f"a-{caller}"]})
    if op == "delete":
        return backend.delete_version(ArtifactPath("cv", vis, f"del-{caller}", "v0"))
    raise AssertionError(op)


def check_effect(admin: HttpBackend, vis: str, caller: str, op: str) -> None:
    if op == "put":
        assert admin.resolve(ArtifactPath("cv", vis, f"put-{caller}")).number == 0
    elif op == "alias":
        assert admin.resolve(ArtifactPath("cv", vis, "ds", f"a-{caller}")).number == 0
    elif op == "delete":
        versions = admin.list_versions(ArtifactPath("cv", vis, f"del-{caller}"), True)
        assert [v.state for v in versions] == ["deleted", "committed"]


@pytest.mark.parametrize("op", OPERATIONS)
@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("vis", VISIBILITIES)
def test_access_matrix(world: World, vis: str, caller: str, op: str) -> None:
    server = world.server(caller)
    want = expected(vis, caller, op)
    before, chunks_before = snapshot(server), chunk_files(server)
    backend = world.backend(caller)
    try:
        if want is OK:
            run_operation(backend, vis, caller, op)
            check_effect(server.admin(), vis, caller, op)
            return
        with pytest.raises(ArtfsError) as refused:
            run_operation(backend, vis, caller, op)
    finally:
        backend.close()
    error = refused.value
    assert error.http_status == want, f"{vis}/{caller}/{op}: {error!r}"
    message = str(error)
    assert message and "\n" not in message
    assert snapshot(server) == before
    added = chunk_files(server) - chunks_before
    if op == "put" and caller == "other":  # its upload went through, its commit did not:
        assert added <= {hex_of(digest_bytes(f"other puts into {vis}".encode()))}
    else:
        assert not added


@pytest.mark.parametrize("caller", ["other", "anonymous_read"])
def test_refused_project_is_not_listed(world: World, caller: str) -> None:
    backend = world.backend(caller)
    try:
        listed = {f"{p.entity}/{p.name}" for p in backend.list_projects()}
    finally:
        backend.close()
    readable = {"other": {"cv/public", "cv/open"}, "anonymous_read": {"cv/public"}}[caller]
    assert {n for n in listed if n.startswith("cv/")} == readable


def test_missing_chunks_is_no_oracle(world: World) -> None:
    """ "Which do you have?" answers only about chunks the caller can read."""
    private = digest_bytes(content("private", "v0"))
    public = digest_bytes(content("public", "v0"))
    for caller, lacks in (("member", []), ("other", [private]), ("admin", [])):
        backend = world.backend(caller)
        try:
            assert backend.missing_chunks([private, public]) == lacks, caller
        finally:
            backend.close()


def test_refusals_are_json_errors_with_one_line(world: World) -> None:
    url = world.strict.url + "/api/v1/projects/cv/private/artifacts"
    cases = [
        ({}, 401, "unauthenticated"),
        ({"Authorization": "Basic abc"}, 401, "unauthenticated"),
        ({"Authorization": "Bearer artfs_nope_nope"}, 401, "unauthenticated"),
        ({"Authorization": f"Bearer {world.keys[world.strict.url]['other']}"}, 404, "not_found"),
    ]
    for headers, status, code in cases:
        answer = requests.get(url, headers=headers, timeout=10)
        assert answer.status_code == status
        error = answer.json()["error"]
        assert error["code"] == code and "\n" not in error["message"]


def test_revoked_key_names_the_revocation(world: World) -> None:
    backend = world.backend("revoked")
    try:
        with pytest.raises(ArtfsError, match="revoked"):
            backend.list_projects()
    finally:
        backend.close()


def test_unknown_version_of_readable_project_is_404(world: World) -> None:
    backend = world.backend("member")
    try:
        with pytest.raises(NotFound):
            backend.resolve(ArtifactPath("cv", "private", "ds", "v9"))
    finally:
        backend.close()


def test_chunks_read_in_place_only_where_readable(world: World) -> None:
    """``chunk_paths`` (reading in place) gives a caller only the chunks it could fetch: an
    unreadable chunk has no path. A server's files are never a client's: its backend
    locates nothing."""
    from artfs.client.local import LocalBackend
    from artfs.store.service import Store

    private = content("private", "v0")
    public = content("public", "v0")
    wanted = [digest_bytes(private), digest_bytes(public)]
    store = Store.open(world.strict.data)
    try:
        for caller, readable in (("alice", [private, public]), ("bob", [public])):
            backend = LocalBackend(store, store.admin.ensure_user(caller))
            expected = {digest_bytes(d): d for d in readable}
            paths = backend.chunk_paths(wanted)
            assert {d: p.read_bytes() for d, p in paths.items()} == expected, caller
    finally:
        store.close()
    http = world.backend("member")
    try:
        assert http.chunk_paths(wanted) == {}
    finally:
        http.close()
