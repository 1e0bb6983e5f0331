"""Config: read (secrets masked), change, export and import — admins only.

An admin's change is validated as a whole (every provider built once, so a bad setting is a
422 naming its field), stored encrypted, and applied without a restart.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body

from ..errors import ConfigError, InvalidRequest
from ..providers.registry import available_types
from .deps import AdminDep, PrincipalDep, StudioDep
from .schemas import ConfigOut, ErrorBody

router = APIRouter(tags=["config"])


def _out(studio) -> ConfigOut:  # noqa: ANN001
    return ConfigOut(config=studio.configs.public(), provider_types=available_types())


@router.get("/config", response_model=ConfigOut)
async def get_config(studio: StudioDep, principal: AdminDep) -> ConfigOut:
    """The config in force, every secret masked (``••••`` and the last 4 characters)."""
    return _out(studio)


@router.put("/config", response_model=ConfigOut, responses={422: {"model": ErrorBody}, 403: {"model": ErrorBody}})
async def put_config(studio: StudioDep, principal: AdminDep, body: dict[str, Any] = Body(...)) -> ConfigOut:
    """Replace the config (the shape ``GET /config`` returns). A secret sent back masked, or
    left out, keeps its value. Applied at once, no restart. A provider defined in the config
    file cannot be deleted here: left out, it is kept disabled."""
    await _update(studio, body)
    return _out(studio)


async def _update(studio, body: dict[str, Any]) -> None:  # noqa: ANN001
    """Apply an update; a config that does not validate is the caller's input error (422)."""
    try:
        await studio.update_config(body)
    except ConfigError as exc:
        raise InvalidRequest(exc.message, field=exc.field) from exc


@router.get("/config/export", response_model=dict[str, Any])
async def export_config(studio: StudioDep, principal: AdminDep) -> dict[str, Any]:
    """The config as a file to keep (secrets masked: an import keeps the current secrets)."""
    return studio.configs.public()


@router.post("/config/import", response_model=ConfigOut, responses={422: {"model": ErrorBody}})
async def import_config(studio: StudioDep, principal: AdminDep, body: dict[str, Any] = Body(...)) -> ConfigOut:
    """Same as ``PUT /config`` with an exported file."""
    await _update(studio, body)
    return _out(studio)
