"""Saved ComfyUI workflow templates (table ``image_studio_workflows``), on the JobStore's
database. A template is an API-format graph, optionally the UI-format graph it came from (for
the editor), and its parameter slots with their metadata.

The ``slots`` column (JSON) holds ``{name: [[node_id, input], ...]}`` and, under the reserved key
``"__params__"`` (:data:`~image_studio.providers.comfyui.workflow.PARAMS_KEY`), the exposed
parameters' metadata ``{name: {"type", "title", "minimum", "maximum", "step", "enum",
"description", "default"}}``; rows saved before that key existed simply have no metadata, so the table needs
no new column."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..errors import Conflict, NotFound
from ..providers.comfyui.workflow import PARAMS_KEY
from ..types import utcnow
from .store import JobStore, new_id
from .tables import WorkflowRow


class StoredWorkflow(BaseModel):
    """A saved workflow. ``api`` is ComfyUI's API format (``{node_id: {class_type, inputs}}``);
    ``ui`` the litegraph UI format or None; ``slots`` maps a parameter name to its node inputs
    and may carry the metadata under ``"__params__"`` (as stored: a template built from it with
    :func:`~image_studio.providers.comfyui.workflow.template_from_json` reads both); ``params``
    is that metadata alone (see :mod:`image_studio.providers.comfyui.workflow`)."""

    id: str
    name: str
    owner: str | None = None
    description: str | None = None
    api: dict[str, Any]
    ui: dict[str, Any] | None = None
    slots: dict[str, Any] = Field(default_factory=dict)

    @property
    def params(self) -> dict[str, Any]:
        """The exposed parameters' metadata, ``{name: {"title", "minimum", ...}}`` ({} if none)."""
        return dict(self.slots.get(PARAMS_KEY) or {})


def _stored_slots(slots: dict[str, Any], params: dict[str, Any] | None) -> dict[str, Any]:
    out = {k: v for k, v in slots.items() if k != PARAMS_KEY}
    if params:
        out[PARAMS_KEY] = params
    return out


def _of(row: WorkflowRow) -> StoredWorkflow:
    return StoredWorkflow(id=row.id, name=row.name, owner=row.owner, description=row.description,
                          api=row.api, ui=row.ui, slots=row.slots or {})


class WorkflowStore:
    """CRUD of saved workflows. Names are unique (a second save under a taken name is 409)."""

    def __init__(self, store: JobStore) -> None:
        self.session = store.session

    async def list(self) -> list[StoredWorkflow]:
        async with self.session() as s:
            rows = (await s.execute(select(WorkflowRow).order_by(WorkflowRow.name))).scalars().all()
            return [_of(r) for r in rows]

    async def get(self, id_or_name: str) -> StoredWorkflow:
        """By id, else by name. Raises NotFound (field ``workflow``)."""
        async with self.session() as s:
            row = await s.get(WorkflowRow, id_or_name)
            if row is None:
                row = (await s.execute(select(WorkflowRow).where(WorkflowRow.name == id_or_name))).scalar_one_or_none()
            if row is None:
                raise NotFound(f"no saved workflow {id_or_name!r}", field="workflow")
            return _of(row)

    async def create(self, *, name: str, api: dict, ui: dict | None, slots: dict, owner: str | None,
                     description: str | None = None, params: dict | None = None) -> StoredWorkflow:
        """Save a workflow; ``params`` is the parameters' metadata (``{name: {...}}``), stored
        beside the slots. Raises Conflict (field ``name``) when the name is taken."""
        now = utcnow()
        row = WorkflowRow(id=new_id(), name=name, owner=owner, description=description, api=api, ui=ui,
                          slots=_stored_slots(slots, params), created_at=now, updated_at=now)
        try:
            async with self.session.begin() as s:
                s.add(row)
        except IntegrityError as exc:
            raise Conflict(f"a workflow named {name!r} exists", field="name") from exc
        return _of(row)

    async def update(self, workflow_id: str, **fields: Any) -> StoredWorkflow:
        """Change name, description, api, ui, slots or params (None leaves a field; ``slots``
        without ``params`` keeps the stored metadata of the slots that remain). Raises NotFound,
        Conflict."""
        try:
            async with self.session.begin() as s:
                row = await s.get(WorkflowRow, workflow_id)
                if row is None:
                    raise NotFound(f"no saved workflow {workflow_id!r}", field="workflow_id")
                params = fields.pop("params", None)
                slots = fields.pop("slots", None)
                if slots is not None or params is not None:
                    current = dict(row.slots or {})
                    new_slots = slots if slots is not None else current
                    kept = params if params is not None else current.get(PARAMS_KEY) or {}
                    row.slots = _stored_slots(new_slots, {k: v for k, v in kept.items() if k in new_slots})
                for key, value in fields.items():
                    if key in {"name", "description", "api", "ui"} and value is not None:
                        setattr(row, key, value)
                row.updated_at = utcnow()
        except IntegrityError as exc:
            raise Conflict(f"a workflow named {fields.get('name')!r} exists", field="name") from exc
        return _of(row)

    async def delete(self, workflow_id: str) -> None:
        async with self.session.begin() as s:
            row = await s.get(WorkflowRow, workflow_id)
            if row is None:
                raise NotFound(f"no saved workflow {workflow_id!r}", field="workflow_id")
            await s.delete(row)
