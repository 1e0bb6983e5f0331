"""Automatic1111 wire format: request bodies, answer and ``info`` parsing, error mapping.

Pure functions, no I/O: :mod:`.provider` sends what :func:`build_payload` builds and reads the
answers with the rest. Wire format followed (AUTOMATIC1111/stable-diffusion-webui v1.10, the web
UI started with ``--api``):

* ``modules/api/models.py``: ``StableDiffusionTxt2ImgProcessingAPI`` / ``...Img2ImgProcessingAPI``
  (processing fields plus ``send_images``, ``save_images``, ``force_task_id`` ...; unknown fields
  ignored, wrong types a FastAPI 422 with ``detail[].loc``), ``TextToImageResponse`` /
  ``ImageToImageResponse`` (``{"images": [base64], "parameters", "info": "<JSON string>"}``),
  ``SamplerItem``, ``SchedulerItem``, ``SDModelItem``, ``SDVaeItem``, ``UpscalerItem``, ``Options``.
* ``modules/api/api.py``: routes under ``/sdapi/v1``; ``force_task_id`` names the task that
  ``/internal/progress`` reports on; ``--api-auth user:pass`` puts HTTP Basic auth on every
  ``/sdapi`` route; the exception middleware answers ``{"error", "detail", "body", "errors"}``;
  ``POST /sdapi/v1/interrupt`` interrupts *whatever job is running* (there is no per-task
  interrupt); ``queue_lock`` runs one generation at a time.
* ``modules/progress.py``: ``POST /internal/progress`` ``{"id_task", "id_live_preview",
  "live_preview"}`` -> ``{"active", "queued", "completed", "progress" (0..1), "eta",
  "live_preview" (a ``data:image/...;base64`` URL), "id_live_preview", "textinfo"}``.
* ``modules/processing.py`` ``Processed.js()``: the keys of ``info`` (``all_seeds``,
  ``all_subseeds``, ``all_prompts``, ``infotexts``, ``index_of_first_image``, ``sampler_name``,
  ``sd_model_name`` ...); ``extensions-builtin/Lora``: ``GET /sdapi/v1/loras``.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from typing import Any

import httpx
from PIL import Image, UnidentifiedImageError

from ...errors import GenerationFailed, ImageStudioError, InvalidRequest, ProviderUnavailable, Unsupported
from ...types import GeneratedFile, GenerationRequest

# A1111 body field -> our request field, for naming the field at fault in a 422.
# (Names not listed and not ours are blamed on ``extra.<name>``.)
_OUR_FIELD = {"sampler_name": "sampler", "sampler_index": "sampler", "batch_size": "n", "init_images": "init_image",
              "override_settings": "model"}
# HTTPException details of api.py that mean bad input, and the field they blame.
_BAD_INPUT = {"Sampler not found": "sampler", "Init image not found": "init_image",
              "Invalid encoded image": "init_image", "Invalid image url": "init_image",
              "Requests not allowed": "init_image", "Request to local resource not allowed": "init_image"}
_TRANSIENT_ERRORS = {"OutOfMemoryError"}  # torch.cuda.OutOfMemoryError: another backend may cope
_INFO_KEYS = ("sampler_name", "cfg_scale", "steps", "width", "height", "sd_model_name", "sd_model_hash",
              "sd_vae_name", "denoising_strength", "clip_skip", "subseed_strength", "restore_faces", "styles",
              "extra_generation_params", "version", "job_timestamp")
_PER_IMAGE = (("seed", "all_seeds"), ("subseed", "all_subseeds"), ("prompt", "all_prompts"),
              ("negative_prompt", "all_negative_prompts"))


UPSCALE_PATH = "/sdapi/v1/extra-single-image"


def upscale_payload(request: GenerationRequest) -> tuple[str, dict[str, Any]]:
    """``POST /sdapi/v1/extra-single-image`` (ExtrasSingleImageRequest in modules/api/models.py):
    the init image scaled by ``upscale.scale`` with ``upscaler_1`` (default ``Lanczos``)."""
    assert request.upscale is not None and request.init_image is not None
    body = {"image": base64.b64encode(request.init_image).decode("ascii"), "resize_mode": 0,
            "upscaling_resize": request.upscale.scale, "upscaler_1": request.upscale.upscaler or "Lanczos",
            **request.extra}
    return UPSCALE_PATH, body


def lora_tags(request: GenerationRequest) -> str:
    """The built-in Lora extension's prompt syntax, one ``<lora:name:weight>`` per LoRA."""
    return "".join(f" <lora:{lora.name}:{lora.weight:g}>" for lora in request.loras)


