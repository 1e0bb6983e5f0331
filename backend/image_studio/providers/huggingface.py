"""Hugging Face provider: text-to-image through the Inference Providers router (HF Inference).

Wire format followed:

* https://huggingface.co/docs/inference-providers/tasks/text-to-image: ``POST
  https://router.huggingface.co/hf-inference/models/{model}`` with ``Authorization: Bearer
  hf_...`` and JSON ``{"inputs": prompt, "parameters": {"negative_prompt", "width", "height",
  "num_inference_steps", "guidance_scale", "scheduler", "seed"}}``; the answer is the image as
  raw bytes. Headers ``x-use-cache`` (default true: a repeated body gets the cached image) and
  ``x-wait-for-model`` (wait for a cold model instead of a 503).
* huggingface/huggingface_hub ``src/huggingface_hub/constants.py`` (``INFERENCE_PROXY_TEMPLATE
  = "https://router.huggingface.co/{provider}"``), ``inference/_providers/hf_inference.py``
  (``HFInferenceTask``: route ``/models/{model}``, body ``{"inputs", "parameters"}``) and
  ``inference/_client.py`` (``text_to_image`` parameters).
* Hub API, ``hf_api.py``: ``GET https://huggingface.co/api/whoami-v2`` (``whoami``: the token's
  owner and role) and ``GET /api/models?pipeline_tag=text-to-image&inference_provider=...``
  (``list_models``).

Errors come as ``{"error": "..."}``: 401/403 bad token or no access (gated model, missing
"Inference Providers" permission), 402 the month's included credits are used up, 404 a model
HF Inference does not serve, 429 rate limited, 503 with ``estimated_time`` while a model loads.

Only the ``hf-inference`` route is implemented: the router's other routes (``fal-ai``,
``replicate``, ``together`` ...) each take their own provider-side model id (the Hub's
``inferenceProviderMapping``), body and answer shape (``_providers/fal_ai.py``,
``replicate.py``, ``together.py``), so they are no one uniform path; this project's fal and
replicate adapters serve those services directly.
"""

from __future__ import annotations

import re
import secrets
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from ..config import BackendConfig
from ..errors import (AuthenticationFailed, ContentRejected, GenerationFailed, ImageStudioError,
                      InvalidRequest, ProviderError, ProviderTimeout, RateLimited, Unsupported)
from .. import sizes
from ..types import (Capabilities, GeneratedFile, GenerationMode, GenerationRequest, GenerationResult, HealthStatus,
                     MediaKind, ModelInfo)
from .base import ImageProvider, JobContext, parse_retry_after
from .cloudkit import mime_of, probe
from .common import bearer, image_size, json_or_none

_SAFETY = re.compile(r"nsfw|not safe for work|safety (checker|filter)|unsafe content|content policy|moderat",
                     re.IGNORECASE)
_PARAM_FIELDS = (("num_inference_steps", "steps"), ("guidance_scale", "cfg_scale"),
                 ("negative_prompt", "negative_prompt"), ("width", "width"), ("height", "height"),
                 ("scheduler", "scheduler"), ("seed", "seed"), ("inputs", "prompt"))


