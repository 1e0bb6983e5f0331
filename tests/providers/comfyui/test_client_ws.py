"""ComfyUIClient's shared websocket: binary previews (legacy event 1 and event 4 with
metadata), progress text, the feature_flags handshake, and a reconnect mid-run."""

from __future__ import annotations

import io
import json
import uuid

from PIL import Image

from image_studio.providers.comfyui.client import ComfyUIClient
from image_studio.providers.comfyui.ws import WS_CONNECTED, WS_DISCONNECTED

from .conftest import ComfyBackend
from .graphs import fixture, sleep
from .helpers import collect, finished, run


async def test_previews_legacy_binary_frames(comfy: ComfyBackend, http: object, test_nodes: None) -> None:
    client = ComfyUIClient(comfy.url, http, feature_flags=False)  # type: ignore[arg-type]
    try:
        await client.connect(10)
        prompt_id, events = await run(client, sleep(steps=4, step_seconds=comfy.step_seconds))
    finally:
        await client.close()
    previews = [e for e in events if e.type == "preview"]
    assert len(previews) == 4 and all(e.prompt_id == prompt_id and e.frame.event == 1 for e in previews)
    with Image.open(io.BytesIO(previews[0].frame.image)) as im:
        assert im.format == "JPEG"
    assert [e.data["text"] for e in events if e.type == "progress_text"] == [f"step {i}/4" for i in range(1, 5)]
    assert [(e.data["value"], e.data["max"]) for e in events if e.type == "progress"] == [(i, 4) for i in range(1, 5)]


async def test_previews_with_feature_flags(comfy: ComfyBackend, client: ComfyUIClient, test_nodes: None) -> None:
    await client.connect(10)
    prompt_id, events = await run(client, sleep(steps=3, step_seconds=comfy.step_seconds, text=False))
    previews = [e for e in events if e.type == "preview"]
    assert len(previews) == 3 and all(e.frame.event == 4 and e.frame.prompt_id == prompt_id for e in previews)
    assert previews[0].frame.mime == "image/jpeg" and previews[0].data["node_id"] == "2"
    assert client.events.server_features.get("supports_preview_metadata") is True
    if comfy.fake is not None:
        first = next(x for x in comfy.fake.ws_log if x["event"] == "recv" and x["sid"] == client.client_id)
        assert json.loads(first["text"]) == fixture("progress_preview_interrupt")["exchanges"][1]["json"]


async def test_websocket_reconnect_mid_run(comfy: ComfyBackend, client: ComfyUIClient, test_nodes: None) -> None:
    await client.connect(10)
    comfy.pause(2)
    prompt_id = str(uuid.uuid4())
    queue = client.events.subscribe(prompt_id)
    try:
        await client.queue_prompt(sleep(steps=8, step_seconds=comfy.step_seconds, preview=False),
                                  prompt_id=prompt_id)
        await collect(queue, lambda e: e.type == "progress" and e.data["value"] >= 2)
        await client.events.drop()
        await collect(queue, lambda e: e.type == WS_DISCONNECTED)
        await collect(queue, lambda e: e.type == WS_CONNECTED)
        resent = await collect(queue, lambda e: e.type == "executing")
    finally:
        comfy.release()
    assert resent[-1].data == {"node": "2"}, "the server re-sends only {node} to the same clientId"
    assert resent[-1].prompt_id == prompt_id, "attributed to the prompt executing on this backend"
    events = await collect(queue, finished)
    assert any(e.type == "execution_success" for e in events)
    assert client.events.connects == 2
    if comfy.fake is not None:
        opens = [x for x in comfy.fake.ws_log if x["event"] == "open" and x["sid"] == client.client_id]
        assert len(opens) == 2
