"""Runware provider: text-to-image, image-to-image and inpainting through Runware's REST task API.

Wire format (tasks, answers, error codes and their sources) is in :mod:`.wire`. One
``imageInference`` task is POSTed to ``https://api.runware.ai/v1`` (or ``backends[0].url``) with
``Authorization: Bearer <key>``. The ``taskUUID`` is ours (uuid4) and is remembered *before* the
POST, so a restarted service never submits the job twice.

Delivery (setting ``delivery``):

* ``async`` (default, resumable): the POST is acknowledged at once; we poll ``getResponse`` by
  ``taskUUID`` every ``poll_interval`` s (growing to 4x), reporting the percent when Runware gives
  one. A restarted job with ``ctx.resume_id`` only polls.
* ``sync``: the POST holds until the images are ready (bounded by the job's time left, cancel-aware).

Runware documents no way to stop a submitted task: :meth:`RunwareProvider.cancel` has nothing to
call; a canceled job stops polling at once and its task runs out (and is billed) remotely.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, Field

from ...config import BackendConfig
from ...errors import ContentRejected, GenerationFailed, ProviderError, Unsupported
from ... import sizes
from ...types import (Capabilities, GeneratedFile, GenerationRequest, GenerationResult, HealthStatus, MediaKind,
                      ModelInfo)
from ..base import ImageProvider, JobContext, parse_retry_after
from ..cloudkit import (PollingSettings, check_size, decode_b64_image, mime_of, probe, short_timeout,
                        until_canceled)
from ..common import bearer, download, image_size, json_or_none, poll
from .wire import Collected, answer_errors, build_task, error_for, task_items

RUNWARE_URL = "https://api.runware.ai/v1"

_MIME = {"PNG": "image/png", "JPG": "image/jpeg", "WEBP": "image/webp"}


class RunwareSettings(PollingSettings):
    """Settings of a Runware provider. Times in seconds, sizes in pixels."""

    model: str = Field("runware:101@1", description="AIR id of the model used when a request names none "
                                                    "(runware:101@1 is FLUX.1 [dev])")
    models: list[str] = Field(default_factory=lambda: ["runware:101@1", "runware:100@1"],
                              description="AIR ids offered in the model list besides the search results")
    model_search: str = Field("runware", description="text of the modelSearch task behind the model list "
                                                     "(names, descriptions, AIR ids); empty: configured models only")
    model_search_limit: int = Field(50, ge=1, le=100, description="most models the model search returns")
    delivery: Literal["async", "sync"] = Field("async", description="async: acknowledge, then poll getResponse "
                                                                   "(resumable); sync: one long POST")
    output_type: Literal["URL", "base64Data"] = Field("URL", description="URL: download each image; base64Data: "
                                                                        "images inside the answer")
    output_format: Literal["PNG", "JPG", "WEBP"] = Field("PNG", description="image file format Runware encodes")
    check_nsfw: bool = Field(False, description="ask Runware to flag NSFW images; flagged ones are dropped "
                                                "(all flagged: ContentRejected)")
    size_multiple: int = Field(64, ge=1, le=256, description="width and height must be multiples of this")
    min_size: int = Field(128, ge=8, le=4096, description="smallest width or height, pixels")
    max_size: int = Field(2048, ge=64, le=8192, description="largest width or height, pixels")
    max_n: int = Field(4, ge=1, le=20, description="most images per request (numberResults)")


class RunwareProvider(ImageProvider):
    """Adapter for Runware (config type ``runware``); credential ``api_key``."""

    type: ClassVar[str] = "runware"
    credential_fields: ClassVar[dict[str, bool]] = {"api_key": True}
    Settings: ClassVar[type[BaseModel]] = RunwareSettings
    default_url: ClassVar[str | None] = RUNWARE_URL

    @property
    def capabilities(self) -> Capabilities:
        s = self.settings
        return Capabilities(media=[MediaKind.image], txt2img=True, img2img=True, inpaint=True, max_width=s.max_size,
                            max_height=s.max_size, max_n=s.max_n, negative_prompt=True, seed=True,
                            async_only=s.delivery == "async", resumable=s.delivery == "async",
                            sizes=sizes.multiple_of(s.size_multiple, s.min_size, s.max_size,
                                                    note="Runware imageInference: width and height"))

    # plumbing ------------------------------------------------------------------------------

    async def _post(self, backend: BackendConfig | None, tasks: list[dict[str, Any]], *, timeout: float | httpx.Timeout,
                    task_uuid: str | None, extra: dict[str, Any] | None = None) -> Any:
        """POST ``tasks`` (a JSON array) and return the decoded answer.

        Raises:
            ConfigError: no API key. AuthenticationFailed, RateLimited, ContentRejected,
            InvalidRequest, ProviderUnavailable, ProviderTimeout, GenerationFailed: the first
            error of the answer that concerns ``task_uuid`` (see :func:`.wire.error_for`).
        """
        headers = {**(backend.headers if backend else {}), **bearer(self)}
        async with self.transport_errors(backend):
            response = await self.http.post(self.backend_url(backend), json=tasks, headers=headers, timeout=timeout)
        body = json_or_none(response)
        errors = answer_errors(body, task_uuid)
        if errors or not response.is_success:
            status = None if response.is_success else response.status_code
            if errors:
                raise error_for(errors[0], status=status, retry_after=parse_retry_after(
                    response.headers.get("retry-after")), extra=extra or {}, **self.error_kwargs(backend))
            self.raise_for_status(response, backend, what=f"Runware {tasks[0].get('taskType')}")
        if not isinstance(body, dict):
            raise ProviderError("Runware answer is not a JSON object", retryable=True, **self.error_kwargs(backend))
        return body

    # generation ----------------------------------------------------------------------------

    async def generate(self, request: GenerationRequest, ctx: JobContext) -> GenerationResult:
        """Run ``request`` as one ``imageInference`` task (see the module docstring).

        Raises:
            JobCanceled, ConfigError (no ``credentials.api_key``), Unsupported (video),
            InvalidRequest (size off the grid, or a parameter Runware names),
            AuthenticationFailed, RateLimited, ContentRejected, ProviderError (no credits),
            ProviderUnavailable, ProviderTimeout, GenerationFailed.
        """
        ctx.raise_if_canceled()
        if request.media is not MediaKind.image:
            raise Unsupported("Runware image inference makes images only", provider=self.id, field="media")
        s = self.settings
        check_size(request.width, request.height, multiple=s.size_multiple, lowest=s.min_size, highest=s.max_size)
        backend = ctx.backend or self.backends[0]
        model = request.model or s.model
        got = Collected(expected=request.n)
        if ctx.resume_id:
            task_uuid = ctx.resume_id
        else:
            task_uuid = str(uuid.uuid4())
            task = build_task(request, task_uuid=task_uuid, model=model, delivery=s.delivery,
                              output_type=s.output_type, output_format=s.output_format, check_nsfw=s.check_nsfw)
            bearer(self)  # a missing key fails here, before anything is remembered
            await ctx.remember(task_uuid)
            body = await self._submit(ctx, backend, task, request)
            got.add(task_items(body, task_uuid))
            if s.delivery == "sync" and not got.images and not got.failures:
                raise GenerationFailed("Runware answered without images", **self.error_kwargs(backend))
        if not got.done and (ctx.resume_id or s.delivery == "async"):
            await self._poll(ctx, backend, task_uuid, got, request)
        if got.failures:
            raise error_for(got.failures[0], status=None, retry_after=None, extra=request.extra,
                            **self.error_kwargs(backend))
        files, dropped = await self._files(ctx, backend, got, request)
        costs = [i["cost"] for i in got.images.values() if isinstance(i.get("cost"), (int, float))]
        info: dict[str, Any] = {"task_uuid": task_uuid, "cost": round(sum(costs), 6) if costs else None}
        if dropped:
            info["nsfw_dropped"] = dropped
        return GenerationResult(files=files, provider=self.id, backend=backend.label if backend else None,
                                model=model, provider_job_id=task_uuid, info=info)

    async def _submit(self, ctx: JobContext, backend: BackendConfig | None, task: dict[str, Any],
                      request: GenerationRequest) -> Any:
        """POST the task: a short call for async delivery, a cancel-aware long one for sync."""
        if self.settings.delivery == "async":
            return await self._post(backend, [task], timeout=short_timeout(self.settings, ctx),
                                    task_uuid=task["taskUUID"], extra=request.extra)
        timeout = httpx.Timeout(max(1.0, ctx.remaining), connect=min(10.0, max(1.0, ctx.remaining)))
        return await until_canceled(ctx, self._post(backend, [task], timeout=timeout, task_uuid=task["taskUUID"],
                                                    extra=request.extra))

    async def _poll(self, ctx: JobContext, backend: BackendConfig | None, task_uuid: str, got: Collected,
                    request: GenerationRequest) -> None:
        """Poll ``getResponse`` until every image is in or a generation failed, reporting the
        percent (``value`` of 100) when Runware gives one, else images done of ``n`` (or an
        indeterminate tick while none is)."""

        async def fetch() -> Collected:
            body = await self._post(backend, [{"taskType": "getResponse", "taskUUID": task_uuid}],
                                    timeout=short_timeout(self.settings, ctx), task_uuid=task_uuid, extra=request.extra)
            got.add(task_items(body, task_uuid))
            return got

        async def update(state: Collected, n: int) -> None:
            done = len(state.images)
            if state.progress is not None and not state.done:
                await ctx.report_progress(state.progress, 100, message=f"{done}/{state.expected} images ready")
            elif done:
                await ctx.report_progress(done, state.expected, message=f"{done}/{state.expected} images ready")
            else:
                await ctx.report_progress(n, 0, message=f"processing (poll {n})")

        await poll(ctx, fetch, lambda state: state.done, interval=self.settings.poll_interval, on_update=update)

    async def _files(self, ctx: JobContext, backend: BackendConfig | None, got: Collected,
                     request: GenerationRequest) -> tuple[list[GeneratedFile], int]:
        """Decode or download every finished image; drop NSFW-flagged ones when ``check_nsfw``.
        Returns ``(files, number dropped)``.

        Raises:
            ContentRejected: every image was flagged. GenerationFailed: an image is unreadable.
        """
        items = list(got.images.values())
        kept = [i for i in items if not (self.settings.check_nsfw and i.get("NSFWContent"))]
        if items and not kept:
            raise ContentRejected(f"Runware flagged all {len(items)} images as NSFW", **self.error_kwargs(backend))
        files = []
        for item in kept:
            data, ctype = await self._image_bytes(ctx, backend, item)
            width, height = image_size(data)
            if width is None:
                raise GenerationFailed(f"Runware image {item.get('imageUUID')} is not a readable image",
                                       **self.error_kwargs(backend))
            seed = item.get("seed") if isinstance(item.get("seed"), int) else request.seed
            params = {k: item[k] for k in ("imageUUID", "taskUUID", "seed", "cost", "NSFWContent") if k in item}
            files.append(GeneratedFile(data=data, mime_type=mime_of(data, ctype or _MIME[self.settings.output_format]),
                                       width=width, height=height,
                                       seed=seed if seed is not None and seed >= 0 else None, parameters=params))
        return files, len(items) - len(kept)

    async def _image_bytes(self, ctx: JobContext, backend: BackendConfig | None,
                           item: dict[str, Any]) -> tuple[bytes, str | None]:
        for key in ("imageBase64Data", "imageDataURI"):
            if isinstance(item.get(key), str):
                data = decode_b64_image(item[key])
                if data is None:
                    raise GenerationFailed(f"Runware {key} does not decode", **self.error_kwargs(backend))
                return data, None
        return await download(self, backend, str(item["imageURL"]), ctx=ctx, what="download Runware image")

    async def cancel(self, ctx: JobContext) -> None:
        """Nothing to call: Runware documents no way to stop a submitted task. The job's own
        loop stops polling on cancel; the remote task finishes (and is billed) on its own."""
        return None

    # metadata ------------------------------------------------------------------------------

    async def health(self, backend: BackendConfig | None = None) -> HealthStatus:
        """Free probe: the ``accountManagement`` task (``operation: getDetails``), which checks
        the key and reports ``details.balance`` (USD) and ``details.organization``. Never raises."""
        backend = backend or self.backends[0]

        async def details() -> dict[str, Any]:
            task_uuid = str(uuid.uuid4())
            body = await self._post(backend, [{"taskType": "accountManagement", "taskUUID": task_uuid,
                                               "operation": "getDetails"}],
                                    timeout=self.settings.health_timeout, task_uuid=task_uuid)
            account = next(iter(task_items(body, task_uuid, "accountManagement")), {})
            return {"balance": account.get("balance"), "organization": account.get("organizationName")}

        return await probe(self, backend, details)

    async def list_models(self, backend: BackendConfig | None = None) -> list[ModelInfo]:
        """The configured ``models``, then the checkpoints the ``modelSearch`` task finds for
        ``model_search`` (``visibility: all``; ``id`` is the AIR id). Free.

        Raises:
            ConfigError (no key), ProviderError: the search failed.
        """
        backend = backend or self.backends[0]
        label = backend.label if backend else None
        found = {m: ModelInfo(id=m, kind="checkpoint", provider=self.id, backend=label, details={"source": "settings"})
                 for m in [self.settings.model, *self.settings.models]}
        if self.settings.model_search.strip():
            task_uuid = str(uuid.uuid4())
            body = await self._post(backend, [{"taskType": "modelSearch", "taskUUID": task_uuid,
                                               "search": self.settings.model_search, "category": "checkpoint",
                                               "visibility": "all", "limit": self.settings.model_search_limit}],
                                    timeout=self.settings.request_timeout, task_uuid=task_uuid)
            for result in task_items(body, task_uuid, "modelSearch")[:1]:
                for m in result.get("results") or []:
                    if isinstance(m, dict) and m.get("air") and m["air"] not in found:
                        found[m["air"]] = ModelInfo(
                            id=m["air"], name=m.get("name"), kind=m.get("category") or "checkpoint", provider=self.id,
                            backend=label, details={k: m[k] for k in ("version", "architecture", "type", "tags",
                                                                       "defaultWidth", "defaultHeight",
                                                                       "defaultSteps", "defaultCFG") if k in m})
        return list(found.values())

    async def options(self, backend: BackendConfig | None = None) -> dict[str, Any]:
        """``{"models", "output_formats", "size_multiple", "min_size", "max_size", "max_n"}``:
        Runware's scheduler names depend on the model, so ``scheduler`` stays free text."""
        s = self.settings
        return {"models": [s.model, *[m for m in s.models if m != s.model]], "output_formats": list(_MIME),
                "size_multiple": s.size_multiple, "min_size": s.min_size, "max_size": s.max_size, "max_n": s.max_n}
