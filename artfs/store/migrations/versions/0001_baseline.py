"""Baseline: the schema of artfs 0.1.0 (``meta.schema_version`` 1), frozen here.

Stores made by 0.1.0 have no Alembic version: they are stamped with this revision, then
upgraded. Its ``upgrade`` builds the same schema from nothing (new stores use
``create_all`` and are stamped with the head instead; a test checks the two agree).
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
    )
    op.create_table(
        "entities",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("is_admin", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "memberships",
        sa.Column(
            "team_id",
            sa.Integer,
            sa.ForeignKey("entities.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("entities.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("role", sa.String(8), nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "user_id", sa.Integer, sa.ForeignKey("entities.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("key_id", sa.String(32), nullable=False, unique=True),
        sa.Column("hash", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("revoked_at", sa.Float),
    )
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("entity_id", sa.Integer, sa.ForeignKey("entities.id"), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("visibility", sa.String(8), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("entity_id", "name"),
    )
    op.create_table(
        "artifacts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("type", sa.String(128), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("project_id", "name"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("run_id", sa.String(128), nullable=False),
        sa.Column("name", sa.String(256)),
        sa.Column("group_name", sa.String(256)),
        sa.Column("job_type", sa.String(128)),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("sweep_id", sa.String(128)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("project_id", "run_id"),
    )
    op.create_table(
        "sweeps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("sweep_id", sa.String(128), nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("project_id", "sweep_id"),
    )
    op.create_table(
        "versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("artifact_id", sa.Integer, sa.ForeignKey("artifacts.id"), nullable=False),
        sa.Column("number", sa.Integer),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("digest", sa.String(71), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("file_count", sa.Integer, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.id")),
        sa.Column("expires_at", sa.Float),
        sa.Column("distributed_id", sa.String(256)),
        sa.Column("base_number", sa.Integer),
        sa.UniqueConstraint("artifact_id", "number"),
    )
    op.create_index("versions_by_artifact_state", "versions", ["artifact_id", "state"])
    op.create_index("versions_by_run", "versions", ["run_pk"])
    op.create_table(
        "manifests",
        sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), primary_key=True),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "aliases",
        sa.Column("artifact_id", sa.Integer, sa.ForeignKey("artifacts.id"), primary_key=True),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), nullable=False),
    )
    op.create_index("aliases_by_version", "aliases", ["version_id"])
    op.create_table(
        "tags",
        sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), primary_key=True),
        sa.Column("name", sa.String(128), primary_key=True),
    )
    op.create_table(
        "chunks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("digest", sa.String(71), nullable=False, unique=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("touched_at", sa.Float, nullable=False),
    )
    op.create_table(
        "chunk_claims",
        sa.Column(
            "chunk_id", sa.Integer, sa.ForeignKey("chunks.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column(
            "entity_id",
            sa.Integer,
            sa.ForeignKey("entities.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("claimed_at", sa.Float, nullable=False),
    )
    op.create_table(
        "version_chunks",
        sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), primary_key=True),
        sa.Column("chunk_id", sa.Integer, sa.ForeignKey("chunks.id"), primary_key=True),
    )
    op.create_index("ix_version_chunks_chunk_id", "version_chunks", ["chunk_id"])
    op.create_table(
        "uses",
        sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), primary_key=True),
        sa.Column("used_at", sa.Float, nullable=False),
    )
    op.create_index("uses_by_version", "uses", ["version_id"])
    op.execute(sa.text("INSERT INTO meta (key, value) VALUES ('schema_version', '1')"))
