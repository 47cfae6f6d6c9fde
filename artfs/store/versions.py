"""Versions: list, resolve, read, commit (plain and distributed), edit, delete.

Every version comes into being through ``_commit``, the one commit routine: a plain commit
calls it at once, a distributed one (``upsert_version``) first merges its writers' entries
into a pending version and calls it on ``finish``. Deleting a version removes the chunks no
other version uses in the same call (``Chunks.release``, ``Chunks.sweep``).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from ..core.errors import Conflict, InvalidArgument
from ..core.manifest import Manifest
from ..core.names import (
    LATEST,
    ArtifactPath,
    check_alias,
    check_identifier,
    check_settable_alias,
)
from ..core.records import CollectionInfo, CommitResult, VersionInfo
from .access import Principal
from .chunks import Chunks
from .db import Database
from .fields import check_list, check_metadata, check_seconds, check_text, merged_metadata
from .lookup import (
    COMMITTED,
    DELETED,
    PENDING,
    artifact_row,
    check_tags,
    insert_missing,
    insert_row,
    latest_number,
    now,
    require_artifact,
    run_pk,
    select_versions,
    version_info,
    version_infos,
    version_row,
)
from .projects import Projects
from .schema import aliases, artifacts, manifests, tags, version_chunks, versions

VERSION_FIELDS = ("description", "metadata", "aliases", "tags", "expires_at")
MAX_DISTRIBUTED_ID = 256


@dataclass(frozen=True)
class VersionFields:
    """What a commit brings besides its manifest, checked (the server never trusts the
    client's checks)."""

    type: str
    description: str | None
    metadata: dict[str, Any]
    aliases: list[str]
    tags: list[str]
    ttl: float | None

    @classmethod
    def check(
        cls,
        type: str,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        aliases: Iterable[str] = (),
        tags: Iterable[str] = (),
        ttl: float | None = None,
    ) -> VersionFields:
        return cls(
            check_identifier("type", type),
            check_text("description", description),
            check_metadata(metadata or {}),
            sorted(set(check_list("aliases", aliases, check_settable_alias_or_latest)) - {LATEST}),
            check_tags(check_list("tags", tags, str)),
            check_seconds("ttl", ttl, positive=True),
        )


def check_settable_alias_or_latest(name: object) -> str:
    """An alias a commit may ask for (``latest`` is accepted and means nothing more)."""
    return LATEST if name == LATEST else check_settable_alias(name)


class Versions:
    def __init__(self, db: Database, projects: Projects, chunks: Chunks):
        self.db = db
        self.projects = projects
        self.chunks = chunks

    # -- reading --------------------------------------------------------------------------

    def list_collections(
        self, caller: Principal, entity: str, project: str, type: str | None = None
    ) -> list[CollectionInfo]:
        with self.db.read() as conn:
            proj = self.projects.readable(conn, caller, entity, project)
            committed = sa.and_(
                versions.c.artifact_id == artifacts.c.id, versions.c.state == COMMITTED
            )
            query = (
                sa.select(
                    artifacts,
                    sa.select(sa.func.count()).where(committed).scalar_subquery().label("n"),
                    sa.select(sa.func.max(versions.c.number))
                    .where(committed)
                    .scalar_subquery()
                    .label("latest"),
                )
                .where(artifacts.c.project_id == proj.id)
                .order_by(artifacts.c.name)
            )
            if type is not None:
                query = query.where(artifacts.c.type == type)
            return [
                CollectionInfo(
                    entity, project, r.name, r.type, r.description, r.created_at, r.n, r.latest
                )
                for r in conn.execute(query)
            ]

    def list_versions(
        self, caller: Principal, path: ArtifactPath, include_deleted: bool = False
    ) -> list[VersionInfo]:
        with self.db.read() as conn:
            proj = self.projects.readable(conn, caller, path.entity, path.project)
            art = require_artifact(conn, proj, path.artifact)
            states = (COMMITTED, DELETED) if include_deleted else (COMMITTED,)
            rows = conn.execute(
                select_versions()
                .where(versions.c.artifact_id == art.id, versions.c.state.in_(states))
                .order_by(versions.c.number)
            ).all()
            return version_infos(conn, rows)

    def resolve(self, caller: Principal, path: ArtifactPath) -> VersionInfo:
        with self.db.read() as conn:
            return version_info(conn, self.version(conn, caller, path).id)

    def version(self, conn: Connection, caller: Principal, path: ArtifactPath) -> Row:
        """The committed version ``path`` names, in a project the caller may read."""
        proj = self.projects.readable(conn, caller, path.entity, path.project)
        return version_row(conn, require_artifact(conn, proj, path.artifact), path)

    def manifest(self, caller: Principal, path: ArtifactPath) -> tuple[VersionInfo, Manifest]:
        with self.db.read() as conn:
            row = self.version(conn, caller, path)
            return version_info(conn, row.id), read_manifest(conn, row.id)

    # -- committing -----------------------------------------------------------------------

    def commit(
        self,
        caller: Principal,
        path: ArtifactPath,
        type: str,
        manifest: Manifest,
        *,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        aliases: Iterable[str] = (),
        tags: Iterable[str] = (),
        run: str | None = None,
        base: int | None = None,
        ttl: float | None = None,
    ) -> CommitResult:
        """Commit a new version; one with the latest version's digest creates nothing new.

        ``ttl`` (seconds) makes the version expire: gc deletes it afterwards unless aliased.
        ``base`` is the version a draft or staging area started from ("moved on" if another
        version was committed since).
        """
        fields = VersionFields.check(type, description, metadata, aliases, tags, ttl)
        manifest.check()
        self.chunks.vouch(caller, path.entity, path.project, list(manifest.chunks()))
        with self.db.write() as conn:
            proj, art = self._target(conn, caller, path, fields)
            return self._commit(conn, caller, proj, art, manifest, fields, run, base)

    def upsert_version(
        self,
        caller: Principal,
        path: ArtifactPath,
        type: str,
        manifest: Manifest,
        *,
        distributed_id: str,
        finish: bool = False,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        aliases: Iterable[str] = (),
        tags: Iterable[str] = (),
        run: str | None = None,
        base: int | None = None,
        ttl: float | None = None,
    ) -> CommitResult:
        """Add entries to the pending version of ``distributed_id`` (several writers build
        one version); ``finish`` commits it, and later upserts with that id are refused.

        The same path with other content is refused (to the second writer), never
        overwritten. Merges run in write transactions serialized by the database (and the
        artifact row lock on PostgreSQL), so concurrent writers cannot lose entries.
        """
        if not isinstance(distributed_id, str) or not 0 < len(distributed_id) <= MAX_DISTRIBUTED_ID:
            raise InvalidArgument(
                f"distributed_id must be a string of 1 to {MAX_DISTRIBUTED_ID} characters"
            )
        fields = VersionFields.check(type, description, metadata, aliases, tags, ttl)
        manifest.check()
        self.chunks.vouch(caller, path.entity, path.project, list(manifest.chunks()))
        with self.db.write() as conn:
            proj, art = self._target(conn, caller, path, fields)
            same_id = sa.and_(
                versions.c.artifact_id == art.id, versions.c.distributed_id == distributed_id
            )
            if conn.execute(
                sa.select(versions.c.id).where(same_id, versions.c.state != PENDING)
            ).first():
                raise Conflict(
                    f"distributed version {distributed_id!r} of {path.collection} was already "
                    "finished; further upserts are refused"
                )
            pending = conn.execute(
                sa.select(versions).where(same_id, versions.c.state == PENDING)
            ).first()
            merged = _merged(
                read_manifest(conn, pending.id) if pending else Manifest(), manifest, distributed_id
            )
            if pending is not None:
                fields = _with_pending(fields, pending)
            if finish:
                pending_id = None if pending is None else pending.id
                return self._commit(conn, caller, proj, art, merged, fields, run, base, pending_id)
            chunk_ids = self.chunks.use(conn, caller, manifest.chunks())
            values = {
                "description": fields.description,
                "metadata": fields.metadata,
                "run_pk": run_pk(conn, run, proj) if run else None,
                **content_columns(merged),
            }
            if pending is None:
                version_id = insert_row(
                    conn,
                    versions,
                    artifact_id=art.id,
                    state=PENDING,
                    created_at=now(),
                    distributed_id=distributed_id,
                    **values,
                )
            else:
                version_id = pending.id
                values["run_pk"] = values["run_pk"] or pending.run_pk
                conn.execute(versions.update().where(versions.c.id == version_id).values(**values))
            write_manifest(conn, version_id, merged, chunk_ids)
            return CommitResult(version_info(conn, version_id), created=False)

    def _target(
        self, conn: Connection, caller: Principal, path: ArtifactPath, fields: VersionFields
    ) -> tuple[Row, Row]:
        """The project and the (locked) artifact a commit writes into, made on first use."""
        proj = self.projects.writable(conn, caller, path.entity, path.project)
        assert proj is not None
        name = check_identifier("artifact", path.artifact)
        art = artifact_row(conn, proj.id, name, lock=True)
        if art is None:
            new = {"project_id": proj.id, "name": name, "type": fields.type}
            insert_missing(
                conn, artifacts, [{**new, "description": fields.description, "created_at": now()}]
            )
            art = artifact_row(conn, proj.id, name, lock=True)
            assert art is not None
        if art.type != fields.type:
            raise Conflict(f"artifact {path.collection} has type {art.type!r}, not {fields.type!r}")
        return proj, art

    def _commit(
        self,
        conn: Connection,
        caller: Principal,
        proj: Row,
        art: Row,
        manifest: Manifest,
        fields: VersionFields,
        run: str | None,
        base: int | None,
        pending_id: int | None = None,
    ) -> CommitResult:
        """The one commit routine: a new committed version holding ``manifest`` (the pending
        version ``pending_id`` becomes it), unless the latest version has the same digest,
        which then only gets the aliases and tags."""
        latest = latest_number(conn, art.id)
        moved_on = base is not None and latest is not None and latest != base
        if latest is not None:
            row = conn.execute(
                sa.select(versions).where(
                    versions.c.artifact_id == art.id, versions.c.number == latest
                )
            ).one()
            if row.digest == manifest.digest:
                if pending_id is not None:  # the same chunks: nothing to release
                    delete_version_rows(conn, pending_id)
                self._set_labels(conn, art, row.id, fields.aliases, fields.tags, keep=True)
                return CommitResult(version_info(conn, row.id), created=False, moved_on=moved_on)
        chunk_ids = self.chunks.use(conn, caller, manifest.chunks())
        created = now()
        values = {
            "number": next_number(conn, art.id),
            "state": COMMITTED,
            "description": fields.description,
            "metadata": fields.metadata,
            "created_at": created,
            "base_number": base,
            "expires_at": created + fields.ttl if fields.ttl else None,
            **content_columns(manifest),
        }
        if run:
            values["run_pk"] = run_pk(conn, run, proj)
        if pending_id is None:
            version_id = insert_row(conn, versions, artifact_id=art.id, **values)
        else:
            version_id = pending_id
            conn.execute(versions.update().where(versions.c.id == version_id).values(**values))
        write_manifest(conn, version_id, manifest, chunk_ids)
        self._set_labels(conn, art, version_id, fields.aliases, fields.tags, keep=True)
        return CommitResult(version_info(conn, version_id), created=True, moved_on=moved_on)

    # -- editing --------------------------------------------------------------------------

    def update_version(
        self, caller: Principal, path: ArtifactPath, changes: Mapping[str, Any]
    ) -> VersionInfo:
        """Edit description, metadata, aliases (the full list), tags or expiry of a version."""
        if not isinstance(changes, Mapping):
            raise InvalidArgument("changes must be an object")
        unknown = set(changes) - set(VERSION_FIELDS)
        if unknown:
            raise InvalidArgument(f"cannot change {', '.join(sorted(unknown))} of a version")
        values: dict[str, Any] = {}
        if "description" in changes:
            values["description"] = check_text("description", changes["description"])
        if "metadata" in changes:
            values["metadata"] = check_metadata(changes["metadata"])
        if "expires_at" in changes:
            values["expires_at"] = check_seconds("expires_at", changes["expires_at"])
        alias_names = tag_names = None
        if changes.get("aliases") is not None:
            alias_names = sorted(set(check_list("aliases", changes["aliases"], check_alias)))
        if changes.get("tags") is not None:
            tag_names = check_tags(check_list("tags", changes["tags"], str))
        with self.db.write() as conn:
            proj = self.projects.modifiable(conn, caller, path.entity, path.project)
            art = require_artifact(conn, proj, path.artifact, lock=True)
            row = version_row(conn, art, path)
            if values:
                conn.execute(versions.update().where(versions.c.id == row.id).values(**values))
            self._set_labels(conn, art, row.id, alias_names, tag_names, keep=False)
            return version_info(conn, row.id)

    def _set_labels(
        self,
        conn: Connection,
        art: Row,
        version_id: int,
        alias_names: list[str] | None,
        tag_names: list[str] | None,
        keep: bool,
    ) -> None:
        """Point aliases at a version (moving them) and set its tags.

        With ``keep`` the names are added; otherwise they replace the version's own.
        """
        if alias_names is not None:
            wanted = set(alias_names) - {LATEST}
            for name in wanted:
                check_settable_alias(name)
            if not keep:
                conn.execute(
                    aliases.delete().where(
                        aliases.c.version_id == version_id, aliases.c.name.not_in(wanted)
                    )
                )
            for name in sorted(wanted):
                conn.execute(
                    aliases.delete().where(aliases.c.artifact_id == art.id, aliases.c.name == name)
                )
                conn.execute(
                    aliases.insert().values(artifact_id=art.id, name=name, version_id=version_id)
                )
        if tag_names is not None:
            if not keep:
                conn.execute(tags.delete().where(tags.c.version_id == version_id))
            existing = set(
                conn.execute(sa.select(tags.c.name).where(tags.c.version_id == version_id))
                .scalars()
                .all()
            )
            new = [{"version_id": version_id, "name": t} for t in tag_names if t not in existing]
            if new:
                conn.execute(tags.insert(), new)

    def delete_version(
        self, caller: Principal, path: ArtifactPath, delete_aliases: bool = False
    ) -> VersionInfo:
        """Delete a version; refused while it has aliases (``latest`` included) unless asked.
        The chunks no other version uses go in the same call: blobs, rows and claims."""
        with self.db.write() as conn:
            proj = self.projects.modifiable(conn, caller, path.entity, path.project)
            art = require_artifact(conn, proj, path.artifact, lock=True)
            row = version_row(conn, art, path)
            info = version_info(conn, row.id)
            if info.aliases and not delete_aliases:
                raise Conflict(
                    f"{info.path} has aliases {', '.join(info.aliases)}; "
                    "remove them first or pass delete_aliases"
                )
            used = delete_version_rows(conn, row.id)
            doomed = self.chunks.release(conn, used)
            info = version_info(conn, row.id)
        self.chunks.sweep(doomed)
        return info


def _merged(known: Manifest, added: Manifest, distributed_id: str) -> Manifest:
    """A pending version's entries with another writer's added; the same path with other
    content is a conflict."""
    for entry in added:
        found = known.get(entry.path)
        if found is not None and found.digest_line() != entry.digest_line():
            raise Conflict(
                f"{entry.path} was already added to {distributed_id!r} by another writer "
                "with different content; not overwritten"
            )
        known.add(entry)
    known.check_tree()
    return known


def _with_pending(fields: VersionFields, pending: Row) -> VersionFields:
    """A further upsert's fields on top of what the pending version holds already."""
    return VersionFields(
        fields.type,
        fields.description if fields.description is not None else pending.description,
        merged_metadata("metadata", pending.metadata, fields.metadata),
        fields.aliases,
        fields.tags,
        fields.ttl,
    )


def content_columns(manifest: Manifest) -> dict[str, Any]:
    return {"digest": manifest.digest, "size": manifest.size, "file_count": manifest.file_count}


def next_number(conn: Connection, artifact_id: int) -> int:
    """The next version number: numbers are never reused, deleted versions keep theirs."""
    highest = conn.execute(
        sa.select(sa.func.max(versions.c.number)).where(versions.c.artifact_id == artifact_id)
    ).scalar()
    return 0 if highest is None else highest + 1


def write_manifest(
    conn: Connection, version_id: int, manifest: Manifest, chunk_ids: Iterable[int]
) -> None:
    """Store (or replace) a version's manifest and record the chunks it uses."""
    body = zlib.compress(manifest.dumps(), 6)
    conn.execute(manifests.delete().where(manifests.c.version_id == version_id))
    conn.execute(manifests.insert().values(version_id=version_id, body=body))
    known = set(
        conn.execute(
            sa.select(version_chunks.c.chunk_id).where(version_chunks.c.version_id == version_id)
        ).scalars()
    )
    new = sorted(set(chunk_ids) - known)
    if new:
        conn.execute(
            version_chunks.insert(), [{"version_id": version_id, "chunk_id": c} for c in new]
        )


def read_manifest(conn: Connection, version_id: int) -> Manifest:
    body = conn.execute(
        sa.select(manifests.c.body).where(manifests.c.version_id == version_id)
    ).scalar_one()
    return Manifest.loads(zlib.decompress(body))


def delete_version_rows(conn: Connection, version_id: int) -> list[int]:
    """Mark a version deleted and drop what pins its chunks; returns the ids of those
    chunks (for ``Chunks.release``)."""
    used = list(
        conn.execute(
            sa.select(version_chunks.c.chunk_id).where(version_chunks.c.version_id == version_id)
        ).scalars()
    )
    conn.execute(aliases.delete().where(aliases.c.version_id == version_id))
    conn.execute(tags.delete().where(tags.c.version_id == version_id))
    conn.execute(manifests.delete().where(manifests.c.version_id == version_id))
    conn.execute(version_chunks.delete().where(version_chunks.c.version_id == version_id))
    conn.execute(versions.update().where(versions.c.id == version_id).values(state=DELETED))
    return used
