"""Workflows: the shipped ComfyUI templates and saved ones (CRUD), UI-to-API conversion with a
backend's ``/object_info``, the JSON Schema of a workflow's parameters, and read-only
pass-throughs of a ComfyUI provider's ``object_info`` for the editor.

A saved workflow is used by name in a generation (``"workflow": "<name>"``); the Studio
resolves it before the ComfyUI adapter sees the request.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from ..errors import ConfigError, InvalidRequest, NotFound
from ..jobs.workflow_store import StoredWorkflow, WorkflowStore
from ..providers.comfyui.workflow import (
    WorkflowTemplate,
    is_ui_workflow,
    list_templates,
    load_template,
    template_from_json,
)
from ..studio import Studio
from .deps import AdminDep, PrincipalDep, StudioDep
from .schemas import ErrorBody

router = APIRouter(tags=["workflows"])


class WorkflowIn(BaseModel):
    """A workflow to save: ``workflow`` is API format, a template object, or UI format (then
    ``provider`` names the ComfyUI provider whose ``object_info`` converts it). ``slots``
    (``{name: [[node_id, input], ...]}``) overrides the detected parameter slots."""

    name: str = Field(min_length=1, max_length=200, pattern=r"^[\w][\w .()-]*$")
    description: str | None = Field(default=None, max_length=2000)
    workflow: dict[str, Any]
    provider: str | None = None
    slots: dict[str, list[list[str]]] | None = None


class WorkflowUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[\w][\w .()-]*$")
    description: str | None = None
    workflow: dict[str, Any] | None = None
    provider: str | None = None
    slots: dict[str, list[list[str]]] | None = None


class WorkflowOut(BaseModel):
    """A workflow: ``builtin`` for the shipped templates (read-only)."""

    id: str
    name: str
    builtin: bool
    description: str | None
    owner: str | None = None
    api: dict[str, Any]
    ui: dict[str, Any] | None = None
    slots: dict[str, list[list[str]]]
    parameters: dict[str, Any]


class ConvertIn(BaseModel):
    workflow: dict[str, Any]
    provider: str | None = None


class ConvertOut(BaseModel):
    api: dict[str, Any]
    slots: dict[str, list[list[str]]]
    parameters: dict[str, Any]


def _slots_json(template: WorkflowTemplate) -> dict[str, list[list[str]]]:
    return {k: [list(t) for t in v] for k, v in template.slots.items()}


def _out_builtin(name: str) -> WorkflowOut:
    t = load_template(name)
    return WorkflowOut(id=f"builtin:{name}", name=name, builtin=True, description=t.description, api=t.prompt,
                       slots=_slots_json(t), parameters=t.parameters_schema())


def _out_saved(w: StoredWorkflow) -> WorkflowOut:
    t = template_from_json({"name": w.name, "prompt": w.api, "slots": w.slots, "description": w.description})
    return WorkflowOut(id=w.id, name=w.name, builtin=False, description=w.description, owner=w.owner, api=w.api,
                       ui=w.ui, slots=_slots_json(t), parameters=t.parameters_schema())


async def object_info(studio: Studio, provider_id: str | None) -> dict[str, Any]:
    """``/object_info`` of a ComfyUI provider (the named one, else the first that has one).

    Raises:
        InvalidRequest: no provider with a node catalogue (field ``provider``).
    """
    candidates = [provider_id] if provider_id else list(studio.providers)
    for pid in candidates:
        provider = studio.provider(pid)
        fetch = getattr(provider, "object_info", None)
        if fetch is not None:
            return await fetch()
    raise InvalidRequest(f"{provider_id!r} has no node catalogue (object_info): name a ComfyUI provider"
                         if provider_id else "no ComfyUI provider is loaded to read object_info from",
                         field="provider")


async def _template(studio: Studio, name: str, workflow: dict[str, Any], provider: str | None,
                    slots: dict[str, list[list[str]]] | None) -> tuple[WorkflowTemplate, dict | None]:
    ui = workflow if is_ui_workflow(workflow) else None
    info = await object_info(studio, provider) if ui is not None else None
    try:
        template = template_from_json(workflow, name=name, object_info=info)
        if slots is not None:
            template = template_from_json({"name": name, "prompt": template.prompt, "slots": slots})
    except ConfigError as exc:  # a slot pointing nowhere is the caller's input error here
        raise InvalidRequest(exc.message, field=exc.field) from exc
    return template, ui


@router.get("/workflows", response_model=list[WorkflowOut])
async def list_workflows(studio: StudioDep, principal: PrincipalDep) -> list[WorkflowOut]:
    """Shipped templates first, then saved workflows by name."""
    saved = await WorkflowStore(studio.store).list()
    return [_out_builtin(n) for n in list_templates()] + [_out_saved(w) for w in saved]


@router.post("/workflows", response_model=WorkflowOut, status_code=201,
             responses={409: {"model": ErrorBody}, 422: {"model": ErrorBody}})
async def create_workflow(body: WorkflowIn, studio: StudioDep, principal: AdminDep) -> WorkflowOut:
    """Save a workflow (admins). UI format is converted with the provider's object_info and
    kept beside the API format for the editor."""
    if body.name in list_templates():
        raise InvalidRequest(f"{body.name!r} is a shipped template's name", field="name")
    template, ui = await _template(studio, body.name, body.workflow, body.provider, body.slots)
    saved = await WorkflowStore(studio.store).create(
        name=body.name, api=template.prompt, ui=ui, slots=_slots_json(template), owner=principal.owner,
        description=body.description)
    return _out_saved(saved)


@router.get("/workflows/{workflow_id}", response_model=WorkflowOut, responses={404: {"model": ErrorBody}})
async def get_workflow(workflow_id: str, studio: StudioDep, principal: PrincipalDep) -> WorkflowOut:
    if workflow_id.startswith("builtin:"):
        return _out_builtin(workflow_id[8:])
    return _out_saved(await WorkflowStore(studio.store).get(workflow_id))


@router.put("/workflows/{workflow_id}", response_model=WorkflowOut,
            responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}})
async def update_workflow(workflow_id: str, body: WorkflowUpdate, studio: StudioDep, principal: AdminDep) -> WorkflowOut:
    if workflow_id.startswith("builtin:"):
        raise InvalidRequest("shipped templates are read-only: save a copy under another name", field="workflow_id")
    if body.name in list_templates():
        raise InvalidRequest(f"{body.name!r} is a shipped template's name", field="name")
    store = WorkflowStore(studio.store)
    current = await store.get(workflow_id)
    fields: dict[str, Any] = {"name": body.name, "description": body.description}
    if body.workflow is not None or body.slots is not None:
        source = body.workflow if body.workflow is not None else {"prompt": current.api}
        template, ui = await _template(studio, body.name or current.name, source, body.provider, body.slots)
        fields.update(api=template.prompt, slots=_slots_json(template), ui=ui if body.workflow is not None else None)
    return _out_saved(await store.update(current.id, **fields))


@router.delete("/workflows/{workflow_id}", status_code=204, response_class=Response,
               responses={404: {"model": ErrorBody}})
async def delete_workflow(workflow_id: str, studio: StudioDep, principal: AdminDep) -> Response:
    await WorkflowStore(studio.store).delete(workflow_id)
    return Response(status_code=204)


@router.post("/workflows/convert", response_model=ConvertOut, responses={422: {"model": ErrorBody}})
async def convert_workflow(body: ConvertIn, studio: StudioDep, principal: PrincipalDep) -> ConvertOut:
    """UI format (nodes and links) to API format, with the parameter slots detected."""
    template, _ = await _template(studio, "converted", body.workflow, body.provider, None)
    return ConvertOut(api=template.prompt, slots=_slots_json(template), parameters=template.parameters_schema())


@router.get("/workflows/{workflow_id}/parameters", response_model=dict[str, Any], responses={404: {"model": ErrorBody}})
async def workflow_parameters(workflow_id: str, studio: StudioDep, principal: PrincipalDep) -> dict[str, Any]:
    """JSON Schema of the workflow's exposed parameters (defaults from the graph)."""
    return (await get_workflow(workflow_id, studio, principal)).parameters


@router.get("/comfyui/{provider_id}/object_info", response_model=dict[str, Any],
            responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}})
async def comfyui_object_info(provider_id: str, studio: StudioDep, principal: PrincipalDep) -> dict[str, Any]:
    """The node catalogue of a ComfyUI provider's first backend, for the workflow editor."""
    studio.provider(provider_id)  # NotFound, or the provider's ConfigError when it failed to load
    return await object_info(studio, provider_id)
