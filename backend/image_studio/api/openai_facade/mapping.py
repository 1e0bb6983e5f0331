"""Model names of the OpenAI-compatible facade: which provider, workflow and defaults a name runs.

A name (the body's ``model``; ``''`` or absent counts as no name) is looked up, first match wins:

1. ``openai_facade.models.<name>`` of the config (admin-editable through ``PUT /config``);
2. an enabled provider id: that provider alone;
3. a shipped ComfyUI workflow template or a saved workflow: that workflow, on the default
   route's provider when it names one, else on the first enabled provider that runs
   workflows (default provider first, then the fallback chain, then the rest), else on the
   default chain;
4. anything else (``dall-e-2``, ``gpt-image-1``, a typo): ``openai_facade.default``, which
   by default is the default provider and its fallback chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ...config import FacadeModel
from ...errors import NotFound
from ...jobs.workflow_store import WorkflowStore
from ...providers.comfyui.workflow import list_templates
from ...studio import Studio
from ...types import GenerationRequest

Source = Literal["mapped", "provider", "workflow", "default"]


@dataclass(frozen=True)
class Resolved:
    """A model name and the route it runs: ``route`` is a :class:`FacadeModel`; ``source``
    says which rule of the module docstring matched."""

    name: str
    route: FacadeModel
    source: Source


def runs_workflows(studio: Studio, provider_id: str) -> bool:
    """Whether a loaded provider runs ComfyUI workflows (it serves a node catalogue)."""
    provider = studio.providers.get(provider_id)
    return provider is not None and callable(getattr(provider, "object_info", None))


def workflow_provider(studio: Studio) -> str | None:
    """The first enabled provider that runs workflows, in chain order, or None."""
    chain = studio.orchestrator_chain(GenerationRequest(prompt="-")) if studio.orchestrator else []
    ordered = [*chain, *(pid for pid in studio.providers if pid not in chain)]
    return next((pid for pid in ordered if runs_workflows(studio, pid)), None)


async def saved_workflow_names(studio: Studio) -> list[str]:
    """Names of the saved workflows, sorted."""
    return [w.name for w in await WorkflowStore(studio.store).list()]


async def is_workflow(studio: Studio, name: str) -> bool:
    """Whether ``name`` is a shipped template or a saved workflow (by name or id)."""
    if name in list_templates():
        return True
    try:
        await WorkflowStore(studio.store).get(name)
    except NotFound:
        return False
    return True


async def resolve(studio: Studio, name: str | None) -> Resolved:
    """The route of a model name (rules in the module docstring). Never raises for an
    unknown name: it takes the default route."""
    facade = studio.config.openai_facade
    name = (name or "").strip()
    if name in facade.models:
        return Resolved(name, facade.models[name], "mapped")
    if name and name in studio.providers:
        return Resolved(name, FacadeModel(provider=name), "provider")
    if name and await is_workflow(studio, name):
        provider = facade.default.provider or workflow_provider(studio)
        return Resolved(name, facade.default.model_copy(update={"workflow": name, "provider": provider}), "workflow")
    return Resolved(name, facade.default, "default")


async def model_names(studio: Studio) -> list[str]:
    """Every name ``GET /models`` lists, without repeats: the mapped names, then the enabled
    provider ids, then the shipped workflow templates, then the saved workflows."""
    names = [*studio.config.openai_facade.models, *studio.providers, *list_templates(),
             *await saved_workflow_names(studio)]
    return list(dict.fromkeys(names))
