"""The placeholder provider: the shared contract, determinism, sizes, n, progress, cancel,
failure injection, img2img and inpaint."""

from __future__ import annotations

import asyncio
import io
import random
import threading
from collections.abc import AsyncIterator

import httpx
import pytest
from PIL import Image

from image_studio.config import ProviderConfig
from image_studio.errors import (
    AuthenticationFailed,
    ConfigError,
    ContentRejected,
    GenerationFailed,
    InvalidRequest,
    JobCanceled,
    ProviderUnavailable,
    RateLimited,
    Unsupported,
)
from image_studio.providers import placeholder
from image_studio.providers.placeholder import PlaceholderProvider
from image_studio.providers.registry import create_provider
from image_studio.types import GenerationRequest, MediaKind

from .contract import ProviderContract, make_ctx


def make(http: httpx.AsyncClient, **settings) -> PlaceholderProvider:
    provider = create_provider("ph", ProviderConfig(type="placeholder", settings=settings), http)
    assert isinstance(provider, PlaceholderProvider)
    return provider


def req(**kw) -> GenerationRequest:
    base = {"prompt": "a red fox in the snow", "width": 96, "height": 64, "seed": 42}
    return GenerationRequest(**{**base, **kw})


def decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


class TestPlaceholderContract(ProviderContract):
    @pytest.fixture
    def provider(self, http: httpx.AsyncClient) -> PlaceholderProvider:
        return make(http)

    @pytest.fixture
    def down_provider(self, http: httpx.AsyncClient) -> PlaceholderProvider:
        return make(http, fail_rate=1.0)

    async def test_down_backend_health_not_ok(self, down_provider) -> None:
        pytest.skip("the placeholder has no backend to be down: health is always ok by design")


async def test_same_seed_gives_identical_bytes_and_another_seed_differs(http) -> None:
    p = make(http, style="detailed")
    ctx, _ = make_ctx(p)
    a = (await p.generate(req(), ctx)).files[0].data
    b = (await make(http, style="detailed").generate(req(), ctx)).files[0].data
    c = (await p.generate(req(seed=43), ctx)).files[0].data
    assert a == b
    assert a != c


@pytest.mark.parametrize("size", [(64, 64), (300, 120), (120, 300), (8, 8), (1024, 576)])
async def test_images_have_the_requested_size(http, size) -> None:
    p = make(http)
    ctx, _ = make_ctx(p)
    result = await p.generate(req(width=size[0], height=size[1]), ctx)
    f = result.files[0]
    assert decode(f.data).size == size and (f.width, f.height) == size
    assert f.mime_type == "image/png" and f.media is MediaKind.image


async def test_n_images_get_consecutive_seeds(http) -> None:
    p = make(http)
    ctx, _ = make_ctx(p)
    result = await p.generate(req(n=3, seed=100), ctx)
    assert [f.seed for f in result.files] == [100, 101, 102]
    assert [f.parameters["seed"] for f in result.files] == [100, 101, 102]
    assert result.info["seeds"] == [100, 101, 102]
    assert len({f.data for f in result.files}) == 3


@pytest.mark.parametrize("seed", [None, -1])
async def test_missing_seed_is_drawn_at_random(http, seed) -> None:
    p = make(http)
    ctx, _ = make_ctx(p)
    firsts = set()
    for _ in range(3):
        files = (await p.generate(req(n=2, seed=seed), ctx)).files
        assert files[0].seed >= 0 and files[1].seed == files[0].seed + 1
        firsts.add(files[0].seed)
    assert len(firsts) > 1, "three random 32-bit seeds are not all equal"


async def test_styles_differ_and_the_model_picks_the_style(http) -> None:
    ctx, _ = make_ctx(make(http))
    by_style = {s: (await make(http, style=s).generate(req(), ctx)).files[0].data for s in placeholder.STYLES}
    assert len(set(by_style.values())) == 3
    via_model = await make(http, style="simple").generate(req(model="placeholder-debug"), ctx)
    debug_too = await make(http, style="debug").generate(req(model="placeholder-debug"), ctx)
    assert via_model.files[0].data == debug_too.files[0].data and via_model.model == "placeholder-debug"
    other = await make(http, style="simple").generate(req(model="sdxl"), ctx)
    assert other.files[0].data == by_style["simple"]


