"""Settings of the ``diffusers_local`` provider (``providers.<id>.settings``).

Sizes in pixels, times in seconds. The JSON Schema of :class:`DiffusersLocalSettings` is the
admin's settings form, so every field carries a description.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_MODEL = "stabilityai/sd-turbo"


class DiffusersLocalSettings(BaseModel):
    """How the in-process diffusers pipeline is found, loaded, placed and run."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(DEFAULT_MODEL, min_length=1, description=(
        "Hugging Face hub id (org/name, loaded from the local HF cache) or a folder holding a "
        "diffusers pipeline (model_index.json)"))
    pipeline: Literal["auto", "sd", "sdxl"] = Field("auto", description=(
        "pipeline family: auto reads model_index.json; sd = Stable Diffusion 1.x/2.x; sdxl = SDXL "
        "and SDXL-Turbo"))
    device: str = Field("auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$", description=(
        "auto picks cuda, then mps, then cpu, as torch reports them; or cpu, mps, cuda, cuda:N"))
    precision: Literal["fp16", "fp32"] = Field("fp16", description="weights precision; cpu always runs fp32")
    variant: str | None = Field(None, description="weight file variant to load, e.g. fp16 (hub repos that ship one)")
    cache_dir: str | None = Field(None, description="Hugging Face cache folder; empty = HF_HUB_CACHE / HF_HOME default")
    model_dirs: list[str] = Field(default_factory=list, description=(
        "folders whose sub-folders are diffusers pipelines; listed as models and selectable per request"))
    auto_download: bool = Field(False, description=(
        "download a hub model missing from the cache on first use (never when HF_HUB_OFFLINE=1); "
        "off: download it from the model manager first"))
    safety_checker: bool = Field(True, description=(
        "keep the safety checker a model ships (SD 1.x); flagged images are dropped, all flagged = ContentRejected"))
    attention_slicing: bool = Field(False, description="compute attention in slices: less memory, a little slower")
    vae_tiling: bool = Field(False, description="decode the VAE in tiles: large images in less memory")
    cpu_offload: bool = Field(False, description=(
        "keep sub-models in RAM and move each to the GPU only while it runs (cuda only; needs accelerate)"))
    idle_unload_seconds: float = Field(600.0, ge=0, description=(
        "free the loaded pipeline after this many idle seconds; 0 keeps it loaded"))
    default_steps: int = Field(25, ge=1, le=200, description="steps when a request gives none (turbo models: 1-4)")
    default_cfg_scale: float = Field(7.0, ge=0, le=30, description=(
        "guidance scale when a request gives none (turbo models: 0)"))
    default_strength: float = Field(0.75, ge=0.01, le=1, description=(
        "img2img/inpaint denoising strength when a request gives none"))
    preview_every: int = Field(0, ge=0, le=100, description=(
        "send a small false-colour preview of the latents every N steps; 0 = none"))
    max_size: int = Field(2048, ge=64, le=8192, description="largest width or height, pixels")
    max_n: int = Field(8, ge=1, le=64, description="most images per request")


__all__ = ["DEFAULT_MODEL", "DiffusersLocalSettings"]
