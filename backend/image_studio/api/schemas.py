"""Response and request models of the HTTP API (the OpenAPI contract).

Jobs are returned without their binary inputs (``request`` is the request summary); assets
with URLs relative to the API root for their content and thumbnail.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from ..types import Asset, Attempt, GenerationRequest, Job, JobStatus, MediaKind

API_PREFIX = "/api/v1/image-studio"


class ErrorBody(BaseModel):
    """``{"error": {"type", "message", "field", ...}}`` — every 4xx/5xx of this API."""

    error: dict[str, Any]


class JobOut(BaseModel):
    """A job as the API shows it. ``progress`` 0..1; ``queue_position`` 0-based while queued."""

    id: str
    status: JobStatus
    owner: str | None
    request: dict[str, Any]
    provider: str | None
    backend: str | None
    provider_job_id: str | None
    progress: float
    queue_position: int | None = None
    attempts: list[Attempt]
    asset_ids: list[str]
    assets: list["AssetOut"] = Field(default_factory=list)
    error: dict[str, Any] | None
    batch_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    prompt_info: dict[str, Any] | None = None

    @classmethod
    def of(cls, job: Job, *, position: int | None = None, assets: list[Asset] | None = None) -> "JobOut":
        return cls(
            id=job.id, status=job.status, owner=job.owner, request=job.request.summary(), provider=job.provider,
            backend=job.backend, provider_job_id=job.provider_job_id, progress=job.progress,
            queue_position=position, attempts=job.attempts, asset_ids=job.asset_ids,
            assets=[AssetOut.of(a) for a in assets or []], error=job.error, batch_id=job.batch_id,
            created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at,
            prompt_info=job.prompt_info,
        )


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None


class AssetOut(BaseModel):
    """An asset with ``content_url`` and ``thumbnail_url`` (relative to the server root)."""

    id: str
    job_id: str | None
    owner: str | None
    provider: str | None
    backend: str | None
    model: str | None
    media: MediaKind
    mime_type: str
    width: int | None
    height: int | None
    size_bytes: int
    sha256: str
    prompt: str | None
    negative_prompt: str | None
    seed: int | None
    parameters: dict[str, Any]
    created_at: datetime
    content_url: str
    thumbnail_url: str | None
    batch_id: str | None = None
    """The batch of the job that made it (``GET /batches/{id}``), so the gallery can group."""

    @classmethod
    def of(cls, asset: Asset) -> "AssetOut":
        base = f"{API_PREFIX}/assets/{asset.id}"
        return cls(
            **asset.model_dump(exclude={"path", "thumbnail_path"}),
            content_url=f"{base}/content",
            thumbnail_url=f"{base}/thumbnail" if asset.thumbnail_path else None,
        )


class AssetPage(BaseModel):
    items: list[AssetOut]
    next_cursor: str | None


class BatchRequest(BaseModel):
    """Many requests as one batch: either ``requests`` (full requests) or ``base`` plus
    ``prompts`` (one job per prompt) and/or ``grid`` (every combination of the listed values
    of seed, cfg_scale, steps, sampler, scheduler, model, width, height)."""

    requests: list[GenerationRequest] = Field(default_factory=list, max_length=500)
    base: GenerationRequest | None = None
    prompts: list[str] = Field(default_factory=list, max_length=500)
    grid: dict[str, list[Any]] = Field(default_factory=dict)


class BatchOut(BaseModel):
    batch_id: str
    jobs: list[JobOut]


class ProviderOut(BaseModel):
    """A configured provider and its state."""

    id: str
    type: str
    label: str
    enabled: bool
    loaded: bool
    error: dict[str, Any] | None
    capabilities: dict[str, Any] | None
    backends: list[dict[str, Any]]
    default: bool
    chain_position: int | None


class HealthOut(BaseModel):
    status: str
    providers: list[str]
    problems: list[str]
    queue: dict[str, int]
    version: str


class MeOut(BaseModel):
    """The caller as the UI needs it: ``name`` is for display (the Open WebUI user's name
    inside Open WebUI, else the owner)."""

    owner: str
    name: str
    role: str
    is_admin: bool
    host: str


class ProviderTypeOut(BaseModel):
    """A provider type the config may name, with what its settings form needs:
    ``settings_schema`` (JSON Schema of ``providers.<id>.settings``), ``credentials``
    (``{name: required}``; secrets, write-only), ``needs_backend`` (at least one backend URL)
    and ``default_url`` (used when no backend is listed)."""

    type: str
    settings_schema: dict[str, Any]
    credentials: dict[str, bool]
    needs_backend: bool
    default_url: str | None


class DeletedOut(BaseModel):
    """What a delete freed, in bytes."""

    deleted: str
    freed_bytes: int


class HealthStatusOut(BaseModel):
    ok: bool
    provider: str
    backend: str | None
    latency: float | None
    message: str | None
    details: dict[str, Any] = Field(default_factory=dict)


class ModelOut(BaseModel):
    id: str
    name: str | None
    kind: str
    provider: str | None
    backend: str | None
    details: dict[str, Any] = Field(default_factory=dict)


class ConfigOut(BaseModel):
    """The provider config with every secret masked, plus the provider types known."""

    config: dict[str, Any]
    provider_types: list[str]


JobOut.model_rebuild()
