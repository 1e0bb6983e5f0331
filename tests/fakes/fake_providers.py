"""Scriptable in-process providers for orchestrator and job-queue tests.

A :class:`ScriptedProvider` pops one step from its ``script`` per ``generate`` call:

* an exception instance: raised as is;
* a number: seconds to wait (``ctx.sleep``: wakes and raises JobCanceled on cancel), then success;
* a :class:`Gate`: wait until the test calls ``gate.release()`` (or the job is canceled);
* :data:`HANG`: never finish and ignore the cancel event (only task cancellation stops it),
  to test that the orchestrator stops a stuck adapter on its own;
* ``"ok"`` (or an empty script): success with a 1x1 PNG.

It counts calls, records each JobContext and request, records ``cancel`` calls, remembers a
provider job id (``"<id>-<call>"``) before running, and reports progress 0/1 and 1/1.
Built with :func:`build_providers`, not through ``providers/registry.py``.

:class:`Rig` wires them into an :class:`Orchestrator` with a :class:`SleepRecorder` (records the
seconds asked, returns at once), a :class:`FakeClock` and a :class:`MidRandom` (jitter at its
midpoint), and :class:`Calls` records the orchestrator's callbacks.
"""

from __future__ import annotations

import asyncio
import io
import random
from collections.abc import Iterable
from typing import Any, ClassVar

import httpx
import pytest
from PIL import Image
from pydantic import BaseModel, ConfigDict

from image_studio.config import BackendConfig, ProviderConfig, StudioConfig
from image_studio.orchestrator import Orchestrator
from image_studio.providers.base import ImageProvider, JobContext
from image_studio.types import Attempt, Capabilities, GeneratedFile, GenerationRequest, GenerationResult, HealthStatus

HANG = "hang"


def tiny_png(color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A 1x1 PNG, as bytes."""
    buf = io.BytesIO()
    Image.new("RGB", (1, 1), color).save(buf, format="PNG")
    return buf.getvalue()


class Gate:
    """A script step that holds ``generate`` until :meth:`release` (or the job is canceled)."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.entered = asyncio.Event()

    def release(self) -> None:
        self.event.set()


class ScriptedSettings(BaseModel):
    """Any settings are accepted (e.g. ``fallback_on_content_rejected``)."""

    model_config = ConfigDict(extra="allow")


class ScriptedProvider(ImageProvider):
    """An in-process provider that follows a script (see the module docstring).

    Attributes:
        calls: ``generate`` calls so far.
        contexts: the JobContext of each call; ``requests`` the request of each call.
        backends_used: ``ctx.backend`` label of each call.
        cancels: the JobContext of each ``cancel`` call.
        health_script: ``HealthStatus.ok`` values popped per ``health`` call (default True).
    """

    type: ClassVar[str] = "scripted"
    Settings: ClassVar[type[BaseModel]] = ScriptedSettings

    def __init__(
        self,
        provider_id: str,
        config: ProviderConfig,
        http: httpx.AsyncClient,
        *,
        script: Iterable[Any] = (),
        capabilities: Capabilities | None = None,
        health_script: Iterable[bool] = (),
    ) -> None:
        super().__init__(provider_id, config, http)
        self.script: list[Any] = list(script)
        self.health_script: list[bool] = list(health_script)
        self._caps = capabilities or Capabilities()
        self.calls = 0
        self.contexts: list[JobContext] = []
        self.requests: list[GenerationRequest] = []
        self.backends_used: list[str | None] = []
        self.cancels: list[JobContext] = []
        self.health_calls: list[str | None] = []
        self._changed = asyncio.Event()

    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_calls(self, n: int) -> None:
        """Return once ``generate`` has been entered ``n`` times."""
        while self.calls < n:
            await self._changed.wait()

    async def wait_cancels(self, n: int) -> None:
        """Return once ``cancel`` has been called ``n`` times."""
        while len(self.cancels) < n:
            await self._changed.wait()

    async def generate(self, request: GenerationRequest, ctx: JobContext) -> GenerationResult:
        self.calls += 1
        self.contexts.append(ctx)
        self.requests.append(request)
        self.backends_used.append(ctx.backend.label if ctx.backend else None)
        self._notify()
        ctx.raise_if_canceled()
        if ctx.resume_id is None:
            await ctx.remember(f"{self.id}-{self.calls}")
        await ctx.report_progress(0, 1, message="started")
        step = self.script.pop(0) if self.script else "ok"
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, Gate):
            step.entered.set()
            waiters = {asyncio.ensure_future(ctx.cancel_event.wait()), asyncio.ensure_future(step.event.wait())}
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
            ctx.raise_if_canceled()
        elif step == HANG:
            await asyncio.Event().wait()
        elif isinstance(step, (int, float)):
            await ctx.sleep(float(step))
        await ctx.report_progress(1, 1, preview=tiny_png((0, 0, 0)), preview_mime="image/png")
        return GenerationResult(
            files=[GeneratedFile(data=tiny_png(), mime_type="image/png", width=1, height=1)],
            provider=self.id,
            backend=ctx.backend.label if ctx.backend else None,
            model=request.model,
            provider_job_id=ctx.resume_id or ctx.provider_job_id,
        )

    async def cancel(self, ctx: JobContext) -> None:
        self.cancels.append(ctx)
        self._notify()

    async def health(self, backend: BackendConfig | None = None) -> HealthStatus:
        self.health_calls.append(backend.label if backend else None)
        ok = self.health_script.pop(0) if self.health_script else True
        return HealthStatus(ok=ok, provider=self.id, backend=backend.label if backend else None,
                            message=None if ok else "scripted probe failure")