async def test_simple_style_is_a_flat_colour_from_the_seed(http) -> None:
    p = make(http, style="simple")
    ctx, _ = make_ctx(p)
    im = decode((await p.generate(req(width=200, height=200), ctx)).files[0].data).convert("RGB")
    corner = im.getpixel((199, 199))
    assert corner == im.getpixel((190, 195)), "the bottom corner, away from the text, is one colour"
    top = [im.getpixel((x, y)) for x in range(200) for y in range(40)]
    assert sum(px != corner for px in top) > 200, "the PLACEHOLDER stamp is drawn at the top"


async def test_delay_reports_ten_progress_steps_with_previews(http) -> None:
    p = make(http, delay=0.02)
    ctx, rec = make_ctx(p)
    await p.generate(req(n=2), ctx)
    assert [e["value"] for e in rec.progress] == list(range(1, 21))
    assert {e["max"] for e in rec.progress} == {20}
    for event in rec.progress:
        assert event["preview_mime"] == "image/jpeg"
        assert decode(event["preview"]).format == "JPEG"
        assert max(decode(event["preview"]).size) <= 128


async def test_without_delay_progress_is_reported_once_per_image(http) -> None:
    p = make(http)
    ctx, rec = make_ctx(p)
    await p.generate(req(n=3), ctx)
    assert [(e["value"], e["max"]) for e in rec.progress] == [(10, 30), (20, 30), (30, 30)]


async def test_cancel_during_the_delay_stops_the_job(http) -> None:
    p = make(http, delay=600)
    ctx, rec = make_ctx(p)
    sleeping = asyncio.Event()
    real_sleep = ctx.sleep

    async def watched_sleep(seconds: float) -> None:
        sleeping.set()
        await real_sleep(seconds)

    ctx.sleep = watched_sleep  # type: ignore[method-assign]
    task = asyncio.create_task(p.generate(req(), ctx))
    await asyncio.wait_for(sleeping.wait(), timeout=10)
    ctx.cancel_event.set()  # in the middle of a 60 s step
    with pytest.raises(JobCanceled):
        await asyncio.wait_for(task, timeout=10)
    assert rec.progress == []


async def test_cancel_after_some_progress_stops_at_the_next_step(http) -> None:
    p = make(http, delay=0.05)
    ctx, rec = make_ctx(p)
    record = rec.on_progress

    async def cancel_after_three(**kw) -> None:
        await record(**kw)
        if len(rec.progress) == 3:
            ctx.cancel_event.set()

    ctx.on_progress = cancel_after_three
    with pytest.raises(JobCanceled):
        await p.generate(req(n=2), ctx)
    assert [e["value"] for e in rec.progress] == [1, 2, 3]


async def test_fail_rate_one_raises_provider_unavailable(http) -> None:
    p = make(http, fail_rate=1.0)
    ctx, _ = make_ctx(p)
    with pytest.raises(ProviderUnavailable, match=r"placeholder failure \(fail_rate\)") as info:
        await p.generate(req(), ctx)
    assert info.value.retryable and info.value.provider == "ph"


async def test_fail_rate_ignores_the_seed(http) -> None:
    p = make(http, fail_rate=0.5)
    p._failure_rng = random.Random(1234)  # fixed for the test; the seed of the request must not matter
    ctx, _ = make_ctx(p)
    outcomes = []
    for _ in range(60):
        try:
            await p.generate(req(width=8, height=8, seed=7), ctx)
            outcomes.append(True)
        except ProviderUnavailable:
            outcomes.append(False)
    assert 0 < outcomes.count(False) < 60


@pytest.mark.parametrize(
    ("name", "cls", "retryable"),
    [("ProviderUnavailable", ProviderUnavailable, True), ("RateLimited", RateLimited, True),
     ("ContentRejected", ContentRejected, False), ("AuthenticationFailed", AuthenticationFailed, False),
     ("GenerationFailed", GenerationFailed, False)],
)
async def test_fail_with_raises_that_class_every_time(http, name, cls, retryable) -> None:
    p = make(http, fail_with=name, retry_after=3)
    ctx, _ = make_ctx(p)
    for _ in range(3):
        with pytest.raises(cls) as info:
            await p.generate(req(), ctx)
        assert type(info.value) is cls and info.value.retryable is retryable
    if cls is RateLimited:
        assert info.value.retry_after == 3


async def test_fail_with_and_zero_fail_rate_never_fails(http) -> None:
    p = make(http, fail_with="RateLimited", fail_rate=0)
    ctx, _ = make_ctx(p)
    assert (await p.generate(req(), ctx)).files


