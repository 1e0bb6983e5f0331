"""Leonardo.Ai provider: text-to-image and image-to-image through Leonardo's REST API.

The wire format and its sources are in :mod:`.wire`. A job is ``POST /generations`` (after an
init-image upload for img2img), then ``GET /generations/{id}`` every ``poll_interval`` s (growing
to 4x) until ``status`` is ``COMPLETE`` or ``FAILED``; the images are downloaded at once. The
``generationId`` is remembered as soon as Leonardo answers, before polling, so a restarted
service resumes polling it (``ctx.resume_id``) and never submits twice. Leonardo gives no
percent: progress is an indeterminate tick per poll.

NSFW: Leonardo refuses flagged prompts (ContentRejected) and marks generated images ``nsfw``.
With ``drop_nsfw`` (default) flagged images are dropped and counted in ``info["nsfw_dropped"]``;
when every image is flagged the job fails with ContentRejected. Without it they are kept and
marked ``parameters["nsfw"] = True``.

Cancel: Leonardo documents no way to stop a generation; :meth:`LeonardoProvider.cancel` calls
``DELETE /generations/{id}``, which deletes the generation and its images from the account (the
credits it cost are not documented as refunded), so nothing of a canceled job is kept there.
Inpainting (Leonardo's canvas endpoints) is not offered.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from ...config import BackendConfig
from ...errors import (ContentRejected, GenerationFailed, ImageStudioError, ProviderError, ProviderUnavailable,
                       Unsupported)
from ... import sizes
from ...types import (Capabilities, GeneratedFile, GenerationRequest, GenerationResult, HealthStatus, MediaKind,
                      ModelInfo)
from ..base import ImageProvider, JobContext
from ..cloudkit import PollingSettings, check_size, input_image, mime_of, probe, short_timeout
from ..common import bearer, download, image_size, json_or_none, poll
from .wire import PRESET_STYLES, SCHEDULERS, build_body, check_count, error_for

LEONARDO_URL = "https://cloud.leonardo.ai/api/rest/v1"


class LeonardoSettings(PollingSettings):
    """Settings of a Leonardo provider. Times in seconds, sizes in pixels."""

    model_id: str = Field("b24e16ff-06e3-43eb-8d33-4416c2d75876",
                          description="platform model id used when a request names none (the default of "
                                      "Leonardo's SDK)")
    alchemy: bool | None = Field(None, description="send alchemy: true/false (unset: Leonardo's default)")
    photo_real: bool | None = Field(None, description="send photoReal: true/false (needs alchemy; unset: omitted)")
    preset_style: str | None = Field(None, description="presetStyle sent with every job (e.g. DYNAMIC, NONE)")
    public: bool = Field(False, description="show generated images in Leonardo's community feed")
    drop_nsfw: bool = Field(True, description="drop images Leonardo flags nsfw (all flagged: ContentRejected)")
    max_size: int = Field(1536, ge=32, le=1536, description="largest width or height, pixels (multiples of 8)")
    max_n: int = Field(8, ge=1, le=8, description="most images per request (4 when a side is over 768)")


class LeonardoProvider(ImageProvider):
    """Adapter for Leonardo.Ai (config type ``leonardo``); credential ``api_key``."""

    type: ClassVar[str] = "leonardo"
    credential_fields: ClassVar[dict[str, bool]] = {"api_key": True}
    Settings: ClassVar[type[BaseModel]] = LeonardoSettings
    default_url: ClassVar[str | None] = LEONARDO_URL

    @property
    def capabilities(self) -> Capabilities:
        s = self.settings
        return Capabilities(media=[MediaKind.image], txt2img=True, img2img=True, inpaint=False, max_width=s.max_size,
                            max_height=s.max_size, max_n=s.max_n, negative_prompt=True, seed=True, async_only=True,
                            resumable=True, sizes=sizes.multiple_of(8, 32, s.max_size,
                                                                    note="Leonardo generations: width and height"))

    # plumbing ------------------------------------------------------------------------------

    async def _call(self, backend: BackendConfig | None, method: str, path: str, *, timeout: float,
                    body: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """One authenticated call to the API; returns the decoded JSON object.

        Raises:
            ConfigError (no key), and the errors of :func:`.wire.error_for` or
            :func:`~image_studio.providers.base.raise_for_status`.
        """
        headers = {**(backend.headers if backend else {}), **bearer(self), "accept": "application/json"}
        async with self.transport_errors(backend):
            response = await self.http.request(method, self.backend_url(backend) + path, json=body, headers=headers,
                                               timeout=timeout)
        error = error_for(response, extra=extra or {}, **self.error_kwargs(backend))
        if error is not None:
            raise error
        self.raise_for_status(response, backend, what=f"Leonardo {method} {path}")
        data = json_or_none(response)
        if not isinstance(data, dict):
            raise ProviderError(f"Leonardo {method} {path}: answer is not a JSON object", retryable=True,
                                **self.error_kwargs(backend))
        return data

    # generation ----------------------------------------------------------------------------

    async def generate(self, request: GenerationRequest, ctx: JobContext) -> GenerationResult:
        """Submit (unless resuming ``ctx.resume_id``), poll, download.

        Raises:
            JobCanceled, ConfigError (no ``credentials.api_key``), Unsupported (video, mask),
            InvalidRequest (size or n off Leonardo's limits, or a parameter it refuses),
            AuthenticationFailed, RateLimited, ContentRejected, ProviderError (no credits),
            ProviderUnavailable, ProviderTimeout, GenerationFailed (status FAILED).
        """
        ctx.raise_if_canceled()
        if request.media is not MediaKind.image:
            raise Unsupported("Leonardo generations make images here", provider=self.id, field="media")
        if request.mask is not None:
            raise Unsupported("Leonardo inpainting (canvas) is not supported", provider=self.id, field="mask")
        check_size(request.width, request.height, multiple=8, lowest=32, highest=self.settings.max_size)
        check_count(request, self.settings.max_n)
        backend = ctx.backend or self.backends[0]
        bearer(self)  # a missing key fails before any upload
        cost = None
        if ctx.resume_id:
            generation_id = ctx.resume_id
        else:
            generation_id, cost = await self._submit(ctx, backend, request)
            await ctx.remember(generation_id)
        generation = await self._poll(ctx, backend, generation_id)
        files, dropped = await self._files(ctx, backend, generation, request)
        info: dict[str, Any] = {"generation_id": generation_id, "api_credit_cost": cost}
        if dropped:
            info["nsfw_dropped"] = dropped
        return GenerationResult(files=files, provider=self.id, backend=backend.label if backend else None,
                                model=generation.get("modelId") or request.model or self.settings.model_id,
                                provider_job_id=generation_id, info=info)

    async def _submit(self, ctx: JobContext, backend: BackendConfig | None,
                      request: GenerationRequest) -> tuple[str, int | None]:
        """Upload the init image (img2img) and ``POST /generations``; returns ``(generationId,
        apiCreditCost)``."""
        init_id = await self._upload_init(ctx, backend, request.init_image) if request.init_image else None
        ctx.raise_if_canceled()
        s = self.settings
        defaults = {k: v for k, v in (("alchemy", s.alchemy), ("photoReal", s.photo_real),
                                      ("presetStyle", s.preset_style)) if v is not None}
        body = build_body(request, model_id=s.model_id, public=s.public, init_image_id=init_id, defaults=defaults)
        answer = await self._call(backend, "POST", "/generations", body=body, timeout=short_timeout(self.settings, ctx),
                                  extra=request.extra)
        job = answer.get("sdGenerationJob") if isinstance(answer.get("sdGenerationJob"), dict) else {}
        if not job.get("generationId"):
            raise ProviderError(f"Leonardo answered without a generationId: {answer}", retryable=False,
                                **self.error_kwargs(backend))
        cost = job.get("apiCreditCost")
        return str(job["generationId"]), cost if isinstance(cost, int) else None

    async def _upload_init(self, ctx: JobContext, backend: BackendConfig | None, image: bytes) -> str:
        """``POST /init-image`` for a presigned form, then the multipart upload to its ``url``
        (no API key: the form's fields authorise it). Returns the init image id.

        Raises:
            InvalidRequest (not an image), ProviderUnavailable (5xx from storage),
            ProviderError (storage refused the upload; retryable: the form expires in 2 minutes).
        """
        data, mime, ext = input_image(image, field="init_image")
        timeout = short_timeout(self.settings, ctx)
        answer = await self._call(backend, "POST", "/init-image", body={"extension": ext}, timeout=timeout)
        form = answer.get("uploadInitImage") if isinstance(answer.get("uploadInitImage"), dict) else {}
        try:
            fields = json.loads(form.get("fields") or "{}")
            url, init_id = str(form["url"]), str(form["id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderError(f"Leonardo init-image answer has no usable upload form: {answer}", retryable=False,
                                **self.error_kwargs(backend)) from exc
        async with self.transport_errors(backend):
            response = await self.http.post(url, data={k: str(v) for k, v in fields.items()},
                                            files={"file": (f"init.{ext}", data, mime)}, timeout=timeout)
        if response.status_code >= 500:
            raise ProviderUnavailable(f"init image storage answered HTTP {response.status_code}",
                                      status=response.status_code, **self.error_kwargs(backend))
        if not response.is_success:
            raise ProviderError(f"init image upload refused: HTTP {response.status_code} {response.text[:200]}",
                                status=response.status_code, retryable=True, field="init_image",
                                **self.error_kwargs(backend))
        return init_id

    async def _poll(self, ctx: JobContext, backend: BackendConfig | None, generation_id: str) -> dict[str, Any]:
        """``GET /generations/{id}`` until COMPLETE (returned) or FAILED (GenerationFailed); a
        generation not visible yet counts as PENDING. One progress tick per poll."""

        async def fetch() -> dict[str, Any]:
            answer = await self._call(backend, "GET", f"/generations/{generation_id}",
                                      timeout=short_timeout(self.settings, ctx))
            found = answer.get("generations_by_pk")
            return found if isinstance(found, dict) else {"status": "PENDING"}

        async def update(generation: dict[str, Any], n: int) -> None:
            status = generation.get("status")
            if status == "COMPLETE":
                await ctx.report_progress(1, 1, message="COMPLETE")
            else:
                await ctx.report_progress(n, 0, message=f"{status} (poll {n})")

        generation = await poll(ctx, fetch, lambda g: g.get("status") in ("COMPLETE", "FAILED"),
                                interval=self.settings.poll_interval, on_update=update)
        if generation.get("status") == "FAILED":
            raise GenerationFailed(f"Leonardo generation {generation_id} FAILED", **self.error_kwargs(backend))
        return generation

    async def _files(self, ctx: JobContext, backend: BackendConfig | None, generation: dict[str, Any],
                     request: GenerationRequest) -> tuple[list[GeneratedFile], int]:
        """Download the generated images (NSFW policy in the module docstring); returns
        ``(files, number dropped)``.

        Raises:
            ContentRejected: every image was flagged. GenerationFailed: none, or one is unreadable.
        """
        images = [i for i in generation.get("generated_images") or [] if isinstance(i, dict) and i.get("url")]
        if not images:
            raise GenerationFailed("Leonardo generation COMPLETE without images", **self.error_kwargs(backend))
        kept = [i for i in images if not (self.settings.drop_nsfw and i.get("nsfw"))]
        if not kept:
            raise ContentRejected(f"Leonardo flagged all {len(images)} images nsfw", **self.error_kwargs(backend))
        seed = generation.get("seed") if isinstance(generation.get("seed"), int) else request.seed
        files = []
        for image in kept:
            data, ctype = await download(self, backend, str(image["url"]), ctx=ctx, what="download Leonardo image")
            width, height = image_size(data)
            if width is None:
                raise GenerationFailed(f"Leonardo image {image.get('id')} is not a readable image",
                                       **self.error_kwargs(backend))
            params = {"image_id": image.get("id"), "generation_id": generation.get("id"),
                      "nsfw": bool(image.get("nsfw")),
                      **{k: generation[k] for k in ("seed", "modelId", "scheduler", "presetStyle", "guidanceScale",
                                                    "inferenceSteps", "initStrength") if generation.get(k) is not None}}
            files.append(GeneratedFile(data=data, mime_type=mime_of(data, ctype), width=width, height=height,
                                       seed=seed if seed is not None and seed >= 0 else None, parameters=params))
        return files, len(images) - len(kept)

    async def cancel(self, ctx: JobContext) -> None:
        """``DELETE /generations/{ctx.provider_job_id}``: deletes the generation and its images
        (see the module docstring). Best effort: failures are logged, never raised."""
        if not ctx.provider_job_id:
            return
        backend = ctx.backend or self.backends[0]
        try:
            await self._call(backend, "DELETE", f"/generations/{ctx.provider_job_id}",
                             timeout=self.settings.request_timeout)
        except ImageStudioError as exc:
            self.logger.warning("could not delete Leonardo generation %s: %s", ctx.provider_job_id, exc.message)

    # metadata ------------------------------------------------------------------------------

    async def health(self, backend: BackendConfig | None = None) -> HealthStatus:
        """Free probe: ``GET /me`` (checks the key; ``details``: username, API token balances,
        concurrency slots). Never raises."""
        backend = backend or self.backends[0]

        async def details() -> dict[str, Any]:
            answer = await self._call(backend, "GET", "/me", timeout=self.settings.health_timeout)
            users = answer.get("user_details")
            me = users[0] if isinstance(users, list) and users and isinstance(users[0], dict) else {}
            user = me.get("user") if isinstance(me.get("user"), dict) else {}
            return {"username": user.get("username"), "api_paid_tokens": me.get("apiPaidTokens"),
                    "api_subscription_tokens": me.get("apiSubscriptionTokens"),
                    "api_concurrency_slots": me.get("apiConcurrencySlots")}

        return await probe(self, backend, details)

    async def list_models(self, backend: BackendConfig | None = None) -> list[ModelInfo]:
        """Platform models from ``GET /platformModels`` (``id`` is the ``modelId`` to send),
        with the configured ``model_id`` first.

        Raises:
            ConfigError (no key), ProviderError: the list could not be read.
        """
        backend = backend or self.backends[0]
        label = backend.label if backend else None
        answer = await self._call(backend, "GET", "/platformModels", timeout=self.settings.request_timeout)
        found = {self.settings.model_id: ModelInfo(id=self.settings.model_id, kind="checkpoint", provider=self.id,
                                                   backend=label, details={"source": "settings"})}
        for m in answer.get("custom_models") or []:
            if isinstance(m, dict) and m.get("id"):
                found[m["id"]] = ModelInfo(id=m["id"], name=m.get("name"), kind="checkpoint", provider=self.id,
                                           backend=label, details={k: m[k] for k in ("description", "featured", "nsfw")
                                                                   if k in m})
        return list(found.values())

    async def options(self, backend: BackendConfig | None = None) -> dict[str, Any]:
        """``{"schedulers", "preset_styles", "model", "size_multiple", "min_size", "max_size",
        "max_n"}``: the documented enums and limits (no call)."""
        s = self.settings
        return {"schedulers": SCHEDULERS, "preset_styles": PRESET_STYLES, "model": s.model_id, "size_multiple": 8,
                "min_size": 32, "max_size": s.max_size, "max_n": s.max_n}
