"""Per-job bookkeeping of :class:`image_studio.orchestrator.Orchestrator`: the attempts list and
its callbacks, the running attempt (to stop it on cancel or timeout), and error helpers.

No I/O here except through the callbacks the job queue gives and ``provider.cancel``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from .config import BackendConfig
from .errors import (
    FallbackExhausted,
    GenerationFailed,
    ImageStudioError,
    JobCanceled,
    ProviderError,
    ProviderTimeout,
    Unsupported,
)
from .providers.base import ImageProvider, JobContext
from .types import Attempt, GenerationRequest, GenerationResult, utcnow

log = logging.getLogger("image_studio.orchestrator")

CANCEL_TIMEOUT = 10.0
"""Seconds ``provider.cancel(ctx)`` may take before it is given up."""
CANCEL_GRACE = 5.0
"""Seconds an abandoned ``generate`` task gets to unwind after it is cancelled."""


def truthy(value: Any) -> bool:
    """True for ``True``, non-zero numbers and the strings 1/true/yes/on (any case)."""
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value) if isinstance(value, (bool, int, float)) else False


def describe(err: ImageStudioError) -> str:
    """``"ErrorType: message"``, the reason given to ``on_fallback`` and kept per backend."""
    return f"{type(err).__name__}: {err.message}"


def normalize(exc: BaseException, provider: str, backend: str | None) -> ImageStudioError:
    """Studio errors pass through (a ProviderError gets ``provider``/``backend`` filled in when
    the adapter left them out); anything else becomes :class:`GenerationFailed` with the
    exception's type and text as the message."""
    if isinstance(exc, ProviderError):
        exc.provider = exc.provider or provider
        exc.backend = exc.backend or backend
        return exc
    if isinstance(exc, ImageStudioError):
        return exc
    return GenerationFailed(f"{type(exc).__name__}: {exc}", provider=provider, backend=backend)


@dataclass
class Running:
    """The attempt in progress: its adapter and context, and whether it was told to stop."""

    provider: ImageProvider
    ctx: JobContext
    cancel_sent: bool = False


