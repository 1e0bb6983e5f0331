"""Saved prompt templates and style presets (table ``image_studio_templates``), on the
JobStore's database. A user sees their own, the shared ones (made shared by an admin) and the
shipped style presets (:data:`image_studio.prompts.templates.BUILTIN_STYLES`, read-only)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from ..errors import Conflict, NotFound
from ..prompts.templates import BUILTIN_STYLES, Template, placeholders
from ..types import utcnow
from .store import JobStore, new_id
from .tables import TemplateRow


class StoredTemplate(BaseModel):
    """A template as stored and listed. ``variables`` are the placeholder names of both
    texts (``prompt`` included when used); ``builtin`` for the shipped style presets."""

    id: str
    name: str
    kind: str = "prompt"
    owner: str | None = None
    shared: bool = False
    builtin: bool = False
    description: str | None = None
    prompt: str
    negative_prompt: str | None = None
    defaults: dict[str, Any] = Field(default_factory=dict)
    variables: list[str] = Field(default_factory=list)

    def template(self) -> Template:
        return Template(id=self.id, name=self.name, prompt=self.prompt, negative_prompt=self.negative_prompt,
                        defaults=self.defaults, kind=self.kind, description=self.description)


def _variables(prompt: str, negative: str | None) -> list[str]:
    out = placeholders(prompt)
    return out + [n for n in placeholders(negative) if n not in out]


def _of(row: TemplateRow) -> StoredTemplate:
    return StoredTemplate(id=row.id, name=row.name, kind=row.kind, owner=row.owner, shared=row.shared,
                          description=row.description, prompt=row.prompt, negative_prompt=row.negative_prompt,
                          defaults=row.defaults or {}, variables=_variables(row.prompt, row.negative_prompt))


def builtin_styles() -> list[StoredTemplate]:
    """The shipped style presets, as listed."""
    return [StoredTemplate(id=t.id, name=t.name, kind="style", builtin=True, shared=True, description=t.description,
                           prompt=t.prompt, negative_prompt=t.negative_prompt,
                           variables=_variables(t.prompt, t.negative_prompt)) for t in BUILTIN_STYLES.values()]


class TemplateStore:
    """CRUD of templates; ``owner`` None (an admin's view) means every template."""

    def __init__(self, store: JobStore) -> None:
        self.session = store.session

    async def list(self, *, owner: str | None, kind: str | None = None) -> list[StoredTemplate]:
        """The caller's own and the shared templates (all, for ``owner=None``), shipped styles
        first, then by name."""
        stmt = select(TemplateRow).order_by(TemplateRow.name)
        if owner is not None:
            stmt = stmt.where(or_(TemplateRow.owner == owner, TemplateRow.shared.is_(True)))
        if kind is not None:
            stmt = stmt.where(TemplateRow.kind == kind)
        async with self.session() as s:
            rows = (await s.execute(stmt)).scalars().all()
        builtin = [t for t in builtin_styles() if kind in (None, "style")]
        return builtin + [_of(r) for r in rows]

    async def get(self, id_or_name: str, *, owner: str | None, kind: str | None = None) -> StoredTemplate:
        """By id, ``builtin:<style>``, or name (the caller's own first, then a shared one).

        Raises:
            NotFound: none the caller may see (field ``template``).
        """
        name = id_or_name[8:] if id_or_name.startswith("builtin:") else id_or_name
        if name in BUILTIN_STYLES and kind in (None, "style"):
            return next(t for t in builtin_styles() if t.name == name)
        async with self.session() as s:
            row = await s.get(TemplateRow, id_or_name)
            if row is None:
                stmt = select(TemplateRow).where(TemplateRow.name == id_or_name)
                rows = (await s.execute(stmt)).scalars().all()
                mine = [r for r in rows if owner is None or r.owner == owner]
                row = (mine or [r for r in rows if r.shared] or [None])[0]
        visible = row is not None and (owner is None or row.owner == owner or row.shared)
        if not visible or (kind is not None and row.kind != kind):
            what = "style preset" if kind == "style" else "template"
            raise NotFound(f"no {what} {id_or_name!r}", field="template" if kind != "style" else "styles")
        return _of(row)

    async def create(self, *, name: str, prompt: str, owner: str, kind: str = "prompt", shared: bool = False,
                     negative_prompt: str | None = None, defaults: dict[str, Any] | None = None,
                     description: str | None = None) -> StoredTemplate:
        """Raises Conflict (field ``name``) when the owner has one by that name;
        InvalidRequest for a malformed placeholder."""
        _variables(prompt, negative_prompt)  # a lone brace is the caller's error, before saving
        now = utcnow()
        row = TemplateRow(id=new_id(), name=name, kind=kind, owner=owner, shared=shared, description=description,
                          prompt=prompt, negative_prompt=negative_prompt, defaults=defaults or {}, created_at=now,
                          updated_at=now)
        try:
            async with self.session.begin() as s:
                s.add(row)
        except IntegrityError as exc:
            raise Conflict(f"you have a template named {name!r}", field="name") from exc
        return _of(row)

    async def update(self, template_id: str, *, owner: str | None, **fields: Any) -> StoredTemplate:
        """Change the given fields (None leaves one). ``owner`` None: an admin, any template.

        Raises:
            NotFound: not the caller's (field ``template_id``). Conflict: the name is taken.
        """
        try:
            async with self.session.begin() as s:
                row = await s.get(TemplateRow, template_id)
                if row is None or (owner is not None and row.owner != owner):
                    raise NotFound(f"no template {template_id!r} of yours", field="template_id")
                for key, value in fields.items():
                    if value is not None:
                        setattr(row, key, value)
                _variables(row.prompt, row.negative_prompt)
                row.updated_at = utcnow()
        except IntegrityError as exc:
            raise Conflict(f"you have a template named {fields.get('name')!r}", field="name") from exc
        return _of(row)

    async def delete(self, template_id: str, *, owner: str | None) -> None:
        """Raises NotFound (field ``template_id``) unless it is the caller's (or an admin's call)."""
        async with self.session.begin() as s:
            row = await s.get(TemplateRow, template_id)
            if row is None or (owner is not None and row.owner != owner):
                raise NotFound(f"no template {template_id!r} of yours", field="template_id")
            await s.delete(row)
