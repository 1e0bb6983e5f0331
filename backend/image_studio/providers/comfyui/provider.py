"""The ComfyUI provider: workflow templates run on ComfyUI backends.

One run: build the API prompt from a template and the request (:mod:`.workflow`), upload the
init image and mask (``POST /upload/image``), choose the prompt_id (uuid4) and remember it,
queue the prompt (``POST /prompt`` with our ``client_id``), wait for it on the backend's
shared websocket raced against a slow ``/history`` poll (:mod:`.waiter`), fetch every output
file of type ``output`` (``GET /view``), then drop the history entry
(``POST /history {"delete": [id]}``). A restarted job (``ctx.resume_id``) submits nothing
when the backend still knows the prompt; it waits for it.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import mimetypes
import re
import time
import uuid
from typing import Any

import httpx
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field

from ...config import BackendConfig, ProviderConfig
from ...errors import ConfigError, GenerationFailed, ImageStudioError, InvalidRequest, Unsupported
from ... import sizes
from ...types import (
    SizeRule,
    Capabilities,
    GeneratedFile,
    GenerationRequest,
    GenerationResult,
    HealthStatus,
    MediaKind,
    ModelInfo,
)
from ..base import ImageProvider, JobContext
from .client import ComfyUIClient
from .convert import is_ui_workflow
from .protocol import collect_outputs, combo_options, history_finished, raise_for_history
from .addons import apply_addons
from .waiter import PromptWaiter
from .workflow import WorkflowTemplate, apply, list_templates, load_template

UPLOAD_SUBFOLDER = "image_studio"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class ComfyUISettings(BaseModel):
    """Settings of a ``comfyui`` provider (``providers.<id>.settings``)."""

    model_config = ConfigDict(extra="forbid")

    workflow: str | dict[str, Any] = Field(
        default="weightfree",
        description="Template name (weightfree, txt2img), or an inline template / API-format prompt "
                    "(JSON text or object). A request's 'workflow' overrides it.")
    history_poll_interval: float = Field(
        default=3.0, gt=0, le=120,
        description="Seconds between GET /history polls while a prompt runs (the safety net when the "
                    "websocket drops).")
    connect_timeout: float = Field(default=10.0, gt=0, le=120,
                                   description="Seconds to open the websocket or an HTTP connection.")
    request_timeout: float = Field(default=30.0, gt=0, le=600, description="Seconds per HTTP call.")
    preview: bool = Field(default=True, description="Pass sampler preview images on as progress events.")
    delete_history: bool = Field(default=True,
                                 description="Delete the prompt's /history entry once its files are fetched.")


def _auth_headers(backend: BackendConfig) -> dict[str, str]:
    headers = dict(backend.headers)
    if backend.username:
        secret = backend.password.get_secret_value() if backend.password else ""
        token = base64.b64encode(f"{backend.username}:{secret}".encode()).decode("ascii")
        headers.setdefault("Authorization", f"Basic {token}")
    return headers


def _parse_source(source: str | dict[str, Any]) -> str | dict[str, Any]:
    """A workflow setting as a name or a parsed object (inline JSON text is parsed).

    Raises:
        InvalidRequest: inline JSON that does not parse (field ``workflow``).
    """
    if isinstance(source, str) and source.strip().startswith("{"):
        try:
            return json.loads(source)
        except json.JSONDecodeError as exc:
            raise InvalidRequest(f"inline workflow is not valid JSON: {exc}", field="workflow") from exc
    return source


def _used_seed(template: WorkflowTemplate, entry: dict[str, Any]) -> int | None:
    """The seed in the prompt a history entry ran (``prompt[2]``), if the template has one."""
    ran = entry.get("prompt")
    prompt = ran[2] if isinstance(ran, list) and len(ran) > 2 and isinstance(ran[2], dict) else None
    seed = template.value("seed", prompt) if prompt else None
    return seed if isinstance(seed, int) else None


def _image_kind(data: bytes) -> tuple[str, str]:
    if data.startswith(b"\x89PNG"):
        return "png", "image/png"
    if data.startswith(b"\xff\xd8"):
        return "jpg", "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp", "image/webp"
    return "png", "application/octet-stream"


def _file_kind(filename: str, content_type: str | None, fmt: str | None) -> tuple[str, MediaKind]:
    mime = mimetypes.guess_type(filename)[0] or (content_type or "").split(";")[0].strip() or fmt or ""
    mime = mime or "application/octet-stream"
    return mime, MediaKind.video if mime.startswith("video/") else MediaKind.image


def _image_size(data: bytes) -> tuple[int | None, int | None]:
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.width, im.height
    except (UnidentifiedImageError, OSError, ValueError):
        return None, None


class ComfyUIProvider(ImageProvider):
    """Runs workflow templates on ComfyUI servers (one websocket per backend).

    Raises:
        ConfigError: from ``__init__`` when the configured workflow cannot be loaded (field
            ``providers.<id>.settings.workflow``).
    """

    type = "comfyui"
    Settings = ComfyUISettings
    needs_backend = True
    settings: ComfyUISettings

    def __init__(self, provider_id: str, config: ProviderConfig, http: httpx.AsyncClient) -> None:
        super().__init__(provider_id, config, http)
        self._clients: dict[str, ComfyUIClient] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._template: WorkflowTemplate | None = None
        try:
            source = _parse_source(self.settings.workflow)
            if not is_ui_workflow(source):  # a UI workflow waits for the backend's object_info
                self._template = load_template(source)
        except ImageStudioError as exc:
            raise ConfigError(exc.message, field=f"providers.{provider_id}.settings.workflow") from exc

    # -- shape ---------------------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        inpaint = bool(self._template and self._template.has("mask"))
        return Capabilities(text_encoder="clip", media=[MediaKind.image, MediaKind.video], txt2img=True, img2img=True, inpaint=inpaint,
                            upscale=True, video=True, max_width=8192, max_height=8192, max_n=64,
                            negative_prompt=True, seed=True, loras=True, vae=True, hires=True, resumable=True,
                            sizes=self.size_rule())

    def size_rule(self, model: str | None = None) -> SizeRule:
        """Multiples of 8 from 16 to 8192 pixels (EmptyLatentImage: latents are an eighth of the
        image), with the SDXL buckets preferred when the checkpoint (``model``, else the
        configured workflow's) looks SDXL-class."""
        if model is None and self._template is not None and self._template.has("checkpoint"):
            default = self._template.value("checkpoint")
            model = default if isinstance(default, str) else None
        return sizes.local_rule(8, 16, 8192, model, note="ComfyUI EmptyLatentImage: width and height step 8")

    def client(self, backend: BackendConfig | None = None) -> ComfyUIClient:
        """The client (and shared websocket) of one backend, made on first use."""
        backend = backend or self.backends[0]
        if backend is None:
            raise ConfigError("no backend URL configured", field=f"providers.{self.id}.backends")
        client = self._clients.get(backend.url)
        if client is None:
            client = ComfyUIClient(backend.url, self.http, uuid.uuid4().hex, provider=self, backend=backend,
                                   timeout=self.settings.request_timeout,
                                   connect_timeout=self.settings.connect_timeout,
                                   headers=_auth_headers(backend), logger=self.logger)
            self._clients[backend.url] = client
        return client

    async def close(self) -> None:
        """Finish pending history deletes (at most 5 s), then close every backend's websocket."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=5.0)
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()

    # -- generation ----------------------------------------------------------------------

    async def _load(self, request: GenerationRequest, client: ComfyUIClient) -> WorkflowTemplate:
        if request.workflow is None and request.upscale is not None:
            return load_template("upscale")
        if request.workflow is None and self._template is not None:
            return self._template
        source = _parse_source(request.workflow or self.settings.workflow)
        if is_ui_workflow(source):
            return load_template(source, object_info=await client.object_info())
        return load_template(source)

    def _check(self, template: WorkflowTemplate, request: GenerationRequest) -> None:
        if request.media not in template.media:
            raise Unsupported(f"workflow {template.name!r} makes {', '.join(m.value for m in template.media)}, "
                              f"not {request.media.value}", provider=self.id, field="media")
        for slot, given, node in (("init_image", request.init_image, "LoadImage"),
                                  ("mask", request.mask, "LoadImageMask")):
            if given is not None and not template.has(slot):
                raise Unsupported(f"workflow {template.name!r} has no {slot} slot (a {node} node)",
                                  provider=self.id, field=slot)
        if request.n > 1 and not template.has("batch_size"):
            raise Unsupported(f"workflow {template.name!r} has no batch_size slot, so n must be 1",
                              provider=self.id, field="n")

    async def _upload_inputs(self, client: ComfyUIClient, request: GenerationRequest, job_id: str) -> dict[str, str]:
        names: dict[str, str] = {}
        for slot, data in (("init_image", request.init_image), ("mask", request.mask)):
            if data is None:
                continue
            ext, mime = _image_kind(data)
            answer = await client.upload_image(data, f"{_SAFE.sub('_', job_id)}_{slot}.{ext}",
                                               subfolder=UPLOAD_SUBFOLDER, overwrite=True, content_type=mime)
            sub = answer.get("subfolder") or ""
            names[slot] = f"{sub}/{answer['name']}" if sub else str(answer["name"])
        return names

    async def _submit(self, client: ComfyUIClient, template: WorkflowTemplate, request: GenerationRequest,
                      ctx: JobContext, prompt_id: str) -> dict[str, Any]:
        images = await self._upload_inputs(client, request, ctx.job_id)
        prompt = apply(template, request, images=images)
        apply_addons(prompt, request)
        if request.upscale is not None and template.has("scale"):
            for node_id, name in template.slots["scale"]:
                prompt[node_id]["inputs"][name] = request.upscale.scale
            prompt.applied["scale"] = request.upscale.scale
        answer = await client.queue_prompt(prompt, prompt_id=prompt_id,
                                           extra_data={"extra_pnginfo": {"image_studio_job": ctx.job_id}})
        return {"number": answer.get("number"), "node_errors": answer.get("node_errors") or {},
                "values": prompt.applied}

    async def _resume(self, client: ComfyUIClient, prompt_id: str) -> tuple[bool, dict[str, Any] | None]:
        """``(known, finished entry)`` of a remembered prompt: history first, then the queue,
        then history again (it may have finished in between)."""
        entry = await client.get_history(prompt_id)
        if entry is None and await client.queue_position(prompt_id) is not None:
            return True, None
        entry = entry or await client.get_history(prompt_id)
        return entry is not None, entry if history_finished(entry) else None

    async def generate(self, request: GenerationRequest, ctx: JobContext) -> GenerationResult:
        """Run ``request`` through the workflow template on ``ctx.backend``.

        A task cancellation (service shutdown) leaves the prompt running on the backend, so
        that the remembered prompt_id can be resumed; ``ctx.cancel_event`` stops it.

        Raises:
            InvalidRequest: ComfyUI refused the prompt (node id, class_type and input named;
                field ``workflow.nodes.<id>.inputs.<name>``), or a bad ``params`` name.
            Unsupported: the workflow has no slot for the init image, mask or batch size, or
                makes another media kind.
            GenerationFailed: ``execution_error`` on the backend, or no output file.
            JobCanceled: canceled, or interrupted on the backend.
            ProviderUnavailable, ProviderTimeout, ProviderError: transport and HTTP failures.
        """
        ctx.raise_if_canceled()
        backend = ctx.backend or self.backends[0]
        client = self.client(backend)
        template = await self._load(request, client)
        self._check(template, request)
        await client.connect(self.settings.connect_timeout)
        prompt_id = ctx.resume_id or str(uuid.uuid4())
        events = client.events.subscribe(prompt_id)
        info: dict[str, Any] = {"prompt_id": prompt_id, "workflow": template.name}
        try:
            known, entry = (await self._resume(client, prompt_id)) if ctx.resume_id else (False, None)
            info["resumed"] = known
            if not known:
                await ctx.remember(prompt_id)
                info.update(await self._submit(client, template, request, ctx, prompt_id))
            if entry is None:
                waiter = PromptWaiter(client, prompt_id, events, ctx, interval=self.settings.history_poll_interval,
                                      previews=self.settings.preview, stop=self._stop, provider_id=self.id,
                                      logger=self.logger)
                entry = await waiter.wait()
            else:
                raise_for_history(entry, prompt_id, provider=self.id, backend=client.label)
        finally:
            client.events.unsubscribe(prompt_id)
        seed = _used_seed(template, entry)
        files = await self._fetch(client, entry, prompt_id, seed)
        if self.settings.delete_history:
            # Off the job's critical path: the outputs are fetched, the entry is only tidied.
            task = asyncio.create_task(self._forget(client, prompt_id), name=f"comfyui-forget {prompt_id}")
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        return GenerationResult(files=files, provider=self.id, backend=backend.label if backend else None,
                                model=request.model or template.value("checkpoint"), provider_job_id=prompt_id,
                                info={**info, "seed": seed})

    async def _fetch(self, client: ComfyUIClient, entry: dict[str, Any], prompt_id: str,
                     seed: int | None) -> list[GeneratedFile]:
        refs = collect_outputs(entry)
        if not refs:
            raise GenerationFailed(f"ComfyUI prompt {prompt_id} finished without output files (the workflow needs "
                                   "a SaveImage or another saving node)", provider=self.id, backend=client.label,
                                   retryable=False, field="workflow")
        files = []
        for ref in refs:
            data, content_type = await client.view(ref.filename, ref.subfolder, ref.type)
            mime, media = _file_kind(ref.filename, content_type, ref.format)
            width, height = _image_size(data) if media is MediaKind.image else (None, None)
            files.append(GeneratedFile(
                data=data, mime_type=mime, filename=ref.filename, media=media, width=width, height=height,
                seed=seed,
                parameters={"comfyui_prompt_id": prompt_id, "comfyui_node": ref.node_id,
                            "comfyui_subfolder": ref.subfolder}))
        return files

    async def _forget(self, client: ComfyUIClient, prompt_id: str) -> None:
        try:
            await client.delete_history([prompt_id])
        except ImageStudioError as exc:
            self.logger.warning("ComfyUI %s: could not delete history of %s: %s", client.label, prompt_id, exc)

    async def _stop(self, client: ComfyUIClient, prompt_id: str) -> None:
        """Remove a prompt from the queue and interrupt it if it runs (best effort)."""
        try:
            await client.delete_from_queue([prompt_id])
            await client.interrupt(prompt_id)
        except ImageStudioError as exc:
            self.logger.warning("ComfyUI %s: could not stop prompt %s: %s", client.label, prompt_id, exc)

    async def cancel(self, ctx: JobContext) -> None:
        """``POST /queue {"delete": [id]}`` and ``POST /interrupt {"prompt_id": id}`` for the
        job's prompt; ComfyUI then ends it with ``execution_interrupted``. Never raises."""
        prompt_id = ctx.provider_job_id or ctx.resume_id
        if prompt_id:
            await self._stop(self.client(ctx.backend), prompt_id)

    # -- information ---------------------------------------------------------------------

    async def health(self, backend: BackendConfig | None = None) -> HealthStatus:
        """``GET /system_stats`` with a short timeout (at most 5 s); never raises."""
        backend = backend or self.backends[0]
        label = backend.label if backend else None
        start = time.monotonic()
        try:
            stats = await self.client(backend).system_stats(timeout=min(5.0, self.settings.connect_timeout))
        except ImageStudioError as exc:
            return HealthStatus(ok=False, provider=self.id, backend=label, message=exc.message)
        system = stats.get("system") or {}
        devices = [d.get("name") for d in stats.get("devices") or [] if isinstance(d, dict)]
        return HealthStatus(ok=True, provider=self.id, backend=label, latency=time.monotonic() - start,
                            message=f"ComfyUI {system.get('comfyui_version', '?')}",
                            details={"comfyui_version": system.get("comfyui_version"), "devices": devices,
                                     "ram_free": system.get("ram_free")})

    async def list_models(self, backend: BackendConfig | None = None) -> list[ModelInfo]:
        """Checkpoints: CheckpointLoaderSimple's ``ckpt_name`` choices in ``/object_info``."""
        backend = backend or self.backends[0]
        info = await self.client(backend).object_info("CheckpointLoaderSimple")
        names = combo_options(info.get("CheckpointLoaderSimple"), "ckpt_name")
        return [ModelInfo(id=n, name=n, kind="checkpoint", provider=self.id,
                          backend=backend.label if backend else None) for n in names]

    async def object_info(self, backend: BackendConfig | None = None) -> dict[str, Any]:
        """The whole node catalogue (``GET /object_info``) of one backend (the first if None),
        for UI-to-API conversion and the workflow editor."""
        return await self.client(backend).object_info()

    async def options(self, backend: BackendConfig | None = None) -> dict[str, Any]:
        """``samplers``, ``schedulers``, ``checkpoints`` and ``workflows``, plus the add-on
        choices where the backend has the loader nodes: ``loras`` (LoraLoader), ``vaes``
        (VAELoader), ``upscalers`` (UpscaleModelLoader) and ``latent_upscale_methods``
        (LatentUpscaleBy, for the hires fix)."""
        client = self.client(backend)
        wanted = {"KSampler": {"samplers": "sampler_name", "schedulers": "scheduler"},
                  "CheckpointLoaderSimple": {"checkpoints": "ckpt_name"},
                  "LoraLoader": {"loras": "lora_name"}, "VAELoader": {"vaes": "vae_name"},
                  "UpscaleModelLoader": {"upscalers": "model_name"},
                  "LatentUpscaleBy": {"latent_upscale_methods": "upscale_method"}}
        out: dict[str, Any] = {"workflows": list_templates()}
        for node_class, keys in wanted.items():
            info = (await client.object_info(node_class)).get(node_class)
            if info is None:
                continue
            for key, input_name in keys.items():
                out[key] = combo_options(info, input_name)
        return out
