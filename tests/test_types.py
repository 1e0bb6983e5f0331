"""Core request shapes: modes, add-ons, validation messages, capabilities checks."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from image_studio.types import Capabilities, GenerationMode, GenerationRequest, MediaKind

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake").decode()


def test_modes_follow_the_inputs():
    assert GenerationRequest(prompt="a").mode is GenerationMode.txt2img
    assert GenerationRequest(prompt="a", init_image=PNG).mode is GenerationMode.img2img
    assert GenerationRequest(prompt="a", init_image=f"data:image/png;base64,{PNG}", mask=PNG).mode is GenerationMode.inpaint
    up = GenerationRequest(init_image=PNG, upscale={"scale": 4})
    assert up.mode is GenerationMode.upscale and up.prompt == ""


@pytest.mark.parametrize("body, field", [
    ({"prompt": ""}, "prompt must not be empty"),
    ({"prompt": "a", "mask": PNG}, "mask needs init_image"),
    ({"upscale": {}}, "upscale needs init_image"),
    ({"prompt": "a", "init_image": "%%%"}, "base64"),
    ({"prompt": "a", "loras": [{"name": "x", "weight": 99}]}, "less than or equal"),
    ({"prompt": "a", "colour": 1}, "Extra inputs"),
])
def test_invalid_requests_say_why(body, field):
    with pytest.raises(ValidationError) as info:
        GenerationRequest.model_validate(body)
    assert field in str(info.value)


def test_summary_drops_binary_inputs_and_fingerprint_is_stable():
    req = GenerationRequest(prompt="a", init_image=PNG, loras=[{"name": "detail", "weight": 0.6}])
    summary = req.summary()
    assert "init_image" not in summary and summary["init_image_bytes"] > 0 and summary["mode"] == "img2img"
    assert summary["loras"] == [{"name": "detail", "weight": 0.6}]
    assert req.fingerprint() == GenerationRequest.model_validate(req.model_dump(mode="json")).fingerprint()
    assert req.fingerprint() != GenerationRequest(prompt="b", init_image=PNG).fingerprint()


def test_capabilities_explain_what_they_cannot_do():
    caps = Capabilities()
    assert caps.check(GenerationRequest(prompt="a", width=512, height=512)) is None
    assert caps.check(GenerationRequest(prompt="a", init_image=PNG)) == "no img2img (init_image given)"
    assert caps.check(GenerationRequest(prompt="a", media="video")) == "cannot produce video"
    assert caps.check(GenerationRequest(prompt="a", loras=[{"name": "x"}])) == "no LoRAs"
    assert caps.check(GenerationRequest(prompt="a", hires={"scale": 1.5})) == "no hires fix"
    assert caps.check(GenerationRequest(init_image=PNG, upscale={})) == "no upscale"
    assert "over the maximum" in caps.check(GenerationRequest(prompt="a", width=4096, height=512))
    video = Capabilities(media=[MediaKind.video], video=True)
    assert video.check(GenerationRequest(prompt="a", media="video", width=1280, height=720)) is None
