"""Jobs, assets, settings and workflows tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

from image_studio.jobs.tables import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_studio_jobs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(200)),
        sa.Column("request", sa.JSON, nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(100)),
        sa.Column("backend", sa.String(300)),
        sa.Column("provider_job_id", sa.String(300)),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("attempts", sa.JSON, nullable=False),
        sa.Column("asset_ids", sa.JSON, nullable=False),
        sa.Column("error", sa.JSON),
        sa.Column("idempotency_key", sa.String(200)),
        sa.Column("batch_id", sa.String(40)),
        sa.Column("timeout", sa.Float),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("started_at", UTCDateTime),
        sa.Column("finished_at", UTCDateTime),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_image_studio_jobs_seq", "image_studio_jobs", ["seq"])
    op.create_index("ix_image_studio_jobs_status", "image_studio_jobs", ["status"])
    op.create_index("ix_image_studio_jobs_owner", "image_studio_jobs", ["owner"])
    op.create_index("ix_image_studio_jobs_batch_id", "image_studio_jobs", ["batch_id"])
    op.create_index("ix_image_studio_jobs_created_at", "image_studio_jobs", ["created_at"])
    op.create_index("image_studio_jobs_idem", "image_studio_jobs", ["owner", "idempotency_key"], unique=True)

    op.create_table(
        "image_studio_assets",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("job_id", sa.String(40)),
        sa.Column("owner", sa.String(200)),
        sa.Column("provider", sa.String(100)),
        sa.Column("backend", sa.String(300)),
        sa.Column("model", sa.String(300)),
        sa.Column("media", sa.String(16), nullable=False),
        sa.Column("mime_type", sa.String(100), nullable=False),
        sa.Column("width", sa.Integer),
        sa.Column("height", sa.Integer),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("thumbnail_path", sa.String(500)),
        sa.Column("prompt", sa.Text),
        sa.Column("negative_prompt", sa.Text),
        sa.Column("seed", sa.String(24)),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    for col in ("job_id", "owner", "provider", "model", "media", "sha256"):
        op.create_index(f"ix_image_studio_assets_{col}", "image_studio_assets", [col])
    op.create_index("image_studio_assets_created", "image_studio_assets", ["created_at", "id"])

    op.create_table(
        "image_studio_settings",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.JSON, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )

    op.create_table(
        "image_studio_workflows",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("owner", sa.String(200)),
        sa.Column("description", sa.Text),
        sa.Column("api", sa.JSON, nullable=False),
        sa.Column("ui", sa.JSON),
        sa.Column("slots", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_image_studio_workflows_owner", "image_studio_workflows", ["owner"])


def downgrade() -> None:
    op.drop_table("image_studio_workflows")
    op.drop_table("image_studio_settings")
    op.drop_table("image_studio_assets")
    op.drop_table("image_studio_jobs")
