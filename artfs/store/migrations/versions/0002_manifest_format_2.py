"""Manifest format 2 (docs/FORMAT.md): every stored manifest rewritten, and each version's
digest and file count recomputed from it.

Format 1 gave a file of several chunks the BLAKE3 of its whole content, which no store can
check, and a reference the content digest it claimed. ``core.manifest`` reads format 1 and
converts it (derived file digests, reference identities); this step stores the result, so
that a version's digest compares with what clients compute now. artfs 0.1.0 cannot read
format 2, so ``meta.schema_version`` becomes 2, which it refuses in one line.
"""

import zlib

import sqlalchemy as sa
from alembic import op

from artfs.core.manifest import Manifest

revision = "0002"
down_revision = "0001"

manifests = sa.table(
    "manifests", sa.column("version_id", sa.Integer), sa.column("body", sa.LargeBinary)
)
versions = sa.table(
    "versions", sa.column("id", sa.Integer), sa.column("digest"), sa.column("file_count")
)
meta = sa.table("meta", sa.column("key"), sa.column("value"))


def upgrade() -> None:
    conn = op.get_bind()
    ids = conn.execute(sa.select(manifests.c.version_id)).scalars().all()
    for version_id in ids:  # one manifest in memory at a time
        where = manifests.c.version_id == version_id
        body = conn.execute(sa.select(manifests.c.body).where(where)).scalar_one()
        manifest = Manifest.loads(zlib.decompress(body))
        conn.execute(
            manifests.update().where(where).values(body=zlib.compress(manifest.dumps(), 6))
        )
        conn.execute(
            versions.update()
            .where(versions.c.id == version_id)
            .values(digest=manifest.digest, file_count=manifest.file_count)
        )
    conn.execute(meta.update().where(meta.c.key == "schema_version").values(value="2"))
