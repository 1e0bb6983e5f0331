"""Carry over an existing Open WebUI image setup into the studio (``image-studio openwebui
import-config``, ``POST /openwebui/import-config``, and once on the first start inside Open WebUI).

Wire-format source: Open WebUI 0.12.4, ``open_webui/routers/images.py`` (``IMAGE_CONFIG_KEYS``,
lines 67-103: the form names of ``GET /api/v1/images/config`` and the ``config`` rows they are
stored in; how each engine uses them, lines 602-900 and 1020-1200),
``open_webui/utils/images/comfyui.py`` (``_apply_workflow_nodes``: what each node mapping type
sets) and ``open_webui/config.py:1360-1564`` (defaults).

What becomes what (stable provider ids, so a second import compares like with like):

===================  ==========================================================================
Open WebUI           studio
===================  ==========================================================================
comfyui              provider ``owui-comfyui`` (type comfyui): ``COMFYUI_BASE_URL`` as its
                     backend, ``COMFYUI_API_KEY`` as the backend's ``Authorization: Bearer``
                     header (a secret header: encrypted, masked); ``COMFYUI_WORKFLOW`` (API
                     format JSON text) with ``COMFYUI_WORKFLOW_NODES`` becomes the saved
                     workflow ``owui-comfyui`` and the provider's ``settings.workflow``
automatic1111        provider ``owui-a1111``: ``AUTOMATIC1111_BASE_URL``; ``AUTOMATIC1111_API_AUTH``
                     ``user:password`` as ``credentials.username``/``password``;
                     ``IMAGE_STEPS`` and ``AUTOMATIC1111_PARAMS`` (``cfg_scale``,
                     ``sampler_name``, ``scheduler``; other keys go to ``extra``, which the
                     adapter merges into the body) as facade defaults (below)
openai               provider ``owui-openai``: type ``openai`` on api.openai.com, else
                     ``openai_compatible`` with the base URL as backend; key in
                     ``credentials.api_key``; ``IMAGES_OPENAI_API_PARAMS`` keys that are
                     settings of the adapter (``quality``, ``style``...) as settings
gemini               provider ``owui-gemini``: type ``imagen`` or ``gemini`` by model name
                     (``imagen*``/``gemini*``), else by ``IMAGES_GEMINI_ENDPOINT_METHOD``
                     (``generateContent``: gemini; ``predict`` or empty: imagen)
engine in use        ``default_provider``; its ``IMAGE_SIZE`` (and steps and params for the
                     local engines) become ``openai_facade.default.defaults``, and a local
                     engine's defaults also ``openai_facade.models.<provider id>``
edit (when on)       ``IMAGE_EDIT_ENGINE``'s settings: the same server as generation is reused
                     (``edits`` turned on for openai_compatible); another one becomes
                     ``owui-<engine>-edit``; the ComfyUI edit workflow becomes the saved
                     workflow ``owui-comfyui-edit`` (``image`` nodes are its ``init_image``)
===================  ==========================================================================

Node mapping (``COMFYUI_WORKFLOW_NODES``, a list of ``{type, key, node_ids, value}``) to slots:
``prompt`` -> prompt, ``negative_prompt`` -> negative_prompt, ``model`` -> checkpoint,
``width``/``height``, ``n`` -> batch_size, ``steps``, ``seed``, ``image`` -> init_image; the
key defaults as Open WebUI's (``text`` for the prompts, the type's own name for width, height,
steps, ``batch_size`` for n). An entry without a type sets a fixed ``value``: it is written into
the imported graph. ``IMAGE_STEPS`` and the engine's ``IMAGE_GENERATION_MODEL`` are written into
the graph's steps and checkpoint inputs (Open WebUI sets them on every run); an empty mapping
falls back to the studio's slot detection.

The studio's own facade is never imported as a provider: when ``image-studio openwebui
configure`` pointed Open WebUI at it, the values it replaced are read from its backup file
(:func:`.configure.backup_path`; per section, generation and edit, the most recent entry whose
base URL is not a studio facade).

Nothing is overwritten without asking: :func:`plan_import` lists additions (applied by a plain
import), changes (applied only with ``force``) and what is unchanged, as
:class:`.configure.Change` lines (secrets masked).
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..config import FacadeModel, ProviderConfig, StudioConfig
from ..crypto import _plain, config_to_public
from ..errors import ConfigError, ImageStudioError
from ..providers.comfyui.workflow import WorkflowTemplate, detect_slots, infer_media, is_ui_workflow
from ..providers.registry import provider_class
from .configure import (EDIT_KEYS, GENERATION_KEYS, HTTP_TIMEOUT, STORAGE_KEYS, Change, Plan, backup_path,
                        is_studio_url)

log = logging.getLogger("image_studio.openwebui")

OPENWEBUI_KEYS: dict[str, str] = {**STORAGE_KEYS,  # configure's keys, and those only an import reads:
    "IMAGE_SIZE": "image_generation.size",
    "IMAGE_STEPS": "image_generation.steps",
    "AUTOMATIC1111_BASE_URL": "image_generation.automatic1111.base_url",
    "AUTOMATIC1111_API_AUTH": "image_generation.automatic1111.api_auth",
    "AUTOMATIC1111_PARAMS": "image_generation.automatic1111.api_params",
    "COMFYUI_BASE_URL": "image_generation.comfyui.base_url",
    "COMFYUI_API_KEY": "image_generation.comfyui.api_key",
    "COMFYUI_WORKFLOW": "image_generation.comfyui.workflow",
    "COMFYUI_WORKFLOW_NODES": "image_generation.comfyui.nodes",
    "IMAGES_GEMINI_API_BASE_URL": "image_generation.gemini.api_base_url",
    "IMAGES_GEMINI_API_KEY": "image_generation.gemini.api_key",
    "IMAGES_GEMINI_ENDPOINT_METHOD": "image_generation.gemini.endpoint_method",
    "IMAGE_EDIT_SIZE": "images.edit.size",
    "IMAGES_EDIT_GEMINI_API_BASE_URL": "images.edit.gemini.api_base_url",
    "IMAGES_EDIT_GEMINI_API_KEY": "images.edit.gemini.api_key",
    "IMAGES_EDIT_COMFYUI_BASE_URL": "images.edit.comfyui.base_url",
    "IMAGES_EDIT_COMFYUI_API_KEY": "images.edit.comfyui.api_key",
    "IMAGES_EDIT_COMFYUI_WORKFLOW": "images.edit.comfyui.workflow",
    "IMAGES_EDIT_COMFYUI_WORKFLOW_NODES": "images.edit.comfyui.nodes",
}
"""Open WebUI's image form names and their ``config`` rows (``IMAGE_CONFIG_KEYS`` of
``routers/images.py``, without the two that are not about engines)."""

PROVIDER_IDS = {"comfyui": "owui-comfyui", "automatic1111": "owui-a1111", "openai": "owui-openai",
                "gemini": "owui-gemini"}
"""The provider id each Open WebUI engine becomes (edit engines on another server: ``<id>-edit``)."""
WORKFLOW_NAME = "owui-comfyui"
EDIT_WORKFLOW_NAME = "owui-comfyui-edit"
MARKER_KEY = "openwebui_import"
"""Settings-table key written after an import (``{"at": ISO 8601 UTC, "source", "added", "changed"}``):
its presence means the first-start import has run."""
FIRST_START_TIMEOUT = 60.0
"""Seconds the first-start import may take before it is given up (logged)."""
OPENAI_HOST = "api.openai.com"
GOOGLE_URL = "https://generativelanguage.googleapis.com/v1beta"

_NODE_SLOTS: dict[str, tuple[str, str | None]] = {
    "prompt": ("prompt", "text"), "negative_prompt": ("negative_prompt", "text"), "model": ("checkpoint", None),
    "width": ("width", "width"), "height": ("height", "height"), "n": ("batch_size", "batch_size"),
    "steps": ("steps", "steps"), "seed": ("seed", None), "image": ("init_image", None),
}
"""Open WebUI node type -> (our slot, the key Open WebUI uses when the entry's key is empty;
None: it uses the key as given)."""
_A1111_PARAMS = {"cfg_scale": "cfg_scale", "sampler_name": "sampler", "sampler": "sampler", "scheduler": "scheduler",
                 "steps": "steps", "negative_prompt": "negative_prompt", "seed": "seed",
                 "denoising_strength": "denoising_strength"}
"""AUTOMATIC1111_PARAMS keys that are GenerationRequest fields (ours on the right)."""


# ----------------------------------------------------------------------------- mapping


@dataclass
class Imported:
    """What Open WebUI's settings become: providers by id, workflow templates by name, the
    default provider, facade defaults (``openai_facade.default.defaults`` fields) and routes
    (``openai_facade.models``), and notes on what was not carried over."""

    providers: dict[str, ProviderConfig] = field(default_factory=dict)
    workflows: dict[str, WorkflowTemplate] = field(default_factory=dict)
    default_provider: str | None = None
    facade_defaults: dict[str, Any] = field(default_factory=dict)
    facade_models: dict[str, FacadeModel] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _json_value(value: Any, expect: type, what: str, notes: list[str]) -> Any:
    """Open WebUI keeps params and node lists as objects or JSON text; None when absent or bad."""
    if isinstance(value, str) and value.strip():
        try:
            value = json.loads(value)
        except ValueError:
            notes.append(f"{what} is not JSON: not carried over")
            return None
    if value in (None, "", {}, []):
        return None
    if not isinstance(value, expect):
        notes.append(f"{what} is not a JSON {expect.__name__}: not carried over")
        return None
    return value


def parse_size(value: Any) -> tuple[int, int] | None:
    """``"512x768"`` -> ``(512, 768)`` pixels; None for empty, ``auto`` or anything else."""
    w, sep, h = _text(value).lower().partition("x")
    return (int(w), int(h)) if sep and w.isdigit() and h.isdigit() and int(w) > 0 and int(h) > 0 else None


def _steps(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def workflow_template(name: str, workflow: Any, nodes: Any, *, steps: int | None = None, model: str | None = None,
                      description: str = "") -> tuple[WorkflowTemplate | None, list[str]]:
    """Open WebUI's ComfyUI workflow (API-format JSON text) and node mapping as a template.

    Args:
        workflow: ``COMFYUI_WORKFLOW`` (text or object). nodes: ``COMFYUI_WORKFLOW_NODES``.
        steps: written into the steps inputs (``IMAGE_STEPS``). model: written into the
            checkpoint inputs (``IMAGE_GENERATION_MODEL`` of this engine).

    Returns:
        ``(template or None, notes)``: None when the workflow is missing, not JSON, UI format
        or not a graph; entries pointing at missing nodes or inputs are left out with a note.
    """
    notes: list[str] = []
    graph = _json_value(workflow, dict, f"the ComfyUI workflow of {name}", notes)
    if graph is None:
        return None, notes or [f"{name}: no ComfyUI workflow set"]
    if is_ui_workflow(graph) or not all(isinstance(v, dict) and "class_type" in v for v in graph.values()):
        return None, [f"{name}: the ComfyUI workflow is not in API format (export it with 'Save (API)')"]
    graph = copy.deepcopy(graph)
    mapping = _json_value(nodes, list, f"the ComfyUI node mapping of {name}", notes) or []
    slots: dict[str, list[tuple[str, str]]] = {}
    for entry in mapping:
        if not isinstance(entry, dict):
            continue
        kind, ids = entry.get("type"), [str(i) for i in entry.get("node_ids") or []]
        key = entry.get("key", "text")
        if not kind:  # a fixed value Open WebUI writes on every run
            for nid in ids:
                if nid in graph and key:
                    graph[nid].setdefault("inputs", {})[key] = entry.get("value")
            continue
        if kind not in _NODE_SLOTS:
            notes.append(f"{name}: node mapping type {kind!r} has no studio slot: left out")
            continue
        slot, fallback = _NODE_SLOTS[kind]
        key = (key or fallback) if fallback else key
        for nid in ids:
            if nid not in graph or not key or key not in (graph[nid].get("inputs") or {}):
                notes.append(f"{name}: node mapping {kind} -> node {nid} input {key!r}, which the workflow "
                             "does not have: left out")
                continue
            if (nid, key) not in slots.get(slot, []):
                slots.setdefault(slot, []).append((nid, key))
    if not mapping:
        slots = detect_slots(graph)
        notes.append(f"{name}: no node mapping set: slots detected from the graph ({', '.join(sorted(slots))})")
    for slot, value in (("steps", steps), ("checkpoint", model)):
        for nid, key in slots.get(slot, []) if value else []:
            graph[nid]["inputs"][key] = value
    try:
        return WorkflowTemplate(name, graph, slots, description, infer_media(graph)), notes
    except ImageStudioError as exc:
        return None, [*notes, f"{name}: {exc.message}"]


def _checked(type_name: str, settings: dict[str, Any], what: str, notes: list[str]) -> dict[str, Any]:
    """``settings`` less the keys the adapter's settings model refuses (each with a note)."""
    model = getattr(provider_class(type_name), "Settings", None)
    if model is None:
        return settings
    kept = {k: v for k, v in settings.items() if k in model.model_fields}
    for key in sorted(set(settings) - set(kept)):
        notes.append(f"{what}: {key!r} is not a setting of the studio's {type_name} adapter: not carried over")
    try:
        model.model_validate(kept)
    except ValueError as exc:  # pydantic's ValidationError
        notes.append(f"{what}: refused by the studio's {type_name} adapter ({str(exc).splitlines()[0]}): "
                     "params not carried over")
        kept = {k: v for k, v in kept.items() if k in ("model", "edits")}
    return kept


