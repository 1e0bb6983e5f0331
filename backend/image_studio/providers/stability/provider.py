"""Stability AI provider: the REST v2beta Stable Image API (generate, edit, upscale).

Wire format and the pages followed: :mod:`.wire` (https://platform.stability.ai/docs/api-reference).
This module makes the HTTP calls with the shared client, polls the one asynchronous endpoint
(creative upscale, ``GET /v2beta/results/{id}``) and probes the account balance for health.

What runs where:

* txt2img: ``generate/<service>`` (settings ``service``, or ``request.model``: ``ultra``,
  ``core``, ``sd3``, or an sd3 model name such as ``sd3.5-large``).
* img2img: ``generate/sd3`` (``mode=image-to-image``) or ``generate/ultra``; core has no image
  input, so core's img2img runs on sd3 with the settings' ``sd3_model``.
* inpaint (init image + mask): ``edit/inpaint``; ``request.extra["edit"]`` picks ``outpaint``,
  ``search-and-replace`` or ``erase`` instead.
* upscale: ``request.extra["upscale"]`` = ``fast`` | ``conservative`` | ``creative`` (with an
  init image). Creative is asynchronous: its id is remembered before polling, and a restarted
  job (``ctx.resume_id``) polls that id without submitting again.

Stability returns one image per call, so ``n`` images are ``n`` calls (seeds ``seed``,
``seed+1`` ... when a seed is given). Every other ``request.extra`` key is sent as a form field
(``style_preset``, ``aspect_ratio``, ``grow_mask``, ``creativity``, ``left`` ...).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from ...config import BackendConfig
from ...errors import GenerationFailed, InvalidRequest, ProviderTimeout, Unsupported
from ...types import (Capabilities, GeneratedFile, GenerationMode, GenerationRequest, GenerationResult, HealthStatus,
                      MediaKind, ModelInfo)
from ..base import ImageProvider, JobContext
from ... import sizes
from ..cloudkit import probe
from ..common import bearer, image_size, json_or_none, poll
from .wire import RATIO_PIXELS
from .wire import (ASPECT_RATIOS, EDITS, OUTPUT_FORMATS, SD3_MODELS, SERVICES, STYLE_PRESETS, UPSCALES, Answer, Call,
                   answer_error, check_finish, choose_service, edit_call, generate_call, parse_image, seed_field,
                   upscale_call)

MAX_SIDE = 1536
"""Largest side Stability's generate endpoints return (21:9 at about one megapixel), pixels."""

_MODELS: tuple[tuple[str, str, str], ...] = (
    ("ultra", "Stable Image Ultra", "ultra"),
    ("core", "Stable Image Core", "core"),
    *((m, f"Stable Diffusion {m[3:]}", "sd3") for m in SD3_MODELS),
)


class StabilitySettings(BaseModel):
    """Settings of a Stability AI provider. Times in seconds."""

    model_config = ConfigDict(extra="forbid")

    service: Literal["ultra", "core", "sd3"] = Field(
        "core", description="generate endpoint used when the request names no model: ultra (best, 8 credits), "
                            "core (fast, 3 credits) or sd3 (Stable Diffusion 3.5, see sd3_model)")
    sd3_model: str = Field("sd3.5-large", min_length=3, description="model sent to generate/sd3 (sd3.5-large, "
                           "sd3.5-large-turbo, sd3.5-medium, sd3.5-flash); also runs img2img asked of core")
    output_format: Literal["png", "jpeg", "webp"] = Field("png", description="image format Stability returns")
    style_preset: Literal[STYLE_PRESETS] | None = Field(  # type: ignore[valid-type]
        None, description="style preset sent to Stable Image Core (request.extra.style_preset overrides it)")
    poll_interval: float = Field(10.0, ge=0.01, le=60, description="seconds between polls of a creative upscale "
                                 "result (Stability asks for at most one poll every 10 s)")
    request_timeout: float = Field(15.0, gt=0, le=120, description="seconds for the balance (health) call")
    max_n: int = Field(4, ge=1, le=10, description="most images per request; each image is one paid call")
    client_id: str | None = Field("open-webui-image-studio", max_length=256,
                                  description="stability-client-id header naming this application (empty: none)")


