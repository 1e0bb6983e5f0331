"""Prompt templates and style presets: list, create, read, change, delete, and render a
preview. A user's templates are their own; an admin may mark one ``shared`` (everyone sees and
uses it; only admins change it). Shipped style presets (``builtin:<name>``) are read-only.
A generation uses them with ``template`` + ``variables`` and ``styles`` (see
:meth:`image_studio.studio.Studio.apply_templates`)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from ..errors import InvalidRequest, PermissionDenied
from ..jobs.template_store import StoredTemplate, TemplateStore
from ..prompts.templates import apply_style, render
from .deps import PrincipalDep, StudioDep
from .schemas import ErrorBody

router = APIRouter(tags=["templates"])

NAME = r"^[\w][\w .()'-]*$"


class TemplateIn(BaseModel):
    """A template to save: ``prompt`` and ``negative_prompt`` with ``{placeholders}``,
    ``defaults`` for some of them; ``kind`` ``style`` for a style preset (its ``{prompt}`` is
    the prompt it styles); ``shared`` (admins only) makes it everyone's."""

    name: str = Field(min_length=1, max_length=200, pattern=NAME)
    kind: Literal["prompt", "style"] = "prompt"
    prompt: str = Field(max_length=10_000)
    negative_prompt: str | None = Field(default=None, max_length=10_000)
    defaults: dict[str, str | int | float] = Field(default_factory=dict, max_length=64)
    description: str | None = Field(default=None, max_length=2000)
    shared: bool = False


class TemplateUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=NAME)
    prompt: str | None = Field(default=None, max_length=10_000)
    negative_prompt: str | None = Field(default=None, max_length=10_000)
    defaults: dict[str, str | int | float] | None = None
    description: str | None = Field(default=None, max_length=2000)
    shared: bool | None = None


class RenderIn(BaseModel):
    """What to render the template with: ``variables`` and the ``prompt`` for ``{prompt}``;
    ``styles`` to add after it."""

    variables: dict[str, str | int | float] = Field(default_factory=dict)
    prompt: str = ""
    negative_prompt: str | None = None
    styles: list[str] = Field(default_factory=list, max_length=8)


class RenderOut(BaseModel):
    prompt: str
    negative_prompt: str | None


class PromptsRenderIn(BaseModel):
    """What a generation would carry: its prompts, optional ``template`` + ``variables``, and
    ``styles``."""

    prompt: str = Field(default="", max_length=10_000)
    negative_prompt: str | None = Field(default=None, max_length=10_000)
    template: str | None = Field(default=None, max_length=200)
    variables: dict[str, str | int | float] = Field(default_factory=dict, max_length=64)
    styles: list[str] = Field(default_factory=list, max_length=8)


def _check_shared(principal: Any, shared: bool | None) -> None:
    if shared and not principal.is_admin:
        raise PermissionDenied("only admins share templates with everyone", field="shared")


def _check_defaults(tpl: StoredTemplate) -> None:
    unknown = sorted(set(tpl.defaults) - set(tpl.variables))
    if unknown:
        raise InvalidRequest(f"default for {{{unknown[0]}}}, which the template does not use",
                             field=f"defaults.{unknown[0]}")


@router.get("/templates", response_model=list[StoredTemplate])
async def list_templates(studio: StudioDep, principal: PrincipalDep,
                         kind: Literal["prompt", "style"] | None = None) -> list[StoredTemplate]:
    """Shipped style presets, then the caller's own and the shared templates (admins: all)."""
    return await TemplateStore(studio.store).list(owner=principal.scope, kind=kind)


@router.post("/templates", response_model=StoredTemplate, status_code=201,
             responses={403: {"model": ErrorBody}, 409: {"model": ErrorBody}, 422: {"model": ErrorBody}})
async def create_template(body: TemplateIn, studio: StudioDep, principal: PrincipalDep) -> StoredTemplate:
    """Save a template as the caller's (``shared`` only for admins: 403 otherwise)."""
    _check_shared(principal, body.shared)
    from ..jobs.template_store import _variables  # noqa: PLC0415 - the placeholder check, before saving

    unknown = sorted(set(body.defaults) - set(_variables(body.prompt, body.negative_prompt)))
    if unknown:
        raise InvalidRequest(f"default for {{{unknown[0]}}}, which the template does not use",
                             field=f"defaults.{unknown[0]}")
    return await TemplateStore(studio.store).create(
        name=body.name, kind=body.kind, prompt=body.prompt, negative_prompt=body.negative_prompt,
        defaults=body.defaults, description=body.description, shared=body.shared, owner=principal.owner)


@router.post("/templates/render", response_model=RenderOut,
             responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}})
async def render_prompts(body: PromptsRenderIn, studio: StudioDep, principal: PrincipalDep) -> RenderOut:
    """The prompts a generation with these fields would run, exactly as ``POST /generations``
    renders them (a template is optional: styles alone apply to the prompt) — the Generate
    page's preview."""
    prompt, negative = await studio.render_prompts(
        body.prompt, body.negative_prompt, template=body.template, variables=dict(body.variables),
        styles=list(body.styles), owner=principal.owner)  # the owner a generation renders for
    return RenderOut(prompt=prompt, negative_prompt=negative)


@router.get("/templates/{template_id}", response_model=StoredTemplate, responses={404: {"model": ErrorBody}})
async def get_template(template_id: str, studio: StudioDep, principal: PrincipalDep) -> StoredTemplate:
    return await TemplateStore(studio.store).get(template_id, owner=principal.scope)


@router.put("/templates/{template_id}", response_model=StoredTemplate,
            responses={403: {"model": ErrorBody}, 404: {"model": ErrorBody}, 409: {"model": ErrorBody}})
async def update_template(template_id: str, body: TemplateUpdate, studio: StudioDep,
                          principal: PrincipalDep) -> StoredTemplate:
    """Change one of the caller's templates (admins: any). Shipped presets are read-only."""
    if template_id.startswith("builtin:"):
        raise InvalidRequest("shipped style presets are read-only: save a copy under another name",
                             field="template_id")
    _check_shared(principal, body.shared)
    updated = await TemplateStore(studio.store).update(template_id, owner=principal.scope,
                                                       **body.model_dump(exclude_unset=True))
    _check_defaults(updated)
    return updated


@router.delete("/templates/{template_id}", status_code=204, response_class=Response,
               responses={404: {"model": ErrorBody}})
async def delete_template(template_id: str, studio: StudioDep, principal: PrincipalDep) -> Response:
    if template_id.startswith("builtin:"):
        raise InvalidRequest("shipped style presets cannot be deleted", field="template_id")
    await TemplateStore(studio.store).delete(template_id, owner=principal.scope)
    return Response(status_code=204)


@router.post("/templates/{template_id}/render", response_model=RenderOut,
             responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}})
async def render_template(template_id: str, body: RenderIn, studio: StudioDep, principal: PrincipalDep) -> RenderOut:
    """The prompts a generation with this template, these variables and styles would run —
    a preview for the Generate page."""
    store = TemplateStore(studio.store)
    tpl = await store.get(template_id, owner=principal.scope)
    prompt, negative = render(tpl.template(), dict(body.variables), body.prompt)
    if body.negative_prompt:
        negative = ", ".join(p for p in (negative or "", body.negative_prompt) if p.strip())
    for name in body.styles:
        style = await store.get(name, owner=principal.scope, kind="style")
        prompt, negative = apply_style(style.template(), prompt, negative)
    return RenderOut(prompt=prompt, negative_prompt=negative)
