"""InvokeAI provider: enqueue a graph on an InvokeAI 6.x server's session queue and poll it.

Wire format: :mod:`.wire` (graphs, enqueue body, queue items). HTTP routes followed
(invoke-ai/InvokeAI ``invokeai/app/api/routers/``, all under ``/api``):

* ``session_queue.py``: ``POST /v1/queue/{queue_id}/enqueue_batch`` ``{batch, prepend}`` ->
  ``EnqueueBatchResult`` (``item_ids``); ``GET /v1/queue/{queue_id}/i/{item_id}`` ->
  ``SessionQueueItem``; ``PUT /v1/queue/{queue_id}/i/{item_id}/cancel``;
  ``PUT /v1/queue/{queue_id}/cancel_by_batch_ids`` ``{batch_ids}``; ``GET
  /v1/queue/{queue_id}/status`` -> ``{queue: {pending, in_progress, ...}, processor}``.
* ``images.py``: ``POST /v1/images/upload?image_category=user&is_intermediate=false``
  (multipart ``file``) -> ``ImageDTO`` (``image_name width height``); ``GET
  /v1/images/i/{image_name}/full`` (PNG bytes).
* ``boards.py``: ``GET /v1/boards/?all=true&include_archived=true`` -> ``[BoardDTO]``
  (``board_id board_name``); ``POST /v1/boards/?board_name=...`` -> ``BoardDTO``.
* ``model_manager.py``: ``GET /v2/models/?model_type=main`` -> ``{models: [{key hash name base
  type format ...}]}``; ``app_info.py``: ``GET /v1/app/version`` -> ``{version}`` (no auth).
* ``auth_dependencies.py``: in multi-user mode every route but the version wants ``Authorization:
  Bearer <token>`` (401 otherwise).

Completion is polled (no socket.io client): every ``poll_interval`` s each queue item is read;
progress is the count of our graph's nodes that ran (InvokeAI reports denoising steps only on
its socket.io events), and the queue's counts while the items wait.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel

from ...config import BackendConfig
from ...errors import (GenerationFailed, ImageStudioError, InvalidRequest, JobCanceled, ProviderError,
                       ProviderTimeout, Unsupported)
from ... import sizes
from ...types import SizeRule
from ...types import (Capabilities, GeneratedFile, GenerationRequest, GenerationResult, HealthStatus, MediaKind,
                      ModelInfo)
from ..base import ImageProvider, JobContext
from ..common import download, image_size, json_or_none, poll
from . import wire
from .settings import InvokeAISettings


@dataclass
class _Progress:
    last: tuple[Any, ...] | None = None


class InvokeAIProvider(ImageProvider):
    """Adapter for an InvokeAI 6.x server (config type ``invokeai``). Credentials: optional
    ``token``, sent as ``<auth_header>: <auth_scheme> <token>``. The remembered provider job id
    is the comma-separated queue item ids (one per image): ``"41,42"``."""

    type: ClassVar[str] = "invokeai"
    Settings: ClassVar[type[BaseModel]] = InvokeAISettings
    needs_backend: ClassVar[bool] = True
    default_url: ClassVar[str | None] = "http://127.0.0.1:9090"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._boards: dict[tuple[str, str], str] = {}
        self._board_lock = asyncio.Lock()

    @property
    def capabilities(self) -> Capabilities:
        s = self.settings
        return Capabilities(text_encoder="clip", media=[MediaKind.image], txt2img=True, img2img=True, inpaint=False,
                            max_width=s.max_size, max_height=s.max_size, max_n=s.max_n, resumable=True,
                            sizes=self.size_rule())

    def size_rule(self, model: str | None = None) -> SizeRule:
        """Multiples of 8 from 64 to ``max_size`` pixels (the ``noise`` node's sizes), the SDXL
        buckets preferred for an SDXL main model (``model``, else the setting)."""
        return sizes.local_rule(8, 64, self.settings.max_size, model or self.settings.model,
                                note="InvokeAI noise node: width and height multiples of 8")

    # plumbing ------------------------------------------------------------------------------

    def _headers(self, backend: BackendConfig | None) -> dict[str, str]:
        headers = dict(backend.headers) if backend else {}
        token = self.config.credentials.get("token")
        if token is not None and token.get_secret_value().strip():
            s = self.settings
            headers[s.auth_header] = f"{s.auth_scheme} {token.get_secret_value().strip()}".strip()
        return headers

    def _queue(self, path: str = "") -> str:
        return f"/api/v1/queue/{self.settings.queue_id}{path}"

    def _timeout(self, ctx: JobContext | None = None) -> float:
        limit = self.settings.request_timeout
        return max(1.0, min(limit, ctx.remaining)) if ctx is not None else limit

    async def _call(self, backend: BackendConfig | None, method: str, path: str, *, what: str = "",
                    timeout: float | None = None, accept: tuple[int, ...] = (), overrides: Any = None,
                    **kw: Any) -> httpx.Response:
        """Send one request; map transport errors and error answers (422 -> InvalidRequest naming
        our field, :func:`.wire.validation_error`); statuses in ``accept`` are returned as is."""
        what = what or f"{method} {path}"
        async with self.transport_errors(backend):
            resp = await self.http.request(method, self.backend_url(backend) + path, headers=self._headers(backend),
                                           timeout=timeout or self.settings.request_timeout, **kw)
        if resp.status_code == 422:
            error = wire.validation_error(json_or_none(resp), what=what, overrides=overrides)
            if error is not None:
                raise error
        if resp.status_code not in accept:
            self.raise_for_status(resp, backend, what=what)
        return resp

    async def _json(self, backend: BackendConfig | None, method: str, path: str, **kw: Any) -> Any:
        resp = await self._call(backend, method, path, **kw)
        body = json_or_none(resp)
        if body is None:
            raise ProviderError(f"{method} {path}: the answer is not JSON", **self.error_kwargs(backend))
        return body

    # generation ----------------------------------------------------------------------------

    async def generate(self, request: GenerationRequest, ctx: JobContext) -> GenerationResult:
        """Enqueue ``request`` as one session per image and poll the items until all complete;
        with ``ctx.resume_id`` poll those items instead of enqueuing.

        Raises:
            JobCanceled: canceled (the queue items are canceled too).
            InvalidRequest: a 422 (field named) or an unreadable init image.
            Unsupported: a video or inpaint request, a model this server lacks or one not SD1/SD2/SDXL.
            GenerationFailed: an item failed (``error_type: error_message``) or vanished.
            AuthenticationFailed, ProviderUnavailable, ProviderTimeout: as the server answers.
        """
        ctx.raise_if_canceled()
        if request.media is not MediaKind.image:
            raise Unsupported("InvokeAI makes images only here", provider=self.id, field="media")
        if request.mask is not None:
            raise Unsupported("inpaint is not implemented for InvokeAI", provider=self.id, field="mask")
        backend = ctx.backend or self.backends[0]
        if ctx.resume_id:
            try:
                item_ids = wire.parse_item_ids(ctx.resume_id)
            except ValueError as exc:
                raise GenerationFailed(f"cannot resume InvokeAI job {ctx.resume_id!r}: {exc}", retryable=False,
                                       **self.error_kwargs(backend)) from exc
        else:
            item_ids = await self._submit(request, ctx, backend)
            await ctx.remember(",".join(map(str, item_ids)))
        try:
            items = await self._wait(ctx, backend, item_ids)
        except (JobCanceled, ProviderTimeout):
            await asyncio.shield(self._cancel_items(backend, item_ids))
            raise
        files = [f for item in items for f in await self._files(ctx, backend, item)]
        if not files:
            raise GenerationFailed("the InvokeAI sessions completed without an output image",
                                   **self.error_kwargs(backend))
        model = wire.item_model(items[0])
        return GenerationResult(files=files, provider=self.id, backend=backend.label if backend else None,
                                model=model.get("name") or request.model, provider_job_id=",".join(map(str, item_ids)),
                                info={"queue_id": self.settings.queue_id, "item_ids": item_ids,
                                      "batch_id": items[0].get("batch_id"), "model_key": model.get("key")})

    async def _submit(self, request: GenerationRequest, ctx: JobContext, backend: BackendConfig | None) -> list[int]:
        """Resolve the model and board, upload the init image, enqueue; returns the item ids."""
        model = await self._model(backend, request.model or self.settings.model)
        board = request.extra.get("board", self.settings.board)
        inputs = wire.GraphInputs(model=model, seeds=_seeds(request), defaults=self._defaults())
        inputs.board_id = await self._board_id(backend, str(board)) if board else None
        if request.init_image is not None:
            inputs.init_image_name, inputs.init_size = await self._upload(ctx, backend, request.init_image)
        ctx.raise_if_canceled()
        body = wire.batch_body(wire.build_graph(request, inputs, f"image-studio-{ctx.job_id}"), inputs.seeds)
        answer = await self._json(backend, "POST", self._queue("/enqueue_batch"), json=body,
                                  timeout=self._timeout(ctx), what="enqueue_batch", overrides=request.extra.get("nodes"))
        item_ids = answer.get("item_ids") if isinstance(answer, dict) else None
        if not item_ids:
            batch_id = (answer.get("batch") or {}).get("batch_id") if isinstance(answer, dict) else None
            if batch_id:  # InvokeAI 5.x answers without item ids: do not leave its items running
                await self._call(backend, "PUT", self._queue("/cancel_by_batch_ids"), json={"batch_ids": [batch_id]},
                                 timeout=self._timeout(ctx))
            raise ProviderError("enqueue_batch answered without item_ids: InvokeAI 6.0 or newer is needed",
                                retryable=False, **self.error_kwargs(backend))
        return [int(i) for i in item_ids]

    def _defaults(self) -> dict[str, Any]:
        s = self.settings
        return {"steps": s.steps, "cfg_scale": s.cfg_scale, "scheduler": s.scheduler, "strength": s.denoising_strength,
                "fp32": s.fp32_vae, "use_cpu": s.cpu_noise}

    async def _model(self, backend: BackendConfig | None, wanted: str | None) -> dict[str, Any]:
        """The main-model config ``wanted`` names (key or name), else the first SD model.

        Raises:
            Unsupported: no main model has that key or name (another provider of the chain may
                have it), the model is not SD1/SD2/SDXL, or none is installed (field ``model``).
        """
        models = await self._main_models(backend)
        found = wire.pick_model(models, wanted)
        if found is None and wanted is not None:
            names = ", ".join(str(m.get("name")) for m in models[:20])
            raise Unsupported(f"InvokeAI has no main model {wanted!r} (installed: {names or 'none'})",
                              provider=self.id, field="model")
        if found is None:
            raise Unsupported("InvokeAI has no SD1/SD2/SDXL main model installed", provider=self.id, field="model")
        if found.get("base") not in wire.SD_BASES:
            raise Unsupported(f"model {found.get('name')!r} is {found.get('base')}; only SD1, SD2 and SDXL graphs "
                              "are built", provider=self.id, field="model")
        return found

    async def _main_models(self, backend: BackendConfig | None) -> list[dict[str, Any]]:
        body = await self._json(backend, "GET", "/api/v2/models/", params={"model_type": "main"})
        models = body.get("models") if isinstance(body, dict) else None
        return [m for m in models or [] if isinstance(m, dict) and m.get("key")]

    async def _board_id(self, backend: BackendConfig | None, name: str) -> str:
        """The id of the board called ``name``, created when missing; remembered per backend."""
        key = (self.backend_url(backend), name)
        async with self._board_lock:
            if key in self._boards:
                return self._boards[key]
            boards = await self._json(backend, "GET", "/api/v1/boards/",
                                      params={"all": "true", "include_archived": "true"})
            found = next((b for b in boards if isinstance(b, dict) and b.get("board_name") == name), None) \
                if isinstance(boards, list) else None
            if found is None:
                found = await self._json(backend, "POST", "/api/v1/boards/", params={"board_name": name})
            if not isinstance(found, dict) or not found.get("board_id"):
                raise ProviderError(f"board {name!r}: no board_id in the answer", **self.error_kwargs(backend))
            self._boards[key] = str(found["board_id"])
            return self._boards[key]

    async def _upload(self, ctx: JobContext, backend: BackendConfig | None,
                      data: bytes) -> tuple[str, tuple[int | None, int | None]]:
        """Upload the init image (a user image, not intermediate); ``(image_name, (w, h))``.

        Raises:
            InvalidRequest: the bytes are not an image (field ``init_image``).
        """
        size = image_size(data)
        if size == (None, None):
            raise InvalidRequest("init_image is not a decodable image", field="init_image")
        files = {"file": ("init.png", data, "image/png")}
        params = {"image_category": "user", "is_intermediate": "false"}
        resp = await self._call(backend, "POST", "/api/v1/images/upload", params=params, files=files,
                                timeout=self._timeout(ctx), accept=(415,), what="upload init image")
        if resp.status_code == 415:
            raise InvalidRequest(f"InvokeAI refused the init image: {resp.text[:200]}", field="init_image")
        dto = json_or_none(resp)
        if not isinstance(dto, dict) or not dto.get("image_name"):
            raise ProviderError("image upload answered without image_name", **self.error_kwargs(backend))
        return str(dto["image_name"]), (dto.get("width") or size[0], dto.get("height") or size[1])

    # polling -------------------------------------------------------------------------------

    async def _wait(self, ctx: JobContext, backend: BackendConfig | None, item_ids: list[int]) -> list[dict[str, Any]]:
        """Poll the items every ``poll_interval`` s until all completed; progress reported.

        Raises:
            GenerationFailed: an item failed, was canceled on the server, or is gone (404).
            JobCanceled, ProviderTimeout: from :func:`common.poll`.
        """
        state = _Progress()

        async def fetch() -> list[dict[str, Any]]:
            return list(await asyncio.gather(*(self._item(ctx, backend, i) for i in item_ids)))

        def finished(items: list[dict[str, Any]]) -> bool:
            return all(i.get("status") in wire.TERMINAL for i in items) or any(
                i.get("status") in ("failed", "canceled") for i in items)

        async def update(items: list[dict[str, Any]], _: int) -> None:
            await self._report(ctx, backend, items, state)

        items = await poll(ctx, fetch, finished, interval=self.settings.poll_interval, on_update=update,
                           max_interval=max(self.settings.poll_interval, 2.0))
        ctx.raise_if_canceled()  # our own cancel may have been seen as a canceled item
        bad = next((i for i in items if i.get("status") in ("failed", "canceled")), None)
        if bad is not None:  # forget this backend's board ids: a deleted board fails every item
            self._boards = {k: v for k, v in self._boards.items() if k[0] != self.backend_url(backend)}
            await self._cancel_items(backend, [i["item_id"] for i in items if i.get("status") not in wire.TERMINAL])
            raise wire.failure(bad, **self.error_kwargs(backend))
        return items

    async def _item(self, ctx: JobContext, backend: BackendConfig | None, item_id: int) -> dict[str, Any]:
        resp = await self._call(backend, "GET", self._queue(f"/i/{item_id}"), timeout=self._timeout(ctx),
                                accept=(404,), what=f"queue item {item_id}")
        if resp.status_code == 404:
            raise GenerationFailed(f"InvokeAI queue item {item_id} is gone (queue cleared or server reset)",
                                   retryable=False, **self.error_kwargs(backend))
        body = json_or_none(resp)
        if not isinstance(body, dict):
            raise ProviderError(f"queue item {item_id}: the answer is not a JSON object", **self.error_kwargs(backend))
        return body

    async def _report(self, ctx: JobContext, backend: BackendConfig | None, items: list[dict[str, Any]],
                      state: _Progress) -> None:
        """Report nodes done of all items; while none runs, the queue's pending/running counts."""
        done = [wire.node_progress(i) for i in items]
        value, maximum = sum(d for d, _ in done), max(1, sum(t for _, t in done))
        completed = sum(1 for i in items if i.get("status") == "completed")
        message = f"{completed}/{len(items)} images done"
        if all(i.get("status") == "pending" for i in items):
            message = "waiting in the InvokeAI queue"
            try:
                status = await self._json(backend, "GET", self._queue("/status"), timeout=self._timeout(ctx))
                queue = status.get("queue") or {}
                message += f" ({queue.get('pending', '?')} pending, {queue.get('in_progress', '?')} running)"
            except (ImageStudioError, AttributeError) as exc:  # the item poll decides; this is colour
                ctx.logger.debug("queue status poll failed: %s", exc)
        if state.last != (value, maximum, message):
            state.last = (value, maximum, message)
            await ctx.report_progress(value, maximum, message=message)

    async def _files(self, ctx: JobContext, backend: BackendConfig | None, item: dict[str, Any]) -> list[GeneratedFile]:
        """Download the output images of a completed item (``/api/v1/images/i/{name}/full``)."""
        nodes = ((item.get("session") or {}).get("graph") or {}).get("nodes") or {}
        ran = nodes.get(wire.DENOISE) or {}
        model, seed = wire.item_model(item), wire.item_seed(item)
        files = []
        for image in wire.output_images(item):
            name = image["image_name"]
            data, ctype = await download(self, backend, f"{self.backend_url(backend)}/api/v1/images/i/{name}/full",
                                         ctx=ctx, headers=self._headers(backend), what=f"download {name}")
            width, height = image_size(data)
            params = {"seed": seed, "model": model.get("name"), "model_key": model.get("key"),
                      "base": model.get("base"), "image_name": name, "item_id": item.get("item_id"),
                      "session_id": item.get("session_id"), "batch_id": item.get("batch_id"),
                      **{k: ran[k] for k in ("steps", "cfg_scale", "scheduler", "denoising_start") if k in ran}}
            board = (nodes.get(wire.output_node(item.get("session") or {})) or {}).get("board")
            if isinstance(board, dict):
                params["board_id"] = board.get("board_id")
            files.append(GeneratedFile(data=data, mime_type=ctype or "image/png", filename=name, media=MediaKind.image,
                                       width=width or image.get("width"), height=height or image.get("height"),
                                       seed=seed, parameters=params))
        return files

    # cancel --------------------------------------------------------------------------------

    async def _cancel_items(self, backend: BackendConfig | None, item_ids: list[int]) -> None:
        """``PUT .../i/{item_id}/cancel`` for each item (finished ones stay as they are). Best effort."""
        for item_id in item_ids:
            try:
                await self._call(backend, "PUT", self._queue(f"/i/{item_id}/cancel"), accept=(404,),
                                 timeout=min(self.settings.request_timeout, 10.0))
            except ImageStudioError as exc:
                self.logger.warning("could not cancel InvokeAI queue item %s: %s", item_id, exc)

    async def cancel(self, ctx: JobContext) -> None:
        """Cancel the queue items of ``ctx.provider_job_id`` (``"41,42"``). Never raises."""
        try:
            item_ids = wire.parse_item_ids(ctx.provider_job_id or "")
        except ValueError:
            return
        await self._cancel_items(ctx.backend or self.backends[0], item_ids)

    # metadata ------------------------------------------------------------------------------

    async def health(self, backend: BackendConfig | None = None) -> HealthStatus:
        """``GET /api/v1/app/version`` (InvokeAI 6+ needed) then the queue's status (authenticated,
        so a bad token shows), within ``health_timeout`` s each. Never raises."""
        backend = backend or self.backends[0]
        label, started = backend.label if backend else None, time.monotonic()

        def status(ok: bool, message: str | None = None, **details: Any) -> HealthStatus:
            return HealthStatus(ok=ok, provider=self.id, backend=label, latency=time.monotonic() - started,
                                message=message, details=details)

        timeout = self.settings.health_timeout
        try:
            version = (await self._json(backend, "GET", "/api/v1/app/version", timeout=timeout)).get("version")
            major = wire.major_version(version)
            if major is not None and major < 6:
                return status(False, f"InvokeAI {version}: version 6.0 or newer is needed", version=version)
            queue = (await self._json(backend, "GET", self._queue("/status"), timeout=timeout)).get("queue") or {}
        except (ImageStudioError, AttributeError) as exc:
            return status(False, getattr(exc, "message", None) or f"unexpected answer: {exc!r}")
        return status(True, version=version, pending=queue.get("pending"), in_progress=queue.get("in_progress"))

    async def list_models(self, backend: BackendConfig | None = None) -> list[ModelInfo]:
        """Main models from ``GET /api/v2/models/?model_type=main``; ``id`` is the model key (a
        request's ``model`` may give the key or the name). Raises ProviderError when unreachable."""
        backend = backend or self.backends[0]
        return [ModelInfo(id=m["key"], name=m.get("name"), kind="checkpoint", provider=self.id,
                          backend=backend.label if backend else None,
                          details={k: m[k] for k in ("base", "format", "variant", "description", "hash") if m.get(k)})
                for m in await self._main_models(backend)]

    async def options(self, backend: BackendConfig | None = None) -> dict[str, Any]:
        """``{"schedulers": [...], "scheduler": default, "boards": [names], "board": setting}``."""
        backend = backend or self.backends[0]
        boards = await self._json(backend, "GET", "/api/v1/boards/", params={"all": "true"})
        names = [b["board_name"] for b in boards if isinstance(b, dict) and b.get("board_name")] \
            if isinstance(boards, list) else []
        return {"schedulers": list(wire.SCHEDULERS), "scheduler": self.settings.scheduler, "boards": names,
                "board": self.settings.board}


def _seeds(request: GenerationRequest) -> list[int]:
    """One seed per image: the request's (modulo 2**32) and the next ones; random when unset or -1."""
    first = random.randrange(wire.SEED_SPACE) if request.seed in (None, -1) else request.seed % wire.SEED_SPACE
    return [(first + i) % wire.SEED_SPACE for i in range(request.n)]
