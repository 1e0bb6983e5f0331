"""Video, animated WebP and upscale nodes of the fake ComfyUI (``comfyui_server.py``), as the
transcripts in ``tests/fixtures/comfyui_recorded/`` show a real ComfyUI 0.3.64 running them.

* ``SaveWEBM`` writes a real WebM (VP9 or AV1, encoded here with PyAV) with one frame per image
  of the batch, at ``fps``, with ``prompt`` and every ``extra_pnginfo`` key in the container
  metadata; its ``executed`` output and history entry are the recorded ones
  (``{"images": [file], "animated": [true]}``, ``video_webm.json``).
* ``SaveAnimatedWEBP`` writes one WebP of all frames with Pillow (``save_all``, duration
  ``int(1000 / fps)`` ms, EXIF 0x0110 ``prompt:<json>``), listed as recorded in
  ``video_animated_webp.json``: ``{"images": [file], "animated": [n_frames != 1]}``. Identical
  frames are merged by libwebp, as on the real server: a batch of six equal images gives a
  one-frame file still flagged ``animated: [true]``.
* ``ImageScaleBy`` / ``LatentUpscaleBy`` scale by ``scale_by`` (``round(side * scale_by)``,
  as ComfyUI's ``nodes.py``); ``ImageAddNoise`` makes the frames differ (seeded noise);
  ``UpscaleModelLoader`` fails at run time like ``upscale.json`` unless the model is offered
  (``FakeComfyUI(upscale_models=[...])``), and ``ImageUpscaleWithModel`` then scales by the
  ``<N>x`` that starts the model's name (4 if none).

An image value is ``{"w", "h", "n", "rgb"}`` (pixels, batch size, colour) plus ``"noise":
[seed, strength]`` after ``ImageAddNoise``.
"""

from __future__ import annotations

import copy
import io
import json
import random
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from PIL import Image

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "comfyui_recorded"
MEDIA_SAVERS = ("SaveWEBM", "SaveAnimatedWEBP")
WEBM_CODECS = {"vp9": ("libvpx-vp9", "yuv420p"), "av1": ("libsvtav1", "yuv420p10le")}
WEBP_METHODS = {"default": 4, "fastest": 0, "slowest": 6}
ADDED_TYPES = {"webp": "image/webp"}
"""Types ComfyUI's ``server.py`` adds to ``mimetypes`` for ``/view`` (Python 3.11 lacks ``.webp``)."""


def load_recorded(name: str) -> Any:
    """A file of ``tests/fixtures/comfyui_recorded/``, parsed (``name`` without ``.json``)."""
    return json.loads((RECORDED / f"{name}.json").read_text(encoding="utf-8"))


def _recorded_outputs(name: str) -> list[dict[str, Any]]:
    return [ex["json"]["data"]["output"] for ex in load_recorded(name)["exchanges"]
            if ex["kind"] == "ws_text" and ex["json"]["type"] == "executed"]


def _recorded_error(name: str) -> dict[str, Any]:
    return next(ex["json"]["data"] for ex in load_recorded(name)["exchanges"]
                if ex["kind"] == "ws_text" and ex["json"]["type"] == "execution_error")


class MediaNodes:
    """What the fake knows of the recorded media and upscale nodes."""

    def __init__(self) -> None:
        self.webm_output = _recorded_outputs("video_webm")[0]
        self.webp_outputs = _recorded_outputs("video_animated_webp")
        self.model_error = _recorded_error("upscale")
        self.upscale_models: list[str] = []

    def ui(self, cls: str, files: list[dict[str, str]], frames: int) -> dict[str, Any]:
        """The ``executed`` output (and history ``outputs`` entry) of a saver, shaped as recorded:
        the recorded keys, the file list under the key that held the recorded file."""
        if cls == "SaveWEBM":
            recorded = self.webm_output
        else:
            recorded = next(o for o in self.webp_outputs if o.get("animated") == [frames != 1])
        out = copy.deepcopy(recorded)
        for key, value in recorded.items():
            if isinstance(value, list) and value and isinstance(value[0], dict) and "filename" in value[0]:
                out[key] = files
        return out

    def missing_model(self, cls: str, inputs: dict[str, Any]) -> bool:
        """True when an ``UpscaleModelLoader`` names a model the fake does not offer."""
        return cls == "UpscaleModelLoader" and inputs.get("model_name") not in self.upscale_models

    def model_failure(self, name: str) -> dict[str, Any]:
        """The recorded ``execution_error`` payload of a missing upscale model, for ``name``."""
        data = copy.deepcopy(self.model_error)
        data["exception_message"] = f"Model in folder 'upscale_models' with filename '{name}' not found.\n"
        return data


