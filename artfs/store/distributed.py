"""Distributed writers: several processes add entries to one pending version, one finishes it.

Every ``upsert_version`` with the same ``distributed_id`` merges its entries into the pending
version of the artifact with that id; the same path with other content is refused (to the
second writer), never overwritten. ``finish=True`` gives the version its number; any later
upsert with that id is refused. The merges run in write transactions serialized by the
database (and the artifact row lock on PostgreSQL), so concurrent writers cannot lose entries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from ..core.errors import Conflict, InvalidName
from ..core.manifest import Manifest
from ..core.names import ArtifactPath
from ..core.records import CommitResult
from .access import Principal
from .fields import check_metadata
from .lookup import COMMITTED, PENDING, insert_row, latest_number, now, version_info, version_row
from .schema import versions
from .versions import (
    VersionOps,
    checked_labels,
    content_columns,
    delete_version_rows,
    next_number,
    read_manifest,
    write_manifest,
)


class DistributedOps(VersionOps):
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
    ) -> CommitResult:
        """Add entries to the pending version of ``distributed_id``; commit it if ``finish``."""
        if not isinstance(distributed_id, str) or not distributed_id or len(distributed_id) > 256:
            raise InvalidName("distributed_id must be a non-empty string")
        labels = checked_labels(manifest, type, aliases, tags)
        meta = check_metadata(metadata or {})
        with self.db.write() as conn:
            proj = self._writable_project(conn, caller, path.entity, path.project)
            art = self._artifact_for_commit(conn, proj, path.artifact, type, description)
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
            merged = read_manifest(conn, pending.id) if pending else Manifest()
            for entry in manifest:
                known = merged.get(entry.path)
                if known is not None and known.digest != entry.digest:
                    raise Conflict(
                        f"{entry.path} was already added to {distributed_id!r} by another "
                        "writer with different content; not overwritten"
                    )
                merged.add(entry)
            merged.check_tree()
            chunk_ids = self._use_chunks(conn, caller, manifest.chunks())
            run_pk = self._run_pk(conn, caller, run, proj) if run else None
            if pending is None:
                version_id = insert_row(
                    conn,
                    versions,
                    artifact_id=art.id,
                    state=PENDING,
                    description=description,
                    metadata=meta,
                    created_at=now(),
                    run_pk=run_pk,
                    distributed_id=distributed_id,
                    **content_columns(merged),
                )
            else:
                version_id = pending.id
                values: dict[str, Any] = {
                    "metadata": {**pending.metadata, **meta},
                    **content_columns(merged),
                }
                if description is not None:
                    values["description"] = description
                if finish and run_pk is not None:
                    values["run_pk"] = run_pk
                conn.execute(versions.update().where(versions.c.id == version_id).values(**values))
            write_manifest(conn, version_id, merged, chunk_ids)
            if not finish:
                return CommitResult(version_info(conn, version_id), created=False)
            latest = latest_number(conn, art.id)
            if latest is not None:
                same = version_row(conn, art, path.with_alias(f"v{latest}"))
                if same.digest == merged.digest:  # nothing new: the pending version goes
                    delete_version_rows(conn, version_id)
                    self._set_labels(conn, art, same.id, *labels, keep=True)
                    return CommitResult(version_info(conn, same.id), created=False)
            conn.execute(
                versions.update()
                .where(versions.c.id == version_id)
                .values(state=COMMITTED, number=next_number(conn, art.id), created_at=now())
            )
            self._set_labels(conn, art, version_id, *labels, keep=True)
            return CommitResult(version_info(conn, version_id), created=True)