def _comfyui(url: str, key: str, template: WorkflowTemplate | None) -> ProviderConfig:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    settings = {"workflow": template.to_json()} if template else {}
    return ProviderConfig(type="comfyui", backends=[{"url": url, "headers": headers}], settings=settings,
                          label="ComfyUI (from Open WebUI)")


def _openai(base: str, key: str, model: str, params: dict[str, Any] | None, what: str, notes: list[str],
            *, edits: bool = False) -> ProviderConfig:
    official = urlsplit(base).hostname == OPENAI_HOST
    kind = "openai" if official else "openai_compatible"
    settings: dict[str, Any] = dict(params or {})
    if model or official:
        settings["model"] = model or "dall-e-2"  # Open WebUI's own default model name
    if not official:
        settings["edits"] = edits
    return ProviderConfig(type=kind, credentials={"api_key": key} if key else {},
                          backends=[] if official else [{"url": base}], settings=_checked(kind, settings, what, notes),
                          label="OpenAI (from Open WebUI)" if official else "OpenAI-compatible (from Open WebUI)")


def _gemini(base: str, key: str, model: str, method: str, *, edit: bool = False) -> ProviderConfig:
    if model.startswith("gemini") or edit:
        kind = "gemini"
    elif model.startswith("imagen"):
        kind = "imagen"
    else:
        kind = "gemini" if method == "generateContent" else "imagen"
    backends = [{"url": base}] if base and base.rstrip("/") != GOOGLE_URL else []
    return ProviderConfig(type=kind, credentials={"api_key": key}, backends=backends,
                          settings={"model": model} if model else {}, label=f"{kind.capitalize()} (from Open WebUI)")


