"""The placeholder provider: Pillow-drawn PNGs, for tests, demos and a last link in a chain.

No backend is needed. Each image is ``width`` x ``height`` pixels, shows the prompt
(wrapped), the size and the seed, and is stamped PLACEHOLDER. ``n`` images get the seeds
``seed, seed + 1, ...`` (a random seed when the request's is None or -1); the same seed and
request give identical bytes. img2img blends the init image in (``denoising_strength``,
default 0.75, is the weight of the drawn image); inpaint does so only where the mask is white.

Settings (``providers.<id>.settings``):

* ``delay``: seconds per image (default 0). Spent in 10 steps, each reported as progress
  with a small JPEG preview; a cancel wakes it at once (``ctx.sleep``).
* ``fail_rate``: 0..1, the chance that a call fails with :class:`ProviderUnavailable`
  ("placeholder failure (fail_rate)"), drawn from a random generator that ignores the seed.
* ``fail_with``: an error class name (ProviderUnavailable, RateLimited, ContentRejected,
  AuthenticationFailed, GenerationFailed): failures raise it instead; with ``fail_with`` set
  and no ``fail_rate`` every call fails, for deterministic tests. ``retry_after`` (seconds)
  goes with RateLimited.
* ``cost``: US dollars per image to report as the answer's cost (``info["cost"]``, the same key
  Runware's adapter fills), for demos and tests of the provider analytics; None reports none.
* ``style``: ``simple`` (flat colour from the seed), ``detailed`` (gradient and shapes from
  the seed) or ``debug`` (grid and every parameter printed). A request's ``model``
  ``placeholder-<style>`` picks the style per request; other model names are ignored.
"""

from __future__ import annotations

import asyncio
import io
import random
import textwrap
import time
from typing import Any, ClassVar, Literal

from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field

from ..config import BackendConfig
from ..errors import (
    AuthenticationFailed,
    ContentRejected,
    GenerationFailed,
    InvalidRequest,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    Unsupported,
)
from ..types import (
    Capabilities,
    GeneratedFile,
    GenerationMode,
    GenerationRequest,
    GenerationResult,
    HealthStatus,
    MediaKind,
    ModelInfo,
)
from .base import ImageProvider, JobContext

Style = Literal["simple", "detailed", "debug"]
STYLES: tuple[str, ...] = ("simple", "detailed", "debug")
PROGRESS_STEPS = 10
PREVIEW_SIDE = 128
DEFAULT_DENOISE = 0.75

_ERRORS: dict[str, type[ProviderError]] = {
    cls.__name__: cls
    for cls in (ProviderUnavailable, RateLimited, ContentRejected, AuthenticationFailed, GenerationFailed)
}


