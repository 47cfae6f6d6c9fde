"""The HTTP backend: the Backend protocol over a team server's API (``artfs server``).

A ``requests.Session`` carries the calls, so parallel transfers reuse a pool of connections.
urllib3 retries, with exponential backoff, what is safe to send again: connection failures
(the request never left) for every call, and 429/5xx answers and broken reads for the calls
that mean the same the second time (reads, chunk uploads, edits, commits: a repeated commit
of the same content finds the version the first one made). Calls that create something new
each time (a run without an id, a sweep, a trial, a user, a key, finishing a distributed
version) go through a second session that retries connection failures only. A chunk download
cut off mid-body resumes with a ``Range`` request from the byte where it stopped. Errors
come back as the ``ArtfsError`` class the store raised.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ..core.errors import (
    ArtfsError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
    error_from_payload,
)
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

API = "/api/v1"
POOL_SIZE = 32  # at least the transfer workers plus the mount's readers
TIMEOUT = (10, 600)  # connect, read (a commit of a huge manifest or gc may take a while)
READ_BLOCK = 1 << 20
UPLOAD_BATCH = 64  # chunks per POST /chunks (the server takes up to 256)
RESUME_TRIES = 4
ERROR_BYTES = 1 << 20  # of an error answer
RETRY = Retry(  # about 5 s of retrying: long enough to ride out a server restart
    total=5,
    read=3,
    other=0,  # e.g. an untrusted certificate: retrying cannot help
    backoff_factor=0.2,
    backoff_max=2,
    status_forcelist=(429, 500, 502, 503, 504),
    allowed_methods=frozenset({"GET", "HEAD", "PUT", "POST", "PATCH", "OPTIONS"}),
    raise_on_status=False,
    respect_retry_after_header=True,
)
RETRY_UNSENT = Retry(total=3, connect=3, read=0, status=0, other=0, backoff_factor=0.2)
_ERRNO_RE = re.compile(r"\[Errno -?\d+\] [^'\")]+")
_BY_STATUS: dict[int, type[ArtfsError]] = {
    401: Unauthenticated,
    403: PermissionDenied,
    404: NotFound,
}


def _reason(exc: requests.RequestException) -> str:
    """One line out of the nested connection errors requests raises."""
    found = _ERRNO_RE.search(str(exc))
    if found:
        return found.group(0).strip()
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS handshake failed (is the certificate trusted? see REQUESTS_CA_BUNDLE)"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    return type(exc).__name__


class _Concatenation:
    """Buffers sent back to back as one body of known length, without joining them: requests
    takes the length from ``__len__`` and urllib3 sends each buffer as it is."""

    def __init__(self, views: list[memoryview]):
        self.views = views

    def __len__(self) -> int:
        return sum(view.nbytes for view in self.views)

    def __iter__(self) -> Iterator[memoryview]:
        return iter(self.views)


class _Answer(dict[str, Any]):
    """A JSON object a server answered: a key it lacks is a malformed answer, not a crash."""

    def __missing__(self, key: str) -> Any:
        raise ArtfsError(f"malformed answer: no {key!r}")


def _session(api_key: str | None, retry: Retry, pool: int) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool, max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "artfs-client"
    if api_key:
        session.headers["Authorization"] = f"Bearer {api_key}"
    return session


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
    def __init__(self, url: str, api_key: str | None = None):
        self.url = url.rstrip("/")
        self.session = _session(api_key, RETRY, POOL_SIZE)
        self._once = _session(api_key, RETRY_UNSENT, 2)  # calls not to be repeated

    # -- the wire ---------------------------------------------------------------------------

    def _send(self, method: str, path: str, once: bool = False, **kwargs: Any) -> requests.Response:
        """One call; ``once`` for calls that must not be repeated after they reached the server."""
        session = self._once if once else self.session
        try:
            response = session.request(method, self.url + path, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise Unavailable(
                f"cannot reach the artfs server at {self.url}: {_reason(exc)}"
            ) from None
        if response.status_code >= 400:
            raise self._error(response)
        return response

    def _error(self, response: requests.Response) -> ArtfsError:
        try:
            error = error_from_payload(self._read_json(response, ERROR_BYTES))
        except ArtfsError:
            error = None
        if error is not None:
            return error
        status = response.status_code
        text = f"the artfs server at {self.url} answered {status} {response.reason}"
        return Unavailable(text) if status >= 500 else _BY_STATUS.get(status, ArtfsError)(text)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, stream=True, **kwargs)
        return self._read_json(response, MAX_JSON_BODY)

    def _read_json(self, response: requests.Response, limit: int) -> Any:
        """The JSON of an answer of at most ``limit`` bytes, read as it streams in (an
        endless or malformed answer is an ``ArtfsError``, not a hang or a crash)."""
        with response:
            body = bytearray()
            try:
                for block in response.iter_content(READ_BLOCK):
                    body += block
                    if len(body) > limit:
                        raise ArtfsError(
                            f"the artfs server at {self.url} answered more than {limit} bytes"
                        )
            except requests.RequestException as exc:
                raise Unavailable(f"the answer of {self.url} broke off: {_reason(exc)}") from None
        try:
            value = json.loads(body)
        except (ValueError, RecursionError):
            raise ArtfsError(f"the artfs server at {self.url} answered malformed JSON") from None
        return _Answer(value) if isinstance(value, dict) else value

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
        ``UPLOAD_BATCH``, their bytes back to back (a buffer such as an mmap window goes to
        the socket uncopied)."""
        url = f"{API}/projects/{_q(entity, project)}/chunks"
        stored: list[int] = []
        for start in range(0, len(items), UPLOAD_BATCH):
            group = [(d, memoryview(data)) for d, data in items[start : start + UPLOAD_BATCH]]  # type: ignore[arg-type]
            headers = {
                "Content-Type": "application/octet-stream",
                "Artfs-Chunks": ",".join(f"{d}:{view.nbytes}" for d, view in group),
            }
            body = _Concatenation([view for _, view in group])
            stored += self._json("POST", url, data=body, headers=headers)["stored"]
        return stored

    def read_chunk(
        self, digest: str, offset: int = 0, length: int | None = None
    ) -> Iterator[bytes]:
        if length == 0:
            return iter(())
        response = self._get_range(digest, offset, length)
        return self._stream(response, digest, offset, length)

    def _get_range(self, digest: str, offset: int, length: int | None) -> requests.Response:
        headers = {}
        if offset or length is not None:
            last = "" if length is None else str(offset + length - 1)
            headers["Range"] = f"bytes={offset}-{last}"
        return self._send("GET", f"{API}/chunks/{_q(digest)}", headers=headers, stream=True)

    def _stream(
        self, response: requests.Response, digest: str, offset: int, length: int | None
    ) -> Iterator[bytes]:
        """The body's blocks; if the connection breaks, the rest is asked for again."""
        expected = int(response.headers.get("Content-Length", -1))
        received = 0
        for attempt in range(RESUME_TRIES + 1):
            try:
                with response:
                    for block in response.iter_content(READ_BLOCK):
                        received += len(block)
                        yield block
                if expected < 0 or received >= expected:
                    return
                problem = "the answer was cut short"
            except requests.RequestException as exc:
                problem = _reason(exc)
            if attempt == RESUME_TRIES:
                break
            time.sleep(0.2 * 2**attempt)
            remaining = None if length is None else length - received
            response = self._get_range(digest, offset + received, remaining)
        raise Unavailable(f"download of chunk {digest} from {self.url} failed: {problem}")

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
        self.session.close()
        self._once.close()
