"""Version operations of the service: commit, resolve, list, edit, delete."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from ..core.errors import Conflict, InvalidManifest, InvalidName, MissingChunks, NotFound
from ..core.manifest import Manifest
from ..core.names import LATEST, ArtifactPath, check_alias, check_identifier, check_settable_alias
from ..core.records import CollectionInfo, CommitResult, ProjectInfo, VersionInfo
from .access import (
    Principal,
    can_create_in,
    can_read,
    check_visibility,
    require_read,
    require_write,
)
from .chunks import LIVE, touch_chunks, visible_chunk_ids
from .db import Database
from .fields import check_list, check_metadata, check_seconds, check_text
from .lookup import (
    COMMITTED,
    DELETED,
    artifact_row,
    batched,
    check_tags,
    entity_row,
    insert_missing,
    insert_row,
    latest_number,
    now,
    project_row,
    require_artifact,
    require_project,
    select_versions,
    version_info,
    version_infos,
    version_row,
)
from .schema import (
    aliases,
    artifacts,
    chunks,
    entities,
    manifests,
    projects,
    runs,
    tags,
    version_chunks,
    versions,
)

VERSION_FIELDS = ("description", "metadata", "aliases", "tags", "expires_at")


class VersionOps:
    db: Database
    anonymous_read: bool

    # -- projects -------------------------------------------------------------------------

    def _writable_project(self, conn: Connection, caller: Principal, entity: str, name: str) -> Row:
        """The project to write into; a member's first write creates it, private."""
        project = project_row(conn, entity, name)
        if project is not None:
            require_write(conn, caller, project, self.anonymous_read)
            return project
        ent = entity_row(conn, entity)
        if not caller.is_admin and (ent is None or not can_create_in(conn, caller, ent.id)):
            # the same answer as for someone else's private project: nothing is revealed
            raise NotFound(f"project {entity}/{name} not found")
        if ent is None:
            insert_missing(conn, entities, [{"name": entity, "kind": "team", "created_at": now()}])
            ent = entity_row(conn, entity)
        return self.create_project_row(conn, ent.id, name, "private")  # type: ignore[union-attr]

    def create_project_row(self, conn: Connection, entity_id: int, name: str, vis: str) -> Row:
        check_identifier("project", name)
        row = {"entity_id": entity_id, "name": name, "visibility": check_visibility(vis)}
        insert_missing(conn, projects, [{**row, "created_at": now()}])
        ent = conn.execute(sa.select(entities.c.name).where(entities.c.id == entity_id)).scalar()
        return project_row(conn, ent, name)  # type: ignore[arg-type,return-value]

    def list_projects(self, caller: Principal, entity: str | None = None) -> list[ProjectInfo]:
        with self.db.read() as conn:
            query = sa.select(projects, entities.c.name.label("entity_name")).join(
                entities, entities.c.id == projects.c.entity_id
            )
            if entity is not None:
                query = query.where(entities.c.name == entity)
            rows = conn.execute(query.order_by(entities.c.name, projects.c.name)).all()
            return [
                ProjectInfo(r.entity_name, r.name, r.visibility, r.created_at)
                for r in rows
                if can_read(conn, caller, r, self.anonymous_read)
            ]

    def _readable(self, conn: Connection, caller: Principal, entity: str, project: str) -> Row:
        row = require_project(conn, entity, project)
        require_read(conn, caller, row, self.anonymous_read)
        return row

    def _modifiable(self, conn: Connection, caller: Principal, entity: str, project: str) -> Row:
        """An existing project the caller may change (unlike ``_writable_project``, which
        creates it on a first write)."""
        row = require_project(conn, entity, project)
        require_write(conn, caller, row, self.anonymous_read)
        return row

    # -- reading --------------------------------------------------------------------------

    def list_collections(
        self, caller: Principal, entity: str, project: str, type: str | None = None
    ) -> list[CollectionInfo]:
        with self.db.read() as conn:
            proj = self._readable(conn, caller, entity, project)
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
            proj = self._readable(conn, caller, path.entity, path.project)
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
            return version_info(conn, self._version(conn, caller, path).id)

    def _version(self, conn: Connection, caller: Principal, path: ArtifactPath) -> Row:
        proj = self._readable(conn, caller, path.entity, path.project)
        return version_row(conn, require_artifact(conn, proj, path.artifact), path)

    def manifest(self, caller: Principal, path: ArtifactPath) -> tuple[VersionInfo, Manifest]:
        with self.db.read() as conn:
            row = self._version(conn, caller, path)
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
        """
        labels = checked_labels(manifest, type, aliases, tags)
        meta = check_metadata(metadata or {})
        description = check_text("description", description)
        ttl = check_seconds("ttl", ttl, positive=True)
        digest = manifest.digest
        with self.db.write() as conn:
            proj = self._writable_project(conn, caller, path.entity, path.project)
            art = self._artifact_for_commit(conn, proj, path.artifact, type, description)
            latest = latest_number(conn, art.id)
            moved_on = base is not None and latest is not None and latest != base
            if latest is not None:
                row = version_row(conn, art, path.with_alias(f"v{latest}"))
                if row.digest == digest:
                    self._set_labels(conn, art, row.id, *labels, keep=True)
                    return CommitResult(version_info(conn, row.id), created=False)
            chunk_ids = self._use_chunks(conn, caller, manifest.chunks())
            created = now()
            version_id = insert_row(
                conn,
                versions,
                artifact_id=art.id,
                number=next_number(conn, art.id),
                state=COMMITTED,
                description=description,
                metadata=meta,
                created_at=created,
                run_pk=self._run_pk(conn, caller, run, proj) if run else None,
                base_number=base,
                expires_at=created + ttl if ttl else None,
                **content_columns(manifest),
            )
            write_manifest(conn, version_id, manifest, chunk_ids)
            self._set_labels(conn, art, version_id, *labels, keep=True)
            return CommitResult(version_info(conn, version_id), created=True, moved_on=moved_on)

    def _artifact_for_commit(
        self, conn: Connection, proj: Row, name: str, type: str, description: str | None
    ) -> Row:
        check_identifier("artifact", name)
        art = artifact_row(conn, proj.id, name, lock=True)
        if art is None:
            new = {"project_id": proj.id, "name": name, "type": type, "description": description}
            insert_missing(conn, artifacts, [{**new, "created_at": now()}])
            art = artifact_row(conn, proj.id, name, lock=True)
        assert art is not None
        if art.type != type:
            raise Conflict(
                f"artifact {proj.entity_name}/{proj.name}/{name} has type {art.type!r}, "
                f"not {type!r}"
            )
        return art

    def _use_chunks(self, conn: Connection, caller: Principal, needed: dict[str, int]) -> set[int]:
        """Check every chunk is stored, the right size and usable by the caller; touch them."""
        found: dict[str, Row] = {}
        for part in batched(sorted(needed)):
            # FOR SHARE: gc cannot mark these rows until this commit is done (PostgreSQL)
            rows = conn.execute(
                sa.select(chunks.c.id, chunks.c.digest, chunks.c.size)
                .where(chunks.c.digest.in_(part), chunks.c.state == LIVE)
                .with_for_update(read=True)
            )
            found.update((r.digest, r) for r in rows)
        visible = visible_chunk_ids(conn, caller, [r.id for r in found.values()], False)
        missing = [d for d in sorted(needed) if d not in found or found[d].id not in visible]
        if missing:
            raise MissingChunks(missing)
        for digest, size in needed.items():
            if found[digest].size != size:
                raise InvalidManifest(
                    f"chunk {digest} is {found[digest].size} bytes, the manifest says {size}"
                )
        ids = {r.id for r in found.values()}
        touch_chunks(conn, sorted(ids))
        return ids

    def _run_pk(self, conn: Connection, caller: Principal, run: str, project: Row) -> int:
        """The logging run, which must belong to the version's project: a version's readers
        see its run's path, so a run in a more private project must not log into it."""
        entity, project_name, run_id = split_run_path(run)
        if (entity, project_name) != (project.entity_name, project.name):
            raise InvalidName(
                f"run {run} belongs to another project than {project.entity_name}/{project.name}"
            )
        pk = conn.execute(
            sa.select(runs.c.id).where(runs.c.project_id == project.id, runs.c.run_id == run_id)
        ).scalar()
        if pk is None:
            raise NotFound(f"run {run} not found")
        return pk

    # -- editing --------------------------------------------------------------------------

    def update_version(
        self, caller: Principal, path: ArtifactPath, changes: Mapping[str, Any]
    ) -> VersionInfo:
        """Edit description, metadata, aliases (the full list), tags or expiry of a version."""
        unknown = set(changes) - set(VERSION_FIELDS)
        if unknown:
            raise InvalidManifest(f"cannot change {', '.join(sorted(unknown))} of a version")
        with self.db.write() as conn:
            proj = self._modifiable(conn, caller, path.entity, path.project)
            art = require_artifact(conn, proj, path.artifact, lock=True)
            row = version_row(conn, art, path)
            values: dict[str, Any] = {}
            if "description" in changes:
                values["description"] = check_text("description", changes["description"])
            if "metadata" in changes:
                values["metadata"] = check_metadata(changes["metadata"])
            if "expires_at" in changes:
                values["expires_at"] = check_seconds("expires_at", changes["expires_at"])
            if values:
                conn.execute(versions.update().where(versions.c.id == row.id).values(**values))
            alias_names = changes.get("aliases")
            tag_names = changes.get("tags")
            self._set_labels(
                conn,
                art,
                row.id,
                None
                if alias_names is None
                else sorted(set(check_list("aliases", alias_names, check_alias))),
                None if tag_names is None else check_tags(check_list("tags", tag_names, str)),
                keep=False,
            )
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
        """Delete a version; refused while it has aliases (``latest`` included) unless asked."""
        with self.db.write() as conn:
            proj = self._modifiable(conn, caller, path.entity, path.project)
            art = require_artifact(conn, proj, path.artifact, lock=True)
            row = version_row(conn, art, path)
            info = version_info(conn, row.id)
            if info.aliases and not delete_aliases:
                raise Conflict(
                    f"{info.path} has aliases {', '.join(info.aliases)}; "
                    "remove them first or pass delete_aliases"
                )
            delete_version_rows(conn, row.id)
            return version_info(conn, row.id)


