"""Providers: list with status, test (a free probe of every backend), models and options."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from .deps import PrincipalDep, StudioDep
from .schemas import ErrorBody, HealthStatusOut, ModelOut, ProviderOut

router = APIRouter(tags=["providers"])


@router.get("/providers", response_model=list[ProviderOut])
async def list_providers(studio: StudioDep, principal: PrincipalDep) -> list[ProviderOut]:
    """Every configured provider: type, capabilities, backends with load and cooldowns,
    whether it is the default and its place in the fallback chain, and any load error."""
    return [ProviderOut(**p) for p in studio.provider_summaries()]


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