def evaluate(cls: str, inputs: dict[str, Any], base: dict[str, Any]) -> dict[str, Any] | None:
    """The value of a scaling or noise node, or None for other classes."""
    if cls in ("ImageScaleBy", "LatentUpscaleBy"):
        scale = float(inputs["scale_by"])
        return {**base, "w": round(base["w"] * scale), "h": round(base["h"] * scale)}
    if cls == "ImageUpscaleWithModel":
        model = inputs.get("upscale_model")
        name = model.get("model_name", "") if isinstance(model, dict) else ""
        match = re.match(r"(\d+)x", name)
        factor = int(match.group(1)) if match else 4
        return {**base, "w": base["w"] * factor, "h": base["h"] * factor}
    if cls == "UpscaleModelLoader":
        return {"model_name": inputs.get("model_name")}
    if cls == "ImageAddNoise":
        return {**base, "noise": [int(inputs.get("seed", 0)), float(inputs.get("strength", 0.5))]}
    return None


def frames(image: dict[str, Any]) -> list[Image.Image]:
    """The batch as RGB images: solid ``rgb``, blended with seeded noise after ImageAddNoise."""
    size = (max(1, int(image["w"])), max(1, int(image["h"])))
    solid = Image.new("RGB", size, tuple(image["rgb"]))
    if not image.get("noise"):
        return [solid] * int(image["n"])
    seed, strength = image["noise"]
    rnd = random.Random(seed)
    return [Image.blend(solid, Image.frombytes("RGB", size, rnd.randbytes(size[0] * size[1] * 3)), strength)
            for _ in range(int(image["n"]))]


def encode_webm(images: list[Image.Image], *, fps: float, codec: str, crf: float,
                metadata: dict[str, str]) -> bytes:
    """A WebM of ``images`` (one frame each) at ``fps`` frames per second, as SaveWEBM writes it
    (``comfy_extras/nodes_video.py``: rate ``round(fps*1000)/1000``, ``crf`` option).

    Raises:
        KeyError: ``codec`` is neither ``vp9`` nor ``av1`` (the real node fails the same way).
    """
    encoder, pix_fmt = WEBM_CODECS[codec]
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="webm") as container:
        container.metadata.update(metadata)
        stream = container.add_stream(encoder, rate=Fraction(round(fps * 1000), 1000))
        stream.width, stream.height = images[0].size
        stream.pix_fmt = pix_fmt
        stream.options = {"crf": str(crf), **({"preset": "6"} if codec == "av1" else {})}
        for image in images:
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                container.mux(packet)
        container.mux(stream.encode())
    return buf.getvalue()


def encode_animated_webp(images: list[Image.Image], *, fps: float, lossless: bool, quality: int, method: str,
                         prompt_json: str) -> bytes:
    """One WebP of every image, as SaveAnimatedWEBP writes it (``comfy_extras/nodes_images.py``)."""
    exif = images[0].getexif()
    exif[0x0110] = f"prompt:{prompt_json}"
    buf = io.BytesIO()
    images[0].save(buf, "WEBP", save_all=True, append_images=images[1:], duration=int(1000.0 / fps), exif=exif,
                   lossless=lossless, quality=quality, method=WEBP_METHODS.get(method, 4))
    return buf.getvalue()


def encode(cls: str, inputs: dict[str, Any], prompt: dict[str, Any], extra_pnginfo: dict[str, Any]) -> tuple[bytes, str, int]:
    """``(file bytes, extension, frames)`` of a SaveWEBM or SaveAnimatedWEBP node.

    Raises:
        KeyError: an unknown SaveWEBM codec.
    """
    images = frames(inputs["images"])
    if cls == "SaveWEBM":
        metadata = {"prompt": json.dumps(prompt), **{k: json.dumps(v) for k, v in extra_pnginfo.items()}}
        data = encode_webm(images, fps=float(inputs.get("fps", 24.0)), codec=str(inputs.get("codec", "vp9")),
                           crf=float(inputs.get("crf", 32.0)), metadata=metadata)
        return data, "webm", len(images)
    data = encode_animated_webp(images, fps=float(inputs.get("fps", 6.0)), lossless=bool(inputs.get("lossless", True)),
                                quality=int(inputs.get("quality", 80)), method=str(inputs.get("method", "default")),
                                prompt_json=json.dumps(prompt))
    return data, "webp", len(images)
