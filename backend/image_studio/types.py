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


SizePolicy = Literal["exact", "nearest"]
"""What happens to a size the provider does not accept: ``exact`` refuses it (the provider is
skipped with the accepted sizes as the reason), ``nearest`` snaps it to the nearest accepted
size (see :mod:`image_studio.sizes`)."""

_RATIO = r"^\s*[1-9][0-9]{0,3}\s*:\s*[1-9][0-9]{0,3}\s*$"


class GenerationRequest(BaseModel):
    """One generation request, the same shape for every provider.

    ``width``/``height`` are pixels; ``aspect_ratio`` (``"W:H"``) asks for a shape instead of
    pixels: the provider's size rule then picks the accepted size of that ratio whose area is
    closest to ``width`` x ``height`` (default 1024x1024, about 1 megapixel).
    ``size_policy`` says what happens to a size a provider does not accept: ``exact`` (the
    default) refuses it, ``nearest`` snaps it to the nearest accepted size, per provider (see
    :mod:`image_studio.sizes`); ``steps`` sampler steps; ``cfg_scale`` classifier-free
    guidance; ``denoising_strength`` 0..1 for img2img and inpaint (1 keeps nothing of the
    init image). ``extra`` carries provider-specific fields, passed through untouched.
    ``provider`` None means the default provider and its fallback chain; ``workflow`` names a
    ComfyUI workflow template. ``params`` sets a workflow's exposed parameters by name.
    ``template`` + ``variables`` and ``styles`` are rendered into the prompts by the Studio at
    submit (the stored request carries the rendered text and keeps the names).
    ``loras``, ``vae`` and ``hires`` are model add-ons for the local backends; ``upscale``
    with an ``init_image`` asks for an upscale instead of a generation (``prompt`` may then be
    empty).
    """

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(default="", max_length=100_000)
    """Over 10,000 characters (``prompts.hard_limit``) a prompt is refused by the Studio with
    HTTP 400 (:class:`image_studio.prompts.PromptTooLong`); 100,000 only bounds the body."""
    negative_prompt: str | None = Field(default=None, max_length=100_000)
    provider: str | None = None
    model: str | None = None
    workflow: str | None = None
    media: MediaKind = MediaKind.image
    width: int = Field(default=1024, ge=8, le=MAX_SIDE)
    height: int = Field(default=1024, ge=8, le=MAX_SIDE)
    aspect_ratio: str | None = Field(
        default=None, pattern=_RATIO,
        description="W:H (such as 16:9) instead of exact pixels; width x height then give only the target area")
    size_policy: SizePolicy = Field(
        default="exact", description="exact: refuse a size the provider does not accept; nearest: snap to the "
                                     "nearest accepted size (same aspect ratio first, then closest area)")
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
    template: str | None = Field(
        default=None, max_length=200,
        description="a prompt template (id or name) rendered with `variables` into prompt and negative prompt; "
                    "the request's own prompt fills its {prompt}")
    variables: dict[str, str | int | float] = Field(default_factory=dict, max_length=64)
    styles: list[str] = Field(default_factory=list, max_length=8,
                              description="style presets (ids or names) added to prompt and negative prompt, in order")
    extra: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_inputs(self) -> "GenerationRequest":
        if self.mask is not None and self.init_image is None:
            raise ValueError("mask needs init_image: inpaint paints into an init image")
        if self.upscale is not None and self.init_image is None:
            raise ValueError("upscale needs init_image: the image to upscale")
        if not self.prompt.strip() and self.upscale is None and self.template is None:
            raise ValueError("prompt must not be empty")
        if self.aspect_ratio is not None:
            w, _, h = self.aspect_ratio.partition(":")
            ratio = int(w) / int(h)
            if not 1 / 16 <= ratio <= 16:
                raise ValueError(f"aspect_ratio {self.aspect_ratio} is outside 1:16 to 16:1")
            self.aspect_ratio = f"{int(w)}:{int(h)}"
        return self

    @property
    def requested_size(self) -> str:
        """What was asked for: ``"WxH"`` (pixels), or the ``aspect_ratio`` when one is given."""
        return self.aspect_ratio or f"{self.width}x{self.height}"

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
        """The request as JSON without the binary inputs (for logs, assets and job lists), with
        ``mode`` and ``requested_size`` (``"WxH"`` or the aspect ratio asked for)."""
        out = self.model_dump(mode="json", exclude={"init_image", "mask"})
        out["mode"] = self.mode.value
        out["requested_size"] = self.requested_size
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
    size: str | None = None
    """``"WxH"`` (pixels) the provider was asked for once the size rules were applied (set by the
    orchestrator; None when the rules did not apply, such as an upscale)."""