@dataclass
class JobRun:
    """One call of ``Orchestrator.run``. ``deadline`` is event-loop time (seconds);
    ``timeout`` the whole run's budget in seconds."""

    job_id: str
    request: GenerationRequest
    cancel_event: asyncio.Event
    deadline: float
    timeout: float
    on_progress: Callable[..., Awaitable[None]]
    on_attempt: Callable[[list[Attempt]], Awaitable[None]]
    on_remember: Callable[[str, str | None, str], Awaitable[None]]
    on_fallback: Callable[[str, str, str], Awaitable[None]] | None = None
    attempts: list[Attempt] = field(default_factory=list)
    current: Running | None = None

    # time and cancel -------------------------------------------------------------------

    def remaining(self) -> float:
        """Seconds left before the deadline (never below 0)."""
        return max(0.0, self.deadline - asyncio.get_running_loop().time())

    def expired(self) -> bool:
        return asyncio.get_running_loop().time() >= self.deadline

    def raise_if_canceled(self) -> None:
        """Raise :class:`JobCanceled` if the job's cancel event is set."""
        if self.cancel_event.is_set():
            raise JobCanceled(f"job {self.job_id} canceled")

    async def stop_backend(self) -> None:
        """Call ``provider.cancel(ctx)`` on the running attempt, once, for at most
        ``CANCEL_TIMEOUT`` s; failures are logged, never raised."""
        cur = self.current
        if cur is None or cur.cancel_sent:
            return
        cur.cancel_sent = True
        try:
            await asyncio.wait_for(cur.provider.cancel(cur.ctx), timeout=CANCEL_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - best effort: the job ends either way
            log.warning("job %s: %s.cancel failed: %r", self.job_id, cur.ctx.provider_id, exc)

    async def abandon(self, gen: asyncio.Task[Any], stop: asyncio.Task[Any]) -> None:
        """Stop the backend, then cancel the adapter's ``gen`` task and give it
        ``CANCEL_GRACE`` s to unwind; its outcome is discarded."""
        stop.cancel()
        await self.stop_backend()
        if not gen.done():
            gen.cancel()
            await asyncio.wait({gen}, timeout=CANCEL_GRACE)
        if gen.done() and not gen.cancelled():
            gen.exception()  # retrieved, so asyncio does not log it as never retrieved

    # one attempt ---------------------------------------------------------------------

    def context(self, provider: ImageProvider, backend: BackendConfig | None, *, http: httpx.AsyncClient,
                timeout: float, resume_id: str | None) -> JobContext:
        """The :class:`JobContext` of one attempt on ``backend``: progress and remember
        callbacks are wrapped to name the provider and backend; ``timeout`` in seconds."""
        pid = provider.id
        label = backend.label if backend is not None else None

        async def progress(**kw: Any) -> None:
            await self.on_progress(provider=pid, backend=label, **kw)

        async def remember(provider_job_id: str) -> None:
            await self.on_remember(pid, label, provider_job_id)

        return JobContext(
            job_id=self.job_id, provider_id=pid, http=http, backend=backend,
            logger=getattr(provider, "logger", log), resume_id=resume_id, timeout=timeout,
            cancel_event=self.cancel_event, on_progress=progress, on_remember=remember,
        )

    async def generate(self, provider: ImageProvider, ctx: JobContext, limit: float | None) -> GenerationResult:
        """Run ``provider.generate`` racing the cancel event and the attempt's ``limit`` (s).

        On cancel or timeout the backend is told to stop (``provider.cancel``) and the
        adapter's task is cancelled.

        Raises:
            JobCanceled: the cancel event was set.
            ProviderTimeout: ``limit`` passed.
            GenerationFailed: the adapter's task was cancelled from inside.
            Exception: whatever the adapter raised.
        """
        gen = asyncio.create_task(provider.generate(self.request, ctx), name=f"generate:{self.job_id}:{provider.id}")
        stop = asyncio.create_task(self.cancel_event.wait())
        try:
            done, _ = await asyncio.wait({gen, stop}, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            if self.expired() or self.cancel_event.is_set():
                await self.abandon(gen, stop)
            else:
                # The service is shutting down: leave the job running on the backend so that
                # the next start resumes it from the remembered provider job id.
                stop.cancel()
                gen.cancel()
                await asyncio.wait({gen}, timeout=CANCEL_GRACE)
            raise
        if gen in done and not self.cancel_event.is_set():
            stop.cancel()
            if gen.cancelled():
                raise GenerationFailed("the adapter's task was cancelled", provider=provider.id)
            return gen.result()
        await self.abandon(gen, stop)
        self.raise_if_canceled()
        label = ctx.backend.label if ctx.backend else None
        raise ProviderTimeout(f"attempt timed out after {limit:g} s", provider=provider.id, backend=label)

    # attempts --------------------------------------------------------------------------

    async def notify(self) -> None:
        """Hand ``on_attempt`` a copy of the full attempts list."""
        await self.on_attempt([a.model_copy() for a in self.attempts])

    async def begin(self, provider: str, backend: str | None, retry: int) -> Attempt:
        """Record a running attempt and notify."""
        attempt = Attempt(provider=provider, backend=backend, retry=retry)
        self.attempts.append(attempt)
        await self.notify()
        return attempt

    async def finish(self, attempt: Attempt, duration: float, outcome: str,
                     error_type: str | None = None, error: str | None = None) -> None:
        """Close ``attempt`` with its outcome and ``duration`` (seconds), and notify."""
        attempt.outcome = outcome  # type: ignore[assignment]
        attempt.error_type = error_type
        attempt.error = error
        attempt.finished_at = utcnow()
        attempt.duration = round(max(0.0, duration), 6)
        await self.notify()

    async def skip(self, provider: str, error_type: str, error: str) -> None:
        """Record a provider skipped without a call (unsupported, in cooldown) and notify."""
        now = utcnow()
        self.attempts.append(Attempt(provider=provider, outcome="skipped", error_type=error_type,
                                     error=error, started_at=now, finished_at=now, duration=0.0))
        await self.notify()

    def exhausted(self) -> ImageStudioError:
        """The error for a chain that ran out: :class:`Unsupported` (reasons joined) when every
        provider was skipped as unable, else :class:`FallbackExhausted` with each provider's
        last error in the message and every attempt as a dict in ``attempts``."""
        attempts = self.attempts
        if attempts and all(a.outcome == "skipped" and a.error_type == "Unsupported" for a in attempts):
            reasons = "; ".join(f"{a.provider}: {a.error}" for a in attempts)
            return Unsupported(f"no provider in the chain can serve this request ({reasons})")
        last = {a.provider: a for a in attempts}
        summary = "; ".join(f"{p}: {a.error_type}: {a.error}" for p, a in last.items())
        return FallbackExhausted(
            f"every provider failed ({summary})", attempts=[a.model_dump(mode="json") for a in attempts]
        )
