"""Video and animated outputs, and the upscale template, on the fake ComfyUI (or a real one at
``$COMFYUI_URL``), checked against the transcripts recorded from ComfyUI 0.3.64 in
``tests/fixtures/comfyui_recorded/``:

* SaveWEBM (the shipped ``weightfree_video`` template): the websocket sequence and the
  ``/history`` listing (``images`` plus ``animated: [true]``) as recorded; the file is a real
  VP9 WebM with the requested frames, size and rate; the provider returns it as a video and a
  Studio stores it as a video asset with a poster thumbnail.
* SaveAnimatedWEBP: ``animated`` as recorded, identical frames merged by libwebp as on the
  real server; through the Studio the asset is an ``image/webp`` image whose file keeps every
  frame.
* ImageScaleBy (the shipped ``upscale`` template) scales the init image by
  ``request.upscale.scale``; an upscale model the server lacks fails at run time, as recorded.
"""

from __future__ import annotations

import asyncio
import io
import json
import random
import uuid
from pathlib import Path
from typing import Any

import av
import pytest
from PIL import Image

from image_studio.config import Settings, StudioConfig
from image_studio.errors import GenerationFailed, Unsupported
from image_studio.providers.comfyui.client import ComfyUIClient
from image_studio.providers.comfyui.workflow import load_template
from image_studio.storage.thumbnails import thumbnail_size
from image_studio.studio import Studio
from image_studio.types import GenerationRequest, JobStatus, MediaKind, UpscaleSpec
from tests.providers.contract import make_ctx

from .conftest import ComfyBackend, Recorder
from .helpers import LIMIT, bodies, near, request, run

RECORDED = Path(__file__).resolve().parents[2] / "fixtures" / "comfyui_recorded"


def recorded(name: str) -> Any:
    return json.loads((RECORDED / f"{name}.json").read_text(encoding="utf-8"))


def frame_shape(messages: list[tuple[str, dict[str, Any]]]) -> list[tuple[Any, ...]]:
    """The run's messages without ids, times and file names: type, node, node states."""
    out: list[tuple[Any, ...]] = []
    for kind, data in messages:
        if kind == "progress_state":
            out.append((kind, tuple(sorted((n, v["state"]) for n, v in data["nodes"].items()))))
        elif kind == "executed":
            out.append((kind, data["node"], tuple(sorted(data["output"]))))
        else:
            out.append((kind, data.get("node")))
    return out


def recorded_runs(name: str) -> list[list[tuple[str, dict[str, Any]]]]:
    """Each recorded run's websocket messages (no ``status``), split at ``executing {node: null}``."""
    runs: list[list[tuple[str, dict[str, Any]]]] = [[]]
    for ex in recorded(name)["exchanges"]:
        if ex["kind"] == "ws_text" and ex["json"]["type"] != "status":
            runs[-1].append((ex["json"]["type"], ex["json"]["data"]))
            if ex["json"]["type"] == "executing" and ex["json"]["data"]["node"] is None:
                runs.append([])
    return runs[:-1]


def color() -> int:
    """A random EmptyImage colour, so that no node comes from ComfyUI's cache."""
    return random.randrange(1, 0xFFFFFF)


def video_graph(*, frames: int = 6, fps: float = 6.0, codec: str = "vp9") -> dict[str, Any]:
    """The shipped weightfree_video prompt at 64x48 (as recorded in ``video_webm.json``)."""
    prompt = load_template("weightfree_video").prompt
    prompt["1"]["inputs"].update(width=64, height=48, batch_size=frames, color=color())
    prompt["3"]["inputs"].update(fps=fps, codec=codec)
    return prompt


def webp_graph(*, frames: int, noise: bool) -> dict[str, Any]:
    """EmptyImage -> ImageInvert (or ImageAddNoise) -> SaveAnimatedWEBP (``video_animated_webp.json``)."""
    middle = ({"class_type": "ImageAddNoise", "inputs": {"image": ["1", 0], "seed": random.randrange(2**32),
                                                          "strength": 0.5}}
              if noise else {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}})
    return {"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": frames,
                                                          "color": color()}},
            "2": middle,
            "3": {"class_type": "SaveAnimatedWEBP", "inputs": {"images": ["2", 0], "filename_prefix": "studio_anim",
                                                               "fps": 6.0, "lossless": False, "quality": 80,
                                                               "method": "default"}}}


