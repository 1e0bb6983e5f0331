"""Backend balancing and the health cache, used by :class:`image_studio.orchestrator.Orchestrator`.

One :class:`BackendState` per (provider id, backend label) holds:

* the concurrency slot count: ``in_flight`` jobs of at most ``limit`` (``BackendConfig.concurrency``,
  else ``ProviderConfig.concurrency``); a job that finds every candidate backend full waits for a
  slot (:meth:`BackendPool.acquire`), and the wait wakes on cancel;
* the health cache: ``healthy``, consecutive ``failures``, ``cooldown_until`` (seconds on the
  orchestrator's clock, ``time.monotonic`` by default) and the last error;
* ``last_model``, for model affinity.

Choice among free backends (:func:`choose`): backends that already failed in this job last,
then the fewest jobs in flight, then the one that last ran the requested model, then the first
in config order.

Cooldown: ``UNAVAILABLE_COOLDOWN * 2**streak`` seconds capped at ``COOLDOWN_MAX``, where
``streak`` counts cooldowns since the backend last succeeded (30 s, 60 s, 120 s, 240 s, 300 s);
a refused credential cools down for ``AUTH_COOLDOWN``; a rate limit for its ``Retry-After``.
This module does no I/O and knows nothing of providers beyond their labels.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .config import BackendConfig
from .errors import JobCanceled
from .types import utcnow

UNAVAILABLE_COOLDOWN = 30.0
"""Seconds a backend rests after it stayed unreachable through every retry (doubles per streak)."""
COOLDOWN_MAX = 300.0
"""Upper bound of the growing cooldown, seconds."""
AUTH_COOLDOWN = 600.0
"""Seconds a backend rests after its credentials were refused."""


@dataclass(eq=False)
class BackendState:
    """Live state of one backend of one provider (compared and hashed by identity).

    ``label`` is ``BackendConfig.label`` (None for a provider without backends); ``limit`` the
    jobs it may run at once; ``failures`` consecutive failures since the last success;
    ``cooldown_until`` seconds on the pool's clock, or None.
    """

    provider: str
    label: str | None
    backend: BackendConfig | None
    limit: int
    in_flight: int = 0
    healthy: bool = True
    failures: int = 0
    streak: int = 0
    cooldown_until: float | None = None
    last_error: str | None = None
    last_model: str | None = None
    runs: int = field(default=0)


def choose(states: list[BackendState], *, model: str | None, avoid: Iterable[str | None] = ()) -> BackendState:
    """Pick a backend among ``states`` (all with a free slot, in config order).

    Order of preference: not in ``avoid`` (labels that failed earlier in this job), fewest jobs
    in flight, last ran ``model`` (affinity), first in config order.

    Raises:
        ValueError: ``states`` is empty.
    """
    if not states:
        raise ValueError("no backend to choose from")
    avoided = set(avoid)
    ranked = sorted(
        enumerate(states),
        key=lambda p: (
            p[1].label in avoided,
            p[1].in_flight,
            not (model is not None and p[1].last_model == model),
            p[0],
        ),
    )
    return ranked[0][1]


async def first_of(*aws: Awaitable[Any]) -> None:
    """Wait until the first of ``aws`` finishes, cancel the others, re-raise its error if any."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            if not t.done():
                t.cancel()
    for t in done:
        if not t.cancelled() and t.exception() is not None:
            raise t.exception()  # type: ignore[misc]


