"""The fake Automatic1111's catalogue, request models and outputs, for :mod:`tests.fakes.a1111_server`.

Following AUTOMATIC1111/stable-diffusion-webui v1.10:

* the catalogue the metadata routes list: samplers with their aliases, schedulers
  ``(name, label)``, and the answers as ``SDModelItem``, ``SamplerItem``, ``SchedulerItem``,
  ``UpscalerItem`` and ``SDVaeItem`` dicts (``modules/api/models.py``);
* ``Txt2ImgRequest`` / ``Img2ImgRequest`` / ``InternalProgressRequest``: the request bodies, built
  like ``modules/api/models.py`` builds them from the processing classes' fields (all optional,
  unknown names ignored), and the input checks of ``modules/api/api.py`` (sampler lookup, 400
  ``Sampler not found``; image decoding, 500 ``Invalid encoded image``);
* the outputs: PNGs carrying the A1111 infotext in their ``parameters`` text chunk, and the
  answer's ``info`` (``modules/processing.py`` ``Processed.js()``).
"""

from __future__ import annotations

import base64
import io
import random
import time
from typing import Any

from fastapi import HTTPException
from PIL import Image, ImageDraw, PngImagePlugin
from pydantic import BaseModel, ConfigDict, create_model

VERSION = "v1.10.1"
SAMPLERS = [("DPM++ 2M", ["k_dpmpp_2m"]), ("Euler a", ["k_euler_a", "k_euler_ancestral"]),
            ("Euler", ["k_euler"]), ("DDIM", ["ddim"]), ("UniPC", ["unipc"])]
SCHEDULERS = [("automatic", "Automatic"), ("uniform", "Uniform"), ("karras", "Karras"),
              ("exponential", "Exponential"), ("sgm_uniform", "SGM Uniform")]
MODELS = [  # SDModelItem
    {"title": f"{name}.safetensors [{short}]", "model_name": name, "hash": short, "sha256": short + "0" * 54,
     "filename": f"/models/Stable-diffusion/{name}.safetensors", "config": None}
    for name, short in (("v1-5-pruned-emaonly", "6ce0161689"), ("sd_xl_base_1.0", "31e35c80fc"))
]
SAMPLER_ITEMS = [{"name": n, "aliases": a, "options": {}} for n, a in SAMPLERS]  # SamplerItem
SCHEDULER_ITEMS = [  # SchedulerItem
    {"name": n, "label": lb, "aliases": None, "default_rho": -1, "need_inner_model": False} for n, lb in SCHEDULERS]
UPSCALERS = [  # UpscalerItem
    {"name": "None", "model_name": None, "model_path": None, "model_url": None, "scale": 4},
    {"name": "Lanczos", "model_name": None, "model_path": None, "model_url": None, "scale": 4}]
VAES = [{"model_name": "vae-ft-mse-840000", "filename": "/models/VAE/vae-ft-mse-840000.safetensors"}]  # SDVaeItem


