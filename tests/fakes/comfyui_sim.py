"""What the fake ComfyUI (``comfyui_server.py``) does with an accepted prompt (:class:`Run`:
the recorded frame sequence, with synthesised previews and output files; :class:`Simulator`:
its files, uploads and node cache). Video, animated WebP and upscale nodes: ``comfyui_media.py``;
websocket sessions: ``comfyui_sockets.py``.

Frame layouts follow ComfyUI ``server.py`` (``send_image``: ``[u32 1][u32 1=JPEG][jpeg]``;
``send_image_with_metadata``: ``[u32 4][u32 n][n bytes JSON][jpeg]``; ``send_progress_text``:
``[u32 3][u32 n][node id][text]``); message shapes are those of the recorded transcripts.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import io
import json
import struct
import time
from typing import Any

from PIL import Image, PngImagePlugin

from tests.fakes.comfyui_media import MEDIA_SAVERS, MediaNodes, encode, evaluate, frames
from tests.fakes.comfyui_validation import ancestors, is_link, load_fixture


class NodeFailed(Exception):
    """A node raised: ``data`` is the ``execution_error`` payload (without prompt_id)."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(data.get("exception_message"))
        self.data = data


class Interrupted(Exception):
    """The run was interrupted: ``data`` is the ``execution_interrupted`` payload."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__("interrupted")
        self.data = data


# ---------------------------------------------------------------------------- images and frames


def png(width: int, height: int, rgb: tuple[int, int, int], text: dict[str, str] | None = None,
        image: Image.Image | None = None) -> bytes:
    """A solid-colour PNG (or ``image``) with tEXt chunks (SaveImage writes ``prompt`` and each
    ``extra_pnginfo`` key)."""
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    buf = io.BytesIO()
    image = image or Image.new("RGB", (max(1, width), max(1, height)), rgb)
    image.save(buf, "PNG", pnginfo=info, compress_level=1)
    return buf.getvalue()


def jpeg(size: int, rgb: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), rgb).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def frame_preview(image: bytes) -> bytes:
    return struct.pack(">II", 1, 1) + image


def frame_preview_metadata(image: bytes, meta: dict[str, Any]) -> bytes:
    raw = json.dumps(meta).encode("utf-8")
    return struct.pack(">II", 4, len(raw)) + raw + image


def frame_text(node_id: str, text: str) -> bytes:
    raw = node_id.encode("utf-8")
    return struct.pack(">II", 3, len(raw)) + raw + text.encode("utf-8")


def _recorded_error(name: str) -> dict[str, Any]:
    return next(ex["json"]["data"] for ex in load_fixture(name)["exchanges"]
                if ex["kind"] == "ws_text" and ex["json"]["type"] == "execution_error")


# ---------------------------------------------------------------------------- simulator


class Simulator:
    """Files, uploads and the node cache of the fake, and the planning of runs."""

    def __init__(self, *, preview_size: int = 512, cache: bool = True) -> None:
        self.preview_size = preview_size
        self.cache_enabled = cache
        self.files: dict[tuple[str, str, str], bytes] = {}
        self.inputs: set[str] = set()
        self.counters: dict[str, int] = {}
        self.cache: dict[str, tuple[Any, dict[str, Any] | None]] = {}
        self.raise_error = _recorded_error("execution_error")
        self.checkpoint_error = _recorded_error("execution_error_bad_checkpoint")
        self.media = MediaNodes()

    def input_names(self) -> list[str]:
        return sorted(self.inputs)

    def store_upload(self, data: bytes, filename: str, subfolder: str, kind: str, overwrite: bool) -> dict[str, Any]:
        """``/upload/image``: rename to ``name (i).ext`` unless overwriting or the bytes are equal."""
        stem, dot, ext = filename.rpartition(".")
        name, i = filename, 1
        while not overwrite and (kind, subfolder, name) in self.files:
            if self.files[(kind, subfolder, name)] == data:
                break
            name, i = f"{stem} ({i}){dot}{ext}" if dot else f"{filename} ({i})", i + 1
        self.files[(kind, subfolder, name)] = data
        if kind == "input":
            self.inputs.add(f"{subfolder}/{name}" if subfolder else name)
        return {"name": name, "subfolder": subfolder, "type": kind}

    def store_output(self, prefix: str, kind: str, ext: str, data: bytes) -> dict[str, str]:
        """Keep a saved file as ``<prefix>_<counter:05>_.<ext>`` (one counter per prefix, as
        ``folder_paths.get_save_image_path``); returns its ``{filename, subfolder, type}``."""
        subfolder, _, base = prefix.rpartition("/")
        self.counters[prefix] = self.counters.get(prefix, 0) + 1
        name = f"{base}_{self.counters[prefix]:05}_.{ext}"
        self.files[(kind, subfolder, name)] = data
        return {"filename": name, "subfolder": subfolder, "type": kind}

    def save(self, prefix: str, kind: str, image: dict[str, Any], prompt: dict[str, Any],
             extra_pnginfo: dict[str, Any] | None = None) -> list[dict[str, str]]:
        """SaveImage / PreviewImage: one PNG per image of the batch."""
        text = {"prompt": json.dumps(prompt), **{k: json.dumps(v) for k, v in (extra_pnginfo or {}).items()}}
        pictures = frames(image) if image.get("noise") else [None] * int(image["n"])
        return [self.store_output(prefix, kind, "png", png(image["w"], image["h"], image["rgb"], text, picture))
                for picture in pictures]

    def plan(self, prompt: dict[str, Any], outputs: list[str], object_info: dict[str, Any], *, fail: bool,
             extra: dict[str, Any] | None = None) -> Run:
        return Run(self, prompt, outputs, object_info, fail=fail, extra=extra)


class Run:
    """One accepted prompt: the nodes to execute in order, and the cached ones."""

    def __init__(self, sim: Simulator, prompt: dict[str, Any], outputs: list[str], object_info: dict[str, Any],
                 *, fail: bool, extra: dict[str, Any] | None = None) -> None:
        self.sim, self.prompt, self.info = sim, prompt, object_info
        self.extra_pnginfo = dict((extra or {}).get("extra_pnginfo") or {})
        self.order: list[str] = []
        for out in outputs:
            self.order += [n for n in ancestors(prompt, out) if n not in self.order]
        self.sigs: dict[str, str] = {}
        for nid in self.order:
            self.sigs[nid] = self._signature(nid)
        self.cached = [n for n in self.order if sim.cache_enabled and self.sigs[n] in sim.cache]
        self.fail_node = next((n for n in self.order if not self._is_output(n)), None) if fail else None
        self.values: dict[str, Any] = {n: sim.cache[self.sigs[n]][0] for n in self.cached}

    def _signature(self, nid: str) -> str:
        node = self.prompt[nid]
        parts = {k: (self.sigs[str(v[0])], v[1]) if is_link(v) else v for k, v in node["inputs"].items()}
        if node["class_type"] == "LoadImage":
            sub, _, name = str(node["inputs"].get("image", "")).rpartition("/")
            parts["_bytes"] = hashlib.sha256(self.sim.files.get(("input", sub, name), b"")).hexdigest()
        return hashlib.sha256(json.dumps([node["class_type"], parts], sort_keys=True, default=str).encode()).hexdigest()

    def _is_output(self, nid: str) -> bool:
        return bool(self.info[self.prompt[nid]["class_type"]].get("output_node"))

    def _inputs(self, nid: str) -> dict[str, Any]:
        return {k: self.values.get(str(v[0])) if is_link(v) else v for k, v in self.prompt[nid]["inputs"].items()}

    def _evaluate(self, cls: str, inputs: dict[str, Any]) -> Any:
        images = [v for v in inputs.values() if isinstance(v, dict) and "rgb" in v]
        base = dict(images[0]) if images else {"w": 64, "h": 64, "n": 1, "rgb": (0, 0, 0)}
        if cls == "EmptyImage" or ("Latent" in cls and cls.startswith("Empty")):
            color = int(inputs.get("color", 0x646464))
            return {"w": int(inputs["width"]), "h": int(inputs["height"]), "n": int(inputs["batch_size"]),
                    "rgb": ((color >> 16) & 255, (color >> 8) & 255, color & 255)}
        if cls == "ImageInvert":
            return {**base, "rgb": tuple(255 - c for c in base["rgb"])}
        if cls == "ImageScale":
            return {**base, "w": int(inputs["width"]) or base["w"], "h": int(inputs["height"]) or base["h"]}
        if cls == "LoadImage":
            sub, _, name = str(inputs["image"]).rpartition("/")
            data = self.sim.files.get(("input", sub, name))
            if data:
                with Image.open(io.BytesIO(data)) as im:
                    return {"w": im.width, "h": im.height, "n": 1, "rgb": im.convert("RGB").getpixel((0, 0))}
        if cls.startswith("KSampler") and "seed" in inputs:
            seed = int(inputs["seed"])
            return {**base, "rgb": ((seed >> 16) & 255, (seed >> 8) & 255, seed & 255)}
        return evaluate(cls, inputs, base) or base

    def _failure(self, nid: str, cls: str, executed: list[str], error: Exception | None = None) -> NodeFailed:
        missing = error is None and self.sim.media.missing_model(cls, self.prompt[nid]["inputs"])
        if missing:
            data = self.sim.media.model_failure(str(self.prompt[nid]["inputs"].get("model_name")))
        else:
            data = copy.deepcopy(self.sim.checkpoint_error if cls.startswith("CheckpointLoader") else self.sim.raise_error)
        data.pop("prompt_id", None)
        data.pop("timestamp", None)
        if error is not None:
            data.update(exception_type=type(error).__name__, exception_message=f"{error}\n")
        elif cls == "FixtureRaiseError":
            data["exception_message"] = f"{self.prompt[nid]['inputs'].get('message', '')}\n"
        elif not cls.startswith("CheckpointLoader") and not missing:
            data["exception_message"] = f"forced failure of node {nid}\n"
        data.update(node_id=nid, node_type=cls, executed=list(executed),
                     current_outputs=list(reversed(self.order)),
                     current_inputs={k: [repr(v)] for k, v in self.prompt[nid]["inputs"].items()})
        return NodeFailed(data)

    async def play(self, server: Any, prompt_id: str, sid: str | None, *,
                   metadata_previews: bool) -> tuple[dict[str, Any], str, list[list[Any]]]:
        """Send the whole run's frames (``server.send`` / ``server.send_binary``) up to, not
        including, the final ``executing {node: null}``.

        Returns ``(history outputs, status_str, history messages)``.
        """
        messages: list[list[Any]] = []

        async def emit(kind: str, data: dict[str, Any], keep: bool = False) -> None:
            if keep:
                messages.append([kind, data])
            await server.send(sid, kind, data)
            await server.pace()

        def stamp(**data: Any) -> dict[str, Any]:
            return {**data, "prompt_id": prompt_id, "timestamp": int(time.time() * 1000)}

        await emit("execution_start", stamp(), keep=True)
        await emit("execution_cached", stamp(nodes=self.cached), keep=True)
        ui: dict[str, Any] = {}
        try:
            ui = await self.execute(server, prompt_id, sid, emit, metadata_previews=metadata_previews)
        except NodeFailed as exc:
            await emit("execution_error", stamp(**exc.data), keep=True)
            return ui, "error", messages
        except Interrupted as exc:
            await emit("execution_interrupted", stamp(**exc.data), keep=True)
            return ui, "error", messages
        await emit("execution_success", stamp(), keep=True)
        return ui, "success", messages

    async def execute(self, server: Any, prompt_id: str, sid: str | None, emit: Any, *,
                      metadata_previews: bool) -> dict[str, Any]:
        """Send the frames of the run; return the history ``outputs``.

        Raises:
            NodeFailed: a node failed. Interrupted: ``/interrupt`` hit this prompt.
        """
        ui: dict[str, Any] = {}
        for nid in self.cached:
            cached_ui = self.sim.cache[self.sigs[nid]][1]
            if cached_ui is not None:
                ui[nid] = cached_ui
                await emit("executed", {"node": nid, "display_node": nid, "output": cached_ui, "prompt_id": prompt_id})
        states: dict[str, Any] = {}
        executed: list[str] = []

        def state(nid: str, value: float, maximum: float, kind: str) -> dict[str, Any]:
            states[nid] = {"value": value, "max": maximum, "state": kind, "node_id": nid, "prompt_id": prompt_id,
                           "display_node_id": nid, "parent_node_id": None, "real_node_id": nid}
            return {"prompt_id": prompt_id, "nodes": copy.deepcopy(states)}

        for nid in (n for n in self.order if n not in self.cached):
            cls = self.prompt[nid]["class_type"]
            if server.interrupted(prompt_id):
                raise Interrupted({"node_id": nid, "node_type": cls, "executed": executed})
            await emit("progress_state", state(nid, 0.0, 1.0, "running"))
            server.last_node = nid
            await emit("executing", {"node": nid, "display_node": nid, "prompt_id": prompt_id})
            inputs = self._inputs(nid)
            if (nid == self.fail_node or cls == "FixtureRaiseError" or cls.startswith("CheckpointLoader")
                    or self.sim.media.missing_model(cls, inputs)):
                raise self._failure(nid, cls, executed)
            if cls == "FixtureSleepProgress":
                await self._sleep_node(server, prompt_id, sid, nid, inputs, emit, state, metadata_previews, executed)
            self.values[nid] = value = self._evaluate(cls, inputs)
            out = None
            if cls in ("SaveImage", "PreviewImage"):
                kind = "output" if cls == "SaveImage" else "temp"
                prefix = str(inputs.get("filename_prefix", "ComfyUI")) if kind == "output" else "ComfyUI_temp_fake"
                out = ui[nid] = {"images": self.sim.save(prefix, kind, inputs["images"], self.prompt, self.extra_pnginfo)}
            elif cls in MEDIA_SAVERS:
                out = ui[nid] = await self._save_media(nid, cls, inputs, executed)
            if out is not None:
                await emit("executed", {"node": nid, "display_node": nid, "output": out, "prompt_id": prompt_id})
            await emit("progress_state", state(nid, 1.0, 1.0, "finished"))
            executed.append(nid)
            if self.sim.cache_enabled:
                self.sim.cache[self.sigs[nid]] = (value, out)
        return ui

    async def _save_media(self, nid: str, cls: str, inputs: dict[str, Any], executed: list[str]) -> dict[str, Any]:
        """SaveWEBM / SaveAnimatedWEBP: encode the file (in a thread) and shape the output as recorded."""
        try:
            data, ext, count = await asyncio.to_thread(encode, cls, inputs, self.prompt, self.extra_pnginfo)
        except Exception as exc:  # noqa: BLE001 - like ComfyUI, any exception of a node is an execution_error
            raise self._failure(nid, cls, executed, exc) from exc  # (an unknown codec: KeyError, as recorded)
        saved = self.sim.store_output(str(inputs.get("filename_prefix", "ComfyUI")), "output", ext, data)
        return self.sim.media.ui(cls, [saved], count)

    async def _sleep_node(self, server: Any, prompt_id: str, sid: str | None, nid: str, inputs: dict[str, Any],
                          emit: Any, state: Any, metadata: bool, executed: list[str]) -> None:
        steps, seconds = int(inputs.get("steps", 5)), float(inputs.get("step_seconds", 0.2))
        for i in range(1, steps + 1):
            await server.pace(seconds)
            if server.interrupted(prompt_id):
                raise Interrupted({"node_id": nid, "node_type": "FixtureSleepProgress", "executed": executed})
            await emit("progress_state", state(nid, float(i), float(steps), "running"))
            image = jpeg(self.sim.preview_size, ((i * 40) % 256, 64, 128)) if inputs.get("preview", True) else None
            progress = {"value": i, "max": steps, "prompt_id": prompt_id, "node": nid}
            if metadata and image:
                meta = {"node_id": nid, "prompt_id": prompt_id, "display_node_id": nid, "parent_node_id": None,
                        "real_node_id": nid, "image_type": "image/jpeg"}
                await server.send_binary(sid, frame_preview_metadata(image, meta))
            await emit("progress", progress)
            if image and not metadata:
                await server.send_binary(sid, frame_preview(image))
            if inputs.get("progress_text"):
                await server.send_binary(sid, frame_text(nid, f"step {i}/{steps}"))
            while server.pause_step == i and not server.interrupted(prompt_id):
                await asyncio.sleep(0.01)  # held by FakeComfyUI.pause_at_step until release()
