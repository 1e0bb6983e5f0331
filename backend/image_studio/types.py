"""Pydantic models shared by every layer: requests, results, assets, jobs and events.

Units: sizes in pixels, durations in seconds, file sizes in bytes, times as timezone-aware UTC
datetimes. Binary inputs (init image, mask) travel in JSON as base64 strings, with or without a
``data:image/png;base64,`` prefix, and are held as ``bytes`` once parsed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import datetime, timezone
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def _decode_b64(value: Any) -> Any:
    if value is None or isinstance(value, (bytes, bytearray)):
        return bytes(value) if value is not None else None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("data:"):
            _, _, text = text.partition(",")
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("must be base64-encoded image data (optionally a data: URL)") from exc
    raise ValueError("must be base64-encoded image data")


Base64Image = Annotated[
    bytes,
    BeforeValidator(_decode_b64),
    PlainSerializer(lambda b: base64.b64encode(b).decode("ascii"), return_type=str, when_used="json"),
]
"""Image bytes that are base64 text in JSON."""


class MediaKind(str, Enum):
    """What a job produces or an asset holds."""

    image = "image"
    video = "video"


class GenerationMode(str, Enum):
    """The kind of generation, derived from the request's inputs."""

    txt2img = "txt2img"
    img2img = "img2img"
    inpaint = "inpaint"
    upscale = "upscale"


class JobStatus(str, Enum):
    """Lifecycle of a job: ``queued -> running -> succeeded | failed | canceled``, or ``expired``
    (it waited past its deadline before it could start)."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    canceled = "canceled"
    expired = "expired"


TERMINAL: frozenset[JobStatus] = frozenset(
    {JobStatus.succeeded, JobStatus.failed, JobStatus.canceled, JobStatus.expired}
)
"""States a job never leaves."""


MAX_SIDE = 16384
MAX_N = 64


class LoraSpec(BaseModel):
    """A LoRA to apply: its name as the backend lists it, and its weight (usually 0..1.5)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=300)
    weight: float = Field(default=1.0, ge=-10, le=10)


class HiresFix(BaseModel):
    """A second, upscaled pass (Automatic1111's hires fix; a latent-upscale pass in ComfyUI).
    ``scale`` multiplies width and height; ``steps`` None reuses the first pass's steps."""

    model_config = ConfigDict(extra="forbid")

    scale: float = Field(default=2.0, ge=1.0, le=4.0)
    upscaler: str | None = None
    steps: int | None = Field(default=None, ge=1, le=150)
    denoising_strength: float = Field(default=0.5, ge=0, le=1)


class UpscaleSpec(BaseModel):
    """Upscale ``init_image`` by ``scale`` with an upscaler model (None: the provider's default)."""

    model_config = ConfigDict(extra="forbid")

    scale: float = Field(default=2.0, ge=1.0, le=8.0)
    upscaler: str | None = None


class GenerationRequest(BaseModel):
    """One generation request, the same shape for every provider.

    ``width``/``height`` are pixels; ``steps`` sampler steps; ``cfg_scale`` classifier-free
    guidance; ``denoising_strength`` 0..1 for img2img and inpaint (1 keeps nothing of the
    init image). ``extra`` carries provider-specific fields, passed through untouched.
    ``provider`` None means the default provider and its fallback chain; ``workflow`` names a
    ComfyUI workflow template. ``params`` sets a workflow's exposed parameters by name.
    ``loras``, ``vae`` and ``hires`` are model add-ons for the local backends; ``upscale``
    with an ``init_image`` asks for an upscale instead of a generation (``prompt`` may then be
    empty).
    """

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(default="", max_length=10_000)
    negative_prompt: str | None = Field(default=None, max_length=10_000)
    provider: str | None = None
    model: str | None = None
    workflow: str | None = None
    media: MediaKind = MediaKind.image
    width: int = Field(default=1024, ge=8, le=MAX_SIDE)
    height: int = Field(default=1024, ge=8, le=MAX_SIDE)
    n: int = Field(default=1, ge=1, le=MAX_N)
    steps: int | None = Field(default=None, ge=1, le=1000)
    cfg_scale: float | None = Field(default=None, ge=0, le=100)
    sampler: str | None = None
    scheduler: str | None = None
    seed: int | None = Field(default=None, ge=-1, le=2**64 - 1)
    init_image: Base64Image | None = None
    mask: Base64Image | None = None
    denoising_strength: float | None = Field(default=None, ge=0, le=1)
    loras: list[LoraSpec] = Field(default_factory=list, max_length=16)
    vae: str | None = None
    hires: HiresFix | None = None
    upscale: UpscaleSpec | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_inputs(self) -> "GenerationRequest":
        if self.mask is not None and self.init_image is None:
            raise ValueError("mask needs init_image: inpaint paints into an init image")
        if self.upscale is not None and self.init_image is None:
            raise ValueError("upscale needs init_image: the image to upscale")
        if not self.prompt.strip() and self.upscale is None:
            raise ValueError("prompt must not be empty")
        return self

    @property
    def mode(self) -> GenerationMode:
        """txt2img, img2img (init image), inpaint (init image and mask) or upscale."""
        if self.upscale is not None:
            return GenerationMode.upscale
        if self.init_image is not None and self.mask is not None:
            return GenerationMode.inpaint
        if self.init_image is not None:
            return GenerationMode.img2img
        return GenerationMode.txt2img

    def fingerprint(self) -> str:
        """SHA-256 hex of the canonical JSON body, for Idempotency-Key checks."""
        body = self.model_dump(mode="json")
        return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    def summary(self) -> dict[str, Any]:
        """The request as JSON without the binary inputs (for logs, assets and job lists)."""
        out = self.model_dump(mode="json", exclude={"init_image", "mask"})
        out["mode"] = self.mode.value
        if self.init_image is not None:
            out["init_image_bytes"] = len(self.init_image)
        if self.mask is not None:
            out["mask_bytes"] = len(self.mask)
        return out


