"""InvokeAI wire format: the txt2img / img2img graphs, the enqueue body, queue-item parsing and
error mapping. Pure functions, no I/O; :mod:`.provider` sends and reads what these build.

Sources followed (invoke-ai/InvokeAI 6.x, ``main`` as of 2026):

* ``invokeai/app/services/shared/graph.py``: ``Graph`` ``{id, nodes: {node_id: invocation},
  edges: [{source: {node_id, field}, destination: {node_id, field}}]}`` (edges must name existing
  nodes and fields, one edge per input except ``collect.item``, no cycles); the session
  (``GraphExecutionState``) carries ``graph``, ``executed`` (prepared ids), ``results``
  (prepared id -> invocation output) and ``prepared_source_mapping`` (prepared id -> our node id).
* ``invokeai/app/services/session_queue/session_queue_common.py``: ``Batch`` ``{batch_id, origin,
  destination, data: [[{node_path, field_name, items}]], graph, runs}`` (each zipped data list
  makes one session per item), ``EnqueueBatchResult`` ``{queue_id, enqueued, requested, batch,
  priority, item_ids}`` (``item_ids`` since 6.0), ``SessionQueueItem`` (``item_id``, ``status``
  pending / in_progress / waiting / completed / failed / canceled, ``error_type``,
  ``error_message``, ``field_values``, ``session``), ``SessionQueueStatus``.
* The invocations used, with their fields: ``main_model_loader`` / ``sdxl_model_loader``
  (``model``: ``{key, hash, name, base, type}``; outputs ``unet clip [clip2] vae``),
  ``clip_skip``, ``compel`` (``prompt clip``), ``sdxl_compel_prompt`` (``prompt style
  original_width original_height crop_top crop_left target_width target_height clip clip2``),
  ``noise`` (``seed width height use_cpu``; sizes multiples of 8, seed modulo 2**32),
  ``denoise_latents`` (``positive_conditioning negative_conditioning noise latents steps
  cfg_scale cfg_rescale_multiplier scheduler denoising_start denoising_end unet``), ``i2l``
  (``image vae fp32``), ``l2i`` (``latents vae fp32 board``), ``img_resize`` (``image width
  height board``); ``invokeai/backend/stable_diffusion/schedulers/schedulers.py``
  ``SCHEDULER_NAME_VALUES``.
* The web UI's graph builders ``invokeai/frontend/web/src/features/nodes/util/graph/generation/
  buildSD1Graph.ts``, ``buildSDXLGraph.ts``, ``addTextToImage.ts``, ``addImageToImage.ts``,
  ``Graph.ts`` (``is_intermediate``/``use_cache`` true on inner nodes; the output node not
  intermediate, ``use_cache`` false, with the board; img2img ``denoising_start = 1 - strength``;
  sizes scaled to multiples of 8 and the output resized back) and ``buildLinearBatchConfig.ts``
  (seeds as batch data, one session per seed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...errors import GenerationFailed, InvalidRequest
from ...types import GenerationRequest

SCHEDULERS: tuple[str, ...] = (
    "ddim", "ddpm", "deis", "deis_k", "lms", "lms_k", "pndm", "heun", "heun_k", "euler", "euler_k",
    "euler_a", "kdpm_2", "kdpm_2_k", "kdpm_2_a", "kdpm_2_a_k", "dpmpp_2s", "dpmpp_2s_k", "dpmpp_2m",
    "dpmpp_2m_k", "dpmpp_2m_sde", "dpmpp_2m_sde_k", "dpmpp_3m", "dpmpp_3m_k", "dpmpp_sde", "dpmpp_sde_k",
    "er_sde", "unipc", "unipc_k", "lcm", "tcd",
)
"""``SCHEDULER_NAME_VALUES`` of InvokeAI 6.x (``denoise_latents.scheduler``)."""

SD_BASES = ("sd-1", "sd-2", "sdxl")
"""Main-model bases these graphs serve (``BaseModelType`` values)."""

SEED_SPACE = 2**32
"""``noise.seed`` is taken modulo ``SEED_MAX + 1`` (uint32)."""

TERMINAL = frozenset({"completed", "failed", "canceled"})
ORIGIN = "image-studio"

# Node ids of our graphs (any unique string is a valid id).
MODEL, CLIP_SKIP, POS, NEG = "model_loader", "clip_skip", "positive_conditioning", "negative_conditioning"
NOISE, DENOISE, I2L, L2I = "noise", "denoise_latents", "i2l", "l2i"
RESIZE_IN, RESIZE_OUT = "resize_in", "resize_out"

# (node id, field) -> our request field, to name the field at fault in a 422.
_OUR_FIELD = {
    (NOISE, "width"): "width", (NOISE, "height"): "height", (RESIZE_OUT, "width"): "width",
    (RESIZE_OUT, "height"): "height", (NOISE, "seed"): "seed", (DENOISE, "steps"): "steps",
    (DENOISE, "cfg_scale"): "cfg_scale", (DENOISE, "scheduler"): "scheduler",
    (DENOISE, "denoising_start"): "denoising_strength", (MODEL, "model"): "model",
    (POS, "prompt"): "prompt", (NEG, "prompt"): "negative_prompt", (I2L, "image"): "init_image",
    (RESIZE_IN, "image"): "init_image", (CLIP_SKIP, "skipped_layers"): "extra.clip_skip",
    (DENOISE, "cfg_rescale_multiplier"): "extra.cfg_rescale_multiplier", (L2I, "fp32"): "extra.fp32",
    (I2L, "fp32"): "extra.fp32",
}


@dataclass
class GraphInputs:
    """What a graph needs besides the request: the model config from ``GET /api/v2/models/``
    (``key hash name base type``), the seeds (one session each), the board id, the uploaded
    init image's name and size (pixels) and the defaults from the provider's settings."""

    model: dict[str, Any]
    seeds: list[int]
    board_id: str | None = None
    init_image_name: str | None = None
    init_size: tuple[int | None, int | None] = (None, None)
    defaults: dict[str, Any] = field(default_factory=dict)


def node(node_id: str, type_: str, *, output: bool = False, **fields: Any) -> dict[str, Any]:
    """One invocation: inner nodes intermediate and cached, the output node neither (``Graph.ts``)."""
    return {"id": node_id, "type": type_, "is_intermediate": not output, "use_cache": not output, **fields}


def edge(source: str, source_field: str, destination: str, destination_field: str) -> dict[str, Any]:
    """``{source: {node_id, field}, destination: {node_id, field}}``."""
    return {"source": {"node_id": source, "field": source_field},
            "destination": {"node_id": destination, "field": destination_field}}


def scaled(side: int) -> int:
    """``side`` (pixels) rounded down to a multiple of 8 (the latent scale), at least 8."""
    return max(8, side // 8 * 8)


def sampling(request: GenerationRequest, defaults: dict[str, Any]) -> dict[str, Any]:
    """``denoise_latents`` fields from the request, else the settings' defaults. ``sampler`` is
    used as the scheduler only when it is an InvokeAI scheduler name (A1111 names are ignored)."""
    strength = request.denoising_strength if request.denoising_strength is not None else defaults["strength"]
    return {
        "steps": request.steps or defaults["steps"],
        "cfg_scale": request.cfg_scale if request.cfg_scale is not None else defaults["cfg_scale"],
        "cfg_rescale_multiplier": float(request.extra.get("cfg_rescale_multiplier", 0.0)),
        "scheduler": request.scheduler or (request.sampler if request.sampler in SCHEDULERS else None)
        or defaults["scheduler"],
        "denoising_start": round(1.0 - strength, 6) if request.init_image is not None else 0.0,
        "denoising_end": 1.0,
    }


def build_graph(request: GenerationRequest, inputs: GraphInputs, graph_id: str) -> dict[str, Any]:
    """The txt2img or img2img graph for an SD1/SD2 (``buildSD1Graph.ts``) or SDXL
    (``buildSDXLGraph.ts``) main model. Sizes not a multiple of 8 are sampled at the size below
    and resized back (``resize_out``); an init image of another size is resized first
    (``resize_in``). ``request.extra``: ``clip_skip`` (SD1/2), ``cfg_rescale_multiplier``,
    ``fp32`` (VAE precision), ``nodes`` (``{node_id: {field: value}}`` merged into our nodes).

    Raises:
        InvalidRequest: ``extra.nodes`` names a node the graph does not have.
    """
    model, d = inputs.model, inputs.defaults
    sdxl = model.get("base") == "sdxl"
    width, height = scaled(request.width), scaled(request.height)
    resize_out = (width, height) != (request.width, request.height)
    fp32 = bool(request.extra.get("fp32", d.get("fp32", False)))
    ident = {k: model.get(k) for k in ("key", "hash", "name", "base", "type")}
    board = {"board": {"board_id": inputs.board_id}} if inputs.board_id else {}
    nodes = [
        node(MODEL, "sdxl_model_loader" if sdxl else "main_model_loader", model=ident),
        node(NOISE, "noise", seed=inputs.seeds[0], width=width, height=height, use_cpu=d.get("use_cpu", True)),
        node(DENOISE, "denoise_latents", **sampling(request, d)),
        node(L2I, "l2i", output=not resize_out, fp32=fp32, **({} if resize_out else board)),
    ]
    edges = [edge(MODEL, "unet", DENOISE, "unet"), edge(NOISE, "noise", DENOISE, "noise"),
             edge(POS, "conditioning", DENOISE, "positive_conditioning"),
             edge(NEG, "conditioning", DENOISE, "negative_conditioning"),
             edge(DENOISE, "latents", L2I, "latents"), edge(MODEL, "vae", L2I, "vae")]
    _add_prompts(nodes, edges, request, sdxl=sdxl, size=(width, height))
    if inputs.init_image_name is not None:
        image = {"image_name": inputs.init_image_name}
        nodes.append(node(I2L, "i2l", fp32=fp32))
        edges += [edge(MODEL, "vae", I2L, "vae"), edge(I2L, "latents", DENOISE, "latents")]
        if inputs.init_size != (width, height):
            nodes.append(node(RESIZE_IN, "img_resize", image=image, width=width, height=height))
            edges.append(edge(RESIZE_IN, "image", I2L, "image"))
        else:
            nodes[-1]["image"] = image
    if resize_out:
        nodes.append(node(RESIZE_OUT, "img_resize", output=True, width=request.width, height=request.height,
                          **board))
        edges.append(edge(L2I, "image", RESIZE_OUT, "image"))
    by_id = {n["id"]: n for n in nodes}
    _apply_overrides(by_id, request.extra.get("nodes"))
    return {"id": graph_id, "nodes": by_id, "edges": edges}


def _add_prompts(nodes: list[dict[str, Any]], edges: list[dict[str, Any]], request: GenerationRequest, *,
                 sdxl: bool, size: tuple[int, int]) -> None:
    """The two prompt nodes (``compel``, or ``sdxl_compel_prompt`` with the prompt as its style
    too and ``size`` as original and target size, pixels) and their CLIP edges (through a
    ``clip_skip`` node when ``extra.clip_skip`` is given, SD1/SD2 only)."""
    prompts = ((POS, request.prompt), (NEG, request.negative_prompt or ""))
    if sdxl:
        sizes = {"original_width": size[0], "original_height": size[1], "target_width": size[0],
                 "target_height": size[1], "crop_top": 0, "crop_left": 0}
        nodes += [node(nid, "sdxl_compel_prompt", prompt=text, style=text, **sizes) for nid, text in prompts]
        edges += [edge(MODEL, clip, nid, clip) for nid, _ in prompts for clip in ("clip", "clip2")]
        return
    nodes += [node(nid, "compel", prompt=text) for nid, text in prompts]
    clip_source = MODEL
    if request.extra.get("clip_skip") is not None:
        nodes.append(node(CLIP_SKIP, "clip_skip", skipped_layers=request.extra["clip_skip"]))
        edges.append(edge(MODEL, "clip", CLIP_SKIP, "clip"))
        clip_source = CLIP_SKIP
    edges += [edge(clip_source, "clip", nid, "clip") for nid, _ in prompts]


def _apply_overrides(nodes: dict[str, dict[str, Any]], overrides: Any) -> None:
    if not overrides:
        return
    if not isinstance(overrides, dict):
        raise InvalidRequest("extra.nodes must map node ids to {field: value}", field="extra.nodes")
    for node_id, fields in overrides.items():
        if node_id not in nodes or not isinstance(fields, dict):
            raise InvalidRequest(f"extra.nodes: no node {node_id!r} in the graph (nodes: {sorted(nodes)})",
                                 field=f"extra.nodes.{node_id}")
        nodes[node_id].update(fields)


def batch_body(graph: dict[str, Any], seeds: list[int]) -> dict[str, Any]:
    """The ``enqueue_batch`` body: one session per seed (batch data on ``noise.seed``), appended
    to the queue (``prepend: false``)."""
    data = [[{"node_path": NOISE, "field_name": "seed", "items": list(seeds)}]]
    return {"batch": {"graph": graph, "runs": 1, "data": data, "origin": ORIGIN}, "prepend": False}


def output_node(session: dict[str, Any]) -> str:
    """Our output node's id in a session: ``resize_out`` when the graph has one, else ``l2i``."""
    graph = session.get("graph") if isinstance(session.get("graph"), dict) else {}
    return RESIZE_OUT if RESIZE_OUT in (graph.get("nodes") or {}) else L2I


