"""SQLAlchemy table definitions. Every table is prefixed ``image_studio_`` so that the studio
can share Open WebUI's PostgreSQL database without touching its tables; migrations live in
``jobs/migrations`` with their own version table ``image_studio_alembic_version``.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, Index, Integer, String, Text, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

PREFIX = "image_studio_"
VERSION_TABLE = "image_studio_alembic_version"


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every database (SQLite drops the zone on its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:  # noqa: ANN001
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:  # noqa: ANN001
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    pass


class JobRow(Base):
    """One job. ``request`` is the GenerationRequest as JSON (init image and mask included,
    base64); ``attempts``, ``asset_ids`` and ``error`` are JSON; ``progress`` 0..1."""

    __tablename__ = PREFIX + "jobs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    owner: Mapped[str | None] = mapped_column(String(200), index=True)
    request: Mapped[dict] = mapped_column(JSON)
    request_hash: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str | None] = mapped_column(String(100))
    backend: Mapped[str | None] = mapped_column(String(300))
    provider_job_id: Mapped[str | None] = mapped_column(String(300))
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    attempts: Mapped[list] = mapped_column(JSON, default=list)
    asset_ids: Mapped[list] = mapped_column(JSON, default=list)
    error: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    batch_id: Mapped[str | None] = mapped_column(String(40), index=True)
    timeout: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    prompt_info: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    """What was done to the prompt before it ran (original, optimized, seconds, model, warning)."""

    __table_args__ = (Index(PREFIX + "jobs_idem", "owner", "idempotency_key", unique=True),)


class AssetRow(Base):
    """One stored output file; ``path`` relative to the asset store's root."""

    __tablename__ = PREFIX + "assets"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    job_id: Mapped[str | None] = mapped_column(String(40), index=True)
    owner: Mapped[str | None] = mapped_column(String(200), index=True)
    provider: Mapped[str | None] = mapped_column(String(100), index=True)
    backend: Mapped[str | None] = mapped_column(String(300))
    model: Mapped[str | None] = mapped_column(String(300), index=True)
    media: Mapped[str] = mapped_column(String(16), index=True)
    mime_type: Mapped[str] = mapped_column(String(100))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    path: Mapped[str] = mapped_column(String(500))
    thumbnail_path: Mapped[str | None] = mapped_column(String(500))
    batch_id: Mapped[str | None] = mapped_column(String(40), index=True)  # the job's batch (0003)
    prompt: Mapped[str | None] = mapped_column(Text)
    negative_prompt: Mapped[str | None] = mapped_column(Text)
    seed: Mapped[str | None] = mapped_column(String(24))  # up to 2**64-1: text, not BIGINT
    parameters: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index(PREFIX + "assets_created", "created_at", "id"),)


class SettingRow(Base):
    """Key/value settings: the admin-saved config (credentials encrypted), the secret key's
    fingerprint."""

    __tablename__ = PREFIX + "settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WorkflowRow(Base):
    """A saved ComfyUI workflow template: API-format graph, optional UI-format graph (for the
    editor), and its parameter slots (name -> node inputs, with title, default, min, max)."""

    __tablename__ = PREFIX + "workflows"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    owner: Mapped[str | None] = mapped_column(String(200), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    api: Mapped[dict] = mapped_column(JSON)
    ui: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    slots: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TemplateRow(Base):
    """A named prompt template or style preset: ``prompt`` and ``negative_prompt`` with
    ``{placeholders}``, their ``defaults`` (JSON ``{name: value}``); ``kind`` ``prompt`` or
    ``style``; a user's own, or ``shared`` with everyone by an admin. Names are unique per owner."""

    __tablename__ = PREFIX + "templates"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default="prompt")
    owner: Mapped[str | None] = mapped_column(String(200), index=True)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    prompt: Mapped[str] = mapped_column(Text, default="")
    negative_prompt: Mapped[str | None] = mapped_column(Text, nullable=True)
    defaults: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index(PREFIX + "templates_owner_name", "owner", "name", unique=True),)
