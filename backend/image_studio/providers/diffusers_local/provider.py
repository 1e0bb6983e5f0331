"""The ``diffusers_local`` provider: Stable Diffusion 1.x/2.x, SDXL and turbo models run
in this process with Hugging Face diffusers (no backend server).

The pipeline is loaded on first use (:mod:`.loader`), kept, and freed after
``idle_unload_seconds`` idle. Inference runs in a worker thread (``asyncio.to_thread``), one
generation at a time per provider: an ``asyncio.Lock`` per event loop queues jobs (a cancel or
the deadline ends the wait) and the holder's ``threading.Lock`` guards the pipeline itself.
Progress, previews and cancel go through the pipeline's ``callback_on_step_end``
(:mod:`.runner`); a canceled run is interrupted and its half-made image discarded. Model
management (list, download, delete) is in :mod:`.cache`.

Errors: a model missing locally (offline, or ``auto_download`` off) -> ConfigError naming
``providers.<id>.settings.model``; CUDA/MPS out of memory -> GenerationFailed(retryable=True);
a pipeline ``ValueError`` (bad size/strength combination) -> InvalidRequest; other failures ->
GenerationFailed; all flagged by the safety checker -> ContentRejected.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel

from ...config import BackendConfig
from ...errors import (AuthenticationFailed, ConfigError, ContentRejected, GenerationFailed, ImageStudioError,
                       InvalidRequest, JobCanceled, NotFound, ProviderError, ProviderTimeout, ProviderUnavailable,
                       Unsupported)
from ... import sizes
from ...types import SizeRule
from ...types import (Capabilities, GeneratedFile, GenerationRequest, GenerationResult, HealthStatus, MediaKind,
                      ModelInfo)
from ..base import ImageProvider, JobContext
from . import cache
from .loader import (LoadSpec, PipelineHolder, free_memory, hub_offline, import_torch, is_folder_ref, pick_device,
                     precision_for, resolve_location)
from .runner import SAMPLERS, SCHEDULES, RunJob, StepHooks, make_job, png_bytes, run
from .settings import DiffusersLocalSettings


_Image = tuple[bytes, int, int, int]
"""One output image: PNG bytes, width and height in pixels, seed."""


class DiffusersLocalProvider(ImageProvider):
    """In-process diffusers adapter (config type ``diffusers_local``; settings:
    :class:`DiffusersLocalSettings`; optional ``credentials.hf_token`` for gated hub models)."""

    type: ClassVar[str] = "diffusers_local"
    credential_fields: ClassVar[dict[str, bool]] = {"hf_token": False}
    Settings: ClassVar[type[BaseModel]] = DiffusersLocalSettings
    needs_backend: ClassVar[bool] = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings: DiffusersLocalSettings
        self.holder = PipelineHolder(self.settings.idle_unload_seconds, self.logger)
        self._turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()
        self._stops: dict[str, threading.Event] = {}
        self._pending: set[asyncio.Future[Any]] = set()

    @property
    def capabilities(self) -> Capabilities:
        s = self.settings
        return Capabilities(text_encoder="clip", media=[MediaKind.image], txt2img=True, img2img=True, inpaint=True, max_width=s.max_size,
                            max_height=s.max_size, max_n=s.max_n, negative_prompt=True, seed=True, resumable=False,
                            sizes=self.size_rule())

    def size_rule(self, model: str | None = None) -> SizeRule:
        """Multiples of 8 from 64 to ``max_size`` pixels (diffusers pipelines need sides
        divisible by the VAE's factor 8), the SDXL buckets preferred for an SDXL model."""
        return sizes.local_rule(8, 64, self.settings.max_size, model or self.settings.model,
                                note="diffusers: height and width divisible by 8")

    def _field(self, name: str) -> str:
        return f"providers.{self.id}.settings.{name}"

    def _token(self) -> str | None:
        secret = self.config.credentials.get("hf_token")
        return secret.get_secret_value() if secret is not None else None

    # loading --------------------------------------------------------------------------------

    def _spec(self, request: GenerationRequest | None = None) -> LoadSpec:
        """What to load for ``request`` (blocking: torch import, file checks).

        Raises:
            ConfigError: torch missing, device unavailable, or the model not found locally.
            Unsupported: ``request.model`` names no local model (field ``model``).
        """
        s = self.settings
        device = pick_device(s.device, self.id)
        model = s.model
        if request is not None and request.model and request.model != s.model:
            found = cache.find_model(s, request.model)
            if found is None:
                raise Unsupported(f"model {request.model!r} is not available locally; see the provider's models",
                                  provider=self.id, field="model")
            model, location, local_only = found.id, found.path, True
        else:
            location, local_only = resolve_location(model, cache_dir=s.cache_dir, field=self._field("model"),
                                                    allow_download=s.auto_download)
        return LoadSpec(model=model, location=location, local_only=local_only, pipeline=s.pipeline, device=device,
                        precision=precision_for(device, s.precision), variant=s.variant, cache_dir=s.cache_dir,
                        safety_checker=s.safety_checker, attention_slicing=s.attention_slicing,
                        vae_tiling=s.vae_tiling, cpu_offload=s.cpu_offload, token=self._token())

    def _load_error(self, exc: Exception, spec: LoadSpec) -> ImageStudioError:
        if _is_oom(exc):
            free_memory(spec.device)
            return GenerationFailed(f"out of memory loading {spec.model} on {spec.device}: {exc}",
                                    provider=self.id, retryable=True)
        if isinstance(exc, ImportError):
            return ConfigError(f"cannot load {spec.model}: {exc} (cpu_offload needs accelerate)",
                               field=self._field("cpu_offload"))
        return ConfigError(f"cannot load model {spec.model!r} from {spec.location}: {type(exc).__name__}: {exc}",
                           field=self._field("model"))

    def _run_error(self, exc: Exception, spec: LoadSpec) -> ImageStudioError:
        if _is_oom(exc):
            free_memory(spec.device)
            return GenerationFailed(f"out of memory on {spec.device}: {exc}; try a smaller size or n, "
                                    "attention_slicing or cpu_offload", provider=self.id, retryable=True)
        if isinstance(exc, ValueError):
            return InvalidRequest(f"{spec.model}: {exc}")
        return GenerationFailed(f"{spec.model} failed: {type(exc).__name__}: {exc}", provider=self.id)

    # generation -----------------------------------------------------------------------------

    async def generate(self, request: GenerationRequest, ctx: JobContext) -> GenerationResult:
        """Generate ``request.n`` PNGs in this process. Raises: see the module docstring;
        JobCanceled on cancel (no image returned), ProviderTimeout past ``ctx.timeout``."""
        ctx.raise_if_canceled()
        s = self.settings
        job = await asyncio.to_thread(make_job, request, steps=s.default_steps, guidance=s.default_cfg_scale,
                                      strength=s.default_strength)  # decodes and resizes the input images
        spec = await asyncio.to_thread(self._spec, request)
        lock = self._turns.setdefault(asyncio.get_running_loop(), asyncio.Lock())
        await _acquire(lock, ctx)
        try:
            images, info = await self._run(spec, job, ctx)
        finally:
            lock.release()
        files = [GeneratedFile(data=data, mime_type="image/png", media=MediaKind.image, width=width, height=height,
                               seed=seed, parameters=info) for data, width, height, seed in images]
        return GenerationResult(files=files, provider=self.id, model=spec.model, info=info)

    async def _run(self, spec: LoadSpec, job: RunJob, ctx: JobContext) -> tuple[list[_Image], dict[str, Any]]:
        stop = self._stops.setdefault(ctx.job_id, threading.Event())
        hooks = StepHooks(asyncio.get_running_loop(), ctx, steps=job.steps, stop=stop,
                          deadline=time.monotonic() + ctx.remaining, preview_every=self.settings.preview_every)
        watcher = asyncio.ensure_future(_set_on_cancel(ctx, stop))
        try:
            result = await asyncio.to_thread(self._work, spec, job, hooks)
        except BaseException:
            stop.set()  # our awaiting task was canceled or the run failed: stop the thread too
            raise
        finally:
            watcher.cancel()
            self._stops.pop(ctx.job_id, None)
        await hooks.drain()
        if hooks.timed_out:
            raise ProviderTimeout(f"{spec.model} ran past the job's {ctx.timeout:.0f} s timeout "
                                  f"(step {hooks.done_steps}); the partial image was discarded", provider=self.id)
        if stop.is_set() or ctx.canceled:
            raise JobCanceled(f"job {ctx.job_id} canceled at step {hooks.done_steps}; partial image discarded")
        return result

    def _work(self, spec: LoadSpec, job: RunJob, hooks: StepHooks) -> tuple[list[_Image], dict[str, Any]]:
        """Load (if needed) and run, in the worker thread, holding the pipeline lock; returns the
        kept images as ``(png bytes, width, height, seed)`` and the parameters used."""
        self.holder.begin()
        try:
            with self.holder.lock:
                if hooks.stop.is_set():
                    return [], {}
                try:
                    pipe = self.holder.pipeline(spec, job.mode)
                except Exception as exc:  # noqa: BLE001 - every load failure is mapped and named
                    raise self._load_error(exc, spec) from exc
                try:
                    images, nsfw = run(pipe, job, hooks, spec.device)
                except ImageStudioError:
                    raise
                except Exception as exc:  # noqa: BLE001 - mapped to the error tree
                    raise self._run_error(exc, spec) from exc
                info = {"steps": job.steps, "cfg_scale": job.guidance, "denoising_strength": job.strength,
                        "sampler": job.sampler or type(pipe.scheduler).__name__, "pipeline": type(pipe).__name__,
                        "model": spec.model, "device": spec.device, "precision": spec.precision,
                        "width": job.width, "height": job.height}
        finally:
            self.holder.end()
        kept = self._keep_safe(list(zip(images, job.seeds)), nsfw, info)
        return [(png_bytes(im), im.width, im.height, seed) for im, seed in kept], info

    def _keep_safe(self, pairs: list[tuple[Any, int]], nsfw: list[bool] | None, info: dict) -> list[tuple[Any, int]]:
        """Drop images the safety checker flagged; all flagged -> ContentRejected."""
        if not nsfw or not any(nsfw):
            return pairs
        kept = [pair for pair, flagged in zip(pairs, nsfw) if not flagged]
        if not kept:
            raise ContentRejected("the model's safety checker flagged every image", provider=self.id)
        info["safety_dropped"] = len(pairs) - len(kept)
        return kept

    async def cancel(self, ctx: JobContext) -> None:
        """Stop the running generation of ``ctx.job_id`` (its image is discarded)."""
        stop = self._stops.get(ctx.job_id)
        if stop is not None:
            stop.set()

    # health, models, options -----------------------------------------------------------------

    def _probe(self) -> dict[str, Any]:
        torch = import_torch(self.id)
        try:
            diffusers_version = importlib.metadata.version("diffusers")
        except importlib.metadata.PackageNotFoundError as exc:
            raise ConfigError("diffusers is not installed: pip install 'open-webui-image-studio[local]'",
                              field=f"providers.{self.id}.type") from exc
        spec = self._spec()
        return {"device": spec.device, "precision": spec.precision, "torch": torch.__version__,
                "diffusers": diffusers_version, "model": spec.model, "location": spec.location,
                "available_locally": spec.local_only, "loaded": self.holder.loaded is not None,
                "offline": hub_offline()}

    async def health(self, backend: BackendConfig | None = None) -> HealthStatus:
        """ok when torch and diffusers import, the device exists and the model is on disk (or
        may be downloaded: ``auto_download`` on and not offline). Never downloads, never raises."""
        started = time.monotonic()
        try:
            details = await asyncio.to_thread(self._probe)
        except Exception as exc:  # noqa: BLE001 - health never raises
            message = exc.message if isinstance(exc, ImageStudioError) else f"{type(exc).__name__}: {exc}"
            return HealthStatus(ok=False, provider=self.id, latency=time.monotonic() - started, message=message,
                                details={"field": getattr(exc, "field", None)})
        where = "loaded" if details["loaded"] else "on disk" if details["available_locally"] else "to download"
        return HealthStatus(ok=True, provider=self.id, latency=time.monotonic() - started, details=details,
                            message=f"{details['model']} ({where}) on {details['device']} {details['precision']}")

    def _model_info(self, model: cache.LocalModel) -> ModelInfo:
        loaded = self.holder.spec is not None and self.holder.spec.model == model.id
        return ModelInfo(id=model.id, name=model.id.rsplit("/", 1)[-1], kind="checkpoint", provider=self.id,
                         details={"size_bytes": model.size_bytes, "location": model.path, "source": model.source,
                                  "pipeline_class": model.pipeline_class, "loaded": loaded,
                                  "configured": model.id == self.settings.model})

    async def list_models(self, backend: BackendConfig | None = None) -> list[ModelInfo]:
        """Diffusers pipelines on disk: configured folder, ``model_dirs`` and the HF cache."""
        models = await asyncio.to_thread(cache.local_models, self.settings)
        return [self._model_info(m) for m in models]

    async def options(self, backend: BackendConfig | None = None) -> dict[str, Any]:
        """``{"samplers", "schedulers", "default_steps", "default_cfg_scale"}``."""
        s = self.settings
        return {"samplers": list(SAMPLERS), "schedulers": list(SCHEDULES), "default_steps": s.default_steps,
                "default_cfg_scale": s.default_cfg_scale}

    async def download_model(self, repo_id: str,
                             progress_callback: Callable[[cache.DownloadProgress], Any] | None = None) -> ModelInfo:
        """Download hub pipeline ``repo_id`` into the cache; ``progress_callback`` (sync or
        async) gets :class:`.cache.DownloadProgress` reports on the event loop.

        Raises:
            ConfigError: HF_HUB_OFFLINE is set. InvalidRequest: not a hub id (field ``repo_id``).
            NotFound: no such repo. AuthenticationFailed: gated or private (set
            ``credentials.hf_token``). ProviderUnavailable: the hub cannot be reached.
        """
        if hub_offline():
            raise ConfigError("downloads are off: HF_HUB_OFFLINE is set", field="HF_HUB_OFFLINE",
                              source="environment")
        if is_folder_ref(repo_id) or repo_id.count("/") != 1:
            raise InvalidRequest(f"{repo_id!r} is not a hub repo id (org/name)", field="repo_id")
        loop = asyncio.get_running_loop()
        report = (lambda p: loop.call_soon_threadsafe(self._deliver, progress_callback, p)) if progress_callback \
            else None
        try:
            await asyncio.to_thread(cache.download, repo_id, cache_dir=self.settings.cache_dir,
                                    token=self._token(), variant=self.settings.variant, report=report)
        except Exception as exc:  # noqa: BLE001 - mapped below
            raise _hub_error(exc, repo_id, self.id) from exc
        found = await asyncio.to_thread(cache.find_model, self.settings, repo_id)
        if found is None:
            raise NotFound(f"{repo_id} downloaded but holds no diffusers pipeline (no model_index.json)")
        return self._model_info(found)

    def _deliver(self, callback: Callable[[cache.DownloadProgress], Any], progress: cache.DownloadProgress) -> None:
        result = callback(progress)
        if inspect.isawaitable(result):
            fut = asyncio.ensure_future(result)
            self._pending.add(fut)
            fut.add_done_callback(self._pending.discard)

    async def delete_model(self, repo_id: str) -> int:
        """Delete hub model ``repo_id`` from the HF cache (unloading it first if loaded);
        returns the bytes freed. Folders are never deleted.

        Raises:
            NotFound: ``repo_id`` is not in the cache.
        """
        if self.holder.spec is not None and self.holder.spec.model == repo_id:
            await asyncio.to_thread(self.holder.unload)
        freed = await asyncio.to_thread(cache.delete, repo_id, self.settings.cache_dir)
        if freed is None:
            raise NotFound(f"model {repo_id!r} is not in the Hugging Face cache")
        return freed

    async def close(self) -> None:
        """Free the pipeline and stop the idle timer."""
        await asyncio.to_thread(self.holder.unload)


def _is_oom(exc: BaseException) -> bool:
    return type(exc).__name__ == "OutOfMemoryError" or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def _hub_error(exc: Exception, repo_id: str, provider: str) -> ImageStudioError:
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    if isinstance(exc, GatedRepoError):
        return AuthenticationFailed(f"{repo_id} is gated: accept its terms and set credentials.hf_token",
                                    provider=provider)
    if isinstance(exc, RepositoryNotFoundError):
        return NotFound(f"no model {repo_id!r} on the hub (or it is private: set credentials.hf_token)")
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, HfHubHTTPError) and status in (401, 403):
        return AuthenticationFailed(f"hub refused {repo_id}: {exc}", provider=provider, status=status)
    if isinstance(exc, (LocalEntryNotFoundError, HfHubHTTPError, OSError)):
        return ProviderUnavailable(f"cannot download {repo_id}: {exc}", provider=provider, status=status)
    return ProviderError(f"cannot download {repo_id}: {type(exc).__name__}: {exc}", provider=provider)