def _a1111_defaults(values: Mapping[str, Any], notes: list[str]) -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    if steps := _steps(values.get("IMAGE_STEPS")):
        defaults["steps"] = steps
    params = _json_value(values.get("AUTOMATIC1111_PARAMS"), dict, "AUTOMATIC1111_PARAMS", notes) or {}
    extra = {}
    for key, value in params.items():
        if key in _A1111_PARAMS:
            defaults[_A1111_PARAMS[key]] = value
        else:
            extra[key] = value  # the adapter merges request.extra into A1111's body, as Open WebUI does
    if extra:
        defaults["extra"] = extra
    return defaults


def map_settings(values: Mapping[str, Any]) -> Imported:
    """Open WebUI's image form values (``GET /api/v1/images/config`` shape) as studio config
    (rules in the module docstring). Pure: no I/O. An engine is imported when it is set up:
    ComfyUI and Automatic1111 with a base URL, OpenAI with a key or a base URL other than
    api.openai.com (never a studio facade), Gemini with a key."""
    out = Imported()
    engine = _text(values.get("IMAGE_GENERATION_ENGINE")) or "automatic1111"  # '' is A1111 in Open WebUI
    model = _text(values.get("IMAGE_GENERATION_MODEL"))
    steps = _steps(values.get("IMAGE_STEPS"))
    local_defaults: dict[str, dict[str, Any]] = {}

    if url := _text(values.get("COMFYUI_BASE_URL")).rstrip("/"):
        template, notes = workflow_template(WORKFLOW_NAME, values.get("COMFYUI_WORKFLOW"),
                                            values.get("COMFYUI_WORKFLOW_NODES"), steps=steps,
                                            model=model if engine == "comfyui" else None,
                                            description="Imported from Open WebUI (COMFYUI_WORKFLOW)")
        out.notes += notes
        out.providers[PROVIDER_IDS["comfyui"]] = _comfyui(url, _text(values.get("COMFYUI_API_KEY")), template)
        if template:
            out.workflows[template.name] = template
    if url := _text(values.get("AUTOMATIC1111_BASE_URL")).rstrip("/"):
        user, _, password = _text(values.get("AUTOMATIC1111_API_AUTH")).partition(":")
        creds = {"username": user, "password": password} if user else {}
        out.providers[PROVIDER_IDS["automatic1111"]] = ProviderConfig(
            type="automatic1111", backends=[{"url": url}], credentials=creds, label="Automatic1111 (from Open WebUI)")
        local_defaults[PROVIDER_IDS["automatic1111"]] = _a1111_defaults(values, out.notes)
    base, key = _text(values.get("IMAGES_OPENAI_API_BASE_URL")).rstrip("/"), _text(values.get("IMAGES_OPENAI_API_KEY"))
    if base and not is_studio_url(base) and (key or urlsplit(base).hostname != OPENAI_HOST):
        params = _json_value(values.get("IMAGES_OPENAI_API_PARAMS"), dict, "IMAGES_OPENAI_API_PARAMS", out.notes)
        out.providers[PROVIDER_IDS["openai"]] = _openai(base, key, model if engine == "openai" else "", params,
                                                        "IMAGES_OPENAI_API_PARAMS", out.notes)
        if _text(values.get("IMAGES_OPENAI_API_VERSION")):
            out.notes.append("IMAGES_OPENAI_API_VERSION (Azure's api-version) is not carried over")
    if key := _text(values.get("IMAGES_GEMINI_API_KEY")):
        gmodel = (model or "imagen-3.0-generate-002") if engine == "gemini" else ""  # Open WebUI's default
        out.providers[PROVIDER_IDS["gemini"]] = _gemini(_text(values.get("IMAGES_GEMINI_API_BASE_URL")), key, gmodel,
                                                        _text(values.get("IMAGES_GEMINI_ENDPOINT_METHOD")))
    if values.get("ENABLE_IMAGE_EDIT") is True:
        _map_edit(values, out)

    in_use = PROVIDER_IDS.get(engine)
    if in_use in out.providers:
        out.default_provider = in_use
        if size := parse_size(values.get("IMAGE_SIZE")):
            out.facade_defaults["width"], out.facade_defaults["height"] = size
        out.facade_defaults.update(local_defaults.get(in_use, {}))
    elif engine not in PROVIDER_IDS:
        out.notes.append(f"IMAGE_GENERATION_ENGINE {engine!r} is not one the studio imports")
    for pid, defaults in local_defaults.items():
        if defaults:
            out.facade_models[pid] = FacadeModel(provider=pid, defaults=defaults)
    return out