def build_providers(
    http: httpx.AsyncClient,
    specs: dict[str, dict[str, Any]],
    *,
    default: str | None = None,
    chain: Iterable[str] = (),
) -> tuple[dict[str, ScriptedProvider], StudioConfig]:
    """Scripted providers and the StudioConfig that names them.

    ``specs`` maps provider id to keyword options: ``script``, ``capabilities``,
    ``health_script`` (for :class:`ScriptedProvider`) and ``backends`` (URLs),
    ``concurrency``, ``settings``, ``enabled``, ``timeout``, ``fallback_on_content_rejected``
    (for :class:`ProviderConfig`).
    ``default`` defaults to the first id.
    """
    providers: dict[str, ScriptedProvider] = {}
    configs: dict[str, ProviderConfig] = {}
    for pid, spec in specs.items():
        backends = [b if isinstance(b, BackendConfig) else BackendConfig(url=b) for b in spec.get("backends", [])]
        conf = ProviderConfig(
            type="scripted",
            enabled=spec.get("enabled", True),
            settings=spec.get("settings", {}),
            backends=backends,
            concurrency=spec.get("concurrency", 4),
            timeout=spec.get("timeout", 600.0),
            fallback_on_content_rejected=spec.get("fallback_on_content_rejected", False),
        )
        configs[pid] = conf
        providers[pid] = ScriptedProvider(
            pid, conf, http, script=spec.get("script", ()), capabilities=spec.get("capabilities"),
            health_script=spec.get("health_script", ()),
        )
    config = StudioConfig(default_provider=default or next(iter(specs), None), fallback_chain=list(chain),
                          providers=configs)
    return providers, config


# orchestrator test rig ---------------------------------------------------------------------


class MidRandom(random.Random):
    """``uniform(a, b)`` gives the midpoint, so jittered waits are exact."""

    def random(self) -> float:
        return 0.5


class SleepRecorder:
    """Stands in for asyncio.sleep: records the seconds asked and returns at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        await asyncio.sleep(0)


class FakeClock:
    """A monotonic clock the test moves by hand (``clock.now += 31``)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Calls:
    """Records the orchestrator's callbacks."""

    def __init__(self) -> None:
        self.progress: list[dict[str, Any]] = []
        self.attempt_lists: list[list[Attempt]] = []
        self.remembered: list[tuple[str, str | None, str]] = []
        self.fallbacks: list[tuple[str, str, str]] = []

    async def on_progress(self, **kw: Any) -> None:
        self.progress.append(kw)

    async def on_attempt(self, attempts: list[Attempt]) -> None:
        self.attempt_lists.append(attempts)

    async def on_remember(self, provider: str, backend: str | None, provider_job_id: str) -> None:
        self.remembered.append((provider, backend, provider_job_id))

    async def on_fallback(self, src: str, dst: str, reason: str) -> None:
        self.fallbacks.append((src, dst, reason))

    @property
    def attempts(self) -> list[Attempt]:
        return self.attempt_lists[-1] if self.attempt_lists else []


class Rig:
    """An orchestrator over scripted providers, with recorded sleep and a fake clock."""

    def __init__(self, http: httpx.AsyncClient, specs: dict[str, dict[str, Any]], *, chain=(), default=None,
                 rng: random.Random | None = None, **kw: Any) -> None:
        self.http = http
        self.providers, self.config = build_providers(http, specs, default=default, chain=chain)
        self.sleep = SleepRecorder()
        self.clock = FakeClock()
        self.orch = Orchestrator(self.providers, self.config, http, sleep=self.sleep, clock=self.clock,
                                 rng=rng or MidRandom(), **kw)

    def __getitem__(self, pid: str) -> ScriptedProvider:
        """The scripted provider ``pid``."""
        return self.providers[pid]

    async def run(self, request: GenerationRequest | None = None, *, job_id: str = "job-1", timeout: float = 60.0,
                  cancel_event: asyncio.Event | None = None, resume=None, calls: Calls | None = None):
        """Run one job through the orchestrator; returns ``(result, calls)``."""
        calls = calls or Calls()
        result = await self.orch.run(
            request or GenerationRequest(prompt="a fox", width=64, height=64),
            job_id=job_id, cancel_event=cancel_event or asyncio.Event(), timeout=timeout,
            on_progress=calls.on_progress, on_attempt=calls.on_attempt, on_remember=calls.on_remember,
            on_fallback=calls.on_fallback, resume=resume,
        )
        return result, calls

    async def fails(self, exc_type: type[BaseException], request: GenerationRequest | None = None, **kw: Any):
        """Run one job that must raise ``exc_type``; returns ``(error, calls)``."""
        calls = kw.pop("calls", None) or Calls()
        with pytest.raises(exc_type) as info:
            await self.run(request, calls=calls, **kw)
        return info.value, calls

    def stats(self, pid: str, backend: str | None = None) -> dict[str, Any]:
        """``backend_stats()`` entry of one provider's backend."""
        return next(s for s in self.orch.backend_stats() if s["provider"] == pid and s["backend"] == backend)


def req(**kw: Any) -> GenerationRequest:
    """A small request (64x64 "a fox") with ``kw`` overrides."""
    return GenerationRequest(prompt=kw.pop("prompt", "a fox"), width=kw.pop("width", 64),
                             height=kw.pop("height", 64), **kw)


def outline(attempts: list[Attempt]) -> list[tuple[str, str, str | None, int]]:
    """``(provider, outcome, error_type, retry)`` per attempt."""
    return [(a.provider, a.outcome, a.error_type, a.retry) for a in attempts]
