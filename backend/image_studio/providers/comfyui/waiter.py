"""Waiting for one ComfyUI prompt: websocket events raced against a slow ``/history`` poll.

The websocket says quickly when a prompt ends (``executing`` with ``node: null`` for its
prompt_id, sent after the history entry is written; see ComfyUI ``main.py``
``prompt_worker``), and carries progress and previews. A dropped socket loses messages
(``tests/fixtures/comfyui/ws_reconnect_midrun.json``), so the waiter also polls
``GET /history/{id}`` every ``interval`` seconds, and at once after a reconnect: a lost
socket never hangs a job.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ...errors import JobCanceled, ProviderTimeout
from ..base import JobContext
from .client import ComfyUIClient
from .protocol import execution_failure, history_finished, interrupted, raise_for_history
from .ws import WS_CONNECTED, WS_DISCONNECTED, ComfyEvent

SOON = 0.25
"""Seconds to the next poll after ``execution_success`` (history is written just after it)."""

NOW = "now"
SOONER = "soon"


class PromptWaiter:
    """Waits for ``prompt_id`` on ``client`` and reports progress through ``ctx``.

    Args:
        events: the prompt's queue from ``client.events.subscribe(prompt_id)``.
        interval: seconds between ``/history`` polls.
        previews: pass preview images to ``ctx.report_progress``.
        stop: coroutine function ``(client, prompt_id)`` that stops the prompt on the backend,
            called when the job is canceled or runs out of time.
    """

    def __init__(self, client: ComfyUIClient, prompt_id: str, events: asyncio.Queue[ComfyEvent], ctx: JobContext,
                 *, interval: float, previews: bool, stop: Any, provider_id: str,
                 logger: logging.Logger | None = None) -> None:
        self.client = client
        self.prompt_id = prompt_id
        self.events = events
        self.ctx = ctx
        self.interval = interval
        self.previews = previews
        self.stop = stop
        self.provider_id = provider_id
        self.logger = logger or logging.getLogger("image_studio.providers.comfyui")
        self.value: float = 0
        self.max: float = 1
        self.polls = 0

    async def wait(self) -> dict[str, Any]:
        """Return the prompt's finished ``/history`` entry.

        Raises:
            GenerationFailed: ``execution_error`` (node id, node type and exception named).
            JobCanceled: ``execution_interrupted``, the job was canceled (the prompt is then
                removed from the queue and interrupted), or the prompt left the queue
                without a history entry.
            ProviderTimeout: ``ctx.remaining`` ran out (the prompt is stopped first).
            ProviderError: ``/history`` or ``/queue`` failed.
        """
        clock = asyncio.get_running_loop().time
        next_poll = clock() + self.interval
        while True:
            await self._stop_if_needed()
            event = await self._next(max(0.0, min(next_poll - clock(), self.ctx.remaining)))
            if event is not None:
                hint = await self._handle(event)
                if hint == NOW:
                    next_poll = clock()
                elif hint == SOONER:
                    next_poll = min(next_poll, clock() + SOON)
            if clock() >= next_poll:
                entry = await self._poll()
                if entry is not None:
                    return entry
                next_poll = clock() + self.interval

    async def _stop_if_needed(self) -> None:
        if self.ctx.canceled:
            await self.stop(self.client, self.prompt_id)
            raise JobCanceled(f"job {self.ctx.job_id} canceled; ComfyUI prompt {self.prompt_id} stopped")
        if self.ctx.remaining <= 0:
            await self.stop(self.client, self.prompt_id)
            raise ProviderTimeout(f"ComfyUI prompt {self.prompt_id} did not finish within {self.ctx.timeout:g} s",
                                  provider=self.provider_id, backend=self.client.label)

    async def _next(self, timeout: float) -> ComfyEvent | None:
        """The next event, or None when ``timeout`` passes or the job is canceled first."""
        if not self.events.empty():
            return self.events.get_nowait()
        getter = asyncio.ensure_future(self.events.get())
        canceled = asyncio.ensure_future(self.ctx.cancel_event.wait())
        try:
            await asyncio.wait({getter, canceled}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            canceled.cancel()
            if not getter.done():
                getter.cancel()
        return getter.result() if getter.done() and not getter.cancelled() else None

    async def _poll(self) -> dict[str, Any] | None:
        """The finished history entry, or None while the prompt is queued or running.

        Raises:
            JobCanceled: the prompt is in neither the history nor the queue any more.
        """
        self.polls += 1
        entry = await self.client.get_history(self.prompt_id)
        if entry is None:
            if await self.client.queue_position(self.prompt_id) is not None:
                return None
            entry = await self.client.get_history(self.prompt_id)  # it may have just finished
            if entry is None:
                raise JobCanceled(f"ComfyUI prompt {self.prompt_id} left the queue without running "
                                  "(deleted by someone else, or the server restarted)")
        if not history_finished(entry):
            return None
        raise_for_history(entry, self.prompt_id, provider=self.provider_id, backend=self.client.label)
        return entry

    async def _handle(self, event: ComfyEvent) -> str | None:
        kind, data = event.type, event.data
        if kind == "executing":
            return NOW if data.get("node") is None and "node" in data else None
        if kind == "execution_success":
            return SOONER
        if kind == "execution_error":
            raise execution_failure(data, provider=self.provider_id, backend=self.client.label)
        if kind == "execution_interrupted":
            raise interrupted(data, self.prompt_id)
        if kind == "progress":
            self.value, self.max = data.get("value", 0), data.get("max", 1) or 1
            await self.ctx.report_progress(self.value, self.max)
        elif kind == "preview" and self.previews and event.frame is not None and event.frame.image:
            await self.ctx.report_progress(self.value, self.max, event.frame.image,
                                           preview_mime=event.frame.mime or "image/jpeg")
        elif kind == "progress_text":
            await self.ctx.report_progress(self.value, self.max, message=str(data.get("text") or ""))
        elif kind == WS_CONNECTED:
            return NOW
        elif kind == WS_DISCONNECTED:
            self.logger.info("ComfyUI %s websocket dropped while prompt %s runs; polling /history every %g s",
                             self.client.label, self.prompt_id, self.interval)
        return None