def _map_edit(values: Mapping[str, Any], out: Imported) -> None:
    """The edit engine's settings (``ENABLE_IMAGE_EDIT`` on): reuse the generation provider on
    the same server, else add ``owui-<engine>-edit``."""
    engine = _text(values.get("IMAGE_EDIT_ENGINE"))
    model = _text(values.get("IMAGE_EDIT_MODEL"))
    if engine == "openai":
        base = _text(values.get("IMAGES_EDIT_OPENAI_API_BASE_URL")).rstrip("/")
        key = _text(values.get("IMAGES_EDIT_OPENAI_API_KEY"))
        if not base or is_studio_url(base) or not (key or urlsplit(base).hostname != OPENAI_HOST):
            return
        gen = out.providers.get(PROVIDER_IDS["openai"])
        same = gen is not None and (gen.backends[0].url if gen.backends else f"https://{OPENAI_HOST}/v1") == base \
            and (gen.credentials.get("api_key").get_secret_value() if "api_key" in gen.credentials else "") == key
        if same and gen is not None:
            if gen.type == "openai_compatible":
                gen.settings["edits"] = True
            return
        out.providers[PROVIDER_IDS["openai"] + "-edit"] = _openai(base, key, model, None, "edit", out.notes, edits=True)
    elif engine == "gemini":
        key = _text(values.get("IMAGES_EDIT_GEMINI_API_KEY"))
        if key:
            out.providers[PROVIDER_IDS["gemini"] + "-edit"] = _gemini(
                _text(values.get("IMAGES_EDIT_GEMINI_API_BASE_URL")), key, model, "generateContent", edit=True)
    elif engine == "comfyui":
        url = _text(values.get("IMAGES_EDIT_COMFYUI_BASE_URL")).rstrip("/")
        key = _text(values.get("IMAGES_EDIT_COMFYUI_API_KEY"))
        template, notes = workflow_template(EDIT_WORKFLOW_NAME, values.get("IMAGES_EDIT_COMFYUI_WORKFLOW"),
                                            values.get("IMAGES_EDIT_COMFYUI_WORKFLOW_NODES"), model=model or None,
                                            description="Imported from Open WebUI (IMAGES_EDIT_COMFYUI_WORKFLOW)")
        out.notes += notes
        if template:
            out.workflows[template.name] = template
        same = url == _text(values.get("COMFYUI_BASE_URL")).rstrip("/") and key == _text(values.get("COMFYUI_API_KEY"))
        if url and not (same and PROVIDER_IDS["comfyui"] in out.providers):
            out.providers[PROVIDER_IDS["comfyui"] + "-edit"] = _comfyui(url, key, template)


