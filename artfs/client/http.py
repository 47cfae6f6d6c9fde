"""The HTTP backend: the Backend protocol over a team server's API (``artfs server``).

One pooled session carries the calls, so parallel transfers reuse connections. Retries follow
the one policy of ``retry``: a connection that could not be made is retried for every call;
a 429/5xx answer or a connection broken after sending only for the calls that mean the same
the second time (reads, chunk uploads, edits, commits: a repeated commit of the same content
finds the version the first one made), not for those that create something new each time (a
run without an id, a sweep, a trial, a user, a key, finishing a distributed version). Chunk
bytes go straight to and from the bucket through presigned URLs when the server offers them
(``direct``), unless ``transfer="stream"`` (``ARTFS_TRANSFER=stream``: networks that cannot
reach the bucket); otherwise they stream through the server, a download cut off mid-body
resuming with a ``Range`` request. Errors come back as the ``ArtfsError`` class the store
raised.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from ..core.errors import ArtfsError, error_from_payload
from ..core.manifest import Manifest
from ..core.names import ArtifactPath
from ..core.records import (
    MAX_JSON_BODY,
    CollectionInfo,
    CommitResult,
    GcReport,
    KeyInfo,
    MemberInfo,
    ProjectInfo,
    RunInfo,
    SweepInfo,
    UserInfo,
    VersionInfo,
    from_dict,
)
from ..store.blobs import Data
from .direct import DirectTransfers, range_header
from .transport import ERROR_BYTES, Concatenation, Peer, read_json, status_error

API = "/api/v1"
UPLOAD_BATCH = 64  # chunks per POST /chunks (the server takes up to 256)
TRANSFERS = ("auto", "stream")  # ARTFS_TRANSFER: presigned URLs when offered, or never


def server_error(response: requests.Response, peer: str) -> ArtfsError:
    """The error an answer of the server describes, as the class the store raised."""
    try:
        error = error_from_payload(read_json(response, ERROR_BYTES, peer))
    except ArtfsError:
        error = None
    return error if error is not None else status_error(response, peer)


def _q(*parts: str) -> str:
    return "/".join(quote(p, safe=":") for p in parts)


def _artifact_url(path: ArtifactPath, suffix: str) -> str:
    """``.../artifacts/{artifact}`` + ``suffix`` (``/versions``, ``/pending``...)."""
    return f"{API}/projects/{_q(path.entity, path.project)}/artifacts/{_q(path.artifact)}{suffix}"


def _version_url(path: ArtifactPath, suffix: str = "") -> str:
    return _artifact_url(path, f"/versions/{_q(path.alias)}{suffix}")


def _run_url(run: str, suffix: str = "", kind: str = "runs") -> str:
    """A run's (or sweep's) URL: its ``entity/project/id`` path, checked by the server."""
    return f"{API}/{kind}/{quote(run, safe='/')}{suffix}"


def _commit_result(answer: dict[str, Any]) -> CommitResult:
    return CommitResult(
        version=from_dict(VersionInfo, answer["version"]),
        created=answer["created"],
        moved_on=answer.get("moved_on", False),
    )


class HttpBackend:
    def __init__(self, url: str, api_key: str | None = None, transfer: str = "auto"):
        if transfer not in TRANSFERS:
            raise ArtfsError(f"ARTFS_TRANSFER={transfer}: one of {', '.join(TRANSFERS)}")
        self.url = url.rstrip("/")
        auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.server = Peer(f"the artfs server at {self.url}", server_error, auth)
        self.direct = (
            None
            if transfer == "stream"
            else DirectTransfers(lambda path, body: self._json("POST", API + path, json=body))
        )

    # -- the wire ---------------------------------------------------------------------------

    def _send(self, method: str, path: str, once: bool = False, **kwargs: Any) -> requests.Response:
        """One call; ``once`` for calls that must not be repeated after they reached the server."""
        return self.server.send(method, self.url + path, repeat=not once, **kwargs)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, stream=True, **kwargs)
        return read_json(response, MAX_JSON_BODY, self.server.name)

    # -- identity ---------------------------------------------------------------------------

    def whoami(self) -> dict[str, Any]:
        return {**self._json("GET", f"{API}/whoami"), "url": self.url}

    @functools.cached_property
    def default_entity(self) -> str:
        return self.whoami()["user"]

    # -- chunks -----------------------------------------------------------------------------

    def missing_chunks(self, digests: Sequence[str]) -> list[str]:
        return self._json("POST", f"{API}/chunks/missing", json={"digests": list(digests)})[
            "missing"
        ]

    def put_chunks(self, entity: str, project: str, items: Sequence[tuple[str, Data]]) -> list[int]:
        """Send chunks for a version of ``entity/project``, in one request per
        ``UPLOAD_BATCH``: to the bucket when the server offers it, else to the server, their
        bytes back to back (a buffer such as an mmap window goes to the socket uncopied)."""
        url = f"{API}/projects/{_q(entity, project)}/chunks"
        stored: list[int] = []
        for start in range(0, len(items), UPLOAD_BATCH):
            group = [(d, memoryview(data)) for d, data in items[start : start + UPLOAD_BATCH]]  # type: ignore[arg-type]
            direct = self.direct.upload(url.removeprefix(API), group) if self.direct else None
            if direct is not None:
                stored += direct
                continue
            headers = {
                "Content-Type": "application/octet-stream",
                "Artfs-Chunks": ",".join(f"{d}:{view.nbytes}" for d, view in group),
            }
            body = Concatenation([view for _, view in group])
            stored += self._json("POST", url, data=body, headers=headers)["stored"]
        return stored

    def expect_reads(self, digests: Sequence[str]) -> None:
        if self.direct is not None:
            self.direct.expect(digests)

    def read_chunk(
        self, digest: str, offset: int = 0, length: int | None = None
    ) -> Iterator[bytes]:
        if length == 0:
            return iter(())
        direct = self.direct.read(digest, offset, length) if self.direct else None
        if direct is not None:
            return direct

        def open_at(received: int) -> requests.Response:
            rest = None if length is None else length - received
            headers = range_header(offset + received, rest)
            return self.server.send_once(
                "GET", f"{self.url}{API}/chunks/{_q(digest)}", headers=headers, stream=True
            )

        return self.server.download(open_at, f"chunk {digest}")

    def chunk_paths(self, digests: Sequence[str]) -> dict[str, Path]:
        return {}  # the server's files are not on this machine

    # -- versions ---------------------------------------------------------------------------

    def commit(
        self, path: ArtifactPath, type: str, manifest: Manifest, **options: Any
    ) -> CommitResult:
        body = {"type": type, "manifest": manifest.to_json(), **options}
        return _commit_result(self._json("POST", _artifact_url(path, "/versions"), json=body))

    def upsert_version(
        self, path: ArtifactPath, type: str, manifest: Manifest, **options: Any
    ) -> CommitResult:
        body = {"type": type, "manifest": manifest.to_json(), **options}
        url = _artifact_url(path, "/pending")
        once = bool(options.get("finish"))  # a repeated finish would answer "already finished"
        return _commit_result(self._json("POST", url, once=once, json=body))

    def resolve(self, path: ArtifactPath) -> VersionInfo:
        return from_dict(VersionInfo, self._json("GET", _version_url(path)))

    def manifest(self, path: ArtifactPath) -> tuple[VersionInfo, Manifest]:
        answer = self._json("GET", _version_url(path, "/manifest"))
        return from_dict(VersionInfo, answer["version"]), Manifest.from_json(answer["manifest"])

    def list_projects(self, entity: str | None = None) -> list[ProjectInfo]:
        params = {} if entity is None else {"entity": entity}
        return [
            from_dict(ProjectInfo, p) for p in self._json("GET", f"{API}/projects", params=params)
        ]

    def list_collections(
        self, entity: str, project: str, type: str | None = None
    ) -> list[CollectionInfo]:
        params = {} if type is None else {"type": type}
        url = f"{API}/projects/{_q(entity, project)}/artifacts"
        return [from_dict(CollectionInfo, c) for c in self._json("GET", url, params=params)]

    def list_versions(self, path: ArtifactPath, include_deleted: bool = False) -> list[VersionInfo]:
        params = {"include_deleted": include_deleted}
        return [
            from_dict(VersionInfo, v)
            for v in self._json("GET", _artifact_url(path, "/versions"), params=params)
        ]

    def update_version(self, path: ArtifactPath, changes: Mapping[str, Any]) -> VersionInfo:
        return from_dict(VersionInfo, self._json("PATCH", _version_url(path), json=dict(changes)))

    def delete_version(self, path: ArtifactPath, delete_aliases: bool = False) -> VersionInfo:
        params = {"delete_aliases": delete_aliases}
        return from_dict(VersionInfo, self._json("DELETE", _version_url(path), params=params))

    def gc(self, grace: float | None = None) -> GcReport:
        body = {} if grace is None else {"grace": grace}
        return from_dict(GcReport, self._json("POST", f"{API}/gc", json=body))

    # -- runs -------------------------------------------------------------------------------

    def init_run(
        self, entity: str, project: str, run_id: str | None = None, **options: Any
    ) -> RunInfo:
        url = f"{API}/projects/{_q(entity, project)}/runs"
        body = {"run_id": run_id, **options}
        return from_dict(RunInfo, self._json("POST", url, once=run_id is None, json=body))

    def update_run(self, run: str, changes: Mapping[str, Any]) -> RunInfo:
        return from_dict(RunInfo, self._json("PATCH", _run_url(run), json=dict(changes)))

    def get_run(self, run: str) -> RunInfo:
        return from_dict(RunInfo, self._json("GET", _run_url(run)))

    def list_runs(
        self, entity: str, project: str, filters: Mapping[str, Any] | None = None
    ) -> list[RunInfo]:
        url = f"{API}/projects/{_q(entity, project)}/runs"
        return [from_dict(RunInfo, r) for r in self._json("GET", url, params=dict(filters or {}))]

    def use_version(self, run: str, path: ArtifactPath) -> VersionInfo:
        body = {"artifact": str(path)}
        return from_dict(VersionInfo, self._json("POST", _run_url(run, "/uses"), json=body))

    def run_versions(self, run: str, relation: str) -> list[VersionInfo]:
        answer = self._json("GET", _run_url(run, "/versions"), params={"relation": relation})
        return [from_dict(VersionInfo, v) for v in answer]

    def version_runs(self, path: ArtifactPath, relation: str) -> list[RunInfo]:
        answer = self._json("GET", _version_url(path, "/runs"), params={"relation": relation})
        return [from_dict(RunInfo, r) for r in answer]

    def create_sweep(self, entity: str, project: str, config: Mapping[str, Any]) -> SweepInfo:
        url = f"{API}/projects/{_q(entity, project)}/sweeps"
        body = {"config": dict(config)}
        return from_dict(SweepInfo, self._json("POST", url, once=True, json=body))

    def get_sweep(self, sweep: str) -> SweepInfo:
        return from_dict(SweepInfo, self._json("GET", _run_url(sweep, kind="sweeps")))

    def claim_trial(self, sweep: str, job_type: str | None = None) -> RunInfo | None:
        url = _run_url(sweep, "/trials", kind="sweeps")
        answer = self._json("POST", url, once=True, json={"job_type": job_type})
        return None if answer is None else from_dict(RunInfo, answer)

    # -- administration (not part of the Backend protocol) ----------------------------------

    def create_user(self, name: str, admin: bool = False) -> tuple[UserInfo, KeyInfo]:
        body = {"name": name, "admin": admin}
        answer = self._json("POST", f"{API}/admin/users", once=True, json=body)
        return from_dict(UserInfo, answer["user"]), from_dict(KeyInfo, answer["key"])

    def list_users(self) -> list[UserInfo]:
        return [from_dict(UserInfo, u) for u in self._json("GET", f"{API}/admin/users")]

    def create_key(self, user: str | None = None) -> KeyInfo:
        answer = self._json("POST", f"{API}/admin/keys", once=True, json={"user": user})
        return from_dict(KeyInfo, answer)

    def list_keys(self, user: str | None = None) -> list[KeyInfo]:
        params = {} if user is None else {"user": user}
        return [
            from_dict(KeyInfo, k) for k in self._json("GET", f"{API}/admin/keys", params=params)
        ]

    def revoke_key(self, key_id: str) -> KeyInfo:
        return from_dict(KeyInfo, self._json("DELETE", f"{API}/admin/keys/{_q(key_id)}"))

    def create_team(self, name: str) -> UserInfo:
        return from_dict(UserInfo, self._json("POST", f"{API}/admin/teams", json={"name": name}))

    def set_member(self, team: str, user: str, role: str = "member") -> MemberInfo:
        url = f"{API}/admin/teams/{_q(team)}/members/{_q(user)}"
        return from_dict(MemberInfo, self._json("PUT", url, json={"role": role}))

    def remove_member(self, team: str, user: str) -> MemberInfo:
        url = f"{API}/admin/teams/{_q(team)}/members/{_q(user)}"
        return from_dict(MemberInfo, self._json("DELETE", url))

    def list_members(self, team: str) -> list[MemberInfo]:
        url = f"{API}/admin/teams/{_q(team)}/members"
        return [from_dict(MemberInfo, m) for m in self._json("GET", url)]

    def create_project(self, entity: str, name: str, visibility: str = "private") -> ProjectInfo:
        body = {"entity": entity, "name": name, "visibility": visibility}
        return from_dict(ProjectInfo, self._json("POST", f"{API}/projects", json=body))

    def set_visibility(self, entity: str, name: str, visibility: str) -> ProjectInfo:
        url = f"{API}/projects/{_q(entity, name)}"
        return from_dict(ProjectInfo, self._json("PATCH", url, json={"visibility": visibility}))

    def close(self) -> None:
        self.server.close()
        if self.direct is not None:
            self.direct.close()