class HuggingFaceSettings(BaseModel):
    """Settings of a Hugging Face provider. Times in seconds, sizes in pixels."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field("black-forest-labs/FLUX.1-schnell", min_length=3,
                       description="Hub model id used when the request names none (a text-to-image model "
                                   "served by HF Inference)")
    inference_provider: Literal["hf-inference"] = Field(
        "hf-inference", description="router route; only HF Inference is implemented (fal and Replicate have "
                                    "their own adapters)")
    wait_for_model: bool = Field(False, description="send x-wait-for-model: wait for a cold model (within the "
                                 "job's timeout) instead of getting 503 'model is loading'")
    use_cache: bool = Field(False, description="send x-use-cache: true lets HF answer a repeated request "
                            "with the cached image")
    hub_url: str = Field("https://huggingface.co", description="Hub API base for the health probe and the "
                         "model list")
    request_timeout: float = Field(15.0, gt=0, le=120, description="seconds for the health probe and model list")
    models_limit: int = Field(50, ge=1, le=500, description="most models listed from the Hub")
    max_size: int = Field(2048, ge=64, le=8192, description="largest width or height offered, pixels")
    max_n: int = Field(4, ge=1, le=10, description="most images per request; each image is one call")


class HuggingFaceProvider(ImageProvider):
    """Adapter for Hugging Face Inference Providers, HF Inference route (config type
    ``huggingface``). Credentials: ``api_key``, a Hugging Face token (``hf_...``) with the
    "Make calls to Inference Providers" permission. ``backends[0].url`` replaces the router
    base ``https://router.huggingface.co`` (a proxy)."""

    type: ClassVar[str] = "huggingface"
    credential_fields: ClassVar[dict[str, bool]] = {"api_key": True}
    Settings: ClassVar[type[BaseModel]] = HuggingFaceSettings
    default_url: ClassVar[str | None] = "https://router.huggingface.co"

    @property
    def capabilities(self) -> Capabilities:
        s = self.settings
        return Capabilities(media=[MediaKind.image], txt2img=True, max_width=s.max_size, max_height=s.max_size,
                            max_n=s.max_n, negative_prompt=True, seed=True,
                            sizes=sizes.multiple_of(8, 64, s.max_size,
                                                    note="diffusers-served models: sides divisible by 8"))

    def _headers(self, backend: BackendConfig | None) -> dict[str, str]:
        """Backend headers, the bearer token and the cache/wait options. Raises ConfigError
        when the token is missing."""
        return {**(dict(backend.headers) if backend else {}), **bearer(self),
                "x-use-cache": "true" if self.settings.use_cache else "false",
                **({"x-wait-for-model": "true"} if self.settings.wait_for_model else {})}

    def _check(self, response: httpx.Response, backend: BackendConfig | None, *, what: str,
               request: GenerationRequest | None = None) -> None:
        """Raise what a non-2xx answer means (:meth:`answer_error`, then
        :func:`base.raise_for_status`); return for 2xx."""
        if response.is_success:
            return
        error = self.answer_error(response, what=what, request=request, backend=backend)
        if error is not None:
            raise error
        self.raise_for_status(response, backend, what=what)

    # generation ----------------------------------------------------------------------------

    @staticmethod
    def body(request: GenerationRequest, seed: int) -> dict[str, Any]:
        """The JSON body: ``{"inputs": prompt, "parameters": {...}}``; ``steps`` ->
        ``num_inference_steps``, ``cfg_scale`` -> ``guidance_scale``; ``request.extra`` is
        merged into ``parameters`` (e.g. ``max_sequence_length``)."""
        params: dict[str, Any] = {"width": request.width, "height": request.height, "seed": seed}
        optional = (("negative_prompt", request.negative_prompt), ("num_inference_steps", request.steps),
                    ("guidance_scale", request.cfg_scale), ("scheduler", request.scheduler))
        params.update({k: v for k, v in optional if v is not None})
        params.update(request.extra)
        return {"inputs": request.prompt, "parameters": params}

    async def generate(self, request: GenerationRequest, ctx: JobContext) -> GenerationResult:
        """Make ``request.n`` images, one ``POST {router}/hf-inference/models/{model}`` each.

        Without a seed a random one is drawn (0..2**32-1) and sent, so the stored asset can be
        reproduced; image ``i`` gets ``seed + i``.

        Raises:
            ConfigError: no ``credentials.api_key``.
            Unsupported: video, an init image or a mask (text-to-image only).
            InvalidRequest: a 400/422 (field named), or a request ``model`` HF does not serve.
            ContentRejected: a safety-checker refusal.
            AuthenticationFailed, RateLimited (also "model is loading", with its estimated
            time), ProviderUnavailable, ProviderTimeout, GenerationFailed, ProviderError (402:
            credits used up; 404 for the configured model), JobCanceled.
        """
        ctx.raise_if_canceled()
        if request.media is not MediaKind.image:
            raise Unsupported("Hugging Face text-to-image makes images only", provider=self.id, field="media")
        if request.mode is not GenerationMode.txt2img:
            raise Unsupported("the HF Inference text-to-image task takes no init image or mask", provider=self.id,
                              field="init_image")
        backend = ctx.backend or self.backends[0]
        headers = self._headers(backend)
        model = request.model or self.settings.model
        path = f"/{self.settings.inference_provider}/models/{model}"
        first = request.seed if request.seed is not None and request.seed >= 0 else secrets.randbelow(2**32)
        files: list[GeneratedFile] = []
        for i in range(request.n):
            ctx.raise_if_canceled()
            if ctx.remaining <= 0:
                raise ProviderTimeout("no time left for this attempt", **self.error_kwargs(backend))
            body = self.body(request, first + i)
            async with self.transport_errors(backend):
                response = await self.http.post(self.backend_url(backend) + path, json=body, headers=headers,
                                                timeout=httpx.Timeout(ctx.remaining, connect=min(10.0, ctx.remaining)))
            self._check(response, backend, what=f"POST {path}", request=request)
            files.append(self._file(response, body, model, backend))
            await ctx.report_progress(i + 1, request.n)
        return GenerationResult(files=files, provider=self.id, backend=backend.label if backend else None,
                                model=model, info={"route": self.settings.inference_provider, "calls": request.n})

    def _file(self, response: httpx.Response, body: dict[str, Any], model: str,
              backend: BackendConfig | None) -> GeneratedFile:
        """The image of a 200 answer, with its size and format read from the bytes.

        Raises:
            ContentRejected: a JSON answer naming a safety refusal.
            GenerationFailed: any other answer that is not an image.
        """
        width, height = image_size(response.content)
        if width is None:
            data = json_or_none(response)
            text = str(data.get("error") if isinstance(data, dict) else response.text[:300])
            cls = ContentRejected if _SAFETY.search(text) else GenerationFailed
            raise cls(f"HF Inference answered without an image: {text}", **self.error_kwargs(backend))
        params = {**body["parameters"], "model": model, "route": self.settings.inference_provider}
        ctype = (response.headers.get("content-type") or "").split(";")[0].strip() or None
        return GeneratedFile(data=response.content, mime_type=mime_of(response.content, ctype), width=width,
                             height=height, seed=body["parameters"]["seed"], parameters=params)

    def answer_error(self, response: httpx.Response, *, what: str, request: GenerationRequest | None,
                     backend: BackendConfig | None) -> ImageStudioError | None:
        """The error an HF answer means, or None for :func:`base.raise_for_status` (401/403,
        plain 429, 5xx ...).

        503 "model is loading" -> RateLimited with ``retry_after`` = its ``estimated_time`` (the
        orchestrator waits that long when it is short, else falls back and cools the provider
        down that long); 400/422 -> ContentRejected for a safety refusal, else InvalidRequest
        naming our field; 402 -> ProviderError (not retryable: credits used up); 404 ->
        InvalidRequest ``model`` for a model the request named, else a non-retryable
        ProviderError naming ``settings.model``; 403 -> AuthenticationFailed that says why.
        """
        status = response.status_code
        data = json_or_none(response)
        body = data if isinstance(data, dict) else {}
        raw = body.get("error")
        text = "; ".join(map(str, raw)) if isinstance(raw, list) else str(raw or response.text[:300])
        kw: dict[str, Any] = {**self.error_kwargs(backend), "status": status}
        msg = f"{what}: HTTP {status}: {text}"
        if status == 503 and ("loading" in text.lower() or "estimated_time" in body):
            wait = body.get("estimated_time")
            retry_after = float(wait) if isinstance(wait, (int, float)) else parse_retry_after(
                response.headers.get("retry-after"))
            return RateLimited(f"{what}: the model is loading ({text}); try again in about "
                               f"{retry_after or 20:.0f} s, or set wait_for_model", retry_after=retry_after, **kw)
        if status in (400, 422):
            if _SAFETY.search(text):
                return ContentRejected(msg, **kw)
            return InvalidRequest(f"{what}: HF Inference rejected the request: {text}", field=_field(text, request))
        if status == 402:
            return ProviderError(f"{what}: the Hugging Face account has used up its Inference Providers credits "
                                 f"(HTTP 402): {text}", retryable=False, **kw)
        if status == 404:
            if request is not None and request.model:
                return InvalidRequest(f"{what}: HF Inference does not serve model {request.model!r}: {text}",
                                      field="model")
            return ProviderError(f"{what}: HF Inference does not serve model {self.settings.model!r}: {text}",
                                 retryable=False, field=f"providers.{self.id}.settings.model", **kw)
        if status == 403:
            return AuthenticationFailed(f"{msg} (a gated model not accepted, or a token without the "
                                        "'Inference Providers' permission)", **kw)
        return None

    # probes and lists ----------------------------------------------------------------------

    async def _hub_get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET ``{hub_url}{path}`` with the token; the decoded JSON.

        Raises:
            ConfigError: no token. ProviderError subclasses as the answer warrants.
        """
        headers = bearer(self)
        url = self.settings.hub_url.rstrip("/") + path
        hub = BackendConfig(url=self.settings.hub_url)
        async with self.transport_errors(hub):
            response = await self.http.get(url, params=params, headers=headers, timeout=self.settings.request_timeout)
        self._check(response, hub, what=f"GET {path}")
        return json_or_none(response)

    async def health(self, backend: BackendConfig | None = None) -> HealthStatus:
        """``GET {hub_url}/api/whoami-v2`` (free): ok with the token's owner and role in
        ``details``, or not ok with the reason (a missing token, a refusal ...). Never raises."""

        async def whoami() -> dict[str, Any]:
            body = await self._hub_get("/api/whoami-v2")
            body = body if isinstance(body, dict) else {}
            token = (body.get("auth") or {}).get("accessToken") or {}
            return {"name": body.get("name"), "type": body.get("type"), "token_role": token.get("role"),
                    "model": self.settings.model}

        status = await probe(self, backend or self.backends[0], whoami)
        if status.ok:
            status.message = f"token of {status.details['name'] or 'unknown'} accepted"
        return status

    async def list_models(self, backend: BackendConfig | None = None) -> list[ModelInfo]:
        """The configured model first, then the Hub's text-to-image models that the route
        serves (``GET /api/models?pipeline_tag=text-to-image&inference_provider=...``, trending
        first, at most ``models_limit``).

        Raises:
            ConfigError: no token. ProviderError subclasses when the Hub cannot be reached.
        """
        params = {"pipeline_tag": "text-to-image", "inference_provider": self.settings.inference_provider,
                  "sort": "trendingScore", "limit": self.settings.models_limit}
        listed = await self._hub_get("/api/models", params)
        out = [ModelInfo(id=self.settings.model, kind="model", provider=self.id, details={"default": True})]
        for item in listed if isinstance(listed, list) else []:
            mid = item.get("id") or item.get("modelId") if isinstance(item, dict) else None
            if mid and mid != self.settings.model:
                details = {k: item[k] for k in ("likes", "downloads", "trendingScore", "library_name") if k in item}
                out.append(ModelInfo(id=mid, kind="model", provider=self.id, details=details))
        return out

    async def options(self, backend: BackendConfig | None = None) -> dict[str, Any]:
        """``{"routes": [...], "parameters": [...]}``: the implemented router route and the
        documented text-to-image parameters."""
        return {"routes": ["hf-inference"], "parameters": [name for name, _ in _PARAM_FIELDS if name != "inputs"]}


def _field(text: str, request: GenerationRequest | None) -> str | None:
    """Our field named in an error ``text``: a passed-through ``extra`` key, else the first
    documented parameter mentioned (``num_inference_steps`` -> ``steps`` ...)."""
    for key in (request.extra if request is not None else {}):
        if re.search(rf"\b{re.escape(key)}\b", text):
            return f"extra.{key}"
    for name, ours in _PARAM_FIELDS:
        if re.search(rf"\b{name}\b", text):
            return ours
    return None
