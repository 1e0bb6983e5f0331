"""Per-stage timing of the studio's own work, by wrapping its objects from the outside.

No core code changes: :class:`StageRecorder` replaces a few attributes of one running
:class:`~image_studio.studio.Studio` with timing wrappers (and the ``prepare_file`` name in
:mod:`image_studio.storage.local`, restored by :meth:`StageRecorder.uninstall`). The job a
call belongs to is carried by a context variable set in the wrapped queue runner, so it
follows the job's task into the provider, the asset store and ``asyncio.to_thread``.

Marks are ``time.perf_counter()`` seconds, per job id:

=====================  ================================================================
``run_start``          a queue worker took the job (``Studio._run`` entered)
``orch_start/end``     ``Orchestrator.run`` (provider choice, retries, the adapter)
``prompt_start``       ``ComfyUIClient.queue_prompt`` called (``POST /prompt``)
``history_end``        the last ``GET /history/{id}`` answered (the finished entry)
``view_start/end``     ``GET /view`` (first call's start, last call's end)
``delete_start/end``   ``POST /history {"delete": ...}``
``save_start/end``     ``AssetStore.save`` (post-processing + files + sidecar)
``prepare``            duration of ``prepare_file`` (thumbnail + PNG metadata + hash)
``pub_<type>``         ``EventBus.publish`` of that event type
``recv_<type>``        a global subscriber got it from its queue
=====================  ================================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections import defaultdict
from typing import Any

import image_studio.storage.local as local_store

clock = time.perf_counter
current_job: contextvars.ContextVar[str | None] = contextvars.ContextVar("bench_current_job", default=None)


class StageRecorder:
    """Timing wrappers around one Studio. Call :meth:`before_start` before ``studio.start()``
    (the queue captures the runner then), :meth:`after_start` once its provider exists, and
    :meth:`uninstall` at the end."""

    def __init__(self) -> None:
        self.marks: dict[str, dict[str, float]] = defaultdict(dict)
        self._orig_prepare = local_store.prepare_file
        self._listener: asyncio.Task[None] | None = None

    # -- recording -----------------------------------------------------------------------------

    def mark(self, job_id: str | None, name: str, value: float | None = None, *, first: bool = False) -> None:
        if job_id is None:
            return
        m = self.marks[job_id]
        if first and name in m:
            return
        m[name] = clock() if value is None else value

    def _wrap(self, obj: Any, attr: str, name: str) -> None:
        """Replace the coroutine method ``obj.attr`` with one that marks ``<name>_start`` (first
        call) and ``<name>_end`` (last call) for the current job."""
        orig = getattr(obj, attr)

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            job = current_job.get()
            self.mark(job, f"{name}_start", first=True)
            try:
                return await orig(*args, **kwargs)
            finally:
                self.mark(job, f"{name}_end")

        setattr(obj, attr, wrapper)

    # -- installing ----------------------------------------------------------------------------

    def before_start(self, studio: Any) -> None:
        """Wrap ``studio._run`` (the queue runner) to set the current job and mark ``run_start``."""
        orig = studio._run

        async def run(job_id: str) -> None:
            token = current_job.set(job_id)
            self.mark(job_id, "run_start")
            try:
                await orig(job_id)
            finally:
                current_job.reset(token)

        studio._run = run

    def after_start(self, studio: Any, provider_id: str) -> None:
        """Wrap the orchestrator, the asset store, the job store, the event bus and the
        provider's ComfyUI client of the started ``studio``; start the global subscriber."""
        self._wrap(studio.orchestrator, "run", "orch")
        self._wrap(studio.assets, "save", "save")
        self._wrap(studio.store, "add_asset", "add_asset")
        client = studio.providers[provider_id].client()
        self._wrap(client, "queue_prompt", "prompt")
        self._wrap(client, "get_history", "history")
        self._wrap(client, "view", "view")
        self._wrap(client, "delete_history", "delete")
        publish = studio.bus.publish

        def publish_wrapper(event: Any) -> None:
            self.mark(event.job_id, f"pub_{event.type}")
            publish(event)

        studio.bus.publish = publish_wrapper
        recorder = self

        def prepare(*args: Any, **kwargs: Any) -> Any:
            job, t0 = current_job.get(), clock()
            try:
                return recorder._orig_prepare(*args, **kwargs)
            finally:
                recorder.mark(job, "prepare", clock() - t0)

        local_store.prepare_file = prepare
        self._listener = asyncio.get_running_loop().create_task(self._listen(studio), name="bench-stage-listener")

    async def _listen(self, studio: Any) -> None:
        async with studio.events(None) as queue:
            while True:
                event = await queue.get()
                self.mark(event.job_id, f"recv_{event.type}")

    async def uninstall(self) -> None:
        """Stop the subscriber and restore ``prepare_file`` (the studio's own attributes go
        with the studio)."""
        local_store.prepare_file = self._orig_prepare
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener

    # -- stages --------------------------------------------------------------------------------

    def stages(self, job_id: str) -> dict[str, float] | None:
        """Seconds per stage of one finished job (marks ``submit_start``, ``submit_end`` and
        ``wait_end`` set by the caller), or None when a mark is missing."""
        m = self.marks.get(job_id, {})
        need = ("submit_start", "submit_end", "run_start", "orch_start", "orch_end", "prompt_start", "history_end",
                "view_start", "view_end", "save_start", "save_end", "prepare", "pub_succeeded", "wait_end")
        if any(k not in m for k in need):
            return None
        delete = m.get("delete_end", 0.0) - m.get("delete_start", 0.0)
        prep = m["prompt_start"] - m["orch_start"]
        rtt = m["history_end"] - m["prompt_start"]
        fetch = m["view_end"] - m["view_start"]
        return {
            "submit": m["submit_end"] - m["submit_start"],
            "queue wait": m["run_start"] - m["submit_end"],
            "job start (DB read, mark running)": m["orch_start"] - m["run_start"],
            "provider prep (template, DB remember/attempt)": prep,
            "backend round trip (POST /prompt -> history)": rtt,
            "fetch (GET /view)": fetch,
            "history delete (POST /history)": delete,
            "provider/orchestrator other": (m["orch_end"] - m["orch_start"]) - prep - rtt - fetch - delete,
            "post-processing (thumbnail + PNG metadata)": m["prepare"],
            "store: files + sidecar": (m["save_end"] - m["save_start"]) - m["prepare"],
            "store: DB (asset row, job end) + gaps": (m["pub_succeeded"] - m["orch_end"]) - (m["save_end"] - m["save_start"]),
            "events: publish -> subscriber": m.get("recv_succeeded", float("nan")) - m["pub_succeeded"],
            "wait() return (publish -> caller)": m["wait_end"] - m["pub_succeeded"],
            "total": m["wait_end"] - m["submit_start"],
        }
