"""The graph half of the fake InvokeAI server: request models that validate an enqueued batch as
InvokeAI 6.x does, and a tiny executor that "runs" the nodes.

Validation follows invoke-ai/InvokeAI: ``invokeai/app/services/shared/graph.py`` (``Graph``:
nodes a union tagged by ``type`` so an unknown type or a bad field value is a FastAPI 422 with
``loc ["body", "batch", "graph", "nodes", <id>, <type>, <field>]``; ``validate_self``: node ids
match their keys, edges name existing nodes and fields, one edge per input except
``collect.item``, no cycles, each a ``ValueError`` at ``loc [..., "graph"]``) and
``session_queue_common.py`` (``Batch``: zipped data lists of equal length, data naming existing
node fields, ``runs >= 1``). Invocation fields and constraints follow ``invocations/*.py``
(``noise.width`` a positive multiple of 8, ``denoise_latents.scheduler`` one of
``SCHEDULER_NAME_VALUES`` ...). Unknown extra fields are ignored, as pydantic's default.

As in InvokeAI, inputs that should come from a connection are optional at validation time and
only missing when the node runs (the queue item then fails with ``MissingInputException``).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, field_validator, model_validator

SchedulerName = Literal[
    "ddim", "ddpm", "deis", "deis_k", "lms", "lms_k", "pndm", "heun", "heun_k", "euler", "euler_k", "euler_a",
    "kdpm_2", "kdpm_2_k", "kdpm_2_a", "kdpm_2_a_k", "dpmpp_2s", "dpmpp_2s_k", "dpmpp_2m", "dpmpp_2m_k",
    "dpmpp_2m_sde", "dpmpp_2m_sde_k", "dpmpp_3m", "dpmpp_3m_k", "dpmpp_sde", "dpmpp_sde_k", "er_sde", "unipc",
    "unipc_k", "lcm", "tcd",
]
"""``SCHEDULER_NAME_VALUES`` (invokeai/backend/stable_diffusion/schedulers/schedulers.py)."""


class ModelIdentifier(BaseModel):
    key: str
    hash: str
    name: str
    base: str
    type: str
    submodel_type: str | None = None


class Node(BaseModel):
    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    is_intermediate: bool = False
    use_cache: bool = True


class MainModelLoader(Node):
    type: Literal["main_model_loader"]
    model: ModelIdentifier | None = None


class SDXLModelLoader(Node):
    type: Literal["sdxl_model_loader"]
    model: ModelIdentifier | None = None


class ClipSkip(Node):
    type: Literal["clip_skip"]
    clip: Any = None
    skipped_layers: int = Field(0, ge=0)


class Compel(Node):
    type: Literal["compel"]
    prompt: str = ""
    clip: Any = None
    mask: Any = None


class SDXLCompel(Node):
    type: Literal["sdxl_compel_prompt"]
    prompt: str = ""
    style: str = ""
    original_width: int = 1024
    original_height: int = 1024
    crop_top: int = 0
    crop_left: int = 0
    target_width: int = 1024
    target_height: int = 1024
    clip: Any = None
    clip2: Any = None
    mask: Any = None


class Noise(Node):
    type: Literal["noise"]
    noise_type: str = "SD"
    seed: int = Field(0, ge=0, le=2**32 - 1)
    width: int = Field(512, gt=0, multiple_of=8)
    height: int = Field(512, gt=0, multiple_of=8)
    use_cpu: bool = True

    @field_validator("seed", mode="before")
    @classmethod
    def _modulo(cls, v: Any) -> Any:
        return v % 2**32 if isinstance(v, int) else v


class DenoiseLatents(Node):
    type: Literal["denoise_latents"]
    positive_conditioning: Any = None
    negative_conditioning: Any = None
    noise: Any = None
    latents: Any = None
    denoise_mask: Any = None
    unet: Any = None
    control: Any = None
    ip_adapter: Any = None
    t2i_adapter: Any = None
    steps: int = Field(10, gt=0)
    cfg_scale: float | list[float] = 7.5
    denoising_start: float = Field(0.0, ge=0, le=1)
    denoising_end: float = Field(1.0, ge=0, le=1)
    scheduler: SchedulerName = "euler"  # type: ignore[valid-type]
    cfg_rescale_multiplier: float = Field(0.0, ge=0, lt=1)


class BoardField(BaseModel):
    board_id: str


class ImageField(BaseModel):
    image_name: str


class LatentsToImage(Node):
    type: Literal["l2i"]
    latents: Any = None
    vae: Any = None
    tiled: bool = False
    tile_size: int = Field(0, multiple_of=8)
    fp32: bool = False
    board: BoardField | None = None
    metadata: Any = None


class ImageToLatents(Node):
    type: Literal["i2l"]
    image: ImageField | None = None
    vae: Any = None
    tiled: bool = False
    tile_size: int = Field(0, multiple_of=8)
    fp32: bool = False


class ImageResize(Node):
    type: Literal["img_resize"]
    image: ImageField | None = None
    width: int = Field(512, gt=0)
    height: int = Field(512, gt=0)
    resample_mode: Literal["nearest", "box", "bilinear", "hamming", "bicubic", "lanczos"] = "bicubic"
    board: BoardField | None = None
    metadata: Any = None


class Integer(Node):
    type: Literal["integer"]
    value: int = 0


class String(Node):
    type: Literal["string"]
    value: str = ""


class Collect(Node):
    type: Literal["collect"]
    item: Any = None
    collection: list[Any] = Field(default_factory=list)


AnyNode = Annotated[Union[MainModelLoader, SDXLModelLoader, ClipSkip, Compel, SDXLCompel, Noise, DenoiseLatents,
                          LatentsToImage, ImageToLatents, ImageResize, Integer, String, Collect],
                    Field(discriminator="type")]

OUTPUTS: dict[str, set[str]] = {
    "main_model_loader": {"unet", "clip", "vae"}, "sdxl_model_loader": {"unet", "clip", "clip2", "vae"},
    "clip_skip": {"clip"}, "compel": {"conditioning"}, "sdxl_compel_prompt": {"conditioning"},
    "noise": {"noise", "width", "height"}, "denoise_latents": {"latents", "width", "height"},
    "l2i": {"image", "width", "height"}, "i2l": {"latents", "width", "height"},
    "img_resize": {"image", "width", "height"}, "integer": {"value"}, "string": {"value"}, "collect": {"collection"},
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "main_model_loader": ("model",), "sdxl_model_loader": ("model",), "clip_skip": ("clip",), "compel": ("clip",),
    "sdxl_compel_prompt": ("clip", "clip2"), "l2i": ("latents", "vae"), "i2l": ("image", "vae"),
    "img_resize": ("image",), "denoise_latents": ("unet", "positive_conditioning", "negative_conditioning"),
}


class EdgeConnection(BaseModel):
    node_id: str
    field: str


class Edge(BaseModel):
    source: EdgeConnection
    destination: EdgeConnection

    def __str__(self) -> str:
        s, d = self.source, self.destination
        return f"{s.node_id}.{s.field} -> {d.node_id}.{d.field}"


class Graph(BaseModel):
    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    nodes: dict[str, AnyNode] = Field(default_factory=dict)
    edges: list[Edge] = Field(default_factory=list)

    def order(self) -> list[str]:
        """Node ids in a topological order. Raises ValueError on a cycle."""
        indegree = {nid: 0 for nid in self.nodes}
        for e in self.edges:
            indegree[e.destination.node_id] += 1
        ready = [nid for nid, d in indegree.items() if d == 0]
        out: list[str] = []
        while ready:
            nid = ready.pop(0)
            out.append(nid)
            for e in self.edges:
                if e.source.node_id == nid:
                    indegree[e.destination.node_id] -= 1
                    if indegree[e.destination.node_id] == 0:
                        ready.append(e.destination.node_id)
        if len(out) != len(self.nodes):
            raise ValueError("The graph contains a cycle")
        return out


def validate_graph(graph: Graph) -> None:
    """``Graph.validate_self`` of InvokeAI, raising ValueError with its messages."""
    for key, node in graph.nodes.items():
        if node.id != key:
            raise ValueError(f"Node id mismatch: key {key} != node id {node.id}")
    seen: set[tuple[str, str]] = set()
    for e in graph.edges:
        src, dst = graph.nodes.get(e.source.node_id), graph.nodes.get(e.destination.node_id)
        if src is None or dst is None:
            raise ValueError(f"One or both nodes don't exist ({e})")
        if e.source.field not in OUTPUTS[src.type]:
            raise ValueError(f"Source field {e.source.field} does not exist on node {src.id} ({e})")
        if e.destination.field not in type(dst).model_fields or e.destination.field in ("id", "type"):
            raise ValueError(f"Destination field {e.destination.field} does not exist on node {dst.id} ({e})")
        key = (e.destination.node_id, e.destination.field)
        if key in seen and not (dst.type == "collect" and e.destination.field == "item"):
            raise ValueError(f"Edge already exists ({e})")
        seen.add(key)
    graph.order()


class BatchDatum(BaseModel):
    node_path: str
    field_name: str
    items: list[Any] = Field(default_factory=list)


class Batch(BaseModel):
    batch_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    origin: str | None = None
    destination: str | None = None
    data: list[list[BatchDatum]] | None = None
    graph: Graph
    workflow: Any = None
    runs: int = Field(1, ge=1)

    @field_validator("graph")
    @classmethod
    def _graph(cls, v: Graph) -> Graph:
        validate_graph(v)
        return v

    @model_validator(mode="after")
    def _data(self) -> "Batch":
        for zipped in self.data or []:
            if len({len(d.items) for d in zipped}) > 1:
                raise ValueError("Zipped batch items must all have the same length")
            for d in zipped:
                node = self.graph.nodes.get(d.node_path)
                if node is None:
                    raise ValueError(f"Node {d.node_path} not found in graph")
                if d.field_name not in type(node).model_fields:
                    raise ValueError(f"Field {d.field_name} not found in node {d.node_path}")
        return self

    def sessions(self) -> list[list[dict[str, Any]]]:
        """The field values of each session: the product of the zipped lists, ``runs`` times."""
        combos: list[list[dict[str, Any]]] = [[]]
        for zipped in self.data or []:
            size = len(zipped[0].items) if zipped else 0
            rows = [[{"node_path": d.node_path, "field_name": d.field_name, "value": d.items[i]} for d in zipped]
                    for i in range(size)]
            combos = [c + r for c in combos for r in rows] if rows else combos
        return [list(c) for _ in range(self.runs) for c in combos]


class EnqueueBody(BaseModel):
    batch: Batch
    prepend: bool = False
