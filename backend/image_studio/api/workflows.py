"""Workflows: the shipped ComfyUI templates and saved ones (CRUD), UI-to-API conversion with a
backend's ``/object_info``, the JSON Schema of a workflow's parameters, and read-only
pass-throughs of a ComfyUI provider's ``object_info`` for the editor.

A saved workflow is used by name in a generation (``"workflow": "<name>"``); the Studio
resolves it before the ComfyUI adapter sees the request.

Exposed parameters: ``slots`` names them (``{name: [[node_id, input], ...]}``) and ``params``
gives each one metadata (:class:`ParamMetaIn`: title, description, default, minimum, maximum,
step, enum) that ``GET /workflows/{id}/parameters`` publishes in its JSON Schema and that a
generation's ``params`` must satisfy (else 422 naming ``params.<name>``).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from ..errors import ConfigError, InvalidRequest, NotFound
from ..jobs.workflow_store import StoredWorkflow, WorkflowStore
from ..providers.comfyui.workflow import (
    WorkflowTemplate,
    check_params,
    is_ui_workflow,
    list_templates,
    load_template,
    template_from_json,
)
from ..studio import Studio
from ..types import GenerationRequest
from .deps import AdminDep, PrincipalDep, StudioDep
from .schemas import ErrorBody

router = APIRouter(tags=["workflows"])


class ParamMetaIn(BaseModel):
    """Metadata of one exposed parameter: a ``title`` (label), ``description``, ``default``
    (shown by forms; the graph keeps its own value), ``type``, ``minimum``/``maximum``/``step`` for numbers
    (in the input's unit) and ``enum`` (allowed values). A generation's value outside
    ``minimum``..``maximum`` or not in ``enum`` is refused (422, field ``params.<name>``)."""

    model_config = {"extra": "forbid"}

    type: Literal["integer", "number", "string", "boolean"] | None = Field(
        default=None, description="JSON Schema type (from the node's object_info); default: the value's type")
    title: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    default: Any = None
    minimum: int | float | None = None
    maximum: int | float | None = None
    step: int | float | None = Field(default=None, gt=0)
    enum: list[Any] | None = Field(default=None, min_length=1)


class WorkflowIn(BaseModel):
    """A workflow to save: ``workflow`` is API format, a template object, or UI format (then
    ``provider`` names the ComfyUI provider whose ``object_info`` converts it). ``slots``
    (``{name: [[node_id, input], ...]}``) overrides the detected parameter slots; ``params``
    (``{name: ParamMetaIn}``) describes them (every name must be a slot)."""

    name: str = Field(min_length=1, max_length=200, pattern=r"^[\w][\w .()-]*$")
    description: str | None = Field(default=None, max_length=2000)
    workflow: dict[str, Any]
    provider: str | None = None
    slots: dict[str, list[list[str]]] | None = None
    params: dict[str, ParamMetaIn] | None = None


class WorkflowUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[\w][\w .()-]*$")
    description: str | None = None
    workflow: dict[str, Any] | None = None
    provider: str | None = None
    slots: dict[str, list[list[str]]] | None = None
    params: dict[str, ParamMetaIn] | None = None


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
    params: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Metadata of the exposed parameters ({name: the ParamMetaIn fields that are set})")
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
                       slots=_slots_json(t), params=_params_out(t), parameters=t.parameters_schema())


def _params_out(template: WorkflowTemplate) -> dict[str, dict[str, Any]]:
    return template.params_json()


def _saved_template(w: StoredWorkflow) -> WorkflowTemplate:
    return template_from_json({"name": w.name, "prompt": w.api, "slots": w.slots, "description": w.description})


def _out_saved(w: StoredWorkflow) -> WorkflowOut:
    t = _saved_template(w)
    return WorkflowOut(id=w.id, name=w.name, builtin=False, description=w.description, owner=w.owner, api=w.api,
                       ui=w.ui, slots=_slots_json(t), params=_params_out(t), parameters=t.parameters_schema())


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


def _params_json(params: dict[str, ParamMetaIn] | None) -> dict[str, dict[str, Any]] | None:
    if params is None:
        return None
    return {k: v.model_dump(exclude_none=True) for k, v in params.items()}


async def _template(studio: Studio, name: str, workflow: dict[str, Any], provider: str | None,
                    slots: dict[str, list[list[str]]] | None,
                    params: dict[str, ParamMetaIn] | None = None) -> tuple[WorkflowTemplate, dict | None]:
    ui = workflow if is_ui_workflow(workflow) else None
    info = await object_info(studio, provider) if ui is not None else None
    try:
        template = template_from_json(workflow, name=name, object_info=info)
        if slots is not None or params is not None:
            template = template_from_json({
                "name": name, "prompt": template.prompt, "description": template.description,
                "slots": slots if slots is not None else _slots_json(template),
                "params": _params_json(params) if params is not None else template.params_json()})
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
    template, ui = await _template(studio, body.name, body.workflow, body.provider, body.slots, body.params)
    saved = await WorkflowStore(studio.store).create(
        name=body.name, api=template.prompt, ui=ui, slots=_slots_json(template), owner=principal.owner,
        description=body.description, params=template.params_json())
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
    if body.workflow is not None or body.slots is not None or body.params is not None:
        source = body.workflow if body.workflow is not None else {"prompt": current.api}
        slots = body.slots
        if slots is None and body.workflow is None:
            slots = _slots_json(_saved_template(current))
        template, ui = await _template(studio, body.name or current.name, source, body.provider, slots,
                                       body.params)
        kept = {k: v for k, v in current.params.items() if k in template.slots}
        if body.params is None and kept:  # keep the stored metadata of the slots that remain
            template, _ = await _template(studio, template.name, {"prompt": template.prompt}, None,
                                          _slots_json(template), {k: ParamMetaIn(**v) for k, v in kept.items()})
        fields.update(api=template.prompt, slots=_slots_json(template), params=template.params_json(),
                      ui=ui if body.workflow is not None else None)
    return _out_saved(await store.update(current.id, **fields))


@router.delete("/workflows/{workflow_id}", status_code=204, response_class=Response,
               responses={404: {"model": ErrorBody}})
async def delete_workflow(workflow_id: str, studio: StudioDep, principal: AdminDep) -> Response:
    await WorkflowStore(studio.store).delete(workflow_id)
    return Response(status_code=204)


async def check_generation_params(studio: Studio, request: GenerationRequest) -> None:
    """Check a generation's ``params`` against the metadata of the saved workflow it names
    (nothing to check for inline or shipped workflows). Meant for ``POST /generations`` so a
    bad value is a 422 before a job exists.

    Raises:
        InvalidRequest: a value outside its parameter's minimum/maximum or not in its enum
            (HTTP 422, field ``params.<name>``).
    """
    name = request.workflow
    if not name or name.lstrip().startswith("{"):
        return
    try:
        saved = await WorkflowStore(studio.store).get(name)
    except NotFound:
        return
    check_params(_saved_template(saved), request)


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