async def test_img2img_blends_the_init_image(http) -> None:
    init = io.BytesIO()
    Image.new("RGB", (50, 50), (255, 0, 0)).save(init, "PNG")
    p = make(http, style="simple")
    ctx, _ = make_ctx(p)
    keep = await p.generate(req(width=200, height=200, init_image=init.getvalue(), denoising_strength=0.0), ctx)
    assert decode(keep.files[0].data).convert("RGB").getpixel((195, 195)) == (255, 0, 0)
    half = await p.generate(req(width=200, height=200, init_image=init.getvalue(), denoising_strength=0.5), ctx)
    plain = await p.generate(req(width=200, height=200), ctx)
    got = decode(half.files[0].data).convert("RGB").getpixel((195, 195))
    drawn = decode(plain.files[0].data).convert("RGB").getpixel((195, 195))
    expected = ((255 + drawn[0]) / 2, drawn[1] / 2, drawn[2] / 2)
    assert all(abs(g - e) <= 1 for g, e in zip(got, expected)), (got, expected)
    assert half.info["mode"] == "img2img"


async def test_inpaint_changes_only_the_white_part_of_the_mask(http) -> None:
    init, mask = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (200, 200), (255, 0, 0)).save(init, "PNG")
    m = Image.new("L", (200, 200), 0)
    m.paste(255, (0, 0, 100, 200))
    m.save(mask, "PNG")
    p = make(http, style="simple")
    ctx, _ = make_ctx(p)
    out = await p.generate(
        req(width=200, height=200, init_image=init.getvalue(), mask=mask.getvalue(), denoising_strength=1.0), ctx
    )
    im = decode(out.files[0].data).convert("RGB")
    assert im.getpixel((195, 195)) == (255, 0, 0), "outside the mask the init image stays"
    assert im.getpixel((5, 195)) != (255, 0, 0), "inside the mask the placeholder is drawn"
    assert out.info["mode"] == "inpaint"


async def test_undecodable_init_image_names_the_field(http) -> None:
    p = make(http)
    ctx, _ = make_ctx(p)
    with pytest.raises(InvalidRequest) as info:
        await p.generate(req(init_image=b"not an image"), ctx)
    assert info.value.field == "init_image"
    good = io.BytesIO()
    Image.new("RGB", (8, 8)).save(good, "PNG")
    with pytest.raises(InvalidRequest) as info:
        await p.generate(req(init_image=good.getvalue(), mask=b"junk"), ctx)
    assert info.value.field == "mask"


@pytest.mark.parametrize("kw", [{"width": 4097}, {"n": 17}, {"media": "video"}])
async def test_requests_over_the_capabilities_are_unsupported(http, kw) -> None:
    p = make(http)
    ctx, _ = make_ctx(p)
    with pytest.raises(Unsupported) as info:
        await p.generate(req(**kw), ctx)
    assert info.value.provider == "ph"


async def test_capabilities_and_models(http) -> None:
    p = make(http)
    caps = p.capabilities
    assert (caps.max_width, caps.max_height, caps.max_n) == (4096, 4096, 16)
    assert caps.media == [MediaKind.image] and caps.img2img and caps.inpaint and not caps.resumable
    assert [m.id for m in await p.list_models()] == ["placeholder-simple", "placeholder-detailed", "placeholder-debug"]
    assert (await make(http, fail_rate=1.0).health()).ok


async def test_rendering_runs_off_the_event_loop(http, monkeypatch) -> None:
    threads: list[threading.Thread] = []
    real = placeholder.render_placeholder

    def spy(*args, **kw):
        threads.append(threading.current_thread())
        return real(*args, **kw)

    monkeypatch.setattr(placeholder, "render_placeholder", spy)
    p = make(http)
    ctx, _ = make_ctx(p)
    await p.generate(req(n=2), ctx)
    assert len(threads) == 2 and all(t is not threading.main_thread() for t in threads)


@pytest.mark.parametrize(
    ("settings", "field"),
    [({"fail_rate": 2}, "fail_rate"), ({"style": "fancy"}, "style"), ({"fail_with": "KeyError"}, "fail_with"),
     ({"delay": -1}, "delay"), ({"unknown": 1}, "unknown")],
)
async def test_bad_settings_are_config_errors_with_the_field(http, settings, field) -> None:
    with pytest.raises(ConfigError) as info:
        PlaceholderProvider("ph", ProviderConfig(type="placeholder", settings=settings), http)
    assert info.value.field == f"providers.ph.settings.{field}"