def output_images(item: dict[str, Any]) -> list[dict[str, Any]]:
    """``[{"image_name", "width", "height"}]`` made by our output node in a completed item's
    session (results keyed by prepared id, mapped back with ``prepared_source_mapping``)."""
    session = item.get("session") if isinstance(item.get("session"), dict) else {}
    mapping = session.get("prepared_source_mapping") or {}
    target = output_node(session)
    out = []
    for prepared_id, result in (session.get("results") or {}).items():
        image = result.get("image") if isinstance(result, dict) else None
        if mapping.get(prepared_id, prepared_id) == target and isinstance(image, dict) and image.get("image_name"):
            out.append({"image_name": image["image_name"], "width": result.get("width"),
                        "height": result.get("height")})
    return out


def item_seed(item: dict[str, Any]) -> int | None:
    """The seed a queue item ran with (its ``field_values`` for ``noise.seed``, else the graph's)."""
    for fv in item.get("field_values") or []:
        if isinstance(fv, dict) and (fv.get("node_path"), fv.get("field_name")) == (NOISE, "seed"):
            return fv.get("value") if isinstance(fv.get("value"), int) else None
    noise = ((item.get("session") or {}).get("graph") or {}).get("nodes", {}).get(NOISE) or {}
    return noise.get("seed") if isinstance(noise.get("seed"), int) else None


