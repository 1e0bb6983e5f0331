"""OpenAI provider: the adapter class for the OpenAI Images API (GPT image models and DALL·E).

Wire format: https://platform.openai.com/docs/api-reference/images (create, create edit) and
https://platform.openai.com/docs/api-reference/models/list, with the openai-python SDK types
(``src/openai/types/image_generate_params.py``, ``image_edit_params.py``,
``images_response.py``); details in :mod:`.wire` and :mod:`.families`.

* txt2img: ``POST {base}/images/generations`` with a JSON body.
* img2img and inpaint: ``POST {base}/images/edits``, multipart (``image`` or ``image[]``,
  ``mask``, ``prompt``, ``model``, ``n``, ``size`` and the model's fields as form text).
* ``{base}`` includes ``/v1`` (the OpenAI convention): ``https://api.openai.com/v1`` unless
  ``backends[0].url`` says otherwise.
* The API answers synchronously: there is no remote job to remember, poll or cancel; a
  cancel drops the request in flight (:func:`..cloudkit.until_canceled`).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field

from ...config import BackendConfig
from ...errors import GenerationFailed, ProviderTimeout, ProviderUnavailable, Unsupported
from ...storage.mime import sniff_or_none
from ...types import (MAX_SIDE, Capabilities, GeneratedFile, GenerationMode, GenerationRequest, GenerationResult,
                      HealthStatus, MediaKind, ModelInfo, SizeRule)
from ..base import ImageProvider, JobContext
from ..cloudkit import probe, until_canceled
from ..common import bearer, download, image_size, json_or_none
from .families import (DALL_E_2, EDIT_ONLY, GENERATE_ONLY, MODEL_FIELDS, MODEL_SIZE_KEYS, OTHER, Family, check_size,
                       family_of, is_image_model, size_rule_of)
from .wire import answer_error, decoded_images, edit_files, form_value, passthrough

CONNECT_TIMEOUT = 10.0
"""Seconds to open a connection, at most."""


class OpenAISettings(BaseModel):
    """Settings of an ``openai`` provider. Times in seconds. A field left null is not sent
    (the API's default applies); model fields go only to the models that take them."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field("gpt-image-1", min_length=1,
                       description="default model (gpt-image-1, gpt-image-1-mini, gpt-image-1.5, gpt-image-2, "
                                   "dall-e-3, dall-e-2 ...); a request's model overrides it")
    quality: Literal["auto", "low", "medium", "high", "standard", "hd"] | None = Field(
        None, description="GPT image: auto/low/medium/high; dall-e-3: standard/hd; dall-e-2: standard")
    style: Literal["vivid", "natural"] | None = Field(None, description="dall-e-3 only: vivid or natural")
    background: Literal["transparent", "opaque", "auto"] | None = Field(
        None, description="GPT image only; transparent needs output_format png or webp")
    output_format: Literal["png", "jpeg", "webp"] | None = Field(None, description="GPT image only (default png)")
    output_compression: int | None = Field(None, ge=0, le=100,
                                           description="GPT image with jpeg or webp: compression, percent")
    moderation: Literal["low", "auto"] | None = Field(None, description="GPT image generations: low or auto")
    input_fidelity: Literal["high", "low"] | None = Field(
        None, description="GPT image edits: how closely to keep the input image's features")
    response_format: Literal["b64_json", "url"] | None = Field(
        "b64_json", description="DALL·E only: b64_json (image in the answer) or url (downloaded at once)")
    user: str | None = Field(None, max_length=256, description="end-user id sent as `user` (abuse monitoring)")
    organization: str | None = Field(None, description="sent as the OpenAI-Organization header")
    project: str | None = Field(None, description="sent as the OpenAI-Project header")
    request_timeout: float = Field(300.0, gt=0, le=3600,
                                   description="seconds a generation call may take (bounded by the job's time)")
    health_timeout: float = Field(10.0, gt=0, le=120, description="seconds for the health probe and model list")


