"""Studio routes that exist only inside Open WebUI (mounted by :mod:`.mount` at the studio's
prefix, ``/api/v1/image-studio``; the standalone service does not have them, so they are not in
its OpenAPI document and answer 404 there).

``POST /openwebui/import-config`` (admins): carry Open WebUI's image settings over into the
studio (:mod:`.import_config`), reading them in-process with Open WebUI's own ``Config`` model.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from ..api.deps import AdminDep, StudioDep
from ..api.schemas import ErrorBody
from ..errors import ConfigError, InvalidRequest
from . import import_config

router = APIRouter(tags=["openwebui"])


class ImportConfigIn(BaseModel):
    """``dry_run``: only compute the plan; ``force``: also apply changes to providers,
    workflows and settings that exist (additions are always applied unless ``dry_run``)."""

    model_config = ConfigDict(extra="forbid")

    dry_run: bool = False
    force: bool = False


class ImportChange(BaseModel):
    """One line of the plan: ``key`` (``providers.<id>[.<field>]``, ``workflows.<name>[.<field>]``,
    ``default_provider``, ``openai_facade...``), the value now (None: absent) and the imported
    one (secrets masked); ``conflict``: it changes something that exists (needs ``force``)."""

    key: str
    old: Any = None
    new: Any = None
    conflict: bool = False


class ImportConfigOut(BaseModel):
    """The plan and what was done. ``added``/``changed``/``unchanged`` are item keys;
    ``applied`` the items written; ``refused`` when changes were held back for want of
    ``force``; ``lines`` the plan as ``KEY: old -> new`` text; ``notes`` what was not carried
    over, and where values came from (configure's backup)."""

    dry_run: bool
    refused: bool
    added: list[str] = Field(default_factory=list)
    changed: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
    applied: list[str] = Field(default_factory=list)
    changes: list[ImportChange] = Field(default_factory=list)
    lines: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


@router.post("/openwebui/import-config", response_model=ImportConfigOut,
             responses={403: {"model": ErrorBody}, 422: {"model": ErrorBody}})
async def import_openwebui_config(studio: StudioDep, principal: AdminDep,
                                  body: ImportConfigIn | None = None) -> ImportConfigOut:
    """Import Open WebUI's image settings (its engines, ComfyUI workflow and node mapping,
    size and steps, edit settings; what ``image-studio openwebui configure`` replaced comes from
    its backup) as providers ``owui-*``, saved workflows and defaults. Additions are applied;
    changes only with ``force``; nothing with ``dry_run``."""
    body = body or ImportConfigIn()
    values = await import_config.read_in_process()
    try:
        out = await import_config.run_import(studio, values, data_dir=import_config.openwebui_data_dir(),
                                             force=body.force, dry_run=body.dry_run, source="settings panel")
    except ConfigError as exc:
        raise InvalidRequest(exc.message, field=exc.field) from exc
    return ImportConfigOut.model_validate(import_config.outcome_json(out))