def item_model(item: dict[str, Any]) -> dict[str, Any]:
    """The model identifier (``key name base ...``) of an item's model loader, or ``{}``."""
    loader = ((item.get("session") or {}).get("graph") or {}).get("nodes", {}).get(MODEL) or {}
    return loader.get("model") if isinstance(loader.get("model"), dict) else {}


def node_progress(item: dict[str, Any]) -> tuple[int, int]:
    """``(nodes done, nodes)`` of one item: our nodes whose prepared copies ran, of all our nodes."""
    session = item.get("session") if isinstance(item.get("session"), dict) else {}
    total = len(((session.get("graph") or {}).get("nodes")) or {})
    if item.get("status") == "completed":
        return total, total
    mapping = session.get("prepared_source_mapping") or {}
    done = {mapping.get(p, p) for p in session.get("executed") or []}
    return min(len(done), total), total


def failure(item: dict[str, Any], *, provider: str, backend: str | None) -> GenerationFailed:
    """The error of a failed (or externally canceled) item: ``error_type: error_message``;
    a CUDA out-of-memory is retryable (another backend may have room)."""
    if item.get("status") == "canceled":
        return GenerationFailed(f"queue item {item.get('item_id')} was canceled on the InvokeAI server",
                                provider=provider, backend=backend)
    kind, message = item.get("error_type") or "error", item.get("error_message") or "the session failed"
    return GenerationFailed(f"InvokeAI queue item {item.get('item_id')} failed: {kind}: {message}",
                            provider=provider, backend=backend, retryable=kind == "OutOfMemoryError")


