"""The Alembic scripts of the metadata schema (``env.py``, ``versions/``), loaded as the
package resource ``artfs.store:migrations`` by ``artfs.store.upgrades``; see docs/FORMAT.md,
"Schema versions"."""