def checked_labels(
    manifest: Manifest, type: str, aliases: Iterable[str], tags: Iterable[str]
) -> tuple[list[str], list[str]]:
    """Validate what a commit brings (the server never trusts the client's checks);
    returns the alias and tag names to set."""
    check_identifier("type", type)
    for entry in manifest:
        entry.check()
    manifest.check_tree()
    alias_names = set(check_list("aliases", aliases, check_alias)) - {LATEST}
    return sorted(alias_names), check_tags(check_list("tags", tags, str))


def content_columns(manifest: Manifest) -> dict[str, Any]:
    return {"digest": manifest.digest, "size": manifest.size, "file_count": len(manifest)}


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


def delete_version_rows(conn: Connection, version_id: int) -> None:
    """Mark a version deleted and drop what pins its chunks. Its chunks lose their grace
    period, so the next gc removes those no other version uses (a commit in flight that
    relied on one gets "missing chunks" and sends it again)."""
    used = sa.select(version_chunks.c.chunk_id).where(version_chunks.c.version_id == version_id)
    conn.execute(chunks.update().where(chunks.c.id.in_(used)).values(touched_at=0.0))
    conn.execute(aliases.delete().where(aliases.c.version_id == version_id))
    conn.execute(tags.delete().where(tags.c.version_id == version_id))
    conn.execute(manifests.delete().where(manifests.c.version_id == version_id))
    conn.execute(version_chunks.delete().where(version_chunks.c.version_id == version_id))
    conn.execute(versions.update().where(versions.c.id == version_id).values(state=DELETED))


def split_run_path(run: str) -> tuple[str, str, str]:
    parts = run.split("/")
    if len(parts) != 3:
        raise NotFound(f"invalid run path {run!r}: expected entity/project/run_id")
    entity, project, run_id = parts
    return (
        check_identifier("entity", entity),
        check_identifier("project", project),
        check_identifier("run id", run_id),
    )
