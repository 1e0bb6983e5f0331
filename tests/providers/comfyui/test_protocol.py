"""Wire shapes: binary frames, refused-prompt bodies and history entries, from the recordings."""

from __future__ import annotations

import json
import struct

import pytest

from image_studio.errors import GenerationFailed, InvalidRequest, JobCanceled, ProviderError
from image_studio.providers.comfyui.protocol import (
    collect_outputs,
    combo_options,
    history_finished,
    parse_binary_frame,
    prompt_rejection,
    raise_for_history,
)

from .graphs import fixture, recorded_requests

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 40


def _binary_frames(name: str) -> list[dict]:
    return [ex for ex in fixture(name)["exchanges"] if ex["kind"] == "ws_binary"]


def test_legacy_preview_frame_matches_recorded_header() -> None:
    recorded = _binary_frames("progress_preview_legacy")[0]
    header = bytes.fromhex(recorded["header_hex"])  # first 16 bytes: event 1, format 1, JPEG start
    frame = parse_binary_frame(header)
    assert frame is not None and frame.event == 1 == recorded["event_type"]
    assert frame.mime == "image/jpeg" and frame.image == header[8:] and frame.prompt_id is None


def test_png_preview_format_code() -> None:
    frame = parse_binary_frame(struct.pack(">II", 1, 2) + b"\x89PNG")
    assert frame is not None and frame.mime == "image/png" and frame.image == b"\x89PNG"


def test_metadata_preview_frame_carries_prompt_id() -> None:
    recorded = next(f for f in _binary_frames("progress_preview_interrupt") if f["event_type"] == 4)
    meta = json.dumps(recorded["metadata"]).encode()
    assert len(meta) == recorded["metadata_length"]
    frame = parse_binary_frame(struct.pack(">II", 4, len(meta)) + meta + JPEG)
    assert frame is not None
    assert frame.prompt_id == recorded["metadata"]["prompt_id"]
    assert frame.node_id == "2" and frame.mime == "image/jpeg" and frame.image == JPEG
    assert bytes.fromhex(recorded["header_hex"])[:8] == struct.pack(">II", 4, len(meta))


def test_text_frame_matches_recording() -> None:
    recorded = next(f for f in _binary_frames("progress_preview_legacy") if f["event_type"] == 3)
    payload = struct.pack(">II", 3, 1) + b"2" + recorded["text"].encode()
    assert payload[:16] == bytes.fromhex(recorded["header_hex"]) and len(payload) == recorded["length"]
    frame = parse_binary_frame(payload)
    assert frame is not None and frame.node_id == "2" and frame.text == "step 1/4"


def test_truncated_and_unknown_frames() -> None:
    with pytest.raises(ProviderError):
        parse_binary_frame(b"\x00\x00")
    with pytest.raises(ProviderError):
        parse_binary_frame(struct.pack(">II", 4, 500) + b"{}")
    assert parse_binary_frame(struct.pack(">II", 99, 0)) is None


@pytest.mark.parametrize(("name", "index", "field", "words"), [
    ("validation_error_missing_input", 0, "workflow.nodes.1.inputs.width", ["node 1", "EmptyImage", "'width'",
                                                                            "Required input is missing"]),
    ("validation_error_missing_input", 1, "workflow.nodes.2.inputs.image", ["node 2", "ImageInvert", "'image'"]),
    ("validation_error_bad_value", 0, "workflow.nodes.1.inputs.width", ["Value 0 smaller than min of 1"]),
    ("validation_error_bad_value", 1, "workflow.nodes.2.inputs.upscale_method", ["ImageScale", "super-resolution"]),
    ("validation_error_bad_value", 2, "workflow.nodes.1.inputs.height", ["'height'", "'width'", "bigger than max"]),
    ("validation_error_missing_model", 0, "workflow.nodes.4.inputs.ckpt_name", ["CheckpointLoaderSimple",
                                                                                 "not in []"]),
    ("validation_error_invalid_prompt", 0, "workflow.nodes.1", ["invalid_prompt", "NoSuchNodeClass"]),
    ("validation_error_invalid_prompt", 2, "workflow", ["no_prompt"]),
    ("validation_error_invalid_prompt", 3, "workflow.nodes.2.inputs.images", ["ImageInvert", "'9'"]),
    ("prompt_no_outputs", 0, "workflow", ["prompt_no_outputs", "Prompt has no outputs"]),
    ("upload_image", 0, "workflow.nodes.1.inputs.image", ["LoadImage", "never_uploaded.png"]),
])
def test_prompt_rejection_names_node_and_input(name: str, index: int, field: str, words: list[str]) -> None:
    body = recorded_requests(name, status=400)[index]["response_json"]
    error = prompt_rejection(body, 400)
    assert isinstance(error, InvalidRequest)
    assert error.field == field
    for word in words:
        assert word in error.message


def test_collect_outputs_from_recorded_history() -> None:
    entry = next(iter(recorded_requests("success_invert", "/history/82ea5613-ed4d-4681-b0ca-2e8cbc00a9ff")[0]
                      ["response_json"].values()))
    assert history_finished(entry)
    refs = collect_outputs(entry)
    assert [(r.node_id, r.key, r.filename, r.subfolder, r.type) for r in refs] == [
        ("3", "images", "studio_00001_.png", "", "output")]
    raise_for_history(entry, "x", provider="p", backend="b")  # success: no error


def test_collect_outputs_any_key_and_skips_temp() -> None:
    entry = {"outputs": {
        "9": {"images": [{"filename": "a.png", "subfolder": "s", "type": "output"}]},
        "10": {"images": [{"filename": "p.png", "subfolder": "", "type": "temp"}]},
        "11": {"gifs": [{"filename": "v.mp4", "subfolder": "", "type": "output", "format": "video/h264-mp4"}],
               "animated": [True]},
        "12": {"text": ["not a file"]}}}
    refs = collect_outputs(entry)
    assert [(r.node_id, r.key, r.filename) for r in refs] == [("9", "images", "a.png"), ("11", "gifs", "v.mp4")]
    assert refs[1].format == "video/h264-mp4"
    assert [r.filename for r in collect_outputs(entry, types=("temp",))] == ["p.png"]


def test_history_error_and_interrupt_raise() -> None:
    entry = next(iter(recorded_requests("execution_error", "/history/7ac71724-24fd-4f1c-9aca-8b46fa3ffcdb")[0]
                      ["response_json"].values()))
    assert history_finished(entry) and collect_outputs(entry) == []
    with pytest.raises(GenerationFailed) as info:
        raise_for_history(entry, "7ac7", provider="comfy", backend="b")
    assert info.value.field == "workflow.nodes.2"
    assert "FixtureRaiseError" in info.value.message and "fixture failure requested" in info.value.message
    assert info.value.retryable is False
    interrupted = next(iter(recorded_requests("progress_preview_interrupt",
                                              "/history/ce935f6e-9de1-41ec-a0a0-ffb91fdc5dd8")[0]
                            ["response_json"].values()))
    with pytest.raises(JobCanceled, match="interrupted at node 2"):
        raise_for_history(interrupted, "ce93", provider="comfy", backend="b")


def test_combo_options_both_spellings() -> None:
    info = fixture("object_info_subset")
    assert "euler" in combo_options(info["KSampler"], "sampler_name")
    assert combo_options(info["CheckpointLoaderSimple"], "ckpt_name") == []
    v3 = {"input": {"required": {"x": ["COMBO", {"options": ["a", "b"]}]}}}
    assert combo_options(v3, "x") == ["a", "b"] and combo_options(v3, "y") == []
