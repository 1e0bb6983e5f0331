"""Providers: list with status, the provider types with their settings schema, test (a free
probe of every backend), models (and, for providers that keep models locally, download with
progress and delete) and options."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from ..errors import ImageStudioError, Unsupported
from ..providers.registry import available_types, provider_class
from .deps import AdminDep, PrincipalDep, StudioDep
from .schemas import DeletedOut, ErrorBody, HealthStatusOut, ModelOut, ProviderOut, ProviderTypeOut

router = APIRouter(tags=["providers"])


@router.get("/providers", response_model=list[ProviderOut])
async def list_providers(studio: StudioDep, principal: PrincipalDep) -> list[ProviderOut]:
    """Every configured provider: type, capabilities, backends with load and cooldowns,
    whether it is the default and its place in the fallback chain, and any load error."""
    return [ProviderOut(**p) for p in studio.provider_summaries()]


@router.get("/provider-types", response_model=list[ProviderTypeOut])
async def provider_types(principal: AdminDep) -> list[ProviderTypeOut]:
    """Every provider type the config may name (built-in and entry points), with the JSON
    Schema of its settings: the admin panel builds its provider form from it."""
    out = []
    for name in available_types():
        try:
            cls = provider_class(name)
        except Exception:  # noqa: BLE001 - a broken plug-in is left out, not a 500
            continue
        out.append(ProviderTypeOut(type=name, settings_schema=cls.Settings.model_json_schema(),
                                   credentials=dict(cls.credential_fields), needs_backend=cls.needs_backend,
                                   default_url=cls.default_url))
    return out


@router.post("/providers/{provider_id}/test", response_model=list[HealthStatusOut],
             responses={404: {"model": ErrorBody}})
async def test_provider(provider_id: str, studio: StudioDep, principal: PrincipalDep) -> list[HealthStatusOut]:
    """Probe each backend with a free call (never a paid generation)."""
    return [HealthStatusOut(**h.model_dump()) for h in await studio.test_provider(provider_id)]


@router.get("/providers/{provider_id}/models", response_model=list[ModelOut], responses={404: {"model": ErrorBody}})
async def provider_models(provider_id: str, studio: StudioDep, principal: PrincipalDep) -> list[ModelOut]:
    """Models (checkpoints) the provider offers, read from its first backend."""
    models = await studio.provider(provider_id).list_models()
    return [ModelOut(**m.model_dump()) for m in models]


@router.get("/providers/{provider_id}/options", response_model=dict[str, Any], responses={404: {"model": ErrorBody}})
async def provider_options(provider_id: str, studio: StudioDep, principal: PrincipalDep) -> dict[str, Any]:
    """Choices for the parameter controls: samplers, schedulers, LoRAs, upscalers, VAEs ..."""
    return await studio.provider(provider_id).options()


class DownloadIn(BaseModel):
    """A model to fetch into a local provider's cache: a Hugging Face hub id (``org/name``)."""

    repo_id: str = Field(min_length=3, max_length=200)


_DOWNLOADS: set[asyncio.Task[None]] = set()


def _local_models(studio: Any, provider_id: str, what: str) -> Any:
    provider = studio.provider(provider_id)
    if not hasattr(provider, what):
        raise Unsupported(f"provider {provider_id!r} ({provider.type}) keeps no local models to "
                          f"{what.split('_')[0]}", field="provider")
    return provider


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


@router.post("/providers/{provider_id}/models/download", response_class=StreamingResponse,
             responses={200: {"content": {"text/event-stream": {}}}, 404: {"model": ErrorBody},
                        422: {"model": ErrorBody}})
async def download_model(provider_id: str, body: DownloadIn, studio: StudioDep, principal: AdminDep) -> StreamingResponse:
    """Download a model into a local provider's cache (admins; ``diffusers_local``), answered as
    Server-Sent Events: ``progress`` (``{"desc", "unit": "B"|"it", "done", "total"}``; bytes or
    files), then ``done`` (the model, as ``GET /providers/{id}/models`` lists it) or ``error``
    (``{"type", "message", "field"}``). Closing the stream does not stop the download.

    Raises:
        Unsupported (422): the provider keeps no local models. NotFound (404): no such provider.
    """
    provider = _local_models(studio, provider_id, "download_model")
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def on_progress(p: Any) -> None:
        await queue.put(_sse("progress", {"desc": p.desc, "unit": p.unit, "done": p.done, "total": p.total}))

    async def run() -> None:
        try:
            info = await provider.download_model(body.repo_id, on_progress)
            await queue.put(_sse("done", ModelOut(**info.model_dump()).model_dump()))
        except ImageStudioError as exc:
            await queue.put(_sse("error", exc.to_dict()))
        finally:
            await queue.put(None)

    task = asyncio.create_task(run())
    _DOWNLOADS.add(task)  # held until done: the download goes on if the client leaves
    task.add_done_callback(_DOWNLOADS.discard)

    async def stream() -> AsyncIterator[bytes]:
        while (item := await queue.get()) is not None:
            yield item

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.delete("/providers/{provider_id}/models/{model_id:path}", response_model=DeletedOut,
               responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}})
async def delete_model(provider_id: str, model_id: str, studio: StudioDep, principal: AdminDep) -> DeletedOut:
    """Delete a cached model of a local provider (admins; hub models of ``diffusers_local``;
    model folders are never deleted).

    Raises:
        NotFound (404): no such provider, or the model is not in the cache.
        Unsupported (422): the provider keeps no local models.
    """
    provider = _local_models(studio, provider_id, "delete_model")
    freed = await provider.delete_model(model_id)
    return DeletedOut(deleted=model_id, freed_bytes=freed)
