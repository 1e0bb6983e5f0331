"""LocalAssetStore: layout, embedded parameters, sidecars, dedupe, ranges, delete, atomicity."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import sys
import threading
from pathlib import Path

import pytest
from PIL import Image

from image_studio.errors import InvalidRequest, NotFound
from image_studio.storage import LocalAssetStore, local, read_png_text
from image_studio.storage.mime import sniff
from image_studio.types import Asset, GeneratedFile

from .helpers import ebml, encode, ftyp, noisy_png, pixels, save


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


async def test_png_gets_both_text_chunks_and_keeps_its_pixels(store: LocalAssetStore, request_) -> None:
    png = noisy_png(64, 48)
    asset = await store.save(
        GeneratedFile(
            data=png, mime_type="image/png", seed=42, parameters={"scheduler": "karras"}),
        asset_id="a1", provider="comfy", backend="http://127.0.0.1:8188", model="sdxl-base",
        owner="alice", job_id="job-1", request=request_, parameters={"workflow": "txt2img"},
    )
    stored = store.local_path(asset).read_bytes()
    assert pixels(stored) == pixels(png)
    text = read_png_text(stored)
    assert text["parameters"] == (
        'a red fox, in the snow\nNegative prompt: blurry\n'
        "Steps: 20, Sampler: euler, Schedule type: karras, CFG scale: 7, Seed: 42, Size: 64x48, "
        "Model: sdxl-base, Provider: comfy, Workflow: txt2img"
    )
    embedded = json.loads(text["image_studio"])
    assert embedded["format"] == "image_studio/1"
    assert embedded["prompt"] == "a red fox, in the snow" and embedded["seed"] == 42
    assert embedded["scheduler"] == "karras" and embedded["workflow"] == "txt2img"
    for private in ("owner", "job_id", "backend"):
        assert private not in embedded, f"{private} must not leak into the file"
    assert asset.sha256 == hashlib.sha256(stored).hexdigest()
    assert asset.size_bytes == len(stored)
    assert asset.path == f"comfy/{asset.sha256[:2]}/{asset.sha256}.png"
    assert asset.thumbnail_path == f"thumbnails/{asset.sha256[:2]}/{asset.sha256}.webp"
    assert (asset.width, asset.height, asset.seed, asset.prompt) == (64, 48, 42, "a red fox, in the snow")


@pytest.mark.parametrize(
    ("size", "thumb"),
    [((1000, 500), (384, 192)), ((300, 900), (128, 384)), ((100, 50), (100, 50)), ((384, 384), (384, 384)),
     ((2000, 3), (384, 1))],
)
async def test_thumbnail_size_rules(store: LocalAssetStore, size, thumb) -> None:
    asset = await save(store, encode(Image.new("RGB", size, (200, 40, 40))))
    data = await store.read_thumbnail(asset)
    assert data is not None and sniff(data).mime == "image/webp"
    with Image.open(io.BytesIO(data)) as im:
        assert im.size == thumb
    assert store.thumbnail_local_path(asset) == store.root / asset.thumbnail_path


async def test_thumbnail_keeps_alpha_and_first_gif_frame(store: LocalAssetStore) -> None:
    rgba = encode(Image.new("RGBA", (50, 50), (0, 0, 255, 0)))
    with Image.open(io.BytesIO(await store.read_thumbnail(await save(store, rgba)))) as im:
        assert im.mode == "RGBA" and im.getpixel((5, 5))[3] == 0
    frames = [Image.new("RGB", (40, 20), c) for c in ((250, 0, 0), (0, 250, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100)
    gif = await save(store, buf.getvalue(), asset_id="gif")
    assert gif.mime_type == "image/gif" and store.local_path(gif).read_bytes() == buf.getvalue()
    with Image.open(io.BytesIO(await store.read_thumbnail(gif))) as im:
        r, g, _ = im.convert("RGB").getpixel((10, 10))
        assert r > 200 and g < 50, "the first frame (red) is the thumbnail"


async def test_equal_bytes_share_one_file_and_the_sidecar_lists_both(store: LocalAssetStore) -> None:
    png = noisy_png(32, 32)
    a = await save(store, png, asset_id="a1")
    b = await save(store, png, asset_id="a2")
    assert a.path == b.path and a.sha256 == b.sha256
    assert files_under(store.root) == sorted([a.path, a.path.replace(".png", ".json"), a.thumbnail_path])
    assert (await store.read_sidecar(a))["id"] == "a1"
    assert (await store.read_sidecar(b))["id"] == "a2"
    other = await save(store, png, asset_id="a3", provider="a1111")
    assert other.path.startswith("a1111/")
    assert other.sha256 != a.sha256, "the provider is embedded in PNGs, so the stored bytes differ"


async def test_equal_unmodified_bytes_of_two_providers_share_the_thumbnail(store: LocalAssetStore) -> None:
    jpeg = encode(Image.new("RGB", (30, 20), (9, 9, 9)), "JPEG")  # JPEGs are stored unchanged
    a = await save(store, jpeg, provider="comfy")
    b = await save(store, jpeg, asset_id="a2", provider="a1111")
    assert a.sha256 == b.sha256 and a.path != b.path
    assert a.thumbnail_path == b.thumbnail_path


async def test_concurrent_saves_of_equal_bytes_keep_every_sidecar_entry(store: LocalAssetStore) -> None:
    png = noisy_png(16, 16)
    assets = await asyncio.gather(*(save(store, png, asset_id=f"id{i}") for i in range(8)))
    sidecar = json.loads((store.root / assets[0].path).with_suffix(".json").read_text())
    assert sorted(sidecar["assets"]) == sorted(f"id{i}" for i in range(8))


async def test_sidecar_holds_the_asset_and_full_parameters(store: LocalAssetStore, request_) -> None:
    asset = await save(store, noisy_png(8, 8), request=request_)
    record = await store.read_sidecar(asset)
    assert Asset.model_validate(record) == asset
    assert record["owner"] == "alice" and record["job_id"] == "job-1"
    assert record["backend"] == "http://127.0.0.1:8188"
    params = record["parameters"]
    assert params["negative_prompt"] == "blurry" and params["workflow"] == "txt2img"
    assert params["steps"] == 20 and params["mode"] == "txt2img" and params["width"] == 8
    raw = json.loads((store.root / asset.path).with_suffix(".json").read_text())
    assert raw["format"] == "image_studio.sidecar/1" and raw["sha256"] == asset.sha256


async def test_read_sidecar_of_an_unknown_asset_is_not_found(store: LocalAssetStore) -> None:
    asset = await save(store, noisy_png(8, 8))
    with pytest.raises(NotFound):
        await store.read_sidecar(asset.model_copy(update={"id": "nobody"}))
    with pytest.raises(NotFound):
        await store.read_sidecar(asset.model_copy(update={"path": "comfy/00/00.png"}))


async def test_binary_and_odd_parameters_are_stored_as_json(store: LocalAssetStore) -> None:
    asset = await store.save(
        GeneratedFile(data=noisy_png(4, 4)),
        asset_id="odd", provider="p", backend=None, model=None, owner=None, job_id=None, request=None,
        parameters={"raw": b"\x00\x01\x02", "tags": {"only"}, "path": Path("/x/y")},
    )
    assert asset.parameters["raw"] == "<3 bytes>" and asset.parameters["path"] == "/x/y"
    assert asset.parameters["tags"] == ["only"]
    assert asset.prompt is None and asset.seed is None


async def test_range_reads(store: LocalAssetStore) -> None:
    asset = await save(store, noisy_png(64, 64))
    data = store.local_path(asset).read_bytes()
    assert b"".join([c async for c in store.open(asset)]) == data
    chunks = [c async for c in store.open(asset, chunk_size=1000, start=10, end=3510)]
    assert b"".join(chunks) == data[10:3510]
    assert [len(c) for c in chunks] == [1000, 1000, 1000, 500]
    stream = await store.open(asset, start=len(data) - 5, end=len(data) + 100)
    assert (stream.size, stream.start, stream.end, stream.length) == (len(data), len(data) - 5, len(data), 5)
    assert b"".join([c async for c in stream]) == data[-5:]
    assert [c async for c in store.open(asset, start=len(data))] == []


@pytest.mark.parametrize(
    ("kw", "field"), [({"start": -1}, "start"), ({"start": 10**9}, "start"),
                      ({"start": 50, "end": 10}, "end"), ({"chunk_size": 0}, "chunk_size")],
)
async def test_bad_ranges_are_refused(store: LocalAssetStore, kw, field) -> None:
    asset = await save(store, noisy_png(8, 8))
    with pytest.raises(InvalidRequest) as info:
        await store.open(asset, **kw)
    assert info.value.field == field


async def test_missing_file_is_not_found_before_any_byte(store: LocalAssetStore) -> None:
    asset = await save(store, noisy_png(8, 8))
    (store.root / asset.path).unlink()
    with pytest.raises(NotFound):
        await store.open(asset)
    with pytest.raises(NotFound):
        [c async for c in store.open(asset)]
    assert store.local_path(asset) is None


async def test_paths_outside_the_root_are_refused(store: LocalAssetStore) -> None:
    asset = await save(store, noisy_png(8, 8))
    for bad in ("../escape.png", "/etc/passwd"):
        with pytest.raises(InvalidRequest) as info:
            store.local_path(asset.model_copy(update={"path": bad}))
        assert info.value.field == "path"


@pytest.mark.parametrize("provider", ["thumbnails", "../up", "a/b", "", ".hidden"])
async def test_unsafe_provider_ids_are_refused(store: LocalAssetStore, provider: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        await save(store, noisy_png(8, 8), provider=provider)
    assert info.value.field == "provider"


async def test_delete_not_last_reference_keeps_the_bytes(store: LocalAssetStore) -> None:
    png = noisy_png(16, 16)
    a, b = await save(store, png, asset_id="a1"), await save(store, png, asset_id="a2")
    await store.delete(a, last_reference=False)
    assert store.local_path(b) is not None and await store.read_thumbnail(b) is not None
    with pytest.raises(NotFound):
        await store.read_sidecar(a)
    assert (await store.read_sidecar(b))["id"] == "a2"
    await store.delete(b)
    assert files_under(store.root) == []
    await store.delete(b)  # already gone: no error


async def test_delete_keeps_a_thumbnail_another_provider_still_uses(store: LocalAssetStore) -> None:
    jpeg = encode(Image.new("RGB", (30, 20), (9, 9, 9)), "JPEG")
    a, b = await save(store, jpeg, provider="comfy"), await save(store, jpeg, asset_id="a2", provider="a1111")
    await store.delete(a)
    assert store.local_path(a) is None and await store.read_thumbnail(b) is not None
    await store.delete(b)
    assert await store.read_thumbnail(b) is None


async def test_no_temporary_files_are_left(store: LocalAssetStore) -> None:
    for i in range(3):
        await save(store, noisy_png(16, 16, seed=i), asset_id=f"a{i}")
    await store.delete(await save(store, noisy_png(16, 16, seed=0), asset_id="dup"), last_reference=False)
    assert not [p for p in store.root.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]


async def test_a_failed_write_leaves_neither_temp_nor_partial_file(store, monkeypatch) -> None:
    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(local.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        await save(store, noisy_png(16, 16))
    assert [p for p in store.root.rglob("*") if p.is_file()] == []


async def test_fsync_store_writes_the_same_files(tmp_path: Path) -> None:
    durable = LocalAssetStore(tmp_path / "durable")  # fsync on, the default
    asset = await save(durable, noisy_png(8, 8))
    assert durable.local_path(asset).stat().st_mode & 0o777 == 0o644
    assert await durable.read_sidecar(asset)


async def test_cpu_work_runs_off_the_event_loop(store: LocalAssetStore, monkeypatch) -> None:
    threads: list[threading.Thread] = []
    real = local.prepare_file

    def spy(*args, **kw):
        threads.append(threading.current_thread())
        return real(*args, **kw)

    monkeypatch.setattr(local, "prepare_file", spy)
    await save(store, noisy_png(8, 8))
    assert threads and threads[0] is not threading.main_thread()


async def test_video_is_stored_as_is_without_ffmpeg(store: LocalAssetStore, monkeypatch) -> None:
    monkeypatch.setenv("PATH", "")
    mp4 = ftyp(b"isom", b"isom", b"mp41") + os.urandom(64)
    asset = await save(store, mp4, mime_type="video/mp4", width=640, height=360)
    assert asset.media.value == "video" and asset.path.endswith(".mp4")
    assert store.local_path(asset).read_bytes() == mp4
    assert asset.thumbnail_path is None and await store.read_thumbnail(asset) is None
    assert (asset.width, asset.height) == (640, 360)


async def test_video_poster_comes_from_ffmpeg_when_on_path(store, tmp_path: Path, monkeypatch) -> None:
    frame = tmp_path / "frame.png"
    frame.write_bytes(encode(Image.new("RGB", (800, 400), (0, 0, 200))))
    fake = tmp_path / "bin" / "ffmpeg"
    fake.parent.mkdir()
    # stands in for ffmpeg: prints a PNG frame on stdout
    fake.write_text(f"#!{sys.executable}\nimport sys\nsys.stdout.buffer.write(open({str(frame)!r}, 'rb').read())\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake.parent))
    asset = await save(store, ebml(b"webm"), mime_type="video/webm")
    assert asset.mime_type == "video/webm" and (asset.width, asset.height) == (800, 400)
    with Image.open(io.BytesIO(await store.read_thumbnail(asset))) as im:
        assert im.size == (384, 192)


async def test_failing_ffmpeg_leaves_no_thumbnail(store, tmp_path: Path, monkeypatch, caplog) -> None:
    fake = tmp_path / "bin" / "ffmpeg"
    fake.parent.mkdir()
    fake.write_text(f"#!{sys.executable}\nimport sys\nsys.stderr.write('moov atom not found')\nsys.exit(1)\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake.parent))
    asset = await save(store, ftyp(b"mp42", b"mp42"))
    assert asset.thumbnail_path is None
    assert "moov atom not found" in caplog.text, "the fake ffmpeg ran and its error was logged"



def real_mp4(path: Path, width: int = 96, height: int = 64, frames: int = 6) -> bytes:
    """A real MP4 (MPEG-4 Part 2, built into FFmpeg) encoded with PyAV at test time."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=12)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            image = Image.new("RGB", (width, height), (200, 40 + i * 20, 40))
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path.read_bytes()


async def test_real_mp4_gets_a_poster_from_pyav_without_ffmpeg(store, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", "")
    mp4 = real_mp4(tmp_path / "clip.mp4")
    asset = await save(store, mp4, mime_type="video/mp4")
    assert asset.media.value == "video" and asset.mime_type == "video/mp4"
    assert (asset.width, asset.height) == (96, 64)
    with Image.open(io.BytesIO(await store.read_thumbnail(asset))) as im:
        assert im.format == "WEBP" and im.size == (96, 64)  # never upscaled
        r, g, b = im.convert("RGB").getpixel((48, 32))
        assert r > 150 and b < 100  # the first frame's colour