class OpenAIProvider(ImageProvider):
    """Adapter for the OpenAI Images API (config type ``openai``).

    Credentials: ``api_key`` (sent as ``Authorization: Bearer``). ``backends[0].url``
    replaces the base URL (a proxy, a regional endpoint); its ``headers`` are sent too.
    ``request.extra`` fields go into the body as they are (``quality``, ``style``,
    ``background``, ``output_format``, ``output_compression``, ``moderation``,
    ``input_fidelity``, ``user`` ...), except ``size`` (``"auto"`` or ``"WxH"``, checked
    against the model's sizes first) and ``reference_images`` (base64 images sent as further
    ``image[]`` parts of an edit).
    """

    type: ClassVar[str] = "openai"
    credential_fields: ClassVar[dict[str, bool]] = {"api_key": True}
    Settings: ClassVar[type[BaseModel]] = OpenAISettings
    default_url: ClassVar[str | None] = "https://api.openai.com/v1"
    display_name: ClassVar[str] = "OpenAI"

    # model rules (overridden by the OpenAI-compatible subclass) -----------------------------

    def family(self, model: str | None) -> Family:
        """The :class:`Family` whose rules apply to ``model``."""
        return family_of(model) if model else OTHER

    def caps_for(self, family: Family) -> Capabilities:
        """Capabilities with the rules of ``family``."""
        return Capabilities(media=[MediaKind.image], txt2img=True, img2img=family.img2img, inpaint=family.edits,
                            max_width=family.max_side, max_height=family.max_side, max_n=family.max_n,
                            negative_prompt=False, seed=False, resumable=False, sizes=size_rule_of(family),
                            max_prompt_chars=family.max_prompt)

    @property
    def capabilities(self) -> Capabilities:
        """What the configured default model can do (a request's ``model`` is checked again);
        ``model_sizes`` gives the sizes of dall-e-2, dall-e-3, gpt-image-1 and gpt-image-2."""
        caps = self.caps_for(self.family(self.settings.model))
        if self.type != "openai":
            return caps
        rules = {name: size_rule_of(fam) for name, fam in MODEL_SIZE_KEYS.items()}
        return caps.model_copy(update={"model_sizes": {k: v for k, v in rules.items() if v is not None}})

    def size_rule(self, model: str | None = None) -> SizeRule | None:
        """The sizes ``model`` (default: the configured model) accepts, by its family."""
        return size_rule_of(self.family(model or self.default_model()))

    def default_model(self) -> str | None:
        """The model used when a request names none."""
        return self.settings.model

    def size_field(self, request: GenerationRequest, model: str | None) -> str | None:
        """The ``size`` body field. Raises InvalidRequest naming ``width``/``height``."""
        return check_size(self.family(model), model or "this model", request.width, request.height,
                          request.extra.get("size"))

    def prompt_text(self, request: GenerationRequest) -> str:
        """The ``prompt`` body field (OpenAI has no negative prompt: it is not sent)."""
        return request.prompt

    def keep_model(self, model_id: str) -> bool:
        """Whether ``GET /models`` entry ``model_id`` is listed (image models only)."""
        return is_image_model(model_id)

    def key_headers(self) -> dict[str, str]:
        """``{"Authorization": "Bearer <api_key>"}``.

        Raises:
            ConfigError: no ``credentials.api_key`` (``providers.<id>.credentials.api_key``).
        """
        return bearer(self)

    def auth_headers(self) -> dict[str, str]:
        """:meth:`key_headers` plus ``OpenAI-Organization`` / ``OpenAI-Project`` where set.

        Raises:
            ConfigError: see :meth:`key_headers`.
        """
        headers = self.key_headers()
        if self.settings.organization:
            headers["OpenAI-Organization"] = self.settings.organization
        if self.settings.project:
            headers["OpenAI-Project"] = self.settings.project
        return headers

    # request building ---------------------------------------------------------------------

    def _headers(self, backend: BackendConfig | None) -> dict[str, str]:
        return {**(backend.headers if backend else {}), **self.auth_headers()}

    def model_fields(self, family: Family, *, edit: bool) -> dict[str, Any]:
        """The settings that ``family`` takes on this route, left out where null."""
        out: dict[str, Any] = {}
        for name in MODEL_FIELDS:
            value = getattr(self.settings, name, None)
            if value is None or name not in family.fields or name in (GENERATE_ONLY if edit else EDIT_ONLY):
                continue
            if (name == "quality" and family.qualities and value not in family.qualities) or (
                    name == "style" and family.styles and value not in family.styles):
                continue  # the setting is meant for another family of models
            out[name] = value
        if self.settings.user:
            out["user"] = self.settings.user
        return out

    def build_fields(self, request: GenerationRequest, model: str | None) -> dict[str, Any]:
        """The body fields (JSON for a generation, form fields for an edit).

        Raises:
            InvalidRequest: a size the model does not take (``width``/``height``), ``extra.stream``.
        """
        fields: dict[str, Any] = {"prompt": self.prompt_text(request), "n": request.n}
        if model:
            fields["model"] = model
        if (size := self.size_field(request, model)) is not None:
            fields["size"] = size
        fields.update(self.model_fields(self.family(model), edit=request.init_image is not None))
        fields.update(passthrough(request.extra))
        return fields

    def check_request(self, request: GenerationRequest, model: str | None) -> None:
        """Refuse what ``model`` cannot do (sizes are :meth:`size_field`'s to check).

        Raises:
            Unsupported: video, an edit the model does not take, an upscale, LoRAs, a VAE,
                hires fix, ``n`` over its maximum; ``field`` names the request field.
        """
        caps = self.caps_for(self.family(model))
        reason = caps.model_copy(update={"max_width": MAX_SIDE, "max_height": MAX_SIDE}).check(request)
        if reason is None:
            return
        mode = request.mode
        field = next(name for name, bad in (
            ("media", request.media not in caps.media), ("init_image", mode is GenerationMode.img2img),
            ("mask", mode is GenerationMode.inpaint), ("upscale", mode is GenerationMode.upscale),
            ("loras", bool(request.loras)), ("vae", request.vae is not None), ("hires", request.hires is not None),
            ("n", True)) if bad)
        raise Unsupported(f"{self.display_name}, {model or 'the configured model'}: {reason}", provider=self.id,
                          field=field)

    # generation ---------------------------------------------------------------------------

    async def generate(self, request: GenerationRequest, ctx: JobContext) -> GenerationResult:
        """POST ``/images/generations`` (txt2img) or ``/images/edits`` (init image, mask) and
        return the images, downloading ``url`` results at once.

        ``info`` holds ``usage`` (GPT image token counts), ``created`` (Unix seconds) and the
        ``request_id`` header. Progress: 0 of ``n`` when sent, ``n`` of ``n`` when done.

        Raises:
            ConfigError: no API key. Unsupported: see :meth:`check_request`.
            InvalidRequest: a size the model does not take, or a 400 (field named).
            ContentRejected, RateLimited, AuthenticationFailed, ProviderUnavailable,
            ProviderTimeout, GenerationFailed, JobCanceled.
        """
        ctx.raise_if_canceled()
        model = request.model or self.default_model()
        self.check_request(request, model)
        backend = ctx.backend or self.backends[0]
        headers = self._headers(backend)
        fields = self.build_fields(request, model)
        edit = request.init_image is not None
        path = "/images/edits" if edit else "/images/generations"
        kw: dict[str, Any] = {"json": fields}
        if edit:
            files = edit_files(request, png_only=self.family(model) is DALL_E_2)
            kw = {"data": {k: form_value(v) for k, v in fields.items()}, "files": files}
        await ctx.report_progress(0, request.n, message=f"sent to {self.display_name}")
        response = await self._post(ctx, backend, path, headers, kw, request)
        payload = json_or_none(response)
        files_out = await self._files(ctx, backend, payload, fields, model)
        await ctx.report_progress(len(files_out), len(files_out))
        info = {k: payload.get(k) for k in ("usage", "created") if payload.get(k) is not None}
        if response.headers.get("x-request-id"):
            info["request_id"] = response.headers["x-request-id"]
        return GenerationResult(files=files_out, provider=self.id, backend=backend.label if backend else None,
                                model=model, info=info)

    async def _post(self, ctx: JobContext, backend: BackendConfig | None, path: str, headers: dict[str, str],
                    kw: dict[str, Any], request: GenerationRequest) -> httpx.Response:
        """One generation call, bounded by ``request_timeout`` and the job's time left."""
        if ctx.remaining <= 0:
            raise ProviderTimeout("no time left for this attempt", **self.error_kwargs(backend))
        left = min(self.settings.request_timeout, ctx.remaining)
        timeout = httpx.Timeout(left, connect=min(CONNECT_TIMEOUT, left))
        async with self.transport_errors(backend):
            response = await until_canceled(ctx, self.http.post(self.backend_url(backend) + path, headers=headers,
                                                                timeout=timeout, **kw))
        self.check_answer(response, backend, what=f"POST {path}", request=request)
        if not isinstance(json_or_none(response), dict):
            raise GenerationFailed(f"POST {path}: the answer is not a JSON object", **self.error_kwargs(backend))
        return response

    def check_answer(self, response: httpx.Response, backend: BackendConfig | None, *, what: str,
                     request: GenerationRequest | None = None) -> None:
        """Raise the error an answer means (:func:`.wire.answer_error`, then
        :func:`..base.raise_for_status`); return for 2xx."""
        error = answer_error(response, request=request, what=what, provider=self.id,
                             backend=backend.label if backend else None)
        if error is not None:
            raise error
        self.raise_for_status(response, backend, what=what)

    def _download_headers(self, backend: BackendConfig | None, url: str) -> dict[str, str] | None:
        """Credentials for an output URL on the API's own host (LocalAI serves its images
        there); none for any other host (OpenAI's are pre-signed storage links)."""
        base, target = urlsplit(self.backend_url(backend)), urlsplit(url)
        if (base.scheme, base.netloc) != (target.scheme, target.netloc):
            return None
        return self._headers(backend)

    async def _files(self, ctx: JobContext, backend: BackendConfig | None, payload: dict[str, Any],
                     fields: dict[str, Any], model: str | None) -> list[GeneratedFile]:
        """The answer's images as files; ``parameters`` hold what the answer reports (size,
        quality, background, output format, revised prompt) or else what was sent."""
        items = decoded_images(payload, **self.error_kwargs(backend))
        shared = {k: payload.get(k) or fields.get(k) for k in ("size", "quality", "style", "background",
                                                               "output_format")}
        out = []
        for item in items:
            data, ctype = item["data"], None
            if data is None:
                data, ctype = await download(self, backend, item["url"], ctx=ctx,
                                             headers=self._download_headers(backend, item["url"]))
            sniffed = sniff_or_none(data)
            mime = sniffed.mime if sniffed else ctype or f"image/{shared.get('output_format') or 'png'}"
            width, height = image_size(data)
            params = {"model": model, **shared, "revised_prompt": item["revised_prompt"]}
            out.append(GeneratedFile(data=data, mime_type=mime, media=MediaKind.image, width=width, height=height,
                                     parameters={k: v for k, v in params.items() if v is not None}))
        return out

    # metadata -----------------------------------------------------------------------------

    async def _models(self, backend: BackendConfig | None) -> list[dict[str, Any]]:
        """The entries of ``GET {base}/models`` (``{"object": "list", "data": [{"id",
        "created", "owned_by"}]}``). Raises ConfigError or ProviderError."""
        headers = self._headers(backend)
        async with self.transport_errors(backend):
            response = await self.http.get(self.backend_url(backend) + "/models", headers=headers,
                                           timeout=self.settings.health_timeout)
        self.check_answer(response, backend, what="GET /models")
        body = json_or_none(response)
        items = body.get("data") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise ProviderUnavailable("GET /models: no data list in the answer", **self.error_kwargs(backend))
        return [m for m in items if isinstance(m, dict) and isinstance(m.get("id"), str)]

    async def health_details(self, backend: BackendConfig | None) -> dict[str, Any]:
        """The health check's call, GET ``{base}/models``; returns the status details.
        Raises ConfigError or ProviderError."""
        models = await self._models(backend)
        return {"image_models": sum(1 for m in models if self.keep_model(m["id"])), "models": len(models)}

    async def health(self, backend: BackendConfig | None = None) -> HealthStatus:
        """:meth:`health_details` (a free model list) within ``health_timeout`` s; ``details``
        counts the models listed. Never raises."""
        backend = backend or self.backends[0]
        return await probe(self, backend, lambda: self.health_details(backend))

    async def list_models(self, backend: BackendConfig | None = None) -> list[ModelInfo]:
        """The image models of ``GET {base}/models``, sorted by id. Raises ConfigError (no
        API key) or ProviderError."""
        backend = backend or self.backends[0]
        models = await self._models(backend)
        return [ModelInfo(id=m["id"], name=m["id"], kind="model", provider=self.id,
                          backend=backend.label if backend else None,
                          details={k: m[k] for k in ("owned_by", "created") if m.get(k) is not None})
                for m in sorted(models, key=lambda m: m["id"]) if self.keep_model(m["id"])]

    async def options(self, backend: BackendConfig | None = None) -> dict[str, Any]:
        """Choices for the configured model: ``{"model", "sizes", "qualities", "styles",
        "backgrounds", "output_formats", "moderation", "max_n"}`` (empty lists where the
        model takes no such field; ``sizes`` None when any size within the maximum goes)."""
        model = self.default_model()
        fam = self.family(model)
        sizes = list(fam.sizes) + (["auto"] if fam.auto_size else []) if fam.sizes is not None else None
        return {"model": model, "sizes": sizes, "qualities": list(fam.qualities), "styles": list(fam.styles),
                "backgrounds": ["auto", "opaque", "transparent"] if "background" in fam.fields else [],
                "output_formats": ["png", "jpeg", "webp"] if "output_format" in fam.fields else [],
                "moderation": ["auto", "low"] if "moderation" in fam.fields else [], "max_n": fam.max_n}