class RatioSize(BaseModel):
    """One aspect ratio a provider takes (``"16:9"``) and the pixels it gives at one ``tier``
    (``"1K"``, ``"720p"`` ...; None when the provider has one size per ratio)."""

    model_config = ConfigDict(extra="forbid")

    ratio: str
    width: int
    height: int
    tier: str | None = None


class SizeRule(BaseModel):
    """The sizes (pixels) a provider accepts, as simple JSON for the UI's size presets.

    ``kind``:

    * ``fixed``: exactly the ``sizes`` listed (``"WxH"``), plus ``"auto"`` when ``auto``.
    * ``aspect_ratios``: the provider takes an aspect ratio, not pixels; ``ratios`` lists each
      ratio with the pixels it gives (one entry per ratio and tier).
    * ``multiple_of``: width and height are multiples of ``multiple`` from ``min`` to ``max``
      (``max_pixels`` bounds width x height, ``max_ratio`` the long side over the short one,
      where set); ``buckets`` are preferred sizes (the SDXL resolution buckets for SDXL-class
      models; also the presets), which an ``aspect_ratio`` request picks from first.

    ``note`` is a short human remark (where the numbers come from, what decides the tier).
    The logic (accepts, nearest, describe) is in :mod:`image_studio.sizes`.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["fixed", "aspect_ratios", "multiple_of"]
    sizes: list[str] = Field(default_factory=list)
    auto: bool = False
    ratios: list[RatioSize] = Field(default_factory=list)
    multiple: int = Field(default=1, ge=1)
    min: int | None = None
    max: int | None = None
    max_pixels: int | None = None
    max_ratio: float | None = None
    buckets: list[str] = Field(default_factory=list)
    note: str | None = None


class Capabilities(BaseModel):
    """What a provider can do. Sizes are pixels; ``max_n`` is images per request; ``sizes``
    the sizes its default model accepts (None: any size up to ``max_width`` x ``max_height``);
    ``model_sizes`` the rules of other models it offers, by model id or id prefix (the
    provider's ``size_rule(model)`` decides which applies)."""

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
    sizes: SizeRule | None = None
    model_sizes: dict[str, SizeRule] = Field(default_factory=dict)
    max_prompt_chars: int | None = None
    """The longest prompt (characters) the provider accepts (DALL-E 3: 4,000); None: no own limit."""
    text_encoder: Literal["clip"] | None = None
    """``clip`` when prompts are read by a CLIP text encoder (77-token window): a longer prompt
    gets a warning from ``POST /prompts/validate``."""

    def check(self, request: GenerationRequest) -> str | None:
        """Return why this provider cannot serve ``request``, or None when it can."""
        if request.media not in self.media:
            return f"cannot produce {request.media.value}"
        if self.max_prompt_chars is not None and len(request.prompt) > self.max_prompt_chars:
            return f"takes prompts of at most {self.max_prompt_chars:,} characters ({len(request.prompt):,} given)"
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
    batch_id: str | None = None
    """The batch of the job that made it (None outside a batch), so the gallery can group."""
    prompt: str | None = None
    negative_prompt: str | None = None
    seed: int | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)


class Attempt(BaseModel):
    """One try of one provider for a job. ``outcome``: succeeded, failed or skipped.
    Times UTC; ``duration`` seconds; ``cost`` in US dollars where the provider's answer reports
    one (``GenerationResult.info["cost"]``: Runware's ``includeCost``), else None."""

    provider: str
    backend: str | None = None
    outcome: Literal["succeeded", "failed", "skipped", "running"] = "running"
    error_type: str | None = None
    error: str | None = None
    retry: int = 0
    size: str | None = None
    """``"WxH"`` (pixels) this attempt asked the provider for, after the size rules (None for a
    skipped provider or where no rule applied)."""
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    duration: float | None = None
    cost: float | None = None


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
    prompt_info: dict[str, Any] | None = None
    """Set when the prompt was shortened (or shortening was tried) before the job ran:
    ``{original, optimized, changed, seconds, model, original_length, length, warning}``."""

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
