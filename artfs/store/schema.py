"""The metadata schema (SQLAlchemy Core). Every column's meaning is written next to it.

Changes to it ship as Alembic revisions in ``migrations/versions`` (docs/FORMAT.md, "Schema
versions"): a new revision moves ``SCHEMA_REVISION`` to its id.
"""

from __future__ import annotations

import sqlalchemy as sa

SCHEMA_REVISION = "0002"  # the Alembic head: the revision this metadata is
# ``meta.schema_version``, which artfs 0.1.0 checks (it refuses a store with a higher one): a
# revision that 0.1.0 must not open sets it higher, and so does this constant.
SCHEMA_VERSION = 2
metadata = sa.MetaData()

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),  # e.g. schema_version
)

entities = sa.Table(
    "entities",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("kind", sa.String(8), nullable=False),  # 'user' | 'team'
    sa.Column("is_admin", sa.Boolean, nullable=False, default=False),  # server admin (users)
    sa.Column("created_at", sa.Float, nullable=False),  # epoch seconds
)

memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column("team_id", sa.ForeignKey("entities.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("user_id", sa.ForeignKey("entities.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("role", sa.String(8), nullable=False),  # 'admin' | 'member'
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.ForeignKey("entities.id", ondelete="CASCADE"), nullable=False),
    sa.Column("key_id", sa.String(32), nullable=False, unique=True),  # public prefix of the key
    sa.Column("hash", sa.String(128), nullable=False),  # hash of the secret, never the secret
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float),  # set when revoked; the row stays for audit
)

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("entity_id", sa.ForeignKey("entities.id"), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("visibility", sa.String(8), nullable=False),  # 'private' | 'public' | 'open'
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("entity_id", "name"),
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("type", sa.String(128), nullable=False),  # 'dataset', 'model', 'code', any name
    sa.Column("description", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("project_id", "name"),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("run_id", sa.String(128), nullable=False),  # the user-visible id
    sa.Column("name", sa.String(256)),
    sa.Column("group_name", sa.String(256)),
    sa.Column("job_type", sa.String(128)),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("summary", sa.JSON, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # 'running' | 'finished' | 'failed'
    sa.Column("sweep_id", sa.String(128)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.UniqueConstraint("project_id", "run_id"),
)

sweeps = sa.Table(
    "sweeps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("sweep_id", sa.String(128), nullable=False),  # the user-visible id
    sa.Column("config", sa.JSON, nullable=False),  # method, metric, parameters (W&B form)
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("project_id", "sweep_id"),
)

versions = sa.Table(
    "versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("artifact_id", sa.ForeignKey("artifacts.id"), nullable=False),
    sa.Column("number", sa.Integer),  # N of vN; NULL while pending; never reused
    sa.Column("state", sa.String(16), nullable=False),  # 'pending' | 'committed' | 'deleted'
    sa.Column("digest", sa.String(71), nullable=False),  # version digest (sorted path:digest)
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("file_count", sa.Integer, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("run_pk", sa.ForeignKey("runs.id")),  # the run that logged it
    sa.Column("expires_at", sa.Float),  # TTL: collected by gc after this time unless aliased
    sa.Column("distributed_id", sa.String(256)),  # pending versions built by several writers
    sa.Column("base_number", sa.Integer),  # the version a draft or staging area started from
    sa.UniqueConstraint("artifact_id", "number"),
)

manifests = sa.Table(
    "manifests",
    metadata,
    sa.Column("version_id", sa.ForeignKey("versions.id"), primary_key=True),
    sa.Column("body", sa.LargeBinary, nullable=False),  # zlib-compressed manifest JSON
)

aliases = sa.Table(
    "aliases",
    metadata,
    sa.Column("artifact_id", sa.ForeignKey("artifacts.id"), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),  # unique within the artifact
    sa.Column("version_id", sa.ForeignKey("versions.id"), nullable=False),
)

tags = sa.Table(
    "tags",
    metadata,
    sa.Column("version_id", sa.ForeignKey("versions.id"), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
)

chunks = sa.Table(
    "chunks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("digest", sa.String(71), nullable=False, unique=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    # 'uploading': row claimed, bytes being written; 'live': stored and verified;
    # 'deleting': chosen by gc, blob being removed (uploads of it wait).
    sa.Column("state", sa.String(16), nullable=False),
    # Last time a commit or a "do you have it?" answer relied on this chunk. GC spares chunks
    # touched within its grace period, which fences it against commits in flight.
    sa.Column("touched_at", sa.Float, nullable=False),
)

chunk_claims = sa.Table(
    "chunk_claims",
    metadata,
    # Who uploaded a chunk that no version may use yet: lets that caller resume and commit.
    sa.Column("chunk_id", sa.ForeignKey("chunks.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("entity_id", sa.ForeignKey("entities.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("claimed_at", sa.Float, nullable=False),
)

version_chunks = sa.Table(
    "version_chunks",
    metadata,
    # Which chunks a live (pending or committed) version uses; rows go when it is deleted.
    sa.Column("version_id", sa.ForeignKey("versions.id"), primary_key=True),
    sa.Column("chunk_id", sa.ForeignKey("chunks.id"), primary_key=True, index=True),
)

uses = sa.Table(
    "uses",
    metadata,
    sa.Column("run_pk", sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("version_id", sa.ForeignKey("versions.id"), primary_key=True),
    sa.Column("used_at", sa.Float, nullable=False),
)

sa.Index("versions_by_artifact_state", versions.c.artifact_id, versions.c.state)
sa.Index("aliases_by_version", aliases.c.version_id)
sa.Index("uses_by_version", uses.c.version_id)
sa.Index("versions_by_run", versions.c.run_pk)
