"""Names of entities, projects, artifacts and aliases, and the ``[entity/]project/artifact[:alias]``
form every layer parses the same way."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidName

_IDENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
_VERSION_RE = re.compile(r"v(\d+)\Z")
LATEST = "latest"


def check_identifier(kind: str, name: object) -> str:
    """Entity, project, artifact and type names: letters, digits, ``.``, ``_``, ``-``."""
    if not isinstance(name, str) or not _IDENT_RE.match(name):
        raise InvalidName(
            f"invalid {kind} name {name!r}: use letters, digits, '.', '_' or '-' "
            "(up to 128, starting with a letter or digit)"
        )
    return name


def version_number(alias: str) -> int | None:
    """``7`` for ``v7``; ``None`` for anything that is not a version label."""
    match = _VERSION_RE.match(alias)
    return int(match.group(1)) if match else None


def check_alias(alias: object) -> str:
    """A user alias: an identifier that is not ``vN`` (reserved) and has no ``@``."""
    if isinstance(alias, str) and version_number(alias) is not None:
        raise InvalidName(f"alias {alias!r} is reserved: names like v0, v1 label versions")
    return check_identifier("alias", alias)


def check_settable_alias(alias: object) -> str:
    """An alias a user may move by hand: any valid alias but the managed ``latest``."""
    if check_alias(alias) == LATEST:
        raise InvalidName("alias 'latest' is managed: it always names the newest version")
    return alias  # type: ignore[return-value]


@dataclass(frozen=True)
class ArtifactPath:
    """A parsed ``[entity/]project/artifact[:alias]``; ``alias`` is ``latest`` when omitted."""

    entity: str
    project: str
    artifact: str
    alias: str = LATEST

    @property
    def version(self) -> int | None:
        return version_number(self.alias)

    @property
    def collection(self) -> str:
        return f"{self.entity}/{self.project}/{self.artifact}"

    def __str__(self) -> str:
        return f"{self.collection}:{self.alias}"

    def with_alias(self, alias: str) -> ArtifactPath:
        return ArtifactPath(self.entity, self.project, self.artifact, alias)


def parse_artifact_path(
    text: object, default_entity: str | None = None, default_project: str | None = None
) -> ArtifactPath:
    """Parse ``[[entity/]project/]artifact[:alias|vN]`` with the given defaults."""
    if not isinstance(text, str) or not text:
        raise InvalidName(f"invalid artifact name {text!r}: expected [entity/]project/name[:alias]")
    body, sep, alias = text.partition(":")
    if sep and not alias:
        raise InvalidName(f"invalid artifact name {text!r}: empty alias after ':'")
    parts = body.split("/")
    entity: str | None
    project: str | None
    if len(parts) == 3:
        entity, project, artifact = parts
    elif len(parts) == 2:
        entity, (project, artifact) = default_entity, parts
    elif len(parts) == 1 and default_project:
        entity, project, artifact = default_entity, default_project, parts[0]
    else:
        raise InvalidName(f"invalid artifact name {text!r}: expected [entity/]project/name[:alias]")
    assert project is not None
    if entity is None:
        raise InvalidName(f"artifact name {text!r} names no entity and no default entity is set")
    if alias and version_number(alias) is None:
        check_alias(alias)
    return ArtifactPath(
        check_identifier("entity", entity),
        check_identifier("project", project),
        check_identifier("artifact", artifact),
        alias or LATEST,
    )


def parse_project_path(text: str, default_entity: str | None) -> tuple[str, str]:
    """Parse ``[entity/]project`` into ``(entity, project)``."""
    parts = text.split("/")
    if len(parts) == 2:
        entity, project = parts
    elif len(parts) == 1 and default_entity:
        entity, project = default_entity, parts[0]
    else:
        raise InvalidName(f"invalid project name {text!r}: expected [entity/]project")
    return check_identifier("entity", entity), check_identifier("project", project)


def parse_run_path(text: object, kind: str = "run") -> tuple[str, str, str]:
    """Parse a run's (or sweep's) ``entity/project/id`` into its three names."""
    parts = text.split("/") if isinstance(text, str) else []
    if len(parts) != 3:
        raise InvalidName(f"invalid {kind} path {text!r}: expected entity/project/{kind}_id")
    entity, project, run_id = parts
    return (
        check_identifier("entity", entity),
        check_identifier("project", project),
        check_identifier(f"{kind} id", run_id),
    )
