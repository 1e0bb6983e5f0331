"""fal provider: fal's queue API (https://queue.fal.run, ``Authorization: Key <FAL_KEY>``).

Flow of one job (wire format and sources in :mod:`.wire`):

1. POST ``{queue}/{model_id}`` with the input JSON; the answer's ``request_id`` is remembered
   (``ctx.remember``) at once. A restarted job (``ctx.resume_id``) skips this.
2. GET ``{queue}/{owner}/{app}/requests/{id}/status?logs=1`` every ``poll_interval`` s:
   ``IN_QUEUE`` (the queue position is reported), ``IN_PROGRESS`` (progress from tqdm bars in
   the logs, else ticks), ``COMPLETED``.
3. GET ``{queue}/{owner}/{app}/requests/{id}`` for the result; its images (or video) are
   fetched at once. Images fal's safety checker flagged (``has_nsfw_concepts``: black
   images) are dropped; when all are, the job is ContentRejected.

Retries: the adapter never retries; fal's queue retries a failed runner itself (up to 10
times). The ``x-fal-*`` request headers are left at fal's defaults: ``x-fal-no-retry`` unset
(fal retries), ``X-Fal-Request-Timeout`` unset (no start deadline: our attempt's timeout and
cancel bound the wait), ``X-Fal-Runner-Hint``, ``X-Fal-Queue-Priority`` (``normal``),
``X-Fal-Store-IO`` and ``X-Fal-Object-Lifecycle-Preference`` unset. A backend's ``headers``
are sent with every call, so an admin can set any of them there.

Cancel: PUT ``.../requests/{id}/cancel``. Health: GET ``https://api.fal.ai/v1/models/pricing
?endpoint_id=<model>`` (free, needs a valid key). Models: GET ``https://api.fal.ai/v1/models
?endpoint_id=...`` (free) for the configured ones.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, Field, field_validator

from ...config import BackendConfig
from ...errors import ContentRejected, GenerationFailed, ImageStudioError, ProviderTimeout
from ...types import GeneratedFile, GenerationRequest, GenerationResult, HealthStatus, ModelInfo
from ..base import JobContext
from ..cloudkit import probe
from ..common import api_key, json_or_none, poll
from ..remote_jobs import (RemoteModelProvider, RemoteModelSettings, cancel_remote_on_error, fetch_output,
                           output_file, tolerant, tqdm_progress)
from .wire import (IMAGE_SIZES, TERMINAL, answer_error, app_id, build_input, nsfw_flags, outputs, request_error,
                   request_urls)

PLATFORM_URL = "https://api.fal.ai/v1"


class FalSettings(RemoteModelSettings):
    """Settings of a fal provider (the shared ones in :class:`RemoteModelSettings`). Models are
    fal model ids (``owner/app[/path]``). Times in seconds, sizes in pixels."""

    model: str = Field("fal-ai/flux/schnell", description="txt2img model id (owner/app[/path])")
    img2img_model: str | None = Field("fal-ai/flux/dev/image-to-image",
                                      description="model for requests with an init image; empty: no img2img")
    inpaint_model: str | None = Field("fal-ai/flux-lora/inpainting",
                                      description="model for requests with an init image and a mask; empty: no inpaint")
    enable_safety_checker: bool = Field(True, description="ask fal's safety checker to screen images")
    platform_url: str = Field(PLATFORM_URL, description="fal Platform API base (model metadata, health probe)")
    poll_interval: float = Field(0.5, ge=0.01, le=30, description="seconds between status polls (grows to 4x)")

    @field_validator("platform_url")
    @classmethod
    def _strip(cls, v: str) -> str:
        return v.strip().rstrip("/")


class FalProvider(RemoteModelProvider):
    """Adapter for fal (config type ``fal``). Credentials: ``api_key`` (a fal key, or
    ``key_id:key_secret``), sent as ``Authorization: Key ...``. ``backends[0].url`` replaces
    the queue base (a proxy, a test server). ``request.extra`` is merged into the input last."""

    type: ClassVar[str] = "fal"
    credential_fields: ClassVar[dict[str, bool]] = {"api_key": True}
    Settings: ClassVar[type[BaseModel]] = FalSettings
    default_url: ClassVar[str | None] = "https://queue.fal.run"
    service: ClassVar[str] = "fal"
    async_only: ClassVar[bool] = True
    settings: FalSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cancel_urls: dict[str, str] = {}

    # plumbing ------------------------------------------------------------------------------

    def _headers(self, backend: BackendConfig | None) -> dict[str, str]:
        """``Authorization: Key`` plus the backend's headers. Raises ConfigError without a key."""
        return {**(backend.headers if backend else {}), "Authorization": f"Key {api_key(self)}"}

    def _check(self, resp: httpx.Response, backend: BackendConfig | None, *, what: str,
               fields: dict[str, str] | None = None) -> None:
        """Raise what a fal error answer means (:func:`.wire.answer_error`), else by status."""
        error = answer_error(resp, fields or {}, what=what, **self.error_kwargs(backend))
        if error is not None:
            raise error
        self.raise_for_status(resp, backend, what=what)

    # generation ----------------------------------------------------------------------------

    async def generate(self, request: GenerationRequest, ctx: JobContext) -> GenerationResult:
        """Run ``request`` through fal's queue (module docstring for the flow).

        Raises:
            ConfigError: no ``credentials.api_key``.
            InvalidRequest: a 422 (our field named) or a malformed model id.
            AuthenticationFailed (401/403), RateLimited (429), ProviderUnavailable (5xx,
                runner failures), ProviderTimeout.
            ContentRejected: ``content_policy_violation``, or every image NSFW-flagged.
            GenerationFailed: the request failed on fal or gave no image.
            JobCanceled: the job was canceled (the fal request is canceled too).
        """
        ctx.raise_if_canceled()
        backend = ctx.backend or self.backends[0]
        headers, base = self._headers(backend), self.backend_url(backend)
        model, blame = self._model_for(request)
        body, fields = build_input(request, safety_checker=self.settings.enable_safety_checker,
                                   defaults=self.settings.default_input, provider=self.id)
        app_id(model, field=blame)  # a malformed model id fails before anything is sent
        if ctx.resume_id:
            rid, answer = ctx.resume_id, None
        else:
            answer = await self._submit(ctx, backend, headers, f"{base}/{model.strip().strip('/')}", body, fields)
            rid = str(answer["request_id"])
            await ctx.remember(rid)
        urls = request_urls(base, model, rid, answer, field=blame)
        self._cancel_urls[rid] = urls["cancel"]
        try:
            status = await self._wait(ctx, backend, headers, urls["status"])
            ctx.raise_if_canceled()
            result = await self._result(ctx, backend, headers, urls["response"], status, fields)
        finally:
            self._cancel_urls.pop(rid, None)
        files = await self._files(ctx, backend, result, rid)
        info = {"request_id": rid, "metrics": status.get("metrics"), "timings": result.get("timings"),
                "seed": result.get("seed"), "has_nsfw_concepts": result.get("has_nsfw_concepts")}
        return GenerationResult(files=files, provider=self.id, backend=backend.label if backend else None,
                                model=model, provider_job_id=rid, info={k: v for k, v in info.items() if v is not None})

    async def _submit(self, ctx: JobContext, backend: BackendConfig | None, headers: dict[str, str], url: str,
                      body: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
        """POST the input to the queue; returns ``{request_id, status_url, response_url, cancel_url}``."""
        if ctx.remaining <= 0:
            raise ProviderTimeout("no time left for this attempt", **self.error_kwargs(backend))
        resp = await self._call("POST", backend, url, headers=headers, timeout=self._timeout(ctx), json=body)
        what = f"POST {httpx.URL(url).path}"
        self._check(resp, backend, what=what, fields=fields)
        return self._object(resp, backend, what=what, key="request_id")

    async def _status(self, ctx: JobContext, backend: BackendConfig | None, headers: dict[str, str],
                      url: str) -> dict[str, Any]:
        resp = await self._call("GET", backend, url, headers=headers, timeout=self._timeout(ctx), params={"logs": "1"})
        self._check(resp, backend, what="GET request status")
        return self._object(resp, backend, what="GET request status")

    async def _wait(self, ctx: JobContext, backend: BackendConfig | None, headers: dict[str, str],
                    url: str) -> dict[str, Any]:
        """Poll the status URL until the request is done, reporting the queue position and progress."""
        fetch = tolerant(lambda: self._status(ctx, backend, headers, url), limit=self.settings.poll_error_limit,
                         logger=ctx.logger, what="GET request status")

        async def update(status: dict[str, Any] | None, n: int) -> None:
            state = str((status or {}).get("status") or "")
            if not status or state in TERMINAL:
                return
            if state == "IN_QUEUE":
                position = status.get("queue_position")
                await ctx.report_progress(0, 0, message=f"queued at position {position}" if position is not None
                                          else "queued")
                return
            logs = status.get("logs") if isinstance(status.get("logs"), list) else []
            steps = tqdm_progress("\n".join(str(line.get("message", "")) for line in logs if isinstance(line, dict)))
            if steps is not None:
                await ctx.report_progress(steps[0], steps[1], message="running")
            else:
                await ctx.report_progress(n, 0, message="running")

        async with cancel_remote_on_error(self, ctx):
            status = await poll(ctx, fetch, lambda s: s is not None and str(s.get("status")) in TERMINAL,
                                interval=self.settings.poll_interval, on_update=update)
        assert status is not None
        return status

    async def _result(self, ctx: JobContext, backend: BackendConfig | None, headers: dict[str, str], url: str,
                      status: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
        """GET the result of a finished request, or raise what its failure means."""
        resp = await self._call("GET", backend, url, headers=headers, timeout=self._timeout(ctx))
        try:
            self._check(resp, backend, what="GET request result", fields=fields)
        except GenerationFailed:
            ctx.raise_if_canceled()  # a client_cancelled answer after our own cancel
            raise
        result = json_or_none(resp)
        if status.get("error") and not (isinstance(result, dict) and outputs(result)):
            error = request_error(str(status["error"]), status.get("error_type"), what="fal request",
                                  **self.error_kwargs(backend))
            raise error or GenerationFailed(f"fal request failed: {status['error']}", **self.error_kwargs(backend))
        return self._object(resp, backend, what="GET request result")

    async def _files(self, ctx: JobContext, backend: BackendConfig | None, result: dict[str, Any],
                     rid: str) -> list[GeneratedFile]:
        """Fetch the result's outputs at once, dropping NSFW-flagged (black) images."""
        items = outputs(result)
        flags = nsfw_flags(result, len(items))
        kept = [(i, item) for i, (item, flagged) in enumerate(zip(items, flags)) if not flagged]
        if items and not kept:
            raise ContentRejected(f"fal's safety checker flagged every image of request {rid}",
                                  **self.error_kwargs(backend))
        fetched = await asyncio.gather(*(fetch_output(self, backend, ctx, item["url"]) for _, item in kept))
        seed = result.get("seed") if isinstance(result.get("seed"), int) else None
        files = []
        for (i, item), (data, mime) in zip(kept, fetched):
            params = {"request_id": rid, "seed": seed, "output_index": i, "nsfw_dropped": len(items) - len(kept)}
            f = output_file(data, mime, url=item["url"], index=i, seed=seed if i == 0 else None, parameters=params,
                            hint=item.get("content_type"))
            if f is not None:
                files.append(f)
        if not files:
            raise GenerationFailed(f"fal request {rid} finished without an image or video",
                                   **self.error_kwargs(backend))
        return files

    async def cancel(self, ctx: JobContext) -> None:
        """PUT the cancel URL of ``ctx.provider_job_id`` (a queued request is dropped, a running
        one is signalled). Best effort: an already completed request (400) or any failure is
        logged, never raised."""
        rid = ctx.provider_job_id
        if not rid:
            return
        backend = ctx.backend or self.backends[0]
        try:
            url = self._cancel_urls.get(rid) or request_urls(self.backend_url(backend), self.settings.model,
                                                             rid)["cancel"]
            resp = await self._call("PUT", backend, url, headers=self._headers(backend),
                                    timeout=self.settings.request_timeout)
            if resp.status_code != 400:  # 400: ALREADY_COMPLETED
                self.raise_for_status(resp, backend, what="PUT request cancel")
        except ImageStudioError as exc:
            self.logger.warning("cancel of fal request %s failed: %s", rid, exc.message)

    # metadata ------------------------------------------------------------------------------

    async def health(self, backend: BackendConfig | None = None) -> HealthStatus:
        """GET ``{platform_url}/models/pricing?endpoint_id=<model>``: free, and it needs a valid
        key, so a refused key shows. Details: the model's unit price. Never raises."""
        backend = backend or self.backends[0]

        async def pricing() -> dict[str, Any]:
            url = f"{self.settings.platform_url}/models/pricing"
            resp = await self._call("GET", backend, url, headers=self._headers(backend),
                                    timeout=self.settings.health_timeout, params={"endpoint_id": self.settings.model})
            self._check(resp, backend, what="GET /v1/models/pricing")
            body = json_or_none(resp)
            prices = body.get("prices") if isinstance(body, dict) else None
            return {"model": self.settings.model, "prices": prices}

        return await probe(self, backend, pricing)

    async def list_models(self, backend: BackendConfig | None = None) -> list[ModelInfo]:
        """The configured models with fal's metadata (display name, category, status) from GET
        ``{platform_url}/models?endpoint_id=...`` (free; the key is sent when set).

        Raises:
            ProviderUnavailable, ProviderTimeout, ProviderError: the Platform API failed.
        """
        backend = backend or self.backends[0]
        configured = self._configured()
        headers = self._headers(backend) if self.config.credentials.get("api_key") else {}
        resp = await self._call("GET", backend, f"{self.settings.platform_url}/models", headers=headers,
                                timeout=self.settings.request_timeout, params=[("endpoint_id", m) for m in configured])
        self._check(resp, backend, what="GET /v1/models")
        body = json_or_none(resp)
        found = {m.get("endpoint_id"): m.get("metadata") or {} for m in
                 (body.get("models") or [] if isinstance(body, dict) else []) if isinstance(m, dict)}
        return [ModelInfo(id=name, name=found.get(name, {}).get("display_name") or name, kind="model",
                          provider=self.id, backend=backend.label if backend else None,
                          details={"role": role, **{k: found.get(name, {}).get(k) for k in ("category", "status")
                                                    if found.get(name, {}).get(k)}})
                for name, role in configured.items()]

    async def options(self, backend: BackendConfig | None = None) -> dict[str, Any]:
        """``{"models", "image_sizes"}``: the configured model ids and fal's ``image_size`` names
        (any ``{width, height}`` works too)."""
        return {"models": list(self._configured()), "image_sizes": list(IMAGE_SIZES)}


__all__ = ["FalProvider", "FalSettings"]