def build_payload(request: GenerationRequest, task_id: str) -> tuple[str, dict[str, Any]]:
    """The route and JSON body for ``request``: ``("/sdapi/v1/txt2img" | "/sdapi/v1/img2img", body)``,
    or the extras route for an upscale (:func:`upscale_payload`).

    ``seed`` None becomes -1 (random); ``n`` is ``batch_size``; ``model`` goes into
    ``override_settings.sd_model_checkpoint`` and ``vae`` into ``override_settings.sd_vae``;
    LoRAs become ``<lora:name:weight>`` prompt tags; ``hires`` sets ``enable_hr``, ``hr_scale``,
    ``hr_upscaler`` (default ``Latent``), ``hr_second_pass_steps`` and ``denoising_strength``
    (txt2img only); images are base64 without a data: prefix; ``request.extra`` is merged in as
    is (``inpainting_fill``, ``mask_blur`` ...), except that ``force_task_id`` and
    ``send_images`` stay ours.

    Raises:
        Unsupported: a hires fix with an init image (A1111's img2img has none; field ``hires``).
    """
    if request.upscale is not None:
        return upscale_payload(request)
    body: dict[str, Any] = {
        "prompt": request.prompt + lora_tags(request), "negative_prompt": request.negative_prompt or "",
        "width": request.width, "height": request.height,
        "seed": -1 if request.seed is None else request.seed, "batch_size": request.n, "n_iter": 1,
    }
    for ours, theirs in (("steps", "steps"), ("cfg_scale", "cfg_scale"), ("sampler", "sampler_name"),
                         ("scheduler", "scheduler"), ("denoising_strength", "denoising_strength")):
        if getattr(request, ours) is not None:
            body[theirs] = getattr(request, ours)
    path = "/sdapi/v1/txt2img"
    if request.hires is not None:
        if request.init_image is not None:
            raise Unsupported("Automatic1111's img2img has no hires fix", field="hires")
        body.update(enable_hr=True, hr_scale=request.hires.scale, hr_upscaler=request.hires.upscaler or "Latent",
                    hr_second_pass_steps=request.hires.steps or 0,
                    denoising_strength=request.hires.denoising_strength)
    if request.init_image is not None:
        path = "/sdapi/v1/img2img"
        body["init_images"] = [base64.b64encode(request.init_image).decode("ascii")]
        if request.mask is not None:
            body["mask"] = base64.b64encode(request.mask).decode("ascii")
    extra = dict(request.extra)
    overrides = dict(extra.pop("override_settings", None) or {})
    if request.model:
        overrides["sd_model_checkpoint"] = request.model
    if request.vae:
        overrides["sd_vae"] = request.vae
    body["save_images"] = False
    body.update(extra)
    if overrides:
        body["override_settings"] = overrides
    body.update(force_task_id=task_id, send_images=True)
    return path, body


def decode_data_url(value: Any) -> tuple[bytes, str] | None:
    """``(bytes, mime)`` from a ``data:image/png;base64,...`` URL or bare base64; None if neither."""
    if not isinstance(value, str) or not value:
        return None
    mime = "image/png"
    if value.startswith("data:"):
        header, _, value = value.partition(",")
        mime = header[5:].split(";")[0] or mime
    try:
        return base64.b64decode(value, validate=True), mime
    except (binascii.Error, ValueError):
        return None


def parse_info(raw: Any) -> dict[str, Any]:
    """``info`` is a JSON *string* in the response; a dict from a fork is accepted as is."""
    if isinstance(raw, dict):
        return raw
    try:
        info = json.loads(raw) if isinstance(raw, str) and raw else {}
    except ValueError:
        return {"raw_info": raw}
    return info if isinstance(info, dict) else {"raw_info": raw}


def image_parameters(info: dict[str, Any], index: int, position: int) -> dict[str, Any]:
    """Parameters of output ``index`` (0-based among the generated images; ``position`` is its
    place in ``images``, after any grid): the shared ``info`` keys, its own seed, subseed,
    prompt, negative prompt and infotext, plus ``sampler``, ``scheduler`` and ``model``."""
    params = {k: info[k] for k in _INFO_KEYS if info.get(k) not in (None, [], {})}
    for key, source in _PER_IMAGE:
        seq = info.get(source)
        if isinstance(seq, list) and index < len(seq):
            params[key] = seq[index]
        elif index == 0 and info.get(key) is not None:
            params[key] = info[key]
    texts = info.get("infotexts")
    if isinstance(texts, list) and position < len(texts):
        params["infotext"] = texts[position]
    if "sampler_name" in params:
        params["sampler"] = params["sampler_name"]
    extra = info.get("extra_generation_params")
    if isinstance(extra, dict) and extra.get("Schedule type"):
        params["scheduler"] = extra["Schedule type"]
    if info.get("sd_model_name"):
        params["model"] = info["sd_model_name"]
    return params