class StabilityProvider(ImageProvider):
    """Adapter for Stability AI's v2beta Stable Image API (config type ``stability``).

    Credentials: ``api_key`` (``sk-...``, sent as ``Authorization: Bearer``).
    """

    type: ClassVar[str] = "stability"
    credential_fields: ClassVar[dict[str, bool]] = {"api_key": True}
    Settings: ClassVar[type[BaseModel]] = StabilitySettings
    default_url: ClassVar[str | None] = "https://api.stability.ai"

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(media=[MediaKind.image], txt2img=True, img2img=True, inpaint=True, upscale=True,
                            max_width=MAX_SIDE, max_height=MAX_SIDE, max_n=self.settings.max_n,
                            negative_prompt=True, seed=True, resumable=True,
                            sizes=sizes.ratios([(r, w, h, None) for r, (w, h) in RATIO_PIXELS.items()],
                                               note="generate/{ultra,core,sd3}: aspect_ratio; edits and upscales "
                                                    "follow the input image"))

    # plumbing ------------------------------------------------------------------------------

    def _headers(self, backend: BackendConfig | None, accept: str) -> dict[str, str]:
        """Auth, ``Accept`` and client headers. Raises ConfigError when the API key is missing."""
        headers = {**(dict(backend.headers) if backend else {}), **bearer(self), "Accept": accept}
        if self.settings.client_id:
            headers["stability-client-id"] = self.settings.client_id
        return headers

    def _check(self, response: httpx.Response, backend: BackendConfig | None, *, what: str,
               request: GenerationRequest | None = None) -> None:
        """Raise the error a Stability answer means (:func:`.wire.answer_error`, then
        :func:`base.raise_for_status`); return for 2xx."""
        if response.is_success:
            return
        error = answer_error(response, what=what, request=request, **self.error_kwargs(backend))
        if error is not None:
            raise error
        self.raise_for_status(response, backend, what=what)

    def _timeout(self, ctx: JobContext) -> httpx.Timeout:
        """What is left of the attempt, as an httpx timeout. Raises ProviderTimeout at 0."""
        if ctx.remaining <= 0:
            raise ProviderTimeout("no time left for this attempt", **self.error_kwargs(ctx.backend))
        return httpx.Timeout(ctx.remaining, connect=min(10.0, ctx.remaining))

    # generation ----------------------------------------------------------------------------

    def plan(self, request: GenerationRequest, index: int = 0) -> Call:
        """The call that makes output ``index`` of ``request`` (see the module docstring).

        Raises:
            InvalidRequest: a bad seed, model, edit or upscaler, or a missing input (field named).
        """
        s = self.settings
        seed = seed_field(request, index)
        upscale, edit = request.extra.get("upscale"), request.extra.get("edit")
        if upscale:
            return upscale_call(request, str(upscale), output_format=s.output_format, seed=seed)
        if edit or request.mode is GenerationMode.inpaint:
            return edit_call(request, str(edit or "inpaint"), output_format=s.output_format, seed=seed)
        service, model = choose_service(request, s.service, s.sd3_model)
        if request.mode is GenerationMode.img2img and service == "core":
            service, model = "sd3", s.sd3_model
        return generate_call(request, service=service, sd3_model=model, output_format=s.output_format,
                             style_preset=s.style_preset, seed=seed)

    async def generate(self, request: GenerationRequest, ctx: JobContext) -> GenerationResult:
        """Make ``request.n`` images, one call each, or resume polling ``ctx.resume_id``.

        Raises:
            ConfigError: no ``credentials.api_key``.
            Unsupported: a video request.
            InvalidRequest: a malformed request (field named), or ``n > 1`` with a creative upscale.
            ContentRejected: moderation refused the prompt or filtered the output.
            AuthenticationFailed, RateLimited, ProviderUnavailable, ProviderTimeout,
            GenerationFailed, ProviderError (402: out of credits), JobCanceled.
        """
        ctx.raise_if_canceled()
        if request.media is not MediaKind.image:
            raise Unsupported("Stability's image API makes images only", provider=self.id, field="media")
        backend = ctx.backend or self.backends[0]
        self._headers(backend, "image/*")  # a missing key is a ConfigError before any call
        if ctx.resume_id:
            answer = await self._poll(ctx, backend, ctx.resume_id, request)
            file = self._file(answer, {"endpoint": "upscale/creative", "generation_id": ctx.resume_id})
            return GenerationResult(files=[file], provider=self.id, backend=backend.label if backend else None,
                                    model="upscale-creative", provider_job_id=ctx.resume_id,
                                    info={"generation_id": ctx.resume_id, "resumed": True})
        calls = [self.plan(request, i) for i in range(request.n)]
        if calls[0].asynchronous and request.n > 1:
            raise InvalidRequest("a creative upscale makes one image per request", field="n")
        files: list[GeneratedFile] = []
        job_id: str | None = None
        for i, call in enumerate(calls):
            ctx.raise_if_canceled()
            answer, job_id = await self._run(ctx, backend, call, request)
            params = {"endpoint": call.label, "model": call.model,
                      **{k: call.fields[k] for k in ("aspect_ratio", "style_preset", "strength") if k in call.fields}}
            if job_id:
                params["generation_id"] = job_id
            files.append(self._file(answer, params))
            await ctx.report_progress(i + 1, len(calls))
        return GenerationResult(files=files, provider=self.id, backend=backend.label if backend else None,
                                model=calls[0].model, provider_job_id=job_id,
                                info={"endpoint": calls[0].label, "calls": len(calls)})

    async def _run(self, ctx: JobContext, backend: BackendConfig | None, call: Call,
                   request: GenerationRequest) -> tuple[Answer, str | None]:
        """POST ``call``; for an asynchronous one remember its id and poll it. Returns the
        finished answer and the generation id (None for a synchronous call)."""
        url = self.backend_url(backend) + call.path
        accept = "application/json" if call.asynchronous else "image/*"
        async with self.transport_errors(backend):
            response = await self.http.post(url, headers=self._headers(backend, accept), files=call.multipart(),
                                            timeout=self._timeout(ctx))
        self._check(response, backend, what=f"POST {call.path}", request=request)
        if not call.asynchronous:
            answer = parse_image(response, self.settings.output_format, **self.error_kwargs(backend))
            check_finish(answer, **self.error_kwargs(backend))
            return answer, None
        body = json_or_none(response)
        gen_id = body.get("id") if isinstance(body, dict) else None
        if not gen_id:
            raise GenerationFailed(f"POST {call.path} answered without a generation id: {response.text[:200]}",
                                   **self.error_kwargs(backend))
        await ctx.remember(str(gen_id))
        return await self._poll(ctx, backend, str(gen_id), request), str(gen_id)

    async def _poll(self, ctx: JobContext, backend: BackendConfig | None, gen_id: str,
                    request: GenerationRequest) -> Answer:
        """Poll ``GET /v2beta/results/{gen_id}`` every ``poll_interval`` s (up to twice that)
        until it is no longer 202, reporting a tick per poll; return the finished image."""
        path = f"/v2beta/results/{gen_id}"
        url = self.backend_url(backend) + path

        async def fetch() -> httpx.Response:
            async with self.transport_errors(backend):
                return await self.http.get(url, headers=self._headers(backend, "image/*"),
                                           timeout=self._timeout(ctx))

        async def update(response: httpx.Response, n: int) -> None:
            if response.status_code == 202:
                body = json_or_none(response)
                status = body.get("status") if isinstance(body, dict) else None
                await ctx.report_progress(n, n + 1, message=str(status or "in-progress"))

        interval = self.settings.poll_interval
        response = await poll(ctx, fetch, lambda r: r.status_code != 202, interval=interval,
                              on_update=update, max_interval=interval * 2)
        self._check(response, backend, what=f"GET {path}", request=request)
        answer = parse_image(response, self.settings.output_format, **self.error_kwargs(backend))
        check_finish(answer, **self.error_kwargs(backend))
        return answer

    def _file(self, answer: Answer, params: dict[str, Any]) -> GeneratedFile:
        """A GeneratedFile from a finished answer (size read from the image).

        Raises:
            GenerationFailed: the bytes are not an image.
        """
        width, height = image_size(answer.data)
        if width is None:
            raise GenerationFailed(f"Stability answered {len(answer.data)} bytes that are not an image",
                                   provider=self.id)
        params = {**params, "finish_reason": answer.finish_reason or "SUCCESS"}
        if answer.seed is not None:
            params["seed"] = answer.seed
        return GeneratedFile(data=answer.data, mime_type=answer.mime, width=width, height=height,
                             seed=answer.seed, parameters=params)

    # probes and lists ----------------------------------------------------------------------

    async def health(self, backend: BackendConfig | None = None) -> HealthStatus:
        """``GET /v1/user/balance`` (free): ok with ``details.credits`` (the account's credit
        balance), or not ok with the reason (a missing key, a refusal ...). Never raises."""
        backend = backend or self.backends[0]

        async def balance() -> dict[str, Any]:
            async with self.transport_errors(backend):
                response = await self.http.get(self.backend_url(backend) + "/v1/user/balance",
                                               headers=self._headers(backend, "application/json"),
                                               timeout=self.settings.request_timeout)
            self._check(response, backend, what="GET /v1/user/balance")
            body = json_or_none(response)
            return {"credits": body.get("credits") if isinstance(body, dict) else None}

        status = await probe(self, backend, balance)
        if status.ok:
            credits = status.details["credits"]
            status.message = f"{credits:.2f} credits left" if isinstance(credits, (int, float)) else "account reachable"
        return status

    async def list_models(self, backend: BackendConfig | None = None) -> list[ModelInfo]:
        """The documented generate services and sd3 models (Stability has no model list call);
        pass an id as ``request.model``."""
        backend = backend or self.backends[0]
        label = backend.label if backend else None
        return [ModelInfo(id=mid, name=name, kind="model", provider=self.id, backend=label,
                          details={"endpoint": f"/v2beta/stable-image/generate/{service}",
                                   "default": service == self.settings.service and (
                                       service != "sd3" or mid == self.settings.sd3_model)})
                for mid, name, service in _MODELS]

    async def options(self, backend: BackendConfig | None = None) -> dict[str, Any]:
        """``{"aspect_ratios", "style_presets", "output_formats", "services", "sd3_models",
        "edits", "upscalers"}``: the documented choices (``request.extra`` keys ``aspect_ratio``,
        ``style_preset``, ``edit``, ``upscale``)."""
        return {"aspect_ratios": list(ASPECT_RATIOS), "style_presets": list(STYLE_PRESETS),
                "output_formats": list(OUTPUT_FORMATS), "services": list(SERVICES), "sd3_models": list(SD3_MODELS),
                "edits": list(EDITS), "upscalers": list(UPSCALES)}
