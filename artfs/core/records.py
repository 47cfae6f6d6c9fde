"""Plain records that cross layer boundaries (and the wire): what the store answers."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .errors import ArtfsError
from .names import ArtifactPath

T = TypeVar("T")
MAX_JSON_BODY = 256 << 20  # bytes of a JSON body on the wire, either way (a manifest...)


def from_dict(cls: type[T], data: object) -> T:
    """Build a record from an answer of a server, checking that every field is there with
    its type (a server is not trusted either); unknown keys are ignored (newer servers may
    add fields). A malformed answer raises ``ArtfsError``."""
    if not isinstance(data, dict):
        raise ArtfsError(f"malformed answer: a {cls.__name__} must be a JSON object")
    values = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ArtfsError(f"malformed answer: {cls.__name__} without {f.name!r}")
            continue
        if not _fits(data[f.name], _hints(cls)[f.name]):
            raise ArtfsError(f"malformed answer: {cls.__name__}.{f.name} of the wrong type")
        values[f.name] = data[f.name]
    return cls(**values)


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """A record's field types (evaluated once per class)."""
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _fits(value: object, hint: Any) -> bool:
    """Whether a JSON value has the type a record field is annotated with."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if origin is list:
        return isinstance(value, list) and all(_fits(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if hint in (int, float):
        return isinstance(value, (int, float) if hint is float else int) and not isinstance(
            value, bool
        )
    return isinstance(value, hint)


def to_dict(record: object) -> dict[str, Any]:
    """A record as a dict, nested records too; JSON values (metadata, configs) are passed
    as they are, never walked, so however deep an older release let them be, this works."""
    return {
        f.name: to_dict(value) if dataclasses.is_dataclass(value) else value
        for f in dataclasses.fields(record)  # type: ignore[arg-type]
        for value in (getattr(record, f.name),)
    }


@dataclass
class ProjectInfo:
    entity: str
    name: str
    visibility: str
    created_at: float


@dataclass
class CollectionInfo:
    """An artifact: a named, typed sequence of versions."""

    entity: str
    project: str
    name: str
    type: str
    description: str | None
    created_at: float
    version_count: int
    latest: int | None


@dataclass
class VersionInfo:
    id: int
    entity: str
    project: str
    artifact: str
    type: str
    number: int | None
    state: str
    digest: str
    size: int
    file_count: int
    description: str | None
    metadata: dict[str, Any]
    aliases: list[str]
    tags: list[str]
    created_at: float
    run: str | None = None
    expires_at: float | None = None
    base_number: int | None = None

    @property
    def label(self) -> str:
        return f"v{self.number}" if self.number is not None else "pending"

    @property
    def path(self) -> ArtifactPath:
        return ArtifactPath(self.entity, self.project, self.artifact, self.label)


@dataclass
class CommitResult:
    version: VersionInfo
    created: bool
    moved_on: bool = False


@dataclass
class RunInfo:
    entity: str
    project: str
    id: str
    name: str | None
    group: str | None
    job_type: str | None
    config: dict[str, Any]
    summary: dict[str, Any]
    state: str
    created_at: float
    updated_at: float
    sweep: str | None = None

    @property
    def path(self) -> str:
        return f"{self.entity}/{self.project}/{self.id}"


@dataclass
class SweepInfo:
    entity: str
    project: str
    id: str
    config: dict[str, Any]
    created_at: float

    @property
    def path(self) -> str:
        return f"{self.entity}/{self.project}/{self.id}"


@dataclass
class GcReport:
    chunks_deleted: int = 0
    bytes_freed: int = 0
    versions_expired: int = 0
    chunks_verified: int = 0  # sent straight to the bucket, checked by this gc
    chunks_lost: int = 0  # ... whose bytes failed the check (deleted)
    unverified_left: int = 0  # ... still to check (the next gc goes on)
    details: list[str] = field(default_factory=list)


@dataclass
class UserInfo:
    name: str
    admin: bool
    created_at: float


@dataclass
class KeyInfo:
    """An API key; ``key`` (the secret) is only ever set in the answer that created it."""

    key_id: str
    user: str
    created_at: float
    revoked_at: float | None = None
    key: str | None = None


@dataclass
class MemberInfo:
    team: str
    user: str
    role: str