async def _acquire(lock: asyncio.Lock, ctx: JobContext) -> None:
    """Take ``lock``, giving up on cancel (JobCanceled) or at the deadline (ProviderTimeout)."""
    if not lock.locked():
        await lock.acquire()  # free: taken at once (an asyncio.Lock grants it without yielding)
        return
    acquire = asyncio.ensure_future(lock.acquire())
    canceled = asyncio.ensure_future(ctx.cancel_event.wait())
    try:
        await asyncio.wait({acquire, canceled}, timeout=ctx.remaining, return_when=asyncio.FIRST_COMPLETED)
        if acquire.done() and not ctx.canceled:
            return
    except BaseException:
        _drop(acquire, lock)
        raise
    finally:
        canceled.cancel()
    _drop(acquire, lock)
    ctx.raise_if_canceled()
    raise ProviderTimeout("timed out waiting for the previous generation on this pipeline", provider=ctx.provider_id)


def _drop(acquire: asyncio.Future[Any], lock: asyncio.Lock) -> None:
    """Give up a pending ``lock.acquire()``: release the lock if it was granted meanwhile."""
    if acquire.done():
        if not acquire.cancelled() and acquire.exception() is None:
            lock.release()
    else:
        acquire.cancel()


async def _set_on_cancel(ctx: JobContext, stop: threading.Event) -> None:
    await ctx.cancel_event.wait()
    stop.set()


__all__ = ["DiffusersLocalProvider"]
