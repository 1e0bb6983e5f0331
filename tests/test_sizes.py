"""Size rules (image_studio.sizes) on the rules the real adapters declare, one group per kind:
fixed lists (OpenAI models), aspect ratios (Imagen, Gemini, Veo, Stability) and multiples
(ComfyUI, Automatic1111, InvokeAI, diffusers, Runware, Leonardo). Adapters are built through the
registry the way the studio builds them; no network is used (rules are pure data)."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from image_studio import sizes
from image_studio.config import ProviderConfig
from image_studio.providers.registry import create_provider
from image_studio.types import GenerationRequest, UpscaleSpec
from tests.storage.helpers import noisy_png


@pytest.fixture
async def http():
    async with httpx.AsyncClient() as client:
        yield client


def make(http: httpx.AsyncClient, type_: str, *, settings: dict | None = None, backends: list | None = None):
    config = ProviderConfig(type=type_, credentials={"api_key": "k"} if type_ not in (
        "comfyui", "automatic1111", "invokeai", "diffusers_local", "placeholder") else {},
        settings=settings or {}, backends=backends or [])
    return create_provider("p", config, http)


def fit(provider, **request):
    req = GenerationRequest(prompt="x", **request)
    return sizes.fit(provider.size_rule(req.model), req, caps=provider.capabilities, who=provider.id)


# fixed lists ----------------------------------------------------------------------------------


async def test_openai_declares_each_models_fixed_sizes(http) -> None:
    provider = make(http, "openai", settings={"model": "dall-e-3"})
    caps = provider.capabilities
    assert caps.sizes.kind == "fixed" and caps.sizes.sizes == ["1024x1024", "1792x1024", "1024x1792"]
    assert caps.model_sizes["dall-e-2"].sizes == ["256x256", "512x512", "1024x1024"]
    gpt = caps.model_sizes["gpt-image-1"]
    assert gpt.sizes == ["1024x1024", "1536x1024", "1024x1536"] and gpt.auto
    # a request's model picks its own family's rule
    assert provider.size_rule("dall-e-2").sizes == ["256x256", "512x512", "1024x1024"]
    assert provider.size_rule("gpt-image-1-mini").auto
    assert provider.size_rule("some-future-model") is None  # unknown: the server decides


async def test_fixed_exact_is_refused_with_the_accepted_sizes(http) -> None:
    provider = make(http, "openai", settings={"model": "dall-e-3"})
    refused = fit(provider, width=1000, height=1000)
    assert refused.request is None and refused.field == "width"
    assert "1024x1024, 1792x1024, 1024x1792" in refused.reason and "1000x1000" in refused.reason
    assert "nearest would use 1024x1024" in refused.reason
    # the width alone is fine: the height is at fault
    assert fit(provider, width=1024, height=1000).field == "height"
    small = fit(make(http, "openai", settings={"model": "dall-e-2"}), width=300, height=300)
    assert small.request is None and "256x256, 512x512, 1024x1024" in small.reason


async def test_fixed_nearest_keeps_the_ratio_then_the_area(http) -> None:
    d3 = make(http, "openai", settings={"model": "dall-e-3"})
    assert fit(d3, width=1000, height=1000, size_policy="nearest").size == "1024x1024"
    assert fit(d3, width=1000, height=600, size_policy="nearest").size == "1792x1024"
    assert fit(d3, width=600, height=1000, size_policy="nearest").size == "1024x1792"
    d2 = make(http, "openai", settings={"model": "dall-e-2"})
    assert fit(d2, width=300, height=300, size_policy="nearest").size == "256x256"
    assert fit(d2, width=400, height=400, size_policy="nearest").size == "512x512"
    snapped = fit(d3, width=1000, height=1000, size_policy="nearest")
    assert (snapped.request.width, snapped.request.height) == (1024, 1024) and snapped.snapped
    fits = fit(d3, width=1792, height=1024)
    assert fits.size == "1792x1024" and not fits.snapped


async def test_fixed_aspect_ratio_picks_a_listed_size_of_that_ratio(http) -> None:
    gpt = make(http, "openai", settings={"model": "gpt-image-1"})
    assert fit(gpt, aspect_ratio="3:2").size == "1536x1024"
    assert fit(gpt, aspect_ratio="1:1").size == "1024x1024"
    refused = fit(gpt, aspect_ratio="16:9")
    assert refused.request is None and refused.field == "aspect_ratio"
    assert "3:2 (1536x1024)" in refused.reason
    assert fit(gpt, aspect_ratio="16:9", size_policy="nearest").size == "1536x1024"


async def test_gpt_image_2_takes_multiples_of_16_within_its_limits(http) -> None:
    provider = make(http, "openai", settings={"model": "gpt-image-2"})
    rule = provider.size_rule()
    assert rule.kind == "multiple_of" and rule.multiple == 16 and rule.max_pixels == 3840 * 2160
    assert fit(provider, width=2048, height=1152).size == "2048x1152"
    refused = fit(provider, width=1000, height=3100)
    assert refused.request is None and "aspect ratio within 1:3" in refused.reason
    w, h = (int(v) for v in fit(provider, width=1000, height=3100, size_policy="nearest").size.split("x"))
    assert h <= 3 * w and w % 16 == 0 and h % 16 == 0


# aspect ratios ----------------------------------------------------------------------------------


async def test_imagen_takes_its_ratios_and_picks_the_tier_from_the_long_side(http) -> None:
    imagen = make(http, "imagen")
    assert [e.ratio for e in imagen.capabilities.sizes.ratios[:5]] == ["1:1", "3:4", "4:3", "9:16", "16:9"]
    assert fit(imagen, width=1920, height=1080).size == "2816x1536"  # 16:9, 2K (long side over 1408)
    assert fit(imagen, width=1280, height=720).size == "1408x768"    # 16:9, 1K
    assert fit(imagen, width=512, height=512).size == "1024x1024"
    fast = make(http, "imagen", settings={"model": "imagen-4.0-fast-generate-001"})
    assert fit(fast, width=1920, height=1080).size == "1408x768"      # fast models have 1K only
    pinned = make(http, "imagen", settings={"image_size": "1K"})
    assert {e.tier for e in pinned.capabilities.sizes.ratios} == {"1K"}


async def test_aspect_ratio_exact_refuses_a_ratio_not_offered(http) -> None:
    imagen = make(http, "imagen")
    refused = fit(imagen, width=1000, height=600)
    assert refused.request is None and refused.field == "width"
    assert "ratio 5:3" in refused.reason and "16:9 (1408x768 1K or 2816x1536 2K)" in refused.reason
    assert "1:1 (1024x1024 1K or 2048x2048 2K)" in refused.reason
    assert fit(imagen, width=1000, height=600, size_policy="nearest").size == "1408x768"
    ratio = fit(imagen, aspect_ratio="21:9")
    assert ratio.request is None and ratio.field == "aspect_ratio" and "aspect ratio 21:9" in ratio.reason
    assert fit(imagen, aspect_ratio="21:9", size_policy="nearest").size == "1408x768"


async def test_aspect_ratio_request_gets_the_providers_pixels(http) -> None:
    imagen = make(http, "imagen")
    assert fit(imagen, aspect_ratio="16:9").size == "1408x768"
    assert fit(imagen, aspect_ratio="9:16", width=2048, height=2048).size == "1536x2816"  # a 4 MP target: 2K
    stability = make(http, "stability")
    assert fit(stability, aspect_ratio="21:9").size == "1536x640"
    assert fit(stability, width=512, height=512).size == "1024x1024"
    assert fit(stability, width=1536, height=640).size == "1536x640"  # its own pixels for 21:9 fit too


async def test_gemini_tables_follow_the_model_and_image_size(http) -> None:
    flash = make(http, "gemini")
    assert fit(flash, aspect_ratio="16:9").size == "1344x768"
    assert len(flash.capabilities.sizes.ratios) == 10
    pro = make(http, "gemini", settings={"model": "gemini-3-pro-image-preview", "image_size": "2K"})
    assert fit(pro, aspect_ratio="1:1").size == "2048x2048"
    assert fit(pro, width=1024, height=1024).size == "2048x2048"  # 1:1 at the configured 2K
    assert flash.size_rule("gemini-3-pro-image-preview").ratios[0].tier == "1K"


async def test_veo_frames_and_resolution(http) -> None:
    veo = make(http, "veo")
    assert fit(veo, media="video", width=1920, height=1080).size == "1920x1080"
    assert fit(veo, media="video", width=1280, height=720).size == "1280x720"
    assert fit(veo, media="video", aspect_ratio="9:16").size == "720x1280"
    refused = fit(veo, media="video", width=1024, height=1024)
    assert refused.request is None and "16:9 (1280x720 720p or 1920x1080 1080p or 3840x2160 4k)" in refused.reason
    assert fit(veo, media="video", width=1024, height=1024, size_policy="nearest").size in ("1280x720", "720x1280")


async def test_edits_and_upscales_keep_the_providers_own_handling(http) -> None:
    png = noisy_png(48, 32)
    stability = make(http, "stability")
    edit = fit(stability, init_image=png, width=1000, height=600)
    assert edit.request is not None and edit.size is None  # the output follows the input image
    comfy = make(http, "comfyui", backends=[{"url": "http://127.0.0.1:1"}])
    up = fit(comfy, init_image=png, upscale=UpscaleSpec(scale=2), width=1001, height=601)
    assert up.request is not None and up.size is None
    local_edit = fit(comfy, init_image=png, width=1001, height=600)  # width/height are sent: checked
    assert local_edit.request is None and local_edit.field == "width"


# multiples -------------------------------------------------------------------------------


@pytest.mark.parametrize("type_", ["comfyui", "automatic1111", "invokeai", "diffusers_local"])
async def test_local_backends_take_multiples_of_8(http, type_) -> None:
    provider = make(http, type_, backends=[{"url": "http://127.0.0.1:1"}])
    rule = provider.capabilities.sizes
    assert rule.kind == "multiple_of" and rule.multiple == 8
    assert fit(provider, width=1000, height=600).size == "1000x600"
    refused = fit(provider, width=1001, height=600)
    assert refused.request is None and refused.field == "width"
    assert f"multiples of 8 from {rule.min} to {rule.max} pixels a side" in refused.reason
    assert fit(provider, width=1001, height=600, size_policy="nearest").size == "1000x600"


async def test_multiple_of_64_snaps_keeping_the_ratio(http) -> None:
    runware = make(http, "runware")
    refused = fit(runware, width=1000, height=600)
    assert refused.request is None and "multiples of 64 from 128 to 2048 pixels a side" in refused.reason
    assert "nearest would use 960x576" in refused.reason
    assert fit(runware, width=1000, height=600, size_policy="nearest").size == "960x576"  # the same 5:3
    assert fit(runware, width=4096, height=2048, size_policy="nearest").size == "2048x1024"  # scaled into the max
    assert fit(runware, width=64, height=64, size_policy="nearest").size == "128x128"
    leonardo = make(http, "leonardo")
    assert fit(leonardo, width=2000, height=1000, size_policy="nearest").size == "1536x768"


async def test_sdxl_checkpoints_prefer_the_buckets(http) -> None:
    a1111 = make(http, "automatic1111", backends=[{"url": "http://127.0.0.1:1"}])
    assert a1111.size_rule("sd_xl_base_1.0.safetensors").buckets == list(sizes.SDXL_BUCKETS)
    assert a1111.size_rule("juggernautXL_v9.safetensors").buckets
    assert not a1111.size_rule("v1-5-pruned-emaonly.safetensors").buckets
    assert fit(a1111, aspect_ratio="16:9", model="sd_xl_base_1.0.safetensors").size == "1344x768"
    assert fit(a1111, aspect_ratio="3:2", model="sd_xl_base_1.0.safetensors").size == "1216x832"
    # no buckets: the multiples of 8 nearest to 16:9 at about 1 MP
    assert fit(a1111, aspect_ratio="16:9", model="v1-5-pruned-emaonly.safetensors").size == "1368x768"
    # a size that fits is kept as it is even with buckets
    assert fit(a1111, width=1000, height=600, model="sd_xl_base_1.0.safetensors").size == "1000x600"


async def test_providers_without_a_rule_take_any_size_up_to_their_maximum(http) -> None:
    placeholder = make(http, "placeholder")
    assert placeholder.capabilities.sizes is None
    assert fit(placeholder, width=1001, height=601).size == "1001x601"
    over = fit(placeholder, width=8000, height=4000)  # exact: Capabilities.check refuses it as before
    assert over.request is not None and placeholder.capabilities.check(over.request) is not None
    assert fit(placeholder, width=8000, height=4000, size_policy="nearest").size == "4096x2048"
    compatible = make(http, "openai_compatible", backends=[{"url": "http://127.0.0.1:1"}])
    assert compatible.size_rule() is None


# the request fields -----------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["16x9", "0:1", "16:", "1:20", "abc"])
def test_aspect_ratio_must_be_w_colon_h_within_1_16(bad) -> None:
    with pytest.raises(ValidationError) as err:
        GenerationRequest(prompt="x", aspect_ratio=bad)
    assert "aspect_ratio" in str(err.value)


def test_summary_has_the_requested_size_and_policy() -> None:
    assert GenerationRequest(prompt="x", width=1000, height=600).summary()["requested_size"] == "1000x600"
    req = GenerationRequest(prompt="x", aspect_ratio=" 16 : 9 ", size_policy="nearest")
    assert req.aspect_ratio == "16:9" and req.summary()["requested_size"] == "16:9"
    assert req.summary()["size_policy"] == "nearest"
    with pytest.raises(ValidationError):
        GenerationRequest(prompt="x", size_policy="closest")