class GeneratedFile(BaseModel):
    """One output file as a provider returns it, before it is stored.

    ``data`` is the encoded file (PNG, JPEG, WebP, MP4 ...); ``parameters`` what the backend
    reports it actually used (seed, sampler ...), merged into the stored asset's parameters.
    """

    data: bytes
    mime_type: str | None = None
    filename: str | None = None
    media: MediaKind = MediaKind.image
    width: int | None = None
    height: int | None = None
    seed: int | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)


class GenerationResult(BaseModel):
    """What :meth:`ImageProvider.generate` returns: the files and where they came from."""

    files: list[GeneratedFile]
    provider: str
    backend: str | None = None
    model: str | None = None
    provider_job_id: str | None = None
    info: dict[str, Any] = Field(default_factory=dict)


class Capabilities(BaseModel):
    """What a provider can do. Sizes are pixels; ``max_n`` is images per request."""

    media: list[MediaKind] = Field(default_factory=lambda: [MediaKind.image])
    txt2img: bool = True
    img2img: bool = False
    inpaint: bool = False
    upscale: bool = False
    video: bool = False
    max_width: int = 2048
    max_height: int = 2048
    max_n: int = 4
    negative_prompt: bool = True
    seed: bool = True
    async_only: bool = False
    loras: bool = False
    vae: bool = False
    hires: bool = False
    resumable: bool = False
    """True when a remembered provider job id lets a restarted service pick the job up again."""

    def check(self, request: GenerationRequest) -> str | None:
        """Return why this provider cannot serve ``request``, or None when it can."""
        if request.media not in self.media:
            return f"cannot produce {request.media.value}"
        mode = request.mode
        if mode is GenerationMode.txt2img and not self.txt2img:
            return "no txt2img"
        if mode is GenerationMode.img2img and not self.img2img:
            return "no img2img (init_image given)"
        if mode is GenerationMode.inpaint and not self.inpaint:
            return "no inpaint (mask given)"
        if mode is GenerationMode.upscale and not self.upscale:
            return "no upscale"
        if request.loras and not self.loras:
            return "no LoRAs"
        if request.vae and not self.vae:
            return "no VAE choice"
        if request.hires and not self.hires:
            return "no hires fix"
        if request.width > self.max_width or request.height > self.max_height:
            return f"size {request.width}x{request.height} over the maximum {self.max_width}x{self.max_height}"
        if request.n > self.max_n:
            return f"n={request.n} over the maximum {self.max_n}"
        return None


class ModelInfo(BaseModel):
    """A model a provider offers: a checkpoint, a cloud model name, a LoRA ..."""

    id: str
    name: str | None = None
    kind: str = "checkpoint"
    provider: str | None = None
    backend: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class HealthStatus(BaseModel):
    """Result of a provider or backend health probe. ``latency`` in seconds."""

    ok: bool
    provider: str
    backend: str | None = None
    latency: float | None = None
    message: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class Asset(BaseModel):
    """One stored output file. ``path`` and ``thumbnail_path`` are relative to the asset
    store's root; ``size_bytes`` is the file size; ``parameters`` the generation parameters."""

    id: str
    job_id: str | None = None
    owner: str | None = None
    provider: str | None = None
    backend: str | None = None
    model: str | None = None
    media: MediaKind = MediaKind.image
    mime_type: str
    width: int | None = None
    height: int | None = None
    size_bytes: int
    sha256: str
    path: str
    thumbnail_path: str | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    seed: int | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)


class Attempt(BaseModel):
    """One try of one provider for a job. ``outcome``: succeeded, failed or skipped.
    Times UTC; ``duration`` seconds."""

    provider: str
    backend: str | None = None
    outcome: Literal["succeeded", "failed", "skipped", "running"] = "running"
    error_type: str | None = None
    error: str | None = None
    retry: int = 0
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    duration: float | None = None


class Job(BaseModel):
    """A generation request and its lifecycle, as stored and as the API returns it.

    ``progress`` is 0..1; ``timeout`` seconds from start; ``asset_ids`` the stored outputs.
    """

    id: str
    status: JobStatus = JobStatus.queued
    owner: str | None = None
    request: GenerationRequest
    provider: str | None = None
    backend: str | None = None
    provider_job_id: str | None = None
    progress: float = 0.0
    attempts: list[Attempt] = Field(default_factory=list)
    asset_ids: list[str] = Field(default_factory=list)
    error: dict[str, Any] | None = None
    idempotency_key: str | None = None
    batch_id: str | None = None
    timeout: float | None = None
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


EventType = Literal[
    "queued", "started", "progress", "preview", "fallback", "succeeded", "failed", "canceled", "expired"
]


class ProgressEvent(BaseModel):
    """One event of a job, as the event bus and the SSE stream carry it.

    ``value``/``max`` are the step counter of the current node or sampler; ``progress`` the
    job's overall 0..1; ``preview`` a small JPEG or PNG while sampling; ``position`` the
    0-based place in the queue for ``queued``.
    """

    job_id: str
    type: EventType
    progress: float | None = None
    value: int | None = None
    max: int | None = None
    position: int | None = None
    preview: Base64Image | None = None
    preview_mime: str | None = None
    provider: str | None = None
    backend: str | None = None
    message: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    ts: datetime = Field(default_factory=utcnow)