def restore_replaced(values: Mapping[str, Any], entries: list[Any]) -> tuple[dict[str, Any], list[str]]:
    """``values`` with the sections that point at a studio facade (generation, edit) put back
    to what ``configure`` replaced, from its backup ``entries`` (oldest first): per section the
    most recent entry whose base URL is not a studio facade. Returns ``(values, notes)``."""
    out, notes = dict(values), []
    for section, url_key, keys in (("generation", "IMAGES_OPENAI_API_BASE_URL", GENERATION_KEYS),
                                   ("edit", "IMAGES_EDIT_OPENAI_API_BASE_URL", EDIT_KEYS)):
        if not is_studio_url(out.get(url_key)):
            continue
        entry = next((e for e in reversed(entries) if isinstance(e, dict) and isinstance(e.get("settings"), dict)
                      and url_key in e["settings"] and not is_studio_url(e["settings"][url_key])), None)
        if entry is None:
            notes.append(f"Open WebUI's {section} engine is the studio itself and no backup of configure holds "
                         "what it replaced: nothing to carry over there")
            continue
        for key in keys:
            if key in entry["settings"]:
                out[key] = entry["settings"][key]
        notes.append(f"{section} settings replaced by `image-studio openwebui configure` read from its backup "
                     f"of {entry.get('saved_at', '?')}")
    return out, notes


