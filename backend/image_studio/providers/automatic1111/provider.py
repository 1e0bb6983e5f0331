"""Automatic1111 provider: the adapter class for stable-diffusion-webui, Forge and SD.Next.

The wire format it follows (AUTOMATIC1111/stable-diffusion-webui v1.10 ``modules/api/models.py``,
``modules/api/api.py``, ``modules/progress.py``, ``modules/processing.py``) is described, built
and parsed in :mod:`.wire`; this module does the HTTP calls, the progress polling and the cancel.

One job at a time per backend: A1111 runs one generation at a time and queues the rest inside
its process, and its interrupt is global. So every provider instance in this event loop holds an
``asyncio.Lock`` per backend URL while a generation is in flight: our jobs wait here (cancelable,
within their timeout) instead of inside A1111, the progress we read is our job's, and an
interrupt is only sent after ``/internal/progress`` says our task is the active one. Jobs sent by
other clients (the web UI itself, another worker process) still queue inside A1111; we report
them as "queued" and never interrupt them.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import weakref
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field

from ...config import BackendConfig
from ...errors import (GenerationFailed, ImageStudioError, ProviderError, ProviderTimeout, ProviderUnavailable,
                       Unsupported)
from ... import sizes
from ...types import SizeRule
from ...types import (Capabilities, GeneratedFile, GenerationRequest, GenerationResult, HealthStatus, MediaKind,
                      ModelInfo)
from ..base import ImageProvider, JobContext
from .wire import UPSCALE_PATH, answer_error, build_payload, decode_data_url, generated_files, parse_info, step_counts

_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = weakref.WeakKeyDictionary()


class Automatic1111Settings(BaseModel):
    """Settings of an Automatic1111 / Forge / SD.Next provider. Times in seconds, sizes in pixels."""

    model_config = ConfigDict(extra="forbid")

    poll_interval: float = Field(0.75, ge=0.05, le=10, description="seconds between progress polls")
    live_preview: bool = Field(True, description="ask for live preview images while sampling")
    request_timeout: float = Field(15.0, gt=0, le=300, description="seconds for lists, options, progress")
    health_timeout: float = Field(5.0, gt=0, le=60, description="seconds for the health probe")
    cancel_grace: float = Field(10.0, ge=0, le=120, description="seconds to wait for an interrupted job to stop")
    max_size: int = Field(2048, ge=64, le=16384, description="largest width or height, pixels")
    max_n: int = Field(8, ge=1, le=64, description="largest batch_size")


def backend_lock(url: str) -> asyncio.Lock:
    """The lock that serialises our generations on the backend at ``url`` (this event loop's)."""
    return _LOCKS.setdefault(asyncio.get_running_loop(), {}).setdefault(url, asyncio.Lock())


@dataclass
class _PollState:
    preview_id: int = -1
    last: tuple[Any, ...] | None = None


class Automatic1111Provider(ImageProvider):
    """Adapter for Automatic1111, Forge and SD.Next (config types ``automatic1111``, ``forge``,
    ``sdnext``). Backend credentials: ``backend.username``/``password``, else the provider's
    ``credentials: {username, password}`` (HTTP Basic, for ``--api-auth``)."""

    type: ClassVar[str] = "automatic1111"
    credential_fields: ClassVar[dict[str, bool]] = {"username": False, "password": False}
    Settings: ClassVar[type[BaseModel]] = Automatic1111Settings
    needs_backend: ClassVar[bool] = True
    default_url: ClassVar[str | None] = "http://127.0.0.1:7860"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._interrupted: set[tuple[str, str]] = set()

    @property
    def capabilities(self) -> Capabilities:
        s = self.settings
        return Capabilities(text_encoder="clip", media=[MediaKind.image], txt2img=True, img2img=True, inpaint=True, upscale=True,
                            max_width=s.max_size, max_height=s.max_size, max_n=s.max_n, loras=True, vae=True,
                            hires=True, resumable=False, sizes=self.size_rule())

    def size_rule(self, model: str | None = None) -> SizeRule:
        """Multiples of 8 from 64 to ``max_size`` pixels (the web UI's sliders step 8; the
        latent is an eighth of the image), the SDXL buckets preferred for an SDXL checkpoint."""
        return sizes.local_rule(8, 64, self.settings.max_size, model,
                                note="Automatic1111 / Forge / SD.Next: width and height step 8")

    # plumbing ------------------------------------------------------------------------------

    def _auth(self, backend: BackendConfig | None) -> httpx.BasicAuth | None:
        creds = self.config.credentials
        user = (backend.username if backend else None) or (
            creds["username"].get_secret_value() if "username" in creds else None)
        password = backend.password if backend and backend.password else creds.get("password")
        return httpx.BasicAuth(user, password.get_secret_value() if password else "") if user else None

    def _http_kw(self, backend: BackendConfig | None, timeout: float | httpx.Timeout) -> dict[str, Any]:
        return {"auth": self._auth(backend), "headers": dict(backend.headers) if backend else {}, "timeout": timeout}

    def _check(self, response: httpx.Response, backend: BackendConfig | None, *, what: str,
               request: GenerationRequest | None = None, generation: bool = False) -> None:
        """Raise the error an A1111 answer means (:func:`.wire.answer_error`); return for 2xx.
        Answers without an A1111 shape go as :func:`base.raise_for_status` (401/403 ->
        AuthenticationFailed ...)."""
        error = answer_error(response, what=what, request=request, generation=generation,
                             **self.error_kwargs(backend))
        if error is not None:
            raise error
        self.raise_for_status(response, backend, what=what)


    async def _get_json(self, backend: BackendConfig | None, path: str, *, optional: bool = False,
                        timeout: float | None = None) -> Any:
        """GET ``path`` and decode it; None for a 404 when ``optional`` (a missing extension)."""
        async with self.transport_errors(backend):
            resp = await self.http.get(self.backend_url(backend) + path,
                                       **self._http_kw(backend, timeout or self.settings.request_timeout))
        if optional and resp.status_code == 404:
            return None
        self._check(resp, backend, what=f"GET {path}")
        try:
            return resp.json()
        except ValueError as exc:
            raise ProviderUnavailable(f"GET {path}: not JSON", **self.error_kwargs(backend)) from exc

    # generation ----------------------------------------------------------------------------

    async def generate(self, request: GenerationRequest, ctx: JobContext) -> GenerationResult:
        """Run ``request`` with POST ``/sdapi/v1/txt2img`` or ``/img2img`` on ``ctx.backend``,
        polling ``/internal/progress`` every ``poll_interval`` s into ``ctx.report_progress``.

        Raises:
            JobCanceled: canceled (the backend is interrupted if it was running our job).
            InvalidRequest: a 422 (field named) or a bad-input answer.
            AuthenticationFailed, ProviderUnavailable, ProviderTimeout, GenerationFailed.
            Unsupported: a video request.
        """
        ctx.raise_if_canceled()
        if request.media is not MediaKind.image:
            raise Unsupported("Automatic1111 makes images only", provider=self.id, field="media")
        backend = ctx.backend or self.backends[0]
        url = self.backend_url(backend)
        task_id = f"task(studio-{ctx.job_id}-{secrets.token_hex(4)})"
        path, body = build_payload(request, task_id)
        lock = backend_lock(url)
        await self._acquire(lock, ctx, backend)
        try:
            await ctx.remember(task_id)
            data = await self._run(ctx, backend, path, body, request, task_id)
        finally:
            lock.release()
            self._interrupted.discard((url, task_id))
        if path == UPSCALE_PATH:  # ExtrasSingleImageResponse: one "image", no info
            data = {"images": [data.get("image")]}
        info = parse_info(data.get("info"))
        files = self._files(data, info, backend)
        keep = {k: info[k] for k in ("version", "job_timestamp", "sd_model_hash", "all_seeds") if k in info}
        return GenerationResult(files=files, provider=self.id, backend=backend.label if backend else None,
                                model=info.get("sd_model_name") or request.model, provider_job_id=task_id,
                                info={"task_id": task_id, **keep})

    async def _acquire(self, lock: asyncio.Lock, ctx: JobContext, backend: BackendConfig | None) -> None:
        """Take ``lock``, giving up on cancel (JobCanceled) or when the attempt's time is out."""
        acquire = asyncio.ensure_future(lock.acquire())
        canceled = asyncio.ensure_future(ctx.cancel_event.wait())
        try:
            await asyncio.wait({acquire, canceled}, timeout=ctx.remaining, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            _drop(acquire, lock)
            raise
        finally:
            canceled.cancel()
        if acquire.done() and not ctx.canceled:
            return
        _drop(acquire, lock)
        ctx.raise_if_canceled()
        raise ProviderTimeout("timed out waiting for this backend's previous job", **self.error_kwargs(backend))

    async def _run(self, ctx: JobContext, backend: BackendConfig | None, path: str, body: dict[str, Any],
                   request: GenerationRequest, task_id: str) -> dict[str, Any]:
        """POST the job and poll its progress until the answer, a cancel or the deadline."""
        if ctx.remaining <= 0:
            raise ProviderTimeout("no time left for this attempt", **self.error_kwargs(backend))
        # The POST may wait a little past the deadline: our loop notices first and interrupts.
        timeout = httpx.Timeout(ctx.remaining + 5.0, connect=min(10.0, ctx.remaining))
        post = asyncio.ensure_future(self._post(ctx, backend, path, body, request, timeout))
        canceled = asyncio.ensure_future(ctx.cancel_event.wait())
        poll = _PollState()
        try:
            while not post.done():
                await asyncio.wait({post, canceled}, timeout=self.settings.poll_interval,
                                   return_when=asyncio.FIRST_COMPLETED)
                if post.done():
                    break
                if ctx.canceled or ctx.remaining <= 0:
                    await self._stop(ctx, backend, task_id, post)
                    ctx.raise_if_canceled()
                    raise ProviderTimeout(f"job {ctx.job_id} ran past its {ctx.timeout:g} s",
                                          **self.error_kwargs(backend))
                await self._poll(ctx, backend, task_id, request, poll)
            return post.result()
        finally:
            canceled.cancel()
            if not post.done():
                post.cancel()
            elif not post.cancelled():
                post.exception()  # retrieved: raised above or deliberately dropped on cancel

    async def _post(self, ctx: JobContext, backend: BackendConfig | None, path: str, body: dict[str, Any],
                    request: GenerationRequest, timeout: httpx.Timeout) -> dict[str, Any]:
        async with self.transport_errors(backend):
            resp = await ctx.http.post(self.backend_url(backend) + path, json=body, **self._http_kw(backend, timeout))
        self._check(resp, backend, what=f"POST {path}", request=request, generation=True)
        try:
            data = resp.json()
        except ValueError as exc:
            raise GenerationFailed(f"POST {path}: answer is not JSON", **self.error_kwargs(backend)) from exc
        if not isinstance(data, dict):
            raise GenerationFailed(f"POST {path}: answer is not an object", **self.error_kwargs(backend))
        return data

    async def _poll(self, ctx: JobContext, backend: BackendConfig | None, task_id: str,
                    request: GenerationRequest, st: _PollState) -> None:
        """One ``/internal/progress`` poll; reports progress when it changed or a preview came.
        Poll failures are logged and skipped: the POST decides the job's fate."""
        payload = {"id_task": task_id, "id_live_preview": st.preview_id, "live_preview": self.settings.live_preview}
        timeout = min(self.settings.request_timeout, max(ctx.remaining, 0.1))
        try:
            async with self.transport_errors(backend):
                resp = await ctx.http.post(self.backend_url(backend) + "/internal/progress", json=payload,
                                           **self._http_kw(backend, timeout))
            data = resp.json() if resp.is_success else None
        except (ProviderError, ValueError) as exc:
            ctx.logger.debug("progress poll of %s failed: %s", task_id, exc)
            return
        if not isinstance(data, dict) or not (data.get("active") or data.get("queued")):
            return
        preview = decode_data_url(data.get("live_preview"))
        if preview is not None and isinstance(data.get("id_live_preview"), int):
            st.preview_id = data["id_live_preview"]
        value, maximum = step_counts(data if data.get("active") else {}, request)
        message = data.get("textinfo") or (None if data.get("active") else "queued on the backend")
        if preview is None and st.last == (value, maximum, message):
            return
        st.last = (value, maximum, message)
        await ctx.report_progress(value, maximum, preview[0] if preview else None,
                                  preview_mime=preview[1] if preview else "image/png", message=message)

    def _files(self, data: dict[str, Any], info: dict[str, Any], backend: BackendConfig | None) -> list[GeneratedFile]:
        """The generated images of answer ``data`` (:func:`.wire.generated_files`: a leading grid
        and extension outputs skipped). Raises GenerationFailed naming this provider and ``backend``."""
        return generated_files(data, info, **self.error_kwargs(backend))

    # cancel --------------------------------------------------------------------------------

    async def _stop(self, ctx: JobContext, backend: BackendConfig | None, task_id: str, post: asyncio.Future) -> None:
        """Interrupt our task once it is the active one, and wait up to ``cancel_grace`` s for
        the POST to end, so that the next job does not start behind a still-running one."""
        deadline = time.monotonic() + self.settings.cancel_grace
        interrupted = False
        while not post.done() and (left := deadline - time.monotonic()) > 0:
            if not interrupted:
                interrupted = await self._interrupt_if_running(ctx.http, backend, task_id)
            await asyncio.wait({post}, timeout=min(left, self.settings.poll_interval))

    async def _interrupt_if_running(self, http: httpx.AsyncClient, backend: BackendConfig | None, task_id: str) -> bool:
        """POST ``/sdapi/v1/interrupt`` if ``/internal/progress`` says ``task_id`` is active;
        True once interrupted. Never raises: failures are logged."""
        url = self.backend_url(backend)
        if (url, task_id) in self._interrupted:
            return True
        kw = self._http_kw(backend, self.settings.request_timeout)
        try:
            async with self.transport_errors(backend):
                resp = await http.post(f"{url}/internal/progress", json={"id_task": task_id, "live_preview": False},
                                       **kw)
                if not resp.is_success or (resp.json() or {}).get("active") is not True:
                    return False
                self._interrupted.add((url, task_id))
                resp = await http.post(url + "/sdapi/v1/interrupt", **kw)
            self._check(resp, backend, what="POST /sdapi/v1/interrupt")
        except (ImageStudioError, ValueError, AttributeError) as exc:  # AttributeError: a non-object answer
            self.logger.warning("could not interrupt %s on %s: %s", task_id, url, exc)
            return (url, task_id) in self._interrupted
        return True

    async def cancel(self, ctx: JobContext) -> None:
        """Interrupt the backend if ``ctx.provider_job_id`` is the job it is running. Best effort."""
        if ctx.provider_job_id:
            await self._interrupt_if_running(ctx.http, ctx.backend or self.backends[0], ctx.provider_job_id)

    # metadata ------------------------------------------------------------------------------

    async def health(self, backend: BackendConfig | None = None) -> HealthStatus:
        """GET ``/sdapi/v1/options`` (authenticated, so bad credentials show) within
        ``health_timeout`` s; ``details.checkpoint`` is the loaded checkpoint. Never raises."""
        backend = backend or self.backends[0]
        label, started = backend.label if backend else None, time.monotonic()
        try:
            opts = await self._get_json(backend, "/sdapi/v1/options", timeout=self.settings.health_timeout)
        except ImageStudioError as exc:
            return HealthStatus(ok=False, provider=self.id, backend=label, latency=time.monotonic() - started,
                                message=exc.message)
        checkpoint = opts.get("sd_model_checkpoint") if isinstance(opts, dict) else None
        return HealthStatus(ok=True, provider=self.id, backend=label, latency=time.monotonic() - started,
                            details={"checkpoint": checkpoint})

    async def list_models(self, backend: BackendConfig | None = None) -> list[ModelInfo]:
        """Checkpoints from GET ``/sdapi/v1/sd-models``; ``id`` is the title A1111 accepts in
        ``sd_model_checkpoint``. Raises ProviderError when the backend is unreachable."""
        backend = backend or self.backends[0]
        items = await self._get_json(backend, "/sdapi/v1/sd-models")
        return [ModelInfo(id=m["title"], name=m.get("model_name"), kind="checkpoint", provider=self.id,
                          backend=backend.label if backend else None,
                          details={k: m.get(k) for k in ("hash", "sha256", "filename", "config") if m.get(k)})
                for m in items or [] if isinstance(m, dict) and m.get("title")]

    async def options(self, backend: BackendConfig | None = None) -> dict[str, Any]:
        """``{"samplers", "schedulers", "checkpoint", "vae", "loras", "upscalers", "vaes"}``
        (names); LoRAs, upscalers, VAEs and schedulers are left empty where the route 404s."""
        backend = backend or self.backends[0]
        samplers, opts, schedulers, loras, upscalers, vaes = await asyncio.gather(
            self._get_json(backend, "/sdapi/v1/samplers"), self._get_json(backend, "/sdapi/v1/options"),
            *(self._get_json(backend, p, optional=True) for p in
              ("/sdapi/v1/schedulers", "/sdapi/v1/loras", "/sdapi/v1/upscalers", "/sdapi/v1/sd-vae")))

        def names(items: Any, key: str = "name") -> list[str]:
            return [i[key] for i in items or [] if isinstance(i, dict) and i.get(key)]

        opts = opts if isinstance(opts, dict) else {}
        return {"samplers": names(samplers), "schedulers": names(schedulers), "loras": names(loras),
                "upscalers": names(upscalers), "vaes": names(vaes, "model_name"),
                "checkpoint": opts.get("sd_model_checkpoint"), "vae": opts.get("sd_vae")}


def _drop(acquire: asyncio.Future, lock: asyncio.Lock) -> None:
    """Give back a lock whose acquisition we no longer want, taken or not."""
    if acquire.done() and not acquire.cancelled():
        lock.release()
    else:
        acquire.cancel()
