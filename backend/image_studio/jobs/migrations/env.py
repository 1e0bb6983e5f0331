"""Alembic environment for the studio's own tables.

Run only through :func:`image_studio.jobs.migrate.upgrade`, which passes a live connection in
``config.attributes["connection"]``. The version table is ``image_studio_alembic_version`` so
that a database shared with Open WebUI keeps both histories apart.
"""

from alembic import context

from image_studio.jobs.tables import VERSION_TABLE, Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
    include_name=lambda name, type_, parent: type_ != "table" or name.startswith("image_studio_"),
)
with context.begin_transaction():
    context.run_migrations()
