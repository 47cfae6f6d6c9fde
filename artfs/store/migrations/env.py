"""Alembic's entry point: runs the revisions on the connection ``artfs.store.upgrades`` opened
(inside its transaction, which holds the schema lock). SQLite gets batch mode ("move and
copy"), since it cannot alter most of a table in place."""

from alembic import context

from artfs.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