def generated_files(data: dict[str, Any], info: dict[str, Any], *, provider: str,
                    backend: str | None) -> list[GeneratedFile]:
    """The generated images of a txt2img/img2img answer ``data`` with its parsed ``info``,
    skipping a leading grid (``index_of_first_image``) and any extension outputs after the last
    seed (ControlNet detect maps ...). Sizes are read from the images (pixels).

    Raises:
        GenerationFailed: an image does not decode, or there is none (``provider``/``backend`` named).
    """
    images = data.get("images") or []
    first = int(info.get("index_of_first_image") or 0)
    seeds = info.get("all_seeds")
    files: list[GeneratedFile] = []
    for position in range(first, len(images)):
        index = position - first
        if isinstance(seeds, list) and seeds and index >= len(seeds):
            break
        raw = (decode_data_url(images[position]) or (b"", ""))[0]
        try:
            with Image.open(io.BytesIO(raw)) as im:
                size, fmt = im.size, im.format or "PNG"
        except (UnidentifiedImageError, OSError) as exc:
            msg = f"image {position} of the answer is not a decodable image"
            raise GenerationFailed(msg, provider=provider, backend=backend) from exc
        params = image_parameters(info, index, position)
        seed = params.get("seed") if isinstance(params.get("seed"), int) else None
        files.append(GeneratedFile(data=raw, mime_type=Image.MIME.get(fmt, "image/png"),
                                   filename=f"{index:05d}-{seed}.{fmt.lower()}",
                                   width=size[0], height=size[1], seed=seed, parameters=params))
    if not files:
        raise GenerationFailed("the backend answered without images", provider=provider, backend=backend)
    return files


def step_counts(data: dict[str, Any], request: GenerationRequest) -> tuple[int, int]:
    """``(value, max)`` steps from a progress answer: exact from ``state`` (some forks send
    it); else ``progress`` (0..1) scaled to the request's steps, or to 100 when unknown."""
    def num(value: Any, default: int = 0) -> int:
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default

    state = data.get("state")
    if isinstance(state, dict) and num(state.get("sampling_steps")) > 0:
        steps, jobs = num(state["sampling_steps"]), max(1, num(state.get("job_count"), 1))
        return num(state.get("job_no")) * steps + num(state.get("sampling_step")), jobs * steps
    total = (request.steps or 100) * max(1, num(request.extra.get("n_iter"), 1))
    progress = data.get("progress")
    return round(min(max(float(progress), 0.0), 1.0) * total) if isinstance(progress, (int, float)) else 0, total


def validation_field(item: Any, request: GenerationRequest | None) -> tuple[str | None, str]:
    """Our field name and the message of one FastAPI validation error (``loc: ["body", name, ...]``)."""
    if not isinstance(item, dict):
        return None, str(item)
    loc = [p for p in item.get("loc") or [] if p != "body"]
    msg = str(item.get("msg", "invalid"))
    if not loc or not isinstance(loc[0], str):
        return None, msg
    name = loc[0]
    if request is not None and name in request.extra:
        return ".".join(["extra", *map(str, loc)]), msg
    ours = _OUR_FIELD.get(name, name)
    return (ours if ours in GenerationRequest.model_fields else f"extra.{name}"), msg


def answer_error(response: httpx.Response, *, what: str, provider: str, backend: str | None,
                 request: GenerationRequest | None = None, generation: bool = False) -> ImageStudioError | None:
    """The error an A1111 error answer means, or None (a 2xx, or an answer with no A1111 shape:
    the caller then maps the bare status with :func:`base.raise_for_status`).

    422 with ``detail[].loc`` -> InvalidRequest naming our field (``extra.<name>`` for a
    passed-through one); known bad-input details (``Sampler not found`` ...) -> InvalidRequest;
    404 ``Not Found`` -> ProviderUnavailable, not retryable (no ``--api``); 5xx with the
    exception body -> GenerationFailed for a ``generation`` (retryable for out of memory), else
    ProviderUnavailable. ``what`` prefixes the message (``"POST /sdapi/v1/txt2img"``).
    """
    if response.is_success:
        return None
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    status = response.status_code
    kw: dict[str, Any] = {"provider": provider, "backend": backend, "status": status}
    if status == 422 and isinstance(detail, list) and detail:
        field, msg = validation_field(detail[0], request)
        return InvalidRequest(f"{what}: Automatic1111 rejected {field or 'the body'}: {msg}", field=field)
    if isinstance(detail, str) and detail in _BAD_INPUT:
        return InvalidRequest(f"{what}: {detail}", field=_BAD_INPUT[detail])
    if status == 404 and detail == "Not Found":
        return ProviderUnavailable(f"{what}: {response.request.url.path} not found; is the web UI started "
                                   "with --api?", retryable=False, **kw)
    if status in (400, 422) and isinstance(detail, str):  # "Script 'x' not found", "always on script ..."
        field = "extra.alwayson_scripts" if "always on" in detail else (
            "extra.script_name" if "script" in detail.lower() else None)
        return InvalidRequest(f"{what}: {detail}", field=field)
    if status >= 500 and status != 503 and isinstance(body, dict) and "error" in body:
        msg = f"{what}: {body['error']}: {body.get('errors') or detail or ''}".rstrip(": ")
        if generation:
            return GenerationFailed(msg, retryable=body["error"] in _TRANSIENT_ERRORS, **kw)
        return ProviderUnavailable(msg, **kw)
    return None