class BackendPool:
    """Every backend's slots and health, keyed by (provider id, backend label).

    Args:
        clock: a monotonic clock in seconds (injected by tests).
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._states: dict[tuple[str, str | None], BackendState] = {}
        self._freed: dict[str, asyncio.Event] = {}

    # state ---------------------------------------------------------------------------

    def state(self, provider: str, backend: BackendConfig | None, limit: int) -> BackendState:
        """The state of ``backend`` of ``provider``, created on first use; ``limit`` and the
        backend's config are refreshed (a raised limit wakes waiting jobs)."""
        label = backend.label if backend is not None else None
        st = self._states.get((provider, label))
        if st is None:
            st = self._states[(provider, label)] = BackendState(provider, label, backend, limit)
            return st
        st.backend = backend
        if limit != st.limit:
            raised = limit > st.limit
            st.limit = limit
            if raised:
                self.wake(provider)
        return st

    def cooling(self, st: BackendState) -> bool:
        """True while ``st`` is in cooldown."""
        return st.cooldown_until is not None and st.cooldown_until > self._clock()

    def remaining(self, st: BackendState) -> float:
        """Seconds of cooldown left (0 when none)."""
        if st.cooldown_until is None:
            return 0.0
        return max(0.0, st.cooldown_until - self._clock())

    def wall_time(self, st: BackendState) -> datetime | None:
        """When the cooldown of ``st`` ends, as UTC wall time, or None."""
        if not self.cooling(st):
            return None
        return utcnow() + timedelta(seconds=self.remaining(st))

    def record_success(self, st: BackendState, model: str | None) -> None:
        """A job succeeded on ``st``: healthy, cooldown and failure streak cleared."""
        st.healthy = True
        st.failures = 0
        st.streak = 0
        st.cooldown_until = None
        st.last_error = None
        st.runs += 1
        if model is not None:
            st.last_model = model

    def record_failure(self, st: BackendState, error: str, *, unhealthy: bool) -> None:
        """A job or probe failed on ``st``; ``unhealthy`` when the backend itself is at fault
        (unreachable, timing out, refusing credentials) rather than the job."""
        st.failures += 1
        st.last_error = error
        if unhealthy:
            st.healthy = False

    def cool_down(self, st: BackendState, seconds: float | None = None) -> float:
        """Put ``st`` in cooldown for ``seconds``, or for the growing default when None.

        Returns the cooldown in seconds. An existing longer cooldown is kept.
        """
        if seconds is None:
            seconds = min(UNAVAILABLE_COOLDOWN * 2**st.streak, COOLDOWN_MAX)
            st.streak += 1
        until = self._clock() + max(0.0, seconds)
        if st.cooldown_until is None or until > st.cooldown_until:
            st.cooldown_until = until
        return seconds

    def mark_probe(self, st: BackendState, ok: bool, message: str | None) -> None:
        """Record a health probe: ok clears the cooldown; a failure marks the backend unhealthy
        and cools it down like an unreachable backend."""
        if ok:
            st.healthy = True
            st.failures = 0
            st.streak = 0
            st.cooldown_until = None
            st.last_error = None
        else:
            self.record_failure(st, message or "health probe failed", unhealthy=True)
            self.cool_down(st)

    def stats(self, st: BackendState) -> dict[str, Any]:
        """JSON-ready snapshot: provider, backend, in_flight, limit, healthy, cooldown_until
        (ISO UTC or None), cooldown_remaining (s), failures, last_error, last_model, runs."""
        until = self.wall_time(st)
        return {
            "provider": st.provider,
            "backend": st.label,
            "in_flight": st.in_flight,
            "limit": st.limit,
            "healthy": st.healthy and not self.cooling(st),
            "cooldown_until": until.isoformat() if until else None,
            "cooldown_remaining": round(self.remaining(st), 3),
            "failures": st.failures,
            "last_error": st.last_error,
            "last_model": st.last_model,
            "runs": st.runs,
        }

    # slots ---------------------------------------------------------------------------

    def wake(self, provider: str) -> None:
        """Wake every job waiting for a slot of ``provider`` so it looks again."""
        ev = self._freed.pop(provider, None)
        if ev is not None:
            ev.set()

    def wake_all(self) -> None:
        """Wake every waiting job (after a config update)."""
        for provider in list(self._freed):
            self.wake(provider)

    async def acquire(
        self,
        provider: str,
        candidates: Callable[[], list[BackendState]],
        *,
        model: str | None,
        avoid: Iterable[str | None],
        cancel_event: asyncio.Event,
    ) -> BackendState:
        """Take a slot on the best free backend among ``candidates()``, waiting while all are full.

        ``candidates`` is called again after every wake-up, so a config update applies to
        waiting jobs. Waiters are woken together and are not strictly FIFO (the job queue
        above orders jobs).

        Raises:
            JobCanceled: ``cancel_event`` was set before a slot was free.
            ProviderError: whatever ``candidates`` raises (e.g. the provider was removed).
        """
        avoid = list(avoid)
        while True:
            if cancel_event.is_set():
                raise JobCanceled("job canceled while waiting for a backend slot")
            free = [s for s in candidates() if s.in_flight < s.limit]
            if free:
                st = choose(free, model=model, avoid=avoid)
                st.in_flight += 1
                return st
            freed = self._freed.setdefault(provider, asyncio.Event())
            await first_of(freed.wait(), cancel_event.wait())

    def release(self, st: BackendState) -> None:
        """Give back the slot taken by :meth:`acquire`."""
        st.in_flight = max(0, st.in_flight - 1)
        self.wake(st.provider)

    @contextlib.asynccontextmanager
    async def slot(self, provider: str, candidates: Callable[[], list[BackendState]], **kw: Any):
        """``async with pool.slot(...) as state``: :meth:`acquire`, then :meth:`release` on exit."""
        st = await self.acquire(provider, candidates, **kw)
        try:
            yield st
        finally:
            self.release(st)