_S, _I, _F, _B, _D = str | None, int | None, float | None, bool | None, dict[str, Any] | None
# Field names, types and defaults of StableDiffusionProcessing{,Txt2Img,Img2Img} as the API models
# expose them (every one optional), plus the API's own additional fields.
_PROCESSING: dict[str, tuple[Any, Any]] = {
    "prompt": (_S, ""), "negative_prompt": (_S, ""), "styles": (list[str] | None, None), "seed": (_I, -1),
    "subseed": (_I, -1), "subseed_strength": (_F, 0), "seed_resize_from_h": (_I, -1), "seed_resize_from_w": (_I, -1),
    "sampler_name": (_S, None), "scheduler": (_S, None), "batch_size": (_I, 1), "n_iter": (_I, 1),
    "steps": (_I, 50), "cfg_scale": (_F, 7.0), "width": (_I, 512), "height": (_I, 512), "restore_faces": (_B, None),
    "tiling": (_B, None), "do_not_save_samples": (_B, False), "do_not_save_grid": (_B, False), "eta": (_F, None),
    "s_min_uncond": (_F, None), "s_churn": (_F, None), "s_tmax": (_F, None), "s_tmin": (_F, None),
    "s_noise": (_F, None), "override_settings": (_D, None), "override_settings_restore_afterwards": (_B, True),
    "refiner_checkpoint": (_S, None), "refiner_switch_at": (_F, None), "disable_extra_networks": (_B, False),
    "firstpass_image": (_S, None), "comments": (_D, None), "sampler_index": (str, "Euler"),
    "script_name": (_S, None), "script_args": (list, []), "send_images": (bool, True), "save_images": (bool, False),
    "alwayson_scripts": (dict, {}), "force_task_id": (_S, None), "infotext": (_S, None),
}
_TXT2IMG = {
    "enable_hr": (_B, False), "denoising_strength": (_F, 0.75), "firstphase_width": (_I, 0),
    "firstphase_height": (_I, 0), "hr_scale": (_F, 2.0), "hr_upscaler": (_S, None), "hr_second_pass_steps": (_I, 0),
    "hr_resize_x": (_I, 0), "hr_resize_y": (_I, 0), "hr_checkpoint_name": (_S, None), "hr_sampler_name": (_S, None),
    "hr_scheduler": (_S, None), "hr_prompt": (_S, ""), "hr_negative_prompt": (_S, ""),
}
_IMG2IMG = {
    "init_images": (list | None, None), "resize_mode": (_I, 0), "image_cfg_scale": (_F, None),
    "denoising_strength": (float, 0.75), "mask": (_S, None), "mask_blur_x": (_I, 4), "mask_blur_y": (_I, 4),
    "mask_blur": (_I, None), "mask_round": (_B, True), "inpainting_fill": (_I, 0), "inpaint_full_res": (_B, True),
    "inpaint_full_res_padding": (_I, 0), "inpainting_mask_invert": (_I, 0), "initial_noise_multiplier": (_F, None),
    "latent_mask": (_S, None), "include_init_images": (bool, False),
}
# extra="ignore" is pydantic's default, which the real generated models keep: unknown names are dropped.
Txt2ImgRequest = create_model("StableDiffusionProcessingTxt2Img", __config__=ConfigDict(extra="ignore"),
                              **_PROCESSING, **_TXT2IMG)  # type: ignore[call-overload]
Img2ImgRequest = create_model("StableDiffusionProcessingImg2Img", __config__=ConfigDict(extra="ignore"),
                              **_PROCESSING, **_IMG2IMG)  # type: ignore[call-overload]


class ExtrasSingleImageRequest(BaseModel):
    """``POST /sdapi/v1/extra-single-image`` (``ExtrasSingleImageRequest``: ExtrasBaseRequest
    fields used here; unknown names ignored like the real model)."""

    image: str
    resize_mode: int = 0
    upscaling_resize: float = 2.0
    upscaler_1: str = "None"
    upscaler_2: str = "None"
    show_extras_results: bool = True


def upscale_single(req: ExtrasSingleImageRequest) -> dict:
    """The extras answer: the image scaled by ``upscaling_resize`` (an unknown upscaler is a
    404 like the real ``run_extras``), base64 PNG in ``image``."""
    from fastapi import HTTPException

    if req.upscaler_1 not in {u["name"] for u in UPSCALERS}:
        raise HTTPException(status_code=404, detail=f"Upscaler not found: {req.upscaler_1}")
    img = decode_image(req.image).convert("RGB")
    size = (round(img.width * req.upscaling_resize), round(img.height * req.upscaling_resize))
    buf = io.BytesIO()
    img.resize(size, Image.LANCZOS).save(buf, "PNG")
    return {"html_info": f"<p>Upscale: {req.upscaling_resize}, model: {req.upscaler_1}</p>",
            "image": base64.b64encode(buf.getvalue()).decode()}


class InternalProgressRequest(BaseModel):
    """The body of ``POST /internal/progress`` (``modules/progress.py`` ``ProgressRequest``)."""

    id_task: str | None = None
    id_live_preview: int = -1
    live_preview: bool = True


def find_model(name: str | None) -> dict | None:
    """The ``MODELS`` entry that ``name`` names (title, model name, hash, sha256 or file name), or None."""
    for m in MODELS:
        if name in (m["title"], m["model_name"], m["hash"], m["sha256"], m["filename"].rsplit("/", 1)[-1]):
            return m
    return None


def sampler_and_scheduler(name: str, scheduler: str | None) -> tuple[str, str]:
    """``(sampler name, scheduler label)`` for a sampler name or alias, an old-style name with the
    scheduler label appended (``"DPM++ 2M Karras"``) splitting off. Raises HTTPException 400
    ``Sampler not found``, as the real API does."""
    for sched_name, label in SCHEDULERS[1:]:  # "DPM++ 2M Karras" -> ("DPM++ 2M", "Karras")
        if name.endswith(" " + label):
            name, scheduler = name[: -len(label) - 1], scheduler or sched_name
    for sampler, aliases in SAMPLERS:
        if name == sampler or name in aliases:
            label = dict(SCHEDULERS).get(scheduler or "automatic", scheduler or "Automatic")
            return sampler, label
    raise HTTPException(status_code=400, detail="Sampler not found")


