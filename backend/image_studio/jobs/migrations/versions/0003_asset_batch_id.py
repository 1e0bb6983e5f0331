"""Assets know their job's batch: ``image_studio_assets.batch_id`` (indexed), filled from the
jobs for assets made before this revision.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("image_studio_assets") as batch:
        batch.add_column(sa.Column("batch_id", sa.String(40)))
    op.create_index("ix_image_studio_assets_batch_id", "image_studio_assets", ["batch_id"])
    op.execute(
        "UPDATE image_studio_assets SET batch_id = (SELECT j.batch_id FROM image_studio_jobs j "
        "WHERE j.id = image_studio_assets.job_id) WHERE job_id IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_index("ix_image_studio_assets_batch_id", table_name="image_studio_assets")
    with op.batch_alter_table("image_studio_assets") as batch:
        batch.drop_column("batch_id")