class PlaceholderSettings(BaseModel):
    """Settings of the placeholder provider (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    delay: float = Field(default=0.0, ge=0, le=3600, description="Seconds per image.")
    fail_rate: float | None = Field(default=None, ge=0, le=1, description="Chance a call fails (0..1).")
    fail_with: Literal[
        "ProviderUnavailable", "RateLimited", "ContentRejected", "AuthenticationFailed", "GenerationFailed"
    ] | None = Field(default=None, description="Error class failures raise.")
    retry_after: float | None = Field(default=None, ge=0, description="Seconds, for RateLimited.")
    cost: float | None = Field(default=None, ge=0, description="US dollars per image to report (analytics demos).")
    style: Style = "simple"


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(6, size))


def _colour(rng: random.Random, lo: int = 40, hi: int = 215) -> tuple[int, int, int]:
    return (rng.randint(lo, hi), rng.randint(lo, hi), rng.randint(lo, hi))


def _background(style: str, width: int, height: int, rng: random.Random) -> Image.Image:
    """The seed-dependent picture under the text."""
    base = _colour(rng)
    if style == "simple":
        return Image.new("RGB", (width, height), base)
    if style == "debug":
        im = Image.new("RGB", (width, height), (32, 32, 40))
        draw = ImageDraw.Draw(im)
        step = max(8, min(width, height) // 8)
        for x in range(0, width, step):
            draw.line([(x, 0), (x, height)], fill=(70, 70, 90))
        for y in range(0, height, step):
            draw.line([(0, y), (width, y)], fill=(70, 70, 90))
        draw.rectangle([0, 0, width - 1, height - 1], outline=base)
        return im
    mask = Image.linear_gradient("L").resize((width, height))
    im = Image.composite(Image.new("RGB", (width, height), _colour(rng)), Image.new("RGB", (width, height), base), mask)
    draw = ImageDraw.Draw(im)
    for _ in range(rng.randint(4, 12)):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        x1, y1 = x0 + rng.randint(width // 16 + 1, width // 3 + 2), y0 + rng.randint(height // 16 + 1, height // 3 + 2)
        shape = rng.choice(("ellipse", "rectangle", "polygon"))
        colour = _colour(rng, 0, 255)
        if shape == "ellipse":
            draw.ellipse([x0, y0, x1, y1], fill=colour)
        elif shape == "rectangle":
            draw.rectangle([x0, y0, x1, y1], fill=colour)
        else:
            draw.polygon([(x0, y1), ((x0 + x1) // 2, y0), (x1, y1)], fill=colour)
    return im


def _decode(data: bytes, field: str, mode: str, size: tuple[int, int]) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as src:
            src.load()
            im = src.convert(mode)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise InvalidRequest(f"cannot decode {field}: {exc}", field=field) from exc
    return ImageOps.fit(im, size) if mode == "RGB" else im.resize(size)


def _blend_init(im: Image.Image, request: GenerationRequest) -> Image.Image:
    """img2img: mix the init image under the drawing; inpaint: only inside the mask (white)."""
    assert request.init_image is not None
    init = _decode(request.init_image, "init_image", "RGB", im.size)
    strength = DEFAULT_DENOISE if request.denoising_strength is None else request.denoising_strength
    blended = Image.blend(init, im, strength)
    if request.mask is None:
        return blended
    mask = _decode(request.mask, "mask", "L", im.size)
    return Image.composite(blended, init, mask)


def _text_lines(style: str, request: GenerationRequest, seed: int, width: int, height: int) -> list[str]:
    lines = [f"{width}x{height}  seed {seed}"]
    if style == "debug":
        for key, value in request.summary().items():
            if value not in (None, {}, []) and key not in ("prompt", "seed"):
                lines.append(f"{key}: {value}")
    return lines


def _draw_text(im: Image.Image, style: str, request: GenerationRequest, seed: int) -> None:
    width, height = im.size
    size = max(6, min(width, height) // 20)
    font, big = _font(size), _font(max(8, min(width, height) // 9))
    draw = ImageDraw.Draw(im)
    stamp = "PLACEHOLDER"
    box = draw.textbbox((0, 0), stamp, font=big)
    sx = max(0, (width - (box[2] - box[0])) // 2)
    draw.text((sx, size // 2), stamp, font=big, fill=(255, 255, 255), stroke_width=max(1, size // 6), stroke_fill=(0, 0, 0))
    chars = max(8, int(width / (size * 0.55)))
    wrapped = textwrap.wrap(request.prompt, width=chars)[: max(1, height // (size * 3))]
    y = size // 2 + (box[3] - box[1]) + size
    for line in wrapped + [""] + _text_lines(style, request, seed, width, height):
        if y > height:
            break
        draw.text((size // 2, y), line, font=font, fill=(255, 255, 255), stroke_width=1, stroke_fill=(0, 0, 0))
        y += int(size * 1.25)


def render_placeholder(request: GenerationRequest, seed: int, style: str) -> tuple[bytes, Image.Image]:
    """Draw one placeholder: ``(PNG bytes, a copy at most 128 px for progress previews)``.

    Deterministic: the same request, seed and style give the same bytes. CPU-bound: call it
    in a thread.

    Raises:
        InvalidRequest: the init image or mask cannot be decoded (field named).
    """
    rng = random.Random(seed)
    im = _background(style, request.width, request.height, rng)
    if request.mode in (GenerationMode.img2img, GenerationMode.inpaint):
        im = _blend_init(im, request)
    _draw_text(im, style, request, seed)
    out = io.BytesIO()
    im.save(out, "PNG", compress_level=1)
    preview = im.copy()
    preview.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    return out.getvalue(), preview


def preview_jpeg(preview: Image.Image, fraction: float) -> bytes:
    """A JPEG of ``preview`` faded in from grey by ``fraction`` (0..1) of the work done."""
    grey = Image.new("RGB", preview.size, (128, 128, 128))
    out = io.BytesIO()
    Image.blend(grey, preview, max(0.0, min(1.0, fraction))).save(out, "JPEG", quality=70)
    return out.getvalue()


class PlaceholderProvider(ImageProvider):
    """Pillow placeholder images; no backend. See the module docstring for the settings.

    Raises (from :meth:`generate`):
        Unsupported: a video request, or a size or ``n`` over the capabilities.
        InvalidRequest: an init image or mask that cannot be decoded (field named).
        ProviderUnavailable, RateLimited, ContentRejected, AuthenticationFailed,
        GenerationFailed: as ``fail_rate`` / ``fail_with`` ask.
        JobCanceled: the job was canceled (before start or during ``delay``).
    """

    type: ClassVar[str] = "placeholder"
    Settings: ClassVar[type[BaseModel]] = PlaceholderSettings
    settings: PlaceholderSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._failure_rng = random.Random()  # seeded from the OS: independent of request seeds

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            media=[MediaKind.image], txt2img=True, img2img=True, inpaint=True,
            max_width=4096, max_height=4096, max_n=16, negative_prompt=True, seed=True, resumable=False,
        )

    def _style_for(self, request: GenerationRequest) -> str:
        if request.model and request.model.startswith("placeholder-"):
            style = request.model.removeprefix("placeholder-")
            if style in STYLES:
                return style
        return self.settings.style

    def _maybe_fail(self) -> None:
        s = self.settings
        rate = s.fail_rate if s.fail_rate is not None else (1.0 if s.fail_with else 0.0)
        if rate <= 0 or self._failure_rng.random() >= rate:
            return
        cls = _ERRORS[s.fail_with] if s.fail_with else ProviderUnavailable
        reason = "fail_rate" if s.fail_rate is not None else "fail_with"
        kw: dict[str, Any] = {"provider": self.id, "backend": None}
        if cls is RateLimited:
            kw["retry_after"] = s.retry_after
        raise cls(f"placeholder failure ({reason})", **kw)

    async def generate(self, request: GenerationRequest, ctx: JobContext) -> GenerationResult:
        """Draw ``request.n`` placeholders (see the class docstring for errors)."""
        ctx.raise_if_canceled()
        why = self.capabilities.check(request)
        if why:
            raise Unsupported(f"placeholder: {why}", provider=self.id)
        self._maybe_fail()
        style = self._style_for(request)
        base = request.seed if request.seed is not None and request.seed >= 0 else random.randrange(2**32)
        files: list[GeneratedFile] = []
        for i in range(request.n):
            seed = (base + i) % 2**64
            png, preview = await asyncio.to_thread(render_placeholder, request, seed, style)
            await self._spend_delay(ctx, i, request.n, preview)
            files.append(GeneratedFile(
                data=png, mime_type="image/png", filename=f"placeholder-{seed}.png", media=MediaKind.image,
                width=request.width, height=request.height, seed=seed,
                parameters={"seed": seed, "style": style, "sampler": "placeholder", "model": f"placeholder-{style}"},
            ))
        return GenerationResult(
            files=files, provider=self.id, backend=None, model=f"placeholder-{style}",
            info={"style": style, "seeds": [f.seed for f in files], "mode": request.mode.value,
                  **({"cost": round(self.settings.cost * len(files), 6)} if self.settings.cost is not None else {})},
        )

    async def _spend_delay(self, ctx: JobContext, index: int, n: int, preview: Image.Image) -> None:
        """Spend ``delay`` seconds for image ``index`` in steps, reporting progress."""
        delay = self.settings.delay
        if delay <= 0:
            ctx.raise_if_canceled()
            await ctx.report_progress((index + 1) * PROGRESS_STEPS, n * PROGRESS_STEPS)
            return
        for step in range(1, PROGRESS_STEPS + 1):
            await ctx.sleep(delay / PROGRESS_STEPS)
            jpeg = await asyncio.to_thread(preview_jpeg, preview, step / PROGRESS_STEPS)
            await ctx.report_progress(
                index * PROGRESS_STEPS + step, n * PROGRESS_STEPS, jpeg,
                preview_mime="image/jpeg", message=f"image {index + 1}/{n}",
            )

    async def health(self, backend: BackendConfig | None = None) -> HealthStatus:
        """Always ok: nothing to reach."""
        started = time.monotonic()
        return HealthStatus(
            ok=True, provider=self.id, backend=None, latency=time.monotonic() - started,
            message="placeholder images need no backend",
            details={"style": self.settings.style, "delay": self.settings.delay},
        )

    async def list_models(self, backend: BackendConfig | None = None) -> list[ModelInfo]:
        """``placeholder-simple``, ``placeholder-detailed`` and ``placeholder-debug``."""
        return [
            ModelInfo(id=f"placeholder-{s}", name=f"Placeholder ({s})", provider=self.id, details={"style": s})
            for s in STYLES
        ]

    async def options(self, backend: BackendConfig | None = None) -> dict[str, Any]:
        return {"samplers": ["placeholder"], "schedulers": [], "styles": list(STYLES)}


__all__ = ["PlaceholderProvider", "PlaceholderSettings", "preview_jpeg", "render_placeholder"]
