"""Running one generation on a loaded pipeline, in a worker thread.

* :class:`RunJob`: the request, resolved (seeds, steps, guidance, strength, decoded images).
* :class:`StepHooks`: the pipeline's ``callback_on_step_end`` (diffusers >= 0.22: called as
  ``callback(pipe, step_index, timestep, callback_kwargs)`` and must return the kwargs). It
  reports ``step/total`` to the event loop with ``asyncio.run_coroutine_threadsafe`` (waiting
  up to :data:`REPORT_WAIT` s for each, so reports stay in order and a cancel made in reaction
  to one is seen at once), makes an optional false-colour preview of the latents, and stops
  the run on cancel or deadline by setting ``pipe._interrupt`` (diffusers then skips the
  remaining steps but still decodes an image, which the caller discards).
* :func:`run`: builds the call's keyword arguments (txt2img, img2img with ``strength``,
  inpaint with ``mask_image``), swaps the scheduler for the request's sampler, and returns the
  PIL images.

Samplers follow the diffusers "Schedulers" docs page (the A1111 names map to classes there).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import io
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, UnidentifiedImageError

from ...errors import InvalidRequest, Unsupported
from ...types import GenerationRequest
from ..base import JobContext

REPORT_WAIT = 0.5
"""Seconds a step waits at most for its progress report to be handled on the event loop."""

PREVIEW_SIDE = 128
"""Longest side of a preview image, pixels."""

SAMPLERS: dict[str, tuple[str, dict[str, Any]]] = {
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "ddim": ("DDIMScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {}),
    "dpmpp_2m_sde": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
    "dpmpp_sde": ("DPMSolverSinglestepScheduler", {}),
    "dpm2": ("KDPM2DiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "lms": ("LMSDiscreteScheduler", {}),
    "pndm": ("PNDMScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "deis": ("DEISMultistepScheduler", {}),
    "lcm": ("LCMScheduler", {}),
    "tcd": ("TCDScheduler", {}),
}
"""Sampler names (ours, and A1111's once normalised: ``DPM++ 2M`` -> ``dpmpp_2m``) -> diffusers
scheduler class and config overrides."""

SCHEDULES = ("default", "normal", "karras")
RESERVED = frozenset({"generator", "callback_on_step_end", "callback_on_step_end_tensor_inputs", "output_type",
                      "num_images_per_prompt", "return_dict"})
"""Call arguments ``request.extra`` may not set (we drive seeds, progress and the output)."""


def sampler_key(name: str) -> str:
    """``"DPM++ 2M"`` -> ``"dpmpp_2m"``, ``"Euler a"`` -> ``"euler_a"``."""
    return name.strip().lower().replace("++", "pp").replace(" ", "_").replace("-", "_")


@dataclass
class RunJob:
    """One generation, resolved. Sizes in pixels; ``seeds`` one per image."""

    mode: str
    prompt: str
    negative_prompt: str | None
    width: int
    height: int
    steps: int
    guidance: float
    seeds: list[int]
    strength: float | None = None
    init_image: Image.Image | None = None
    mask: Image.Image | None = None
    sampler: str | None = None
    schedule: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _decode(data: bytes, what: str, size: tuple[int, int], mode: str) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return im.convert(mode).resize(size, Image.Resampling.LANCZOS)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InvalidRequest(f"{what} is not a readable image: {exc}", field=what) from exc


def make_job(request: GenerationRequest, *, steps: int, guidance: float, strength: float) -> RunJob:
    """Resolve ``request``: sizes snapped down to multiples of 8 (the VAE's factor), seeds
    ``seed, seed+1, ...`` (a random 32-bit seed when None or -1), images decoded and resized.

    Raises:
        InvalidRequest: unreadable init image or mask (field named).
        Unsupported: an unknown sampler or scheduler (field named).
    """
    width, height = max(64, request.width // 8 * 8), max(64, request.height // 8 * 8)
    base = request.seed if request.seed is not None and request.seed >= 0 else secrets.randbelow(2**32)
    sampler = sampler_key(request.sampler) if request.sampler else None
    if sampler is not None and sampler not in SAMPLERS:
        raise Unsupported(f"unknown sampler {request.sampler!r}; known: {', '.join(SAMPLERS)}", field="sampler")
    schedule = request.scheduler.strip().lower() if request.scheduler else None
    if schedule is not None and schedule not in SCHEDULES:
        raise Unsupported(f"unknown scheduler {request.scheduler!r}; known: {', '.join(SCHEDULES)}",
                          field="scheduler")
    job = RunJob(mode=request.mode.value, prompt=request.prompt, negative_prompt=request.negative_prompt,
                 width=width, height=height, steps=request.steps or steps,
                 guidance=request.cfg_scale if request.cfg_scale is not None else guidance,
                 seeds=[(base + i) % 2**64 for i in range(request.n)], sampler=sampler, schedule=schedule,
                 extra=dict(request.extra))
    if request.init_image is not None:
        job.strength = request.denoising_strength if request.denoising_strength is not None else strength
        job.init_image = _decode(request.init_image, "init_image", (width, height), "RGB")
    if request.mask is not None:
        job.mask = _decode(request.mask, "mask", (width, height), "L")
    return job


def latent_preview(latents: Any) -> bytes:
    """A small JPEG from the first image's latents: channels 0-2 stretched to 0..255 each.
    A false-colour view of the composition, not the final colours."""
    import numpy as np

    lat = latents[0, :3].detach().float().cpu().numpy()
    lo = lat.min(axis=(1, 2), keepdims=True)
    span = np.maximum(lat.max(axis=(1, 2), keepdims=True) - lo, 1e-6)
    rgb = ((lat - lo) / span * 255).astype("uint8").transpose(1, 2, 0)
    im = Image.fromarray(rgb, "RGB")
    scale = PREVIEW_SIDE / max(im.size)
    im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    im.save(out, format="JPEG", quality=70)
    return out.getvalue()


class StepHooks:
    """The per-step callback, run in the worker thread; see the module docstring.

    ``stop`` is our own cancel flag (also set from the loop by the provider); ``deadline`` a
    ``time.monotonic()`` value after which the run stops with ``timed_out`` set.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, ctx: JobContext, *, steps: int, stop: threading.Event,
                 deadline: float, preview_every: int = 0) -> None:
        self.loop, self.ctx, self.steps, self.stop = loop, ctx, steps, stop
        self.deadline, self.preview_every = deadline, preview_every
        self.futures: list[Future[Any]] = []
        self.timed_out = False
        self.done_steps = 0

    def __call__(self, pipe: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        total = getattr(pipe, "num_timesteps", None) or self.steps
        self.done_steps = step + 1
        preview = None
        if self.preview_every and (step + 1) % self.preview_every == 0 and kwargs.get("latents") is not None:
            preview = latent_preview(kwargs["latents"])
        self.report(step + 1, total, preview)
        if time.monotonic() > self.deadline:
            self.timed_out = True
            self.stop.set()
        if self.stop.is_set() or self.ctx.cancel_event.is_set():
            self.stop.set()
            pipe._interrupt = True  # diffusers' documented early stop: skips the remaining steps
        return kwargs

    def report(self, value: int, total: int, preview: bytes | None = None) -> None:
        """Send one progress report to the loop and wait up to :data:`REPORT_WAIT` s for it."""
        coro = self.ctx.report_progress(value, total, preview)
        try:
            fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        except RuntimeError:  # the loop is closed (shutdown): nobody is listening
            coro.close()
            return
        self.futures.append(fut)
        with contextlib.suppress(Exception):
            fut.result(timeout=REPORT_WAIT)

    async def drain(self) -> None:
        """Await every report still pending (call on the loop after the run)."""
        pending = [asyncio.wrap_future(f) for f in self.futures if not f.done()]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


@contextlib.contextmanager
def sampler_swapped(pipe: Any, sampler: str | None, schedule: str | None) -> Iterator[None]:
    """Run with the scheduler for ``sampler``/``schedule`` (from the loaded one's config), then
    put the loaded one back."""
    if sampler is None and schedule != "karras":
        yield
        return
    import diffusers

    original = pipe.scheduler
    cls_name, overrides = SAMPLERS[sampler] if sampler else (type(original).__name__, {})
    cls = getattr(diffusers, cls_name)
    overrides = dict(overrides)
    if schedule == "karras" and "use_karras_sigmas" in inspect.signature(cls.__init__).parameters:
        overrides["use_karras_sigmas"] = True
    pipe.scheduler = cls.from_config(original.config, **overrides)
    try:
        yield
    finally:
        pipe.scheduler = original


def call_kwargs(pipe: Any, job: RunJob, hooks: StepHooks, generators: list[Any]) -> dict[str, Any]:
    """The pipeline call's keyword arguments for ``job``.

    Raises:
        InvalidRequest: an ``extra`` key the pipeline does not take, or one of :data:`RESERVED`
            (field ``extra.<key>``). Other keys (``guidance_rescale``, ``clip_skip``, ``eta`` ...)
            are passed as they are and win over ours.
    """
    kw: dict[str, Any] = {"prompt": job.prompt, "negative_prompt": job.negative_prompt,
                          "num_inference_steps": job.steps, "guidance_scale": job.guidance,
                          "num_images_per_prompt": len(job.seeds), "generator": generators,
                          "callback_on_step_end": hooks, "output_type": "pil"}
    if job.mode == "txt2img" or job.mode == "inpaint":
        kw.update(width=job.width, height=job.height)
    if job.init_image is not None:
        kw.update(image=job.init_image, strength=job.strength)
    if job.mask is not None:
        kw["mask_image"] = job.mask
    accepted = inspect.signature(pipe.__call__).parameters
    for key, value in job.extra.items():
        if key in RESERVED or key not in accepted:
            raise InvalidRequest(f"extra.{key} is not a parameter of {type(pipe).__name__}", field=f"extra.{key}")
        kw[key] = value
    return kw


def run(pipe: Any, job: RunJob, hooks: StepHooks, device: str) -> tuple[list[Image.Image], list[bool] | None]:
    """Run ``job`` on ``pipe`` (call in a worker thread); ``(images, nsfw flags or None)``.
    Raises whatever the pipeline raises (the provider maps it)."""
    import torch

    generators = [torch.Generator(device=device).manual_seed(seed) for seed in job.seeds]
    kwargs = call_kwargs(pipe, job, hooks, generators)
    with sampler_swapped(pipe, job.sampler, job.schedule), torch.inference_mode():
        out = pipe(**kwargs)
    return list(out.images), getattr(out, "nsfw_content_detected", None)


def png_bytes(image: Image.Image) -> bytes:
    """``image`` encoded as PNG (deterministic for the same pixels)."""
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


__all__ = ["REPORT_WAIT", "RESERVED", "RunJob", "SAMPLERS", "SCHEDULES", "StepHooks", "call_kwargs", "latent_preview",
           "make_job", "png_bytes", "run", "sampler_key", "sampler_swapped"]
