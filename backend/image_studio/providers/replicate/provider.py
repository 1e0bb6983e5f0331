"""Replicate provider: predictions on https://api.replicate.com/v1 (Bearer token).

Flow of one job (wire format in :mod:`.wire`, sources named there):

1. The model's input schema is read once per model (GET ``/v1/models/{owner}/{name}`` or
   ``.../versions/{id}``, free, cached) so that our fields go to the names that model takes.
2. POST ``/v1/models/{owner}/{name}/predictions`` (official models) or ``/v1/predictions``
   with ``{"version", "input"}``, with ``Prefer: wait=N`` (``sync_wait`` s, at most 60) for a
   synchronous answer; the prediction id is remembered (``ctx.remember``) at once.
3. If the answer is not finished, GET ``/v1/predictions/{id}`` every ``poll_interval`` s
   (``starting`` -> ``processing`` -> ``succeeded | failed | canceled``) with progress read from
   tqdm bars in ``logs`` (else ticks); a restarted job (``ctx.resume_id``) only polls.
4. The output URLs (or ``data:`` URLs) are fetched at once and returned as files;
   ``metrics.predict_time`` (seconds of GPU time, what Replicate bills) goes into ``info``.

Cancel: POST ``/v1/predictions/{id}/cancel``. Health: GET ``/v1/account`` (free).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, Field

from ...config import BackendConfig
from ...errors import GenerationFailed, ImageStudioError, InvalidRequest, ProviderError, ProviderTimeout
from ...types import GeneratedFile, GenerationRequest, GenerationResult, HealthStatus, ModelInfo
from ..base import JobContext
from ..cloudkit import probe
from ..common import bearer, json_or_none, poll
from ..remote_jobs import (RemoteModelProvider, RemoteModelSettings, cancel_remote_on_error, fetch_output,
                           output_file, public_input, seed_from_logs, tolerant, tqdm_progress)
from .wire import (ASPECT_RATIOS, TERMINAL, BuiltInput, ModelRef, answer_error, build_input, failure_error,
                   input_properties, output_urls)

SYNC_GRACE = 10.0
"""Seconds a ``Prefer: wait`` POST may take past its wait (upload, queueing, the answer)."""


class ReplicateSettings(RemoteModelSettings):
    """Settings of a Replicate provider (the shared ones in :class:`RemoteModelSettings`).
    Models are ``owner/name`` (official models), ``owner/name:<version id>`` or a version id.
    Times in seconds, sizes in pixels."""

    model: str = Field("black-forest-labs/flux-schnell",
                       description="txt2img model: owner/name (official), owner/name:<version id> or a version id")
    img2img_model: str | None = Field("black-forest-labs/flux-dev",
                                      description="model for requests with an init image; empty: no img2img")
    inpaint_model: str | None = Field("black-forest-labs/flux-fill-dev",
                                      description="model for requests with an init image and a mask; empty: no inpaint")
    use_schema: bool = Field(True, description="read each model's input schema (free GET) to map our fields "
                                               "to the names it takes")
    size_input: Literal["aspect_ratio", "width_height"] = Field(
        "aspect_ratio", description="how to send the size when a model's schema is not known")
    aspect_ratios: list[str] = Field(default_factory=lambda: list(ASPECT_RATIOS),
                                     description="aspect ratios to choose from when the schema gives none")
    sync_wait: int = Field(10, ge=0, le=60, description="seconds to hold the create call open (Prefer: wait); 0: "
                                                        "always poll")
    cancel_after: bool = Field(False, description="send Cancel-After (the attempt's time left) so Replicate "
                                                  "cancels a prediction we stopped waiting for")


class ReplicateProvider(RemoteModelProvider):
    """Adapter for Replicate (config type ``replicate``). Credentials: ``api_key`` (an API
    token, sent as ``Authorization: Bearer``). ``request.extra`` is merged into the
    prediction's ``input`` last, so it can set any input the model takes."""

    type: ClassVar[str] = "replicate"
    credential_fields: ClassVar[dict[str, bool]] = {"api_key": True}
    Settings: ClassVar[type[BaseModel]] = ReplicateSettings
    default_url: ClassVar[str | None] = "https://api.replicate.com/v1"
    service: ClassVar[str] = "Replicate"
    settings: ReplicateSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._schemas: dict[tuple[str, str], dict[str, Any]] = {}

    # plumbing ------------------------------------------------------------------------------

    def _headers(self, backend: BackendConfig | None) -> dict[str, str]:
        """Auth plus the backend's extra headers. Raises ConfigError when the key is missing."""
        return {**(backend.headers if backend else {}), **bearer(self)}

    async def _api(self, method: str, backend: BackendConfig | None, path: str, *, headers: dict[str, str],
                   timeout: float | httpx.Timeout, **kw: Any) -> httpx.Response:
        """A call to ``path`` under the API base (``/v1``)."""
        return await self._call(method, backend, self.backend_url(backend) + path, headers=headers, timeout=timeout,
                                **kw)

    # generation ----------------------------------------------------------------------------

    async def generate(self, request: GenerationRequest, ctx: JobContext) -> GenerationResult:
        """Run ``request`` as a Replicate prediction (module docstring for the flow).

        Raises:
            ConfigError: no ``credentials.api_key``.
            InvalidRequest: a 422 (our field named) or a malformed model name.
            Unsupported: the model has no input for the init image, mask or ``n > 1``.
            AuthenticationFailed, RateLimited (``retry_after``), ProviderUnavailable, ProviderTimeout.
            ContentRejected: the prediction failed on a safety filter (NSFW).
            GenerationFailed: the prediction failed, or was canceled or aborted on Replicate.
            JobCanceled: the job was canceled (the prediction is canceled too).
        """
        ctx.raise_if_canceled()
        backend = ctx.backend or self.backends[0]
        headers = self._headers(backend)
        name, blame = self._model_for(request)
        ref = ModelRef.parse(name, field=blame)
        built: BuiltInput | None = None
        if ctx.resume_id:
            pred_id, pred = ctx.resume_id, None
        else:
            props = await self._properties(ctx, backend, headers, ref)
            built = build_input(request, props, size_input=self.settings.size_input, ratios=self.settings.aspect_ratios,
                                defaults=self.settings.default_input, provider=self.id)
            pred = await self._create(ctx, backend, headers, ref, built, blame)
            pred_id = str(pred["id"])
            await ctx.remember(pred_id)
        if pred is None or not _finished(pred, sync=True):
            pred = await self._wait(ctx, backend, headers, pred_id)
        ctx.raise_if_canceled()
        files = await self._files(ctx, backend, headers, pred)
        info = {k: pred.get(k) for k in ("id", "status", "model", "version", "metrics", "created_at", "completed_at")
                if pred.get(k) is not None}
        if built is not None and built.dropped:
            info["dropped_inputs"] = built.dropped
        return GenerationResult(files=files, provider=self.id, backend=backend.label if backend else None,
                                model=str(pred.get("model") or ref.text), provider_job_id=pred_id, info=info)

    async def _properties(self, ctx: JobContext, backend: BackendConfig | None, headers: dict[str, str],
                          ref: ModelRef) -> dict[str, Any] | None:
        """The model's input properties (cached per model); None when unknown (then the common
        names are sent). Only a refused token is raised; other failures fall back."""
        path = ref.schema_path
        if not self.settings.use_schema or path is None:
            return None
        key = (self.backend_url(backend), ref.text)
        if key in self._schemas:
            return self._schemas[key]
        try:
            resp = await self._api("GET", backend, path, headers=headers, timeout=self._timeout(ctx))
        except ProviderError as exc:
            ctx.logger.warning("no input schema for %s (%s); sending the common input names", ref.text, exc.message)
            return None
        if resp.status_code in (401, 403):
            self.raise_for_status(resp, backend, what=f"GET {path}")
        props = input_properties(json_or_none(resp), versioned=ref.version is not None) if resp.is_success else None
        if props is None:
            ctx.logger.warning("no input schema for %s (HTTP %s)", ref.text, resp.status_code)
            return None
        self._schemas[key] = props
        return props

    async def _create(self, ctx: JobContext, backend: BackendConfig | None, headers: dict[str, str], ref: ModelRef,
                      built: BuiltInput, blame: str) -> dict[str, Any]:
        """POST the prediction; returns the prediction object (finished when the wait sufficed)."""
        if ctx.remaining <= 0:
            raise ProviderTimeout("no time left for this attempt", **self.error_kwargs(backend))
        wait = min(self.settings.sync_wait, int(ctx.remaining))
        hdrs = dict(headers)
        if wait >= 1:
            hdrs["Prefer"] = f"wait={wait}"
        if self.settings.cancel_after and ctx.remaining >= 5:
            hdrs["Cancel-After"] = f"{int(ctx.remaining)}s"
        body: dict[str, Any] = {"input": built.input}
        if ref.version is not None:
            body["version"] = ref.version
        timeout = httpx.Timeout(max(1.0, min(wait + SYNC_GRACE, ctx.remaining)), connect=min(10.0, ctx.remaining + 1))
        resp = await self._api("POST", backend, ref.create_path, headers=hdrs, timeout=timeout, json=body)
        what = f"POST {ref.create_path}"
        error = answer_error(resp, built, what=what, **self.error_kwargs(backend))
        if error is not None:
            raise error
        if resp.status_code == 404:
            msg = f"{what}: Replicate has no model {ref.text!r} (community models need owner/name:<version id>)"
            if blame == "model":
                raise InvalidRequest(msg, field="model")
            raise ProviderError(msg, status=404, retryable=False, field=blame, **self.error_kwargs(backend))
        self.raise_for_status(resp, backend, what=what)
        return self._object(resp, backend, what=what, key="id")

    async def _get(self, ctx: JobContext, backend: BackendConfig | None, headers: dict[str, str],
                   pred_id: str) -> dict[str, Any]:
        path = f"/predictions/{pred_id}"
        resp = await self._api("GET", backend, path, headers=headers, timeout=self._timeout(ctx))
        self.raise_for_status(resp, backend, what=f"GET {path}")
        return self._object(resp, backend, what=f"GET {path}")

    async def _wait(self, ctx: JobContext, backend: BackendConfig | None, headers: dict[str, str],
                    pred_id: str) -> dict[str, Any]:
        """Poll the prediction until it is in a terminal state, reporting progress."""
        fetch = tolerant(lambda: self._get(ctx, backend, headers, pred_id), limit=self.settings.poll_error_limit,
                         logger=ctx.logger, what=f"GET /predictions/{pred_id}")

        async def update(pred: dict[str, Any] | None, n: int) -> None:
            if pred is None or pred.get("status") in TERMINAL:
                return
            steps = tqdm_progress(pred.get("logs")) if pred.get("status") == "processing" else None
            status = str(pred.get("status") or "pending")
            if steps is not None:
                await ctx.report_progress(steps[0], steps[1], message=status)
            else:
                await ctx.report_progress(n, 0, message=status)

        async with cancel_remote_on_error(self, ctx):
            pred = await poll(ctx, fetch, lambda p: p is not None and _finished(p, sync=False),
                              interval=self.settings.poll_interval, on_update=update)
        assert pred is not None
        return pred

    async def _files(self, ctx: JobContext, backend: BackendConfig | None, headers: dict[str, str],
                     pred: dict[str, Any]) -> list[GeneratedFile]:
        """Fetch the outputs of a finished prediction, or raise what its status means."""
        status, kw = pred.get("status"), self.error_kwargs(backend)
        if status == "failed":
            raise failure_error(pred, **kw)
        if status == "canceled":
            ctx.raise_if_canceled()
            raise GenerationFailed(f"prediction {pred.get('id')} was canceled on Replicate", **kw)
        if status == "aborted":
            raise ProviderTimeout(f"prediction {pred.get('id')} passed its Cancel-After deadline before it started",
                                  **kw)
        urls = output_urls(pred.get("output"))
        api_host = httpx.URL(self.backend_url(backend)).host
        fetched = await asyncio.gather(*(
            fetch_output(self, backend, ctx, url, headers=headers if httpx.URL(url).host == api_host else None)
            for url in urls))
        inputs = pred.get("input") if isinstance(pred.get("input"), dict) else {}
        seed = inputs.get("seed") if isinstance(inputs.get("seed"), int) else seed_from_logs(pred.get("logs"))
        params = {"prediction_id": pred.get("id"), "model": pred.get("model"), "version": pred.get("version"),
                  "input": public_input(inputs), "seed": seed}
        files = [f for i, (url, (data, mime)) in enumerate(zip(urls, fetched))
                 if (f := output_file(data, mime, url=url, index=i, seed=seed if i == 0 else None,
                                      parameters={**params, "output_index": i})) is not None]
        if not files:
            raise GenerationFailed(f"prediction {pred.get('id')} finished without an image or video output", **kw)
        return files

    async def cancel(self, ctx: JobContext) -> None:
        """POST ``/v1/predictions/{id}/cancel`` for ``ctx.provider_job_id``. Best effort: logs
        and returns on any failure (a finished prediction answers with its final state)."""
        if not ctx.provider_job_id:
            return
        backend = ctx.backend or self.backends[0]
        path = f"/predictions/{ctx.provider_job_id}/cancel"
        try:
            resp = await self._api("POST", backend, path, headers=self._headers(backend),
                                    timeout=self.settings.request_timeout)
            self.raise_for_status(resp, backend, what=f"POST {path}")
        except ImageStudioError as exc:
            self.logger.warning("cancel of prediction %s failed: %s", ctx.provider_job_id, exc.message)

    # metadata ------------------------------------------------------------------------------

    async def health(self, backend: BackendConfig | None = None) -> HealthStatus:
        """GET ``/v1/account`` (free, authenticated) within ``health_timeout`` s; details are
        the account's ``type`` and ``username``. Never raises."""
        backend = backend or self.backends[0]

        async def account() -> dict[str, Any]:
            resp = await self._api("GET", backend, "/account", headers=self._headers(backend),
                                    timeout=self.settings.health_timeout)
            self.raise_for_status(resp, backend, what="GET /account")
            body = json_or_none(resp)
            body = body if isinstance(body, dict) else {}
            return {"username": body.get("username"), "account_type": body.get("type")}

        return await probe(self, backend, account)

    async def list_models(self, backend: BackendConfig | None = None) -> list[ModelInfo]:
        """The configured models (``model``, ``img2img_model``, ``inpaint_model``,
        ``video_model``, then ``models``), each with its role; no network call."""
        backend = backend or self.backends[0]
        return [ModelInfo(id=name, name=name, kind="model", provider=self.id,
                          backend=backend.label if backend else None, details={"role": role})
                for name, role in self._configured().items()]

    async def options(self, backend: BackendConfig | None = None) -> dict[str, Any]:
        """``{"models", "aspect_ratios", "size_input"}`` for the parameter controls."""
        return {"models": list(self._configured()), "aspect_ratios": list(self.settings.aspect_ratios),
                "size_input": self.settings.size_input}


def _finished(pred: dict[str, Any], *, sync: bool) -> bool:
    """A terminal status; for the synchronous answer also ``processing`` with every file output
    present (Replicate answers ``Prefer: wait`` as soon as the files exist)."""
    if pred.get("status") in TERMINAL:
        return True
    return sync and pred.get("status") == "processing" and bool(output_urls(pred.get("output")))