def read_backup(data_dir: Path | None) -> list[Any]:
    """The entries of configure's backup file in ``data_dir`` ([] when there is none or it is
    unreadable: logged)."""
    if data_dir is None:
        return []
    path = backup_path(data_dir)
    try:
        entries = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s: %s", path, exc)
        return []
    return entries if isinstance(entries, list) else []


# ----------------------------------------------------------------------------- plan


@dataclass
class ImportOutcome:
    """A plan and what was done: ``plan.changes`` are :class:`.configure.Change` lines
    (``conflict`` marks a change of something that exists: applied only with ``force``);
    ``added``/``changed``/``unchanged`` name providers (``providers.<id>``), workflows
    (``workflows.<name>``) and settings; ``applied`` lists the keys written."""

    plan: Plan
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    refused: bool = False
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)


def _public_provider(pid: str, provider: ProviderConfig) -> dict[str, Any]:
    return config_to_public(StudioConfig(providers={pid: provider}))["providers"][pid]


def _diff(prefix: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    return [Change(f"{prefix}.{k}", old.get(k), new.get(k), conflict=True)
            for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


def _workflow_data(template: WorkflowTemplate) -> dict[str, Any]:
    return {"api": template.prompt, "slots": {k: [list(t) for t in v] for k, v in template.slots.items()},
            "description": template.description}


def plan_import(imported: Imported, current: StudioConfig, saved: Mapping[str, Any]) -> ImportOutcome:
    """Compare ``imported`` with the studio's ``current`` config and ``saved`` workflows
    (name -> ``{"api", "slots", "description"}``): one addition line per new item, one line per
    differing field of an existing one (conflicts), names of the unchanged."""
    out = ImportOutcome(Plan(), notes=list(imported.notes))

    def record(key: str, changes: list[Change]) -> None:
        if not changes:
            out.unchanged.append(key)
            return
        (out.changed if any(c.conflict for c in changes) else out.added).append(key)
        out.plan.changes.extend(changes)

    for pid, provider in imported.providers.items():
        new = _public_provider(pid, provider)
        old = current.providers.get(pid)
        if old is None:
            record(f"providers.{pid}", [Change(f"providers.{pid}", None, {"type": provider.type, "backends": [
                b["url"] for b in new["backends"]]})])
        elif old == provider:
            record(f"providers.{pid}", [])
        else:
            changes = _diff(f"providers.{pid}", _public_provider(pid, old), new)
            record(f"providers.{pid}", changes or [Change(f"providers.{pid}.credentials", "(a secret)",
                                                          "(another secret)", conflict=True)])
    for name, template in imported.workflows.items():
        data, old = _workflow_data(template), saved.get(name)
        if old is None:
            record(f"workflows.{name}", [Change(f"workflows.{name}", None, {"nodes": len(data["api"]),
                                                                              "slots": sorted(data["slots"])})])
        else:
            record(f"workflows.{name}", _diff(f"workflows.{name}", {k: old.get(k) for k in ("api", "slots")},
                                              {k: data[k] for k in ("api", "slots")}))
    if imported.default_provider:
        cur = current.default_provider
        record("default_provider", [] if cur == imported.default_provider else [
            Change("default_provider", cur, imported.default_provider, conflict=cur is not None)])
    if imported.facade_defaults:
        cur_defaults = current.openai_facade.default.defaults
        record("openai_facade.default.defaults", [
            Change(f"openai_facade.default.defaults.{k}", cur_defaults.get(k), v, conflict=k in cur_defaults)
            for k, v in imported.facade_defaults.items() if cur_defaults.get(k) != v])
    for name, route in imported.facade_models.items():
        cur_route = current.openai_facade.models.get(name)
        new_route = route.model_dump(exclude_defaults=True)
        record(f"openai_facade.models.{name}", [] if cur_route == route else [
            Change(f"openai_facade.models.{name}", cur_route.model_dump(exclude_defaults=True) if cur_route else None,
                   new_route, conflict=cur_route is not None)])
    return out


def _take(key: str, out: ImportOutcome, force: bool) -> bool:
    return key in out.added or (force and key in out.changed)


def imported_config(imported: Imported, current: StudioConfig, out: ImportOutcome, *, force: bool) -> StudioConfig:
    """``current`` with the additions of ``out`` (and its changes when ``force``) applied."""
    data = current.model_copy(deep=True)
    for pid, provider in imported.providers.items():
        if _take(f"providers.{pid}", out, force):
            data.providers[pid] = provider
    if imported.default_provider and _take("default_provider", out, force):
        data.default_provider = imported.default_provider
    facade = data.openai_facade
    if _take("openai_facade.default.defaults", out, force):
        facade.default.defaults.update(imported.facade_defaults)
    for name, route in imported.facade_models.items():
        if _take(f"openai_facade.models.{name}", out, force):
            facade.models[name] = route
    return data


# ----------------------------------------------------------------------------- apply


async def run_import(studio: Any, values: Mapping[str, Any], *, data_dir: Path | None, force: bool = False,
                     dry_run: bool = False, source: str = "on demand") -> ImportOutcome:
    """Import Open WebUI's image form ``values`` into a started :class:`~image_studio.studio.Studio`.

    Settings replaced by ``configure`` come from its backup in ``data_dir``. Additions are
    applied, changes only with ``force``, nothing with ``dry_run``. The new config is checked
    (every provider built) before anything is written; then the workflows are saved
    (:class:`~image_studio.jobs.workflow_store.WorkflowStore`) and the config through
    ``studio.update_config`` (secrets encrypted by its ConfigManager). Writes the
    :data:`MARKER_KEY` setting unless ``dry_run``.

    Raises:
        ConfigError: the resulting config does not validate (nothing written; field named).
    """
    from ..crypto import merge_masked
    from ..jobs.workflow_store import WorkflowStore
    from ..providers.registry import create_provider

    restored, notes = restore_replaced(values, read_backup(data_dir))
    imported = map_settings(restored)
    imported.notes[:0] = notes
    store = WorkflowStore(studio.store)
    saved = {w.name: {"api": w.api, "slots": {k: v for k, v in w.slots.items() if not k.startswith("__")},
                      "id": w.id} for w in await store.list() if w.name in imported.workflows}
    out = plan_import(imported, studio.config, saved)
    out.dry_run = dry_run
    out.refused = bool(out.changed) and not force
    if dry_run or not (out.added or (force and out.changed)):
        if not dry_run:
            await _mark(studio, source, out)
        return out
    new = imported_config(imported, studio.config, out, force=force)
    update = _plain(new)
    candidate = merge_masked(update, studio.config)
    for pid in imported.providers:
        if pid in candidate.providers and candidate.providers[pid].enabled:
            create_provider(pid, candidate.providers[pid], studio.http)
    for name, template in imported.workflows.items():
        key = f"workflows.{name}"
        if not _take(key, out, force):
            continue
        data = _workflow_data(template)
        if name in saved:
            await store.update(saved[name]["id"], api=data["api"], slots=data["slots"])
        else:
            await store.create(name=name, api=data["api"], ui=None, slots=data["slots"], owner=None,
                               description=data["description"])
        out.applied.append(key)
    await studio.update_config(update)
    out.applied += [k for k in (*out.added, *(out.changed if force else [])) if not k.startswith("workflows.")]
    await _mark(studio, source, out)
    return out


async def _mark(studio: Any, source: str, out: ImportOutcome) -> None:
    await studio.store.put_setting(MARKER_KEY, {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                                "source": source, "applied": out.applied,
                                                "changed": out.changed})


# ----------------------------------------------------------------------------- Open WebUI access


async def read_in_process() -> dict[str, Any]:
    """Open WebUI's image form values read with its own ``Config`` model (``config`` rows);
    only inside Open WebUI's Python, after its config is importable.

    Raises:
        ImportError: open_webui is not installed.
    """
    from open_webui.models.config import Config

    rows = await Config.get_many(*OPENWEBUI_KEYS.values())
    return {form: rows.get(storage) for form, storage in OPENWEBUI_KEYS.items() if storage in rows}


def openwebui_data_dir() -> Path | None:
    """Open WebUI's ``DATA_DIR`` (``open_webui.env``), or None outside it."""
    try:
        from open_webui import env as owui_env
    except ImportError:
        return None
    return Path(owui_env.DATA_DIR)


async def first_start_import(studio: Any, *, read: Callable[[], Awaitable[dict[str, Any]]] | None = None,
                             data_dir: Path | None = None) -> ImportOutcome | None:
    """On the studio's first start inside Open WebUI: import Open WebUI's image settings once
    (additions only) and log what was imported. Returns None when an import has run before
    (the :data:`MARKER_KEY` setting exists).

    Args:
        read: ``async () -> form values`` (default :func:`read_in_process`).
        data_dir: where configure's backup is (default Open WebUI's ``DATA_DIR``).

    Raises:
        Whatever reading or writing raises: the caller logs it and goes on.
    """
    if read is None:
        try:
            import open_webui.models.config  # noqa: F401 - only inside Open WebUI
        except ImportError:
            log.debug("open_webui is not importable: no first-start import")
            return None
    if await studio.store.get_setting(MARKER_KEY) is not None:
        return None
    values = await (read or read_in_process)()
    out = await run_import(studio, values, data_dir=data_dir or openwebui_data_dir(), source="first start")
    if out.applied:
        log.info("Image Studio imported Open WebUI's image settings: %s", ", ".join(out.applied))
    else:
        log.info("Image Studio: Open WebUI's image settings hold nothing new to import")
    for line in out.plan.render():
        log.info("  %s", line)
    for note in out.notes:
        log.info("  note: %s", note)
    return out


async def import_via_api(url: str, token: str, *, force: bool = False, dry_run: bool = False,
                         transport: httpx.AsyncBaseTransport | None = None) -> dict[str, Any]:
    """Run the import in a running Open WebUI with the studio inside: ``POST
    /api/v1/image-studio/openwebui/import-config`` with an admin's token. Returns its answer
    (the shape of :class:`.routes.ImportConfigOut`).

    Raises:
        ConfigError: unreachable (field ``--url``), refused token (``--token``), or an error answer.
    """
    from .configure import _call

    async with httpx.AsyncClient(base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {token}"},
                                 timeout=HTTP_TIMEOUT, transport=transport) as client:
        return await _call(client, "POST", "/api/v1/image-studio/openwebui/import-config",
                           json={"force": force, "dry_run": dry_run})


async def import_in_process(data_dir: Path | None, *, force: bool = False, dry_run: bool = False) -> ImportOutcome:
    """Import on an Open WebUI ``DATA_DIR`` without a running server: Open WebUI's config rows
    read with its ``Config`` model, the studio's config and workflows written with a Studio on
    the same DATA_DIR (no queue). A running Open WebUI must be restarted to see the result.

    Raises:
        ConfigError: DATA_DIR has no Open WebUI database, no secret key, or open_webui is
            not installed (field named); or the import's own errors.
    """
    from ..studio import Studio
    from .launcher import SECRET_FILE_NAME, prepare_environment
    from .settings import settings_from_openwebui

    folder = Path(data_dir or os.environ.get("DATA_DIR") or "data/openwebui").expanduser().resolve()
    if not os.environ.get("DATABASE_URL") and not (folder / "webui.db").is_file():
        raise ConfigError(f"{folder} holds no Open WebUI database (webui.db): start Open WebUI once on it, or "
                          "give --url and --token to import into a running one", field="--data-dir")
    if not (folder / SECRET_FILE_NAME).is_file() and not os.environ.get("WEBUI_SECRET_KEY"):
        raise ConfigError(f"no WEBUI_SECRET_KEY and no {SECRET_FILE_NAME} in {folder}", field="WEBUI_SECRET_KEY")
    prepare_environment(folder)
    try:
        values = await read_in_process()
    except ImportError as exc:
        raise ConfigError("open_webui is not installed here: run this with Open WebUI's Python, or give --url "
                          "and --token", field="--data-dir") from exc
    studio = Studio(settings_from_openwebui(), recover=False, run_queue=False)
    await studio.start()
    try:
        out = await run_import(studio, values, data_dir=folder, force=force, dry_run=dry_run, source="cli")
    finally:
        await studio.stop()
    if out.applied:
        out.notes.append("restart a running Open WebUI so that its studio uses the imported settings")
    return out


def outcome_json(out: ImportOutcome) -> dict[str, Any]:
    """The JSON answer of the route and the CLI for an outcome (see :class:`.routes.ImportConfigOut`)."""
    return {"dry_run": out.dry_run, "refused": out.refused, "added": out.added, "changed": out.changed,
            "unchanged": out.unchanged, "applied": out.applied, "notes": out.notes,
            "changes": [{"key": c.key, "old": c.old, "new": c.new, "conflict": c.conflict} for c in out.plan.changes],
            "lines": out.plan.render()}


__all__ = ["EDIT_WORKFLOW_NAME", "ImportOutcome", "Imported", "MARKER_KEY", "OPENWEBUI_KEYS", "PROVIDER_IDS",
           "WORKFLOW_NAME", "first_start_import", "import_in_process", "import_via_api", "imported_config",
           "map_settings", "outcome_json", "parse_size", "plan_import", "read_backup", "read_in_process",
           "restore_replaced", "run_import", "workflow_template"]
