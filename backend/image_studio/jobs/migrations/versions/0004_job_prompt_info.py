"""Jobs record what was done to their prompt before they ran (prompt optimization).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("image_studio_jobs") as batch:
        batch.add_column(sa.Column("prompt_info", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("image_studio_jobs") as batch:
        batch.drop_column("prompt_info")