def validation_error(body: Any, *, what: str, overrides: Any = None) -> InvalidRequest | None:
    """An InvalidRequest naming our field for a FastAPI 422 body ``{"detail": [{loc, msg}]}``:
    ``loc`` ``["body", "batch", "graph", "nodes", <node id>, (<type>,) <field>]`` maps through
    our node ids (``noise.width`` -> ``width``; a field set through ``overrides``, the request's
    ``extra.nodes``, -> ``extra.nodes.<id>.<field>``); batch ``data`` -> ``seed``; None when the
    body has no validation detail."""
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(detail, list) or not detail or not isinstance(detail[0], dict):
        return None
    loc = [str(p) for p in detail[0].get("loc") or []]
    msg = str(detail[0].get("msg", "invalid"))
    our: str | None = None
    if "nodes" in loc and len(loc) > loc.index("nodes") + 1:
        node_id, name = loc[loc.index("nodes") + 1], loc[-1]
        overridden = isinstance(overrides, dict) and name in (overrides.get(node_id) or {})
        our = f"extra.nodes.{node_id}.{name}" if overridden else (
            _OUR_FIELD.get((node_id, name)) or f"extra.nodes.{node_id}.{name}")
    elif "data" in loc:
        our = "seed"
    return InvalidRequest(f"{what}: InvokeAI rejected {'.'.join(loc[1:]) or 'the body'}: {msg}", field=our)


def pick_model(models: list[dict[str, Any]], wanted: str | None) -> dict[str, Any] | None:
    """The main model ``wanted`` names (its key, else its name, else its name ignoring case),
    or with ``wanted`` None the first SD1/SD2/SDXL model; None when there is no such model."""
    if wanted is None:
        return next((m for m in models if m.get("base") in SD_BASES), None)
    for match in (lambda m: m.get("key") == wanted, lambda m: m.get("name") == wanted,
                  lambda m: str(m.get("name", "")).lower() == wanted.lower()):
        found = next((m for m in models if match(m)), None)
        if found is not None:
            return found
    return None


def parse_item_ids(remembered: str) -> list[int]:
    """The item ids of a remembered provider job id (``"12"`` or ``"12,13,14"``).

    Raises:
        ValueError: not a comma-separated list of integers.
    """
    ids = [int(part) for part in remembered.split(",") if part.strip()]
    if not ids:
        raise ValueError(f"no queue item ids in {remembered!r}")
    return ids


def major_version(version: Any) -> int | None:
    """The major number of an InvokeAI version string (``"6.14.0-alpha"`` -> 6), or None."""
    head = str(version or "").lstrip("v").split(".")[0]
    return int(head) if head.isdigit() else None
