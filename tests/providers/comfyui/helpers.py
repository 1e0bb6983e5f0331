"""Helpers shared by the ComfyUI test modules (no fixtures here; see ``conftest.py``)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

from image_studio.providers.comfyui.client import ComfyUIClient
from image_studio.providers.comfyui.ws import ComfyEvent
from image_studio.types import GenerationRequest
from tests.providers.contract import make_ctx

from .conftest import ComfyBackend, Recorder
from .graphs import sleep, template

LIMIT = 60
"""Seconds: a safety limit for a hung test, never an assertion on speed."""


async def collect(queue: asyncio.Queue[ComfyEvent], stop: Callable[[ComfyEvent], bool]) -> list[ComfyEvent]:
    """Events until (and with) the first for which ``stop`` is true."""
    events: list[ComfyEvent] = []
    async with asyncio.timeout(LIMIT):
        while True:
            events.append(await queue.get())
            if stop(events[-1]):
                return events


def drain(queue: asyncio.Queue[ComfyEvent]) -> list[ComfyEvent]:
    """Every event waiting in ``queue``."""
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


def finished(event: ComfyEvent) -> bool:
    """``executing`` with ``node: null``: the end of a prompt."""
    return event.type == "executing" and "node" in event.data and event.data["node"] is None


async def run(client: ComfyUIClient, prompt: dict[str, Any], **kw: Any) -> tuple[str, list[ComfyEvent]]:
    """Queue ``prompt`` under a new prompt_id and return its events up to the end."""
    prompt_id = str(uuid.uuid4())
    queue = client.events.subscribe(prompt_id)
    await client.queue_prompt(prompt, prompt_id=prompt_id, **kw)
    return prompt_id, await collect(queue, finished)


async def until(check: Callable[[], Any]) -> None:
    """Wait until ``check()`` is true (polling; bounded by :data:`LIMIT`)."""
    async with asyncio.timeout(LIMIT):
        while not check():
            await asyncio.sleep(0.01)


def request(**kw: Any) -> GenerationRequest:
    kw.setdefault("prompt", "a red fox")
    kw.setdefault("width", 64)
    kw.setdefault("height", 64)
    return GenerationRequest(**kw)


def near(pixel: Any, expected: tuple[int, int, int]) -> bool:
    """Equal within 1 per channel (a real ComfyUI rounds through float32 tensors)."""
    return all(abs(a - b) <= 1 for a, b in zip(pixel, expected))


def bodies(recorder: Recorder, method: str, path: str) -> list[Any]:
    """The JSON bodies the client sent to ``method path``."""
    return [json.loads(c[3]) if c[3] else None for c in recorder.calls(method, path)]


def sleep_workflow(comfy: ComfyBackend, steps: int = 6, **kw: Any) -> str:
    """An inline template: EmptyImage -> FixtureSleepProgress -> SaveImage."""
    return json.dumps(template(sleep(steps=steps, step_seconds=comfy.step_seconds, **kw), name="sleep"))


async def started(comfy: ComfyBackend, provider: Any, step: int = 2, **ctx_kw: Any) -> tuple[Any, Any, Any]:
    """``(ctx, recorder, task)``: a generate task held (on the fake) after ``step`` progress steps."""
    comfy.pause(step)
    ctx, rec = make_ctx(provider, **ctx_kw)
    task = asyncio.create_task(provider.generate(request(), ctx))
    await until(lambda: task.done() or any(p["value"] >= step for p in rec.progress))
    return ctx, rec, task
