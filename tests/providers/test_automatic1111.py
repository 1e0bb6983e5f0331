"""The Automatic1111 provider against a real fake A1111 server (tests/fakes/a1111_server.py)."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from PIL import Image

from image_studio.config import ProviderConfig
from image_studio.errors import (
    AuthenticationFailed,
    GenerationFailed,
    InvalidRequest,
    JobCanceled,
    ProviderTimeout,
    ProviderUnavailable,
    Unsupported,
)
from image_studio.providers.automatic1111 import Automatic1111Provider
from image_studio.providers.automatic1111.wire import build_payload, step_counts
from image_studio.providers.base import ImageProvider
from image_studio.providers.registry import create_provider
from image_studio.types import GenerationRequest
from tests.fakes.a1111_server import MODELS, FakeA1111
from tests.providers.contract import ProviderContract, make_ctx

TXT2IMG, IMG2IMG = "/sdapi/v1/txt2img", "/sdapi/v1/img2img"


@pytest.fixture
def fake() -> Iterator[FakeA1111]:
    with FakeA1111() as server:
        yield server


def make_provider(url: str, http: httpx.AsyncClient, *, type_: str = "automatic1111",
                  credentials: dict | None = None, settings: dict | None = None, **backend) -> ImageProvider:
    config = ProviderConfig(type=type_, backends=[{"url": url, **backend}], credentials=credentials or {},
                            settings={"poll_interval": 0.05, "cancel_grace": 5, **(settings or {})})
    return create_provider("a1111", config, http)


def png(width: int, height: int, color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


async def until(condition: Callable[[], bool]) -> None:
    """Wait (up to 10 s, then fail) until ``condition()`` holds."""
    async def wait() -> None:
        while not condition():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(wait(), timeout=10)


class TestAutomatic1111Contract(ProviderContract):
    @pytest.fixture
    def provider(self, fake: FakeA1111, http: httpx.AsyncClient) -> ImageProvider:
        return make_provider(fake.url, http)

    @pytest.fixture
    def down_provider(self, unused_port: int, http: httpx.AsyncClient) -> ImageProvider:
        return make_provider(f"http://127.0.0.1:{unused_port}", http)


async def test_txt2img_sends_the_exact_body_and_returns_png_files(fake: FakeA1111, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http)
    request = GenerationRequest(prompt="a lighthouse", negative_prompt="blurry", width=64, height=48, n=2, steps=3,
                                cfg_scale=5.5, sampler="Euler a", scheduler="karras", seed=1234,
                                model=MODELS[1]["title"], extra={"restore_faces": False, "tiling": False})
    ctx, rec = make_ctx(provider)
    result = await provider.generate(request, ctx)

    task_id = rec.remembered[0]
    assert fake.bodies(TXT2IMG) == [{
        "prompt": "a lighthouse", "negative_prompt": "blurry", "width": 64, "height": 48, "seed": 1234,
        "batch_size": 2, "n_iter": 1, "steps": 3, "cfg_scale": 5.5, "sampler_name": "Euler a",
        "scheduler": "karras", "save_images": False, "restore_faces": False, "tiling": False,
        "override_settings": {"sd_model_checkpoint": MODELS[1]["title"]},
        "force_task_id": task_id, "send_images": True,
    }]
    assert result.provider_job_id == task_id and result.model == "sd_xl_base_1.0"
    assert [f.seed for f in result.files] == [1234, 1235]
    for f in result.files:
        with Image.open(io.BytesIO(f.data)) as im:
            assert (im.format, im.size) == ("PNG", (64, 48))
            assert im.info["parameters"] == f.parameters["infotext"]
        assert f.mime_type == "image/png" and (f.width, f.height) == (64, 48)


async def test_img2img_inpaint_body_carries_images_mask_and_extra(fake: FakeA1111, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http)
    init, mask = png(32, 32, (200, 10, 10)), png(32, 32, (255, 255, 255))
    request = GenerationRequest(prompt="repaint", width=32, height=32, steps=2, init_image=init, mask=mask,
                                denoising_strength=0.4, extra={"inpainting_fill": 1, "mask_blur": 8,
                                                               "inpaint_full_res": False})
    ctx, rec = make_ctx(provider)
    result = await provider.generate(request, ctx)

    assert fake.bodies(TXT2IMG) == []
    assert fake.bodies(IMG2IMG) == [{
        "prompt": "repaint", "negative_prompt": "", "width": 32, "height": 32, "seed": -1, "batch_size": 1,
        "n_iter": 1, "steps": 2, "denoising_strength": 0.4,
        "init_images": [base64.b64encode(init).decode()], "mask": base64.b64encode(mask).decode(),
        "save_images": False, "inpainting_fill": 1, "mask_blur": 8, "inpaint_full_res": False,
        "force_task_id": rec.remembered[0], "send_images": True,
    }]
    (only,) = result.files
    assert isinstance(only.seed, int) and only.seed >= 0  # the backend's random seed, reported back
    assert only.parameters["denoising_strength"] == 0.4
    assert "Denoising strength: 0.4" in only.parameters["infotext"]


async def test_progress_and_live_previews_arrive_while_the_job_runs(fake: FakeA1111, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http)
    fake.hold(at_step=3)
    ctx, rec = make_ctx(provider)
    job = asyncio.create_task(provider.generate(GenerationRequest(prompt="p", width=64, height=64, steps=6), ctx))

    await until(lambda: any(p["preview"] and p["value"] == 3 for p in rec.progress))
    assert not job.done()
    event = next(p for p in rec.progress if p["preview"] and p["value"] == 3)
    assert event["max"] == 6 and event["preview_mime"] == "image/png"
    with Image.open(io.BytesIO(event["preview"])) as im:
        assert im.format == "PNG"
    polled = len(fake.bodies("/internal/progress"))
    await until(lambda: len(fake.bodies("/internal/progress")) > polled + 1)  # held: polls go on
    later = rec.progress[rec.progress.index(event) + 1:]
    fake.release()
    result = await job

    assert len(result.files) == 1
    assert not any(p["preview"] for p in later)  # polls sent the preview id back: no resend
    values = [p["value"] for p in rec.progress]
    assert values == sorted(values) and values[-1] <= 6
    polls = fake.bodies("/internal/progress")
    assert all(b["id_task"] == rec.remembered[0] and b["live_preview"] is True for b in polls)
    assert polls[0]["id_live_preview"] == -1 and polls[polled + 1]["id_live_preview"] == 3


async def test_info_is_parsed_into_per_image_parameters(fake: FakeA1111, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http)
    ctx, _ = make_ctx(provider)
    result = await provider.generate(GenerationRequest(prompt="cat", width=16, height=16, n=3, steps=2, seed=77), ctx)

    assert [f.seed for f in result.files] == [77, 78, 79]
    for i, f in enumerate(result.files):
        p = f.parameters
        assert p["seed"] == 77 + i and p["prompt"] == "cat" and isinstance(p["subseed"], int)
        assert f"Seed: {77 + i}," in p["infotext"]
        assert (p["sampler"], p["scheduler"], p["model"], p["steps"]) == ("Euler", "Automatic",
                                                                           "v1-5-pruned-emaonly", 2)


def test_grid_and_extension_images_are_skipped(http: httpx.AsyncClient) -> None:
    provider = make_provider("http://127.0.0.1:7860", http)
    grid, a, b, detect_map = (base64.b64encode(png(8, 8, (c, c, c))).decode() for c in range(4))
    info = {"index_of_first_image": 1, "all_seeds": [5, 6], "infotexts": ["grid", "t5", "t6"], "sampler_name": "DDIM"}
    files = provider._files({"images": [grid, a, "data:image/png;base64," + b, detect_map]}, info, None)
    assert [(f.seed, f.parameters["infotext"], f.parameters["sampler"]) for f in files] == [(5, "t5", "DDIM"),
                                                                                           (6, "t6", "DDIM")]


def test_payload_keeps_task_id_and_merges_override_settings() -> None:
    request = GenerationRequest(prompt="x", model="m1", extra={"force_task_id": "theirs", "send_images": False,
                                                               "override_settings": {"CLIP_stop_at_last_layers": 2}})
    path, body = build_payload(request, "ours")
    assert path == TXT2IMG
    assert body["force_task_id"] == "ours" and body["send_images"] is True
    assert body["override_settings"] == {"CLIP_stop_at_last_layers": 2, "sd_model_checkpoint": "m1"}


def test_step_counts_come_from_state_when_sent_else_from_the_fraction() -> None:
    request = GenerationRequest(prompt="x", steps=10)
    state = {"sampling_steps": 10, "sampling_step": 4, "job_no": 1, "job_count": 2}
    assert step_counts({"progress": 0.7, "state": state}, request) == (14, 20)
    assert step_counts({"progress": 0.3}, request) == (3, 10)
    assert step_counts({"progress": None}, GenerationRequest(prompt="x", extra={"n_iter": "many"})) == (0, 100)


@pytest.mark.parametrize("where", ["credentials", "backend"])
async def test_basic_auth_is_sent(where: str, http: httpx.AsyncClient) -> None:
    with FakeA1111(auth=("alice", "s3cret")) as fake:
        if where == "credentials":
            provider = make_provider(fake.url, http, credentials={"username": "alice", "password": "s3cret"})
        else:
            provider = make_provider(fake.url, http, username="alice", password="s3cret")
        ctx, _ = make_ctx(provider)
        await provider.generate(GenerationRequest(prompt="x", width=16, height=16, steps=1), ctx)
        (sent,) = [r for r in fake.requests if r["path"] == TXT2IMG]
        assert sent["headers"]["authorization"] == "Basic " + base64.b64encode(b"alice:s3cret").decode()


async def test_refused_credentials_raise_authentication_failed(http: httpx.AsyncClient) -> None:
    with FakeA1111(auth=("alice", "s3cret")) as fake:
        provider = make_provider(fake.url, http, credentials={"username": "alice", "password": "wrong"})
        ctx, _ = make_ctx(provider)
        with pytest.raises(AuthenticationFailed) as info:
            await provider.generate(GenerationRequest(prompt="x", width=16, height=16, steps=1), ctx)
        assert info.value.status == 401 and not info.value.retryable
        status = await provider.health()
        assert not status.ok and "401" in status.message
        with pytest.raises(AuthenticationFailed):
            await provider.list_models()


async def test_validation_422_names_the_field(fake: FakeA1111, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http)
    ctx, _ = make_ctx(provider)
    with pytest.raises(InvalidRequest) as info:  # a real pydantic rejection by the fake's request model
        await provider.generate(GenerationRequest(prompt="x", width=16, height=16, extra={"n_iter": "many"}), ctx)
    assert info.value.field == "extra.n_iter"

    fake.inject(TXT2IMG, 422)  # the injected body blames "width"
    with pytest.raises(InvalidRequest) as info:
        await provider.generate(GenerationRequest(prompt="x", width=16, height=16), make_ctx(provider)[0])
    assert info.value.field == "width"

    with pytest.raises(InvalidRequest) as info:  # api.py: 400 "Sampler not found"
        await provider.generate(GenerationRequest(prompt="x", width=16, height=16, sampler="Nope"),
                                make_ctx(provider)[0])
    assert info.value.field == "sampler"


async def test_server_errors_map_to_generation_failed_or_unavailable(fake: FakeA1111, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http)
    request = GenerationRequest(prompt="x", width=16, height=16, steps=1)
    fake.inject(TXT2IMG, 500)  # {"error": "OutOfMemoryError", ...} from the exception middleware
    with pytest.raises(GenerationFailed) as info:
        await provider.generate(request, make_ctx(provider)[0])
    assert "OutOfMemoryError" in info.value.message and info.value.retryable and info.value.status == 500

    fake.inject(TXT2IMG, 502, body={"detail": "Bad Gateway"})  # a proxy in front, not A1111
    with pytest.raises(ProviderUnavailable) as unavailable:
        await provider.generate(request, make_ctx(provider)[0])
    assert unavailable.value.retryable

    fake.inject("/sdapi/v1/options", 404, body={"detail": "Not Found"})  # started without --api
    status = await provider.health()
    assert not status.ok and "--api" in status.message


async def test_a_slow_backend_fails_the_health_probe(fake: FakeA1111, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http, settings={"health_timeout": 0.2})
    fake.inject("/sdapi/v1/options", None, delay=1)  # slow, then a normal answer
    status = await provider.health()
    assert not status.ok and "timed out" in status.message
    assert (await provider.health()).ok


async def test_cancel_mid_run_interrupts_and_raises_job_canceled(fake: FakeA1111, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http)
    fake.hold(at_step=2)
    ctx, rec = make_ctx(provider)
    job = asyncio.create_task(provider.generate(GenerationRequest(prompt="x", width=16, height=16, steps=5), ctx))
    await until(lambda: bool(rec.progress))
    ctx.cancel_event.set()
    with pytest.raises(JobCanceled):
        await job

    task_id = rec.remembered[0]
    assert fake.interrupts == [task_id]
    assert ("end", task_id) in fake.runs  # the backend stopped before we let go of it
    ctx2, _ = make_ctx(provider, job_id="after")
    assert (await provider.generate(GenerationRequest(prompt="y", width=16, height=16, steps=1), ctx2)).files
    await provider.cancel(ctx2)  # finished: no longer the running job, so no interrupt
    assert fake.interrupts == [task_id]


async def test_running_past_the_deadline_interrupts_and_times_out(fake: FakeA1111, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http)
    fake.hold(at_step=1)  # never released: only the deadline ends this job
    ctx, rec = make_ctx(provider, timeout=1.0)
    with pytest.raises(ProviderTimeout) as info:
        await provider.generate(GenerationRequest(prompt="x", width=16, height=16, steps=3), ctx)
    assert info.value.retryable
    assert fake.interrupts == [rec.remembered[0]]


async def test_a_job_queued_behind_another_client_is_reported_and_never_interrupted(
        fake: FakeA1111, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http, settings={"cancel_grace": 0.3})
    fake.hold(at_step=1)
    other = asyncio.create_task(http.post(fake.url + TXT2IMG, json={"prompt": "web UI user", "steps": 2,
                                                                    "width": 16, "height": 16}, timeout=30))
    await until(lambda: fake.runs != [])  # the web UI's own job is running
    ctx, rec = make_ctx(provider)
    job = asyncio.create_task(provider.generate(GenerationRequest(prompt="x", width=16, height=16, steps=2), ctx))
    await until(lambda: bool(rec.progress))
    assert (rec.progress[0]["value"], rec.progress[0]["message"]) == (0, "In queue")
    ctx.cancel_event.set()
    with pytest.raises(JobCanceled):
        await job
    assert fake.interrupts == []  # the running job was not ours
    fake.release()
    assert (await other).status_code == 200


async def test_two_jobs_on_one_backend_run_one_after_the_other(fake: FakeA1111, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http)
    fake.hold(at_step=1)
    (ctx_a, rec_a), (ctx_b, rec_b) = make_ctx(provider, job_id="a"), make_ctx(provider, job_id="b")
    request = GenerationRequest(prompt="x", width=16, height=16, steps=2)
    job_a = asyncio.create_task(provider.generate(request, ctx_a))
    await until(lambda: bool(rec_a.progress))
    job_b = asyncio.create_task(provider.generate(request, ctx_b))
    await asyncio.sleep(0.2)  # room for job b to (wrongly) reach the backend
    assert len(fake.bodies(TXT2IMG)) == 1 and not rec_b.remembered
    fake.release()
    await asyncio.gather(job_a, job_b)

    a, b = rec_a.remembered[0], rec_b.remembered[0]
    assert fake.runs == [("start", a), ("end", a), ("start", b), ("end", b)]
    assert fake.max_concurrent == 1


async def test_cancel_while_waiting_for_the_backend_sends_nothing(fake: FakeA1111, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http)
    fake.hold(at_step=1)
    (ctx_a, rec_a), (ctx_b, rec_b) = make_ctx(provider, job_id="a"), make_ctx(provider, job_id="b")
    request = GenerationRequest(prompt="x", width=16, height=16, steps=2)
    job_a = asyncio.create_task(provider.generate(request, ctx_a))
    await until(lambda: bool(rec_a.progress))
    job_b = asyncio.create_task(provider.generate(request, ctx_b))
    await asyncio.sleep(0.05)
    ctx_b.cancel_event.set()
    with pytest.raises(JobCanceled):
        await job_b
    fake.release()
    await job_a
    assert len(fake.bodies(TXT2IMG)) == 1 and fake.interrupts == [] and not rec_b.remembered


async def test_models_and_options(http: httpx.AsyncClient) -> None:
    lora = {"name": "add_detail", "alias": "add_detail", "path": "/models/Lora/add_detail.safetensors", "metadata": {}}
    with FakeA1111(loras=[lora]) as fake:
        provider = make_provider(fake.url, http)
        models = await provider.list_models()
        assert [m.id for m in models] == [m["title"] for m in MODELS]
        assert models[0].name == "v1-5-pruned-emaonly" and models[0].details["hash"] == "6ce0161689"
        opts = await provider.options()
        assert "Euler a" in opts["samplers"] and "karras" in opts["schedulers"]
        assert opts["checkpoint"] == MODELS[0]["title"] and opts["loras"] == ["add_detail"]
        assert "Lanczos" in opts["upscalers"] and opts["vaes"] == ["vae-ft-mse-840000"]
    with FakeA1111() as fake:  # no Lora extension: /sdapi/v1/loras is a 404, tolerated
        assert (await make_provider(fake.url, http).options())["loras"] == []


@pytest.mark.parametrize("type_", ["automatic1111", "forge", "sdnext"])
def test_registry_maps_the_forks_to_this_adapter(type_: str, http: httpx.AsyncClient) -> None:
    provider = make_provider("http://127.0.0.1:7860", http, type_=type_)
    assert isinstance(provider, Automatic1111Provider)
    caps = provider.capabilities
    assert caps.txt2img and caps.img2img and caps.inpaint and not caps.resumable


# --- model add-ons and upscaling -------------------------------------------------------------

def _b64_png(width: int = 8, height: int = 8) -> str:
    return base64.b64encode(png(width, height, (90, 120, 200))).decode()


def test_addons_map_to_a1111_fields():
    req = GenerationRequest(prompt="castle", loras=[{"name": "detail", "weight": 0.6}, {"name": "style"}],
                            vae="vae-ft-mse-840000", hires={"scale": 1.5, "steps": 10, "denoising_strength": 0.35})
    path, body = build_payload(req, "task(x)")
    assert path == "/sdapi/v1/txt2img"
    assert body["prompt"] == "castle <lora:detail:0.6> <lora:style:1>"
    assert body["override_settings"]["sd_vae"] == "vae-ft-mse-840000"
    assert (body["enable_hr"], body["hr_scale"], body["hr_upscaler"], body["hr_second_pass_steps"],
            body["denoising_strength"]) == (True, 1.5, "Latent", 10, 0.35)


def test_hires_with_init_image_is_unsupported():
    with pytest.raises(Unsupported) as info:
        build_payload(GenerationRequest(prompt="x", init_image=_b64_png(), hires={}), "t")
    assert info.value.field == "hires"


async def test_upscale_through_extras_route(fake: FakeA1111, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http)
    req = GenerationRequest(init_image=_b64_png(40, 30), upscale={"scale": 2.5, "upscaler": "Lanczos"})
    ctx, _ = make_ctx(provider)
    result = await provider.generate(req, ctx)
    assert (result.files[0].width, result.files[0].height) == (100, 75)