def make_png(width: int, height: int, seed: int, infotext: str, base: Image.Image | None = None,
             mask: Image.Image | None = None) -> bytes:
    """A PNG of ``width`` x ``height`` pixels, its colours from ``seed``, ``infotext`` in its
    ``parameters`` text chunk; img2img tints ``base``, inpaint only where ``mask`` is white."""
    rng = random.Random(seed)
    color = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
    img = Image.new("RGB", (width, height), color)
    ImageDraw.Draw(img).ellipse((width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=color[::-1])
    if base is not None:
        base = base.convert("RGB").resize((width, height))
        img = Image.blend(base, img, 0.3)
        if mask is not None:
            img = Image.composite(img, base, mask.convert("L").resize((width, height)))
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", infotext)
    out = io.BytesIO()
    img.save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def decode_image(encoding: str) -> Image.Image:
    """The image in a base64 string or ``data:image/...;base64,`` URL. Raises HTTPException 500
    ``Invalid encoded image`` when it does not decode, as ``api.py`` ``decode_base64_to_image``."""
    if encoding.startswith("data:image/"):
        encoding = encoding.split(";")[1].split(",")[1]
    try:
        img = Image.open(io.BytesIO(base64.b64decode(encoding)))
        img.load()
        return img
    except Exception as exc:  # noqa: BLE001 - the real API answers any decode failure so
        raise HTTPException(status_code=500, detail="Invalid encoded image") from exc


def make_infotext(req: Any, prompt: str, seed: int, sampler: str, scheduler: str, model: dict) -> str:
    """The A1111 infotext of one image of ``req`` (a txt2img or img2img request): the prompt, the
    negative prompt line, then ``Steps: ..., Sampler: ..., ..., Version: ...``."""
    parts = [f"Steps: {req.steps}", f"Sampler: {sampler}", f"Schedule type: {scheduler}",
             f"CFG scale: {req.cfg_scale}", f"Seed: {seed}", f"Size: {req.width}x{req.height}",
             f"Model hash: {model['hash']}", f"Model: {model['model_name']}"]
    if isinstance(req, Img2ImgRequest):
        parts.append(f"Denoising strength: {req.denoising_strength}")
        if req.mask:
            parts.append(f"Mask blur: {req.mask_blur if req.mask_blur is not None else req.mask_blur_x}")
    neg = f"\nNegative prompt: {req.negative_prompt}" if req.negative_prompt else ""
    return f"{prompt}{neg}\n{', '.join(parts)}, Version: {VERSION}"


def processed_info(req: Any, *, prompts: list[str], seed: int, seeds: list[int], subseed: int, subseeds: list[int],
                   infotexts: list[str], sampler: str, scheduler: str, model: dict) -> dict[str, Any]:
    """The ``info`` of a txt2img/img2img answer (``modules/processing.py`` ``Processed.js()``) for
    ``req`` run with these per-image ``prompts``, ``seeds``, ``subseeds`` and ``infotexts``."""
    total = len(prompts)
    return {"prompt": prompts[0], "all_prompts": prompts, "negative_prompt": req.negative_prompt or "",
            "all_negative_prompts": [req.negative_prompt or ""] * total, "seed": seed, "all_seeds": seeds,
            "subseed": subseed, "all_subseeds": subseeds, "subseed_strength": req.subseed_strength,
            "width": req.width, "height": req.height, "sampler_name": sampler, "cfg_scale": req.cfg_scale,
            "steps": req.steps, "batch_size": req.batch_size or 1, "restore_faces": req.restore_faces,
            "face_restoration_model": None, "sd_model_name": model["model_name"], "sd_model_hash": model["hash"],
            "sd_vae_name": None, "sd_vae_hash": None, "seed_resize_from_w": -1, "seed_resize_from_h": -1,
            "denoising_strength": getattr(req, "denoising_strength", None),
            "extra_generation_params": {"Schedule type": scheduler}, "index_of_first_image": 0,
            "infotexts": infotexts, "styles": req.styles or [], "job_timestamp": time.strftime("%Y%m%d%H%M%S"),
            "clip_skip": 1, "is_using_inpainting_conditioning": False, "version": VERSION}