def decode_video(data: bytes) -> tuple[str, tuple[int, int], int, Any, tuple[int, int, int]]:
    """``(codec, (width, height), decoded frames, average rate, first pixel RGB)`` with PyAV."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        decoded = list(container.decode(stream))
        first = decoded[0].to_image().convert("RGB").getpixel((0, 0))
        return stream.codec_context.name, (stream.width, stream.height), len(decoded), stream.average_rate, first


def close(pixel: Any, expected: tuple[int, int, int], tolerance: int = 8) -> bool:
    """Equal within ``tolerance`` per channel (VP9 in 4:2:0 is lossy)."""
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected))


def inverted(rgb: int) -> tuple[int, int, int]:
    return 255 - (rgb >> 16 & 255), 255 - (rgb >> 8 & 255), 255 - (rgb & 255)


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), rgb).save(buf, "PNG")
    return buf.getvalue()


async def run_and_view(client: ComfyUIClient, prompt: dict[str, Any]) -> tuple[list[Any], dict[str, Any], bytes, str]:
    """Run ``prompt``; return its events, history outputs of node 3, the file and its type
    (the history entry is deleted afterwards)."""
    await client.connect(10)
    prompt_id, events = await run(client, prompt, extra_data={"extra_pnginfo": {"image_studio_job": "t"}})
    entry = await client.get_history(prompt_id)
    assert entry is not None and entry["status"]["status_str"] == "success", entry
    output = entry["outputs"]["3"]
    item = output["images"][0]
    data, content_type = await client.view(item["filename"], item["subfolder"], item["type"])
    await client.delete_history([prompt_id])
    return events, output, data, content_type or ""


# ---------------------------------------------------------------------------- the wire


async def test_object_info_of_the_recorded_nodes(client: ComfyUIClient) -> None:
    for node_class, info in recorded("object_info_more").items():
        served = (await client.object_info(node_class))[node_class]
        assert served["input"] == info["input"] and served["output_node"] == info["output_node"], node_class


async def test_save_webm_run_is_the_recorded_one(client: ComfyUIClient) -> None:
    events, output, data, content_type = await run_and_view(client, video_graph())
    expected = recorded_runs("video_webm")[0]
    assert frame_shape([(e.type, e.data) for e in events]) == frame_shape(expected)
    executed = next(e.data["output"] for e in events if e.type == "executed")
    assert output == executed and output["animated"] == [True] and set(output) == {"images", "animated"}
    assert output["images"][0]["filename"].startswith("studio_video_")
    assert output["images"][0]["filename"].endswith(".webm") and output["images"][0]["type"] == "output"
    note = next(ex["response_note"] for ex in recorded("video_webm")["exchanges"] if ex.get("path") == "/view")
    assert content_type == note["content_type"] == "video/webm"
    codec, size, count, rate, _ = decode_video(data)
    assert (codec, size, count, str(rate)) == (note["video_codec"], (note["width"], note["height"]),
                                               note["decoded_frames"], note["average_rate"])
    with av.open(io.BytesIO(data)) as container:  # prompt and each extra_pnginfo key, as SaveWEBM writes them
        assert sorted(k.upper() for k in container.metadata if k.upper() != "ENCODER") == \
            [k for k in note["metadata_keys"] if k != "ENCODER"]


@pytest.mark.parametrize(("frames", "noise", "animated", "n_frames"),
                         [(6, True, True, 6), (6, False, True, 1), (1, False, False, 1)],
                         ids=["different-frames", "identical-frames-merged", "one-image"])
async def test_save_animated_webp_as_recorded(client: ComfyUIClient, frames: int, noise: bool, animated: bool,
                                              n_frames: int) -> None:
    events, output, data, content_type = await run_and_view(client, webp_graph(frames=frames, noise=noise))
    index = {(True, 6): 1, (False, 6): 0, (False, 1): 2}[(noise, frames)]
    assert frame_shape([(e.type, e.data) for e in events]) == frame_shape(recorded_runs("video_animated_webp")[index])
    assert output["animated"] == [animated] and output["images"][0]["filename"].endswith(".webp")
    assert content_type == "image/webp"
    with Image.open(io.BytesIO(data)) as im:
        assert im.size == (64, 48) and getattr(im, "n_frames", 1) == n_frames
        assert im.getexif()[0x0110].startswith("prompt:")
        if n_frames > 1:
            im.load()  # Pillow reads a WebP frame's duration when it decodes it
            assert im.is_animated and im.info["duration"] == 166  # int(1000 / 6 fps)


async def test_unknown_webm_codec_fails_when_the_node_runs(client: ComfyUIClient) -> None:
    await client.connect(10)
    prompt_id, events = await run(client, video_graph(codec="h264"))  # COMBO options are not validated
    error = next(e.data for e in events if e.type == "execution_error")
    assert (error["node_id"], error["node_type"], error["exception_type"]) == ("3", "SaveWEBM", "KeyError")
    assert "h264" in error["exception_message"]
    await client.delete_history([prompt_id])


# ---------------------------------------------------------------------------- the provider


async def test_video_request_returns_a_webm(make_provider: Any, recorder: Recorder) -> None:
    provider = make_provider()
    ctx, _ = make_ctx(provider)
    rgb = color()
    req = request(media=MediaKind.video, workflow="weightfree_video", width=64, height=48,
                  params={"frames": 5, "fps": 10.0, "color": rgb})
    result = await provider.generate(req, ctx)
    assert len(result.files) == 1 and result.info["workflow"] == "weightfree_video"
    file = result.files[0]
    assert file.media is MediaKind.video and file.mime_type == "video/webm" and file.filename.endswith(".webm")
    codec, size, count, rate, first = decode_video(file.data)
    assert (codec, size, count, rate) == ("vp9", (64, 48), 5, 10)
    assert close(first, inverted(rgb)), (first, inverted(rgb))
    sent = bodies(recorder, "POST", "/prompt")[0]["prompt"]
    assert sent["1"]["inputs"]["batch_size"] == 5 and sent["3"]["inputs"]["fps"] == 10.0
    with pytest.raises(Unsupported) as info:
        await provider.generate(request(workflow="weightfree_video"), make_ctx(provider)[0])
    assert info.value.field == "media"


async def studio_run(comfy: ComfyBackend, tmp_path: Path, req: GenerationRequest) -> tuple[Studio, Any]:
    """A Studio with one comfyui provider on the test backend; runs ``req``, returns the asset."""
    config = StudioConfig.model_validate({
        "default_provider": "comfy",
        "providers": {"comfy": {"type": "comfyui", "backends": [{"url": comfy.url}],
                                "settings": {"workflow": "weightfree", "history_poll_interval": 0.5}}}})
    studio = Studio(Settings(data_dir=tmp_path, secret_key="k"), config=config)
    await studio.start()
    job = await studio.submit(req)
    done = await studio.wait(job.id, LIMIT)
    assert done.status is JobStatus.succeeded, done.error
    assert len(done.asset_ids) == 1
    return studio, await studio.get_asset(done.asset_ids[0])


async def test_studio_stores_the_video_with_a_poster(comfy: ComfyBackend, tmp_path: Path) -> None:
    req = GenerationRequest(prompt="a video", media="video", workflow="weightfree_video", width=64, height=48,
                            params={"frames": 6, "fps": 6.0})
    studio, asset = await studio_run(comfy, tmp_path, req)
    try:
        assert asset.media is MediaKind.video and asset.mime_type == "video/webm"
        assert asset.path.endswith(".webm") and (asset.width, asset.height) == (64, 48)
        stored = studio.assets.local_path(asset).read_bytes()
        assert decode_video(stored)[1:3] == ((64, 48), 6)
        assert asset.thumbnail_path is not None
        poster = await studio.assets.read_thumbnail(asset)
        with Image.open(io.BytesIO(poster)) as im:
            im.load()
            assert im.format == "WEBP" and im.size == thumbnail_size(64, 48)
    finally:
        await studio.stop()


async def test_studio_keeps_every_frame_of_an_animated_webp(comfy: ComfyBackend, tmp_path: Path) -> None:
    workflow = json.dumps({"name": "anim", "media": ["image"], "prompt": webp_graph(frames=6, noise=True),
                           "slots": {"frames": [["1", "batch_size"]]}})
    studio, asset = await studio_run(comfy, tmp_path, GenerationRequest(prompt="loop", workflow=workflow))
    try:
        # The adapter reports the file by its type: image/webp is an image (history's
        # "animated" flag is not passed on); the stored bytes are ComfyUI's, untouched.
        assert asset.media is MediaKind.image and asset.mime_type == "image/webp"
        assert (asset.width, asset.height) == (64, 48)
        with Image.open(studio.assets.local_path(asset)) as im:
            im.load()
            assert im.is_animated and im.n_frames == 6 and im.info["duration"] == 166
        with Image.open(io.BytesIO(await studio.assets.read_thumbnail(asset))) as thumb:
            assert thumb.size == (64, 48) and getattr(thumb, "n_frames", 1) == 1
    finally:
        await studio.stop()


@pytest.mark.parametrize(("scale", "size"), [(2.0, (80, 60)), (1.5, (60, 45))])
async def test_upscale_template_scales_the_init_image(make_provider: Any, recorder: Recorder, scale: float,
                                                      size: tuple[int, int]) -> None:
    provider = make_provider()
    rgb = (random.randrange(256), random.randrange(256), random.randrange(256))
    req = GenerationRequest(init_image=png(40, 30, rgb), upscale=UpscaleSpec(scale=scale))
    result = await provider.generate(req, make_ctx(provider, job_id=f"up-{uuid.uuid4().hex[:8]}")[0])
    assert result.info["workflow"] == "upscale" and len(result.files) == 1
    file = result.files[0]
    assert file.mime_type == "image/png" and (file.width, file.height) == size
    with Image.open(io.BytesIO(file.data)) as im:
        assert im.size == size and near(im.convert("RGB").getpixel((size[0] // 2, size[1] // 2)), rgb)
    sent = bodies(recorder, "POST", "/prompt")[0]["prompt"]
    assert sent["2"]["class_type"] == "ImageScaleBy" and sent["2"]["inputs"]["scale_by"] == scale
    assert sent["1"]["inputs"]["image"].startswith("image_studio/")


async def test_missing_upscale_model_fails_at_run_time(make_provider: Any, recorder: Recorder) -> None:
    provider = make_provider()
    req = GenerationRequest(init_image=png(40, 30, (9, 99, 199)), upscale=UpscaleSpec(scale=1.5,
                                                                                    upscaler="4x-missing.pth"))
    with pytest.raises(GenerationFailed) as info:
        await provider.generate(req, make_ctx(provider)[0])
    assert "UpscaleModelLoader" in info.value.message and "4x-missing.pth" in info.value.message
    answer = recorder.calls("POST", "/prompt")
    assert len(answer) == 1  # accepted: ComfyUI does not check COMBO options against /object_info


async def test_offered_upscale_model_runs_before_the_scale(make_provider: Any, fake: Any) -> None:
    fake.sim.media.upscale_models = ["2x-fake.pth"]
    provider = make_provider()
    options = await provider.options()
    assert options["upscalers"] == ["2x-fake.pth"]
    req = GenerationRequest(init_image=png(40, 30, (9, 99, 199)), upscale=UpscaleSpec(scale=1.5, upscaler="2x-fake.pth"))
    result = await asyncio.wait_for(provider.generate(req, make_ctx(provider)[0]), LIMIT)
    assert (result.files[0].width, result.files[0].height) == (120, 90)  # 40x30, x2 by the model, x1.5
