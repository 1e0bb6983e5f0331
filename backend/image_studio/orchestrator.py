"""Run one job's request through the provider chain: pick provider and backend, check
capabilities, retry, fall back, keep the health cache. Knows no HTTP framework and no database.

Each error's effect (retry with backoff, fall back, cool down, raise) is the table in
:mod:`image_studio.retry`; backend choice, slots and the health cache live in
:mod:`image_studio.balancer`; per-job bookkeeping in :mod:`image_studio.run_state`.

A provider whose every backend is in cooldown is skipped (Attempt ``skipped``, error type
ProviderUnavailable) unless every capable provider of the chain is in cooldown: then they are
all tried anyway. Chain exhausted: :class:`FallbackExhausted` with every attempt, or
:class:`Unsupported` when every provider was skipped as unable.

Sizes: before a provider is tried its size rule (:mod:`image_studio.sizes`) is applied to the
request under ``size_policy``: a size it does not accept exactly (``exact``) skips it like any
other capability (Attempt ``skipped``, error type Unsupported, the accepted sizes in the
reason); with ``nearest`` it gets the request snapped to its nearest accepted size, so each
provider of a chain may get another size. Each attempt records the size it asked for.

The whole run is bounded by ``timeout`` seconds: on expiry the running attempt is stopped
(``provider.cancel``) and :class:`ProviderTimeout` ("job timed out after N s") is raised, not
retried. An attempt is also bounded by ``ProviderConfig.timeout`` (a ProviderTimeout for that
attempt, retried once). Backoff sleeps and slot waits wake on cancel.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from .balancer import BackendPool, BackendState, first_of
from .config import ProviderConfig, StudioConfig
from .errors import (
    AuthenticationFailed,
    Conflict,
    ConfigError,
    GenerationFailed,
    ImageStudioError,
    InvalidRequest,
    JobCanceled,
    NotFound,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    Unsupported,
)
from . import sizes
from .providers.base import ImageProvider
from .retry import RetryPolicy, Tries
from .run_state import JobRun, Running, describe, normalize, truthy
from .types import Attempt, GenerationRequest, GenerationResult, HealthStatus

log = logging.getLogger("image_studio.orchestrator")

HEALTH_TIMEOUT = 15.0
"""Seconds a health probe may take."""

ProgressFn = Callable[..., Awaitable[None]]
AttemptFn = Callable[[list[Attempt]], Awaitable[None]]
RememberFn = Callable[[str, str | None, str], Awaitable[None]]
FallbackFn = Callable[[str, str, str], Awaitable[None]]


@dataclass
class _Target:
    """A pinned provider/backend for a resumed job."""

    provider: str
    label: str | None
    resume_id: str


class Orchestrator:
    """Runs a job's request over the configured providers.

    Args:
        providers: provider id -> adapter instance.
        config: the studio config (default provider, fallback chain, provider configs).
        http: the shared client handed to adapters in each :class:`JobContext`.
        sleep: ``await sleep(seconds)`` for backoff (tests inject a recorder).
        clock: monotonic seconds, for cooldowns and attempt durations.
        rng: randomness for jitter.
        max_retries: retries per provider (tries = 1 + max_retries at most).
        rate_limit_wait_max: longest Retry-After, seconds, waited for instead of falling back.
    """

    def __init__(
        self,
        providers: dict[str, ImageProvider],
        config: StudioConfig,
        http: httpx.AsyncClient,
        *,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        max_retries: int = 3,
        rate_limit_wait_max: float = 30.0,
    ) -> None:
        self.providers: dict[str, ImageProvider] = dict(providers)
        self.config = config
        self.http = http
        self.policy = RetryPolicy(max_retries, rate_limit_wait_max, rng or random.Random())
        self._sleep = sleep
        self._clock = clock
        self._pool = BackendPool(clock)
        self._runs: dict[str, JobRun] = {}
        self._sizes: dict[str, str | None] = {}

    # configuration ---------------------------------------------------------------------

    def update(self, providers: dict[str, ImageProvider], config: StudioConfig) -> None:
        """Apply a new config without restart: later jobs and retries use the new providers,
        limits and chain; running attempts finish on the adapter they started with."""
        self.providers = dict(providers)
        self.config = config
        for pid, provider in self.providers.items():
            self._states(pid, provider)
        self._pool.wake_all()

    def _pconfig(self, pid: str) -> ProviderConfig:
        return self.config.providers.get(pid) or self.providers[pid].config

    def _enabled(self, pid: str | None) -> bool:
        return bool(pid) and pid in self.providers and self._pconfig(pid).enabled  # type: ignore[arg-type]

    def chain_for(self, request: GenerationRequest) -> list[str]:
        """Provider ids to try, in order, enabled ones only, without repeats.

        ``request.provider`` alone when set (plus the default chain when
        ``request.extra["fallback"]`` is true); else ``default_provider`` (the first enabled
        provider when unset) followed by ``fallback_chain``.
        """
        default = self.config.default_provider or next(
            (pid for pid in self.config.providers if self._enabled(pid)), None
        )
        ids: list[str | None] = [default, *self.config.fallback_chain]
        if request.provider:
            ids = [request.provider, *ids] if truthy(request.extra.get("fallback")) else [request.provider]
        out: list[str] = []
        for pid in ids:
            if pid and pid not in out and self._enabled(pid):
                out.append(pid)
        return out

    # sizes -----------------------------------------------------------------------------

    def fit(self, pid: str, request: GenerationRequest) -> sizes.Fit:
        """``request`` as provider ``pid`` gets it: its size rule for the request's model
        applied under ``size_policy``, then its capabilities checked on the result. A
        :class:`sizes.Fit` with the request and size, or with ``reason`` (and ``field`` for a
        size problem) when the provider cannot serve it."""
        provider = self.providers[pid]
        caps = provider.capabilities
        model = request.model
        rule = provider.size_rule(model)
        shown = model or getattr(getattr(provider, "settings", None), "model", None)
        who = f"{pid} ({shown})" if isinstance(shown, str) and shown else pid
        fitted = sizes.fit(rule, request, caps=caps, who=who)
        if fitted.request is None:
            return fitted
        reason = caps.check(fitted.request)
        if reason:
            return sizes.Fit(request=None, reason=reason)
        return fitted

    def size_problems(self, request: GenerationRequest) -> list[tuple[str, sizes.Fit]]:
        """``(provider id, Fit)`` of every provider of the request's chain whose size rule
        refuses the request (its size or aspect ratio); empty when none does."""
        out = []
        for pid in self.chain_for(request):
            fitted = self.fit(pid, request)
            if fitted.request is None and fitted.field is not None:
                out.append((pid, fitted))
        return out

    # backends --------------------------------------------------------------------------

    def _states(self, pid: str, provider: ImageProvider) -> list[BackendState]:
        conf = self._pconfig(pid)
        return [
            self._pool.state(pid, b, (b.concurrency if b is not None and b.concurrency else None) or conf.concurrency)
            for b in provider.backends
        ]

    def backend_stats(self) -> list[dict[str, Any]]:
        """Per provider and backend: ``{"provider", "backend", "in_flight", "limit", "healthy",
        "cooldown_until" (ISO UTC or None), "cooldown_remaining" (s), "failures", "last_error",
        "last_model", "runs"}``."""
        return [self._pool.stats(st) for pid, p in self.providers.items() for st in self._states(pid, p)]

    async def health(self, provider_id: str) -> list[HealthStatus]:
        """Probe every backend of ``provider_id`` (at most ``HEALTH_TIMEOUT`` s each, in
        parallel) and record the results in the health cache: ok clears a cooldown, a failure
        starts one.

        Raises:
            NotFound: no such provider (field ``provider_id``).
        """
        provider = self.providers.get(provider_id)
        if provider is None:
            raise NotFound(f"unknown provider {provider_id!r}", field="provider_id")
        states = self._states(provider_id, provider)
        return list(await asyncio.gather(*(self._probe(provider, st) for st in states)))

    async def _probe(self, provider: ImageProvider, st: BackendState) -> HealthStatus:
        try:
            status = await asyncio.wait_for(provider.health(st.backend), timeout=HEALTH_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - a probe that breaks is a failed probe
            status = HealthStatus(ok=False, provider=provider.id, backend=st.label, message=f"probe failed: {exc!r}")
        if status.backend is None and st.label is not None:
            status = status.model_copy(update={"backend": st.label})
        self._pool.mark_probe(st, status.ok, status.message)
        return status

    # cancel ----------------------------------------------------------------------------

    async def cancel(self, job_id: str) -> bool:
        """Cancel a running job: set its cancel event and ask the running attempt's provider to
        stop (``provider.cancel(ctx)``, at most ``CANCEL_TIMEOUT`` s). False when this
        orchestrator is not running ``job_id``."""
        run = self._runs.get(job_id)
        if run is None:
            return False
        run.cancel_event.set()
        await run.stop_backend()
        return True

    # run -------------------------------------------------------------------------------

    async def run(
        self,
        request: GenerationRequest,
        *,
        job_id: str,
        cancel_event: asyncio.Event,
        timeout: float,
        on_progress: ProgressFn,
        on_attempt: AttemptFn,
        on_remember: RememberFn,
        on_fallback: FallbackFn | None = None,
        resume: tuple[str, str | None, str] | None = None,
    ) -> GenerationResult:
        """Run ``request`` for job ``job_id`` and return the first success.

        ``timeout`` bounds the whole run, seconds. Callbacks: ``on_progress(provider=, backend=,
        value=, max=, preview=, preview_mime=, message=)``; ``on_attempt(attempts)`` with the
        full list whenever it changes; ``on_remember(provider_id, backend_label,
        provider_job_id)``; ``on_fallback(from_provider, to_provider, reason)``. ``resume`` is
        ``(provider_id, backend_label, provider_job_id)`` from an earlier run: the first attempt
        resumes it there; when that provider is gone, cannot resume, or no longer has that
        backend, the run fails (GenerationFailed) rather than running the job again elsewhere.

        Raises:
            InvalidRequest: the request is malformed for the provider, or names an unknown or
                disabled provider (field ``provider``).
            ConfigError: no enabled provider (field ``default_provider``).
            ContentRejected: refused by a provider's safety system (no fallback configured).
            JobCanceled: ``cancel_event`` was set or :meth:`cancel` was called.
            ProviderTimeout: ``timeout`` expired.
            Unsupported: no provider in the chain can do what the request asks.
            FallbackExhausted: every provider failed; ``attempts`` lists every try.
            Conflict: ``job_id`` is already running here.
        """
        if request.provider and not self._enabled(request.provider):
            raise InvalidRequest(f"unknown or disabled provider {request.provider!r}", field="provider")
        chain = self.chain_for(request)
        if not chain:
            raise ConfigError("no enabled provider is configured", field="default_provider")
        if job_id in self._runs:
            raise Conflict(f"job {job_id} is already running", field="job_id")
        loop = asyncio.get_running_loop()
        run = JobRun(job_id, request, cancel_event, loop.time() + timeout, timeout,
                     on_progress, on_attempt, on_remember, on_fallback)
        self._runs[job_id] = run
        scope = None
        try:
            async with asyncio.timeout_at(run.deadline) as scope:
                run.raise_if_canceled()
                return await self._run_chain(run, chain, self._resume_target(resume))
        except TimeoutError:
            if scope is None or not scope.expired():
                raise
            last = run.attempts[-1] if run.attempts else None
            raise ProviderTimeout(
                f"job timed out after {timeout:g} s",
                provider=last.provider if last else None,
                backend=last.backend if last else None,
                retryable=False,
            ) from None
        finally:
            if self._runs.get(job_id) is run:
                del self._runs[job_id]

    def _resume_target(self, resume: tuple[str, str | None, str] | None) -> _Target | None:
        if not resume:
            return None
        pid, label, resume_id = resume
        provider = self.providers.get(pid)
        why = None
        if provider is None or not self._enabled(pid):
            why = f"provider {pid!r} is no longer configured"
        elif not provider.capabilities.resumable or not resume_id:
            why = f"provider {pid!r} cannot resume a job"
        elif label not in [b.label if b is not None else None for b in provider.backends]:
            why = f"backend {label!r} of {pid!r} is no longer configured"
        if why:
            # The job may already have run there: never start it again elsewhere.
            raise GenerationFailed(f"cannot resume job {resume_id} ({why}); not run again to avoid running it twice",
                                   provider=pid, backend=label, retryable=False)
        return _Target(pid, label, resume_id)

    async def _run_chain(self, run: JobRun, chain: list[str], target: _Target | None) -> GenerationResult:
        order = list(chain)
        if target is not None:
            order = [target.provider, *(p for p in chain if p != target.provider)]
        capable = [p for p in order if not (target and p == target.provider)
                   and self.fit(p, run.request).request is not None]
        last_resort = bool(capable) and all(self._all_cooling(p) for p in capable)
        for i, pid in enumerate(order):
            pinned = target if target is not None and pid == target.provider else None
            result, reason = await self._run_provider(run, pid, pinned, last_resort)
            if result is not None:
                return result
            if i + 1 < len(order):
                log.info("job %s: falling back from %s to %s: %s", run.job_id, pid, order[i + 1], reason)
                if run.on_fallback is not None:
                    await run.on_fallback(pid, order[i + 1], reason)
        raise run.exhausted()

    def _all_cooling(self, pid: str) -> bool:
        return all(self._pool.cooling(st) for st in self._states(pid, self.providers[pid]))

    async def _run_provider(
        self, run: JobRun, pid: str, target: _Target | None, last_resort: bool
    ) -> tuple[GenerationResult | None, str]:
        """Try one provider: capability and cooldown checks, then the retry loop.
        Returns (result, "") or (None, why we leave it)."""
        provider = self.providers[pid]
        fitted = self.fit(pid, run.request)
        if target is None:
            reason = fitted.reason
            if fitted.request is None:
                await run.skip(pid, "Unsupported", reason or "cannot serve this request")
                return None, f"Unsupported: {reason}"
            if not last_resort and self._all_cooling(pid):
                states = self._states(pid, provider)
                first = min(states, key=self._pool.remaining)
                until = self._pool.wall_time(first)
                msg = f"in cooldown until {until:%Y-%m-%dT%H:%M:%SZ} ({self._pool.remaining(first):.0f} s)"
                await run.skip(pid, "ProviderUnavailable", msg)
                return None, f"ProviderUnavailable: {msg}"
        # This provider's attempts get the request as its size rule made it (a resumed job
        # whose rule no longer fits keeps the request it was started with).
        original = run.request
        if fitted.request is not None:
            run.request = fitted.request
        self._sizes[run.job_id] = fitted.size if fitted.request is not None else None
        try:
            return await self._retry_loop(run, pid, provider, target, ignore_cooldown=last_resort)
        finally:
            run.request = original
            self._sizes.pop(run.job_id, None)

    def _candidates(self, pid: str, target: _Target | None, ignore_cooldown: bool) -> Callable[[], list[BackendState]]:
        def candidates() -> list[BackendState]:
            provider = self.providers.get(pid)
            if provider is None or not self._enabled(pid):
                raise ProviderUnavailable(f"provider {pid} was removed or disabled", provider=pid)
            states = self._states(pid, provider)
            if target is not None:
                return [st for st in states if st.label == target.label]
            if ignore_cooldown:
                return states
            # Another job may have cooled a backend meanwhile; if all are, use them all.
            return [st for st in states if not self._pool.cooling(st)] or states

        return candidates

    async def _retry_loop(
        self, run: JobRun, pid: str, provider: ImageProvider, target: _Target | None, *, ignore_cooldown: bool
    ) -> tuple[GenerationResult | None, str]:
        """Try ``provider`` until it succeeds or the policy says fall back (see retry.py)."""
        tries = Tries()
        while True:
            try:
                st = await self._pool.acquire(pid, self._candidates(pid, target, ignore_cooldown),
                                              model=run.request.model, avoid=tries.failed,
                                              cancel_event=run.cancel_event)
            except ProviderUnavailable as exc:
                await run.skip(pid, "ProviderUnavailable", exc.message)
                return None, describe(exc)
            try:
                return await self._attempt(run, pid, provider, st, tries.n, target), ""
            except ImageStudioError as exc:
                err = exc
            finally:
                self._pool.release(st)
            pcfg = self._pconfig(pid) if pid in self.providers else provider.config
            settings = {**pcfg.settings, "fallback_on_content_rejected": pcfg.fallback_on_content_rejected}
            delay = self.policy.delay(err, tries, settings=settings, request=run.request)
            tries.record(err, st)
            if delay is None:
                self.policy.cool_down(self._pool, err, st, tries)
                return None, describe(err)
            await first_of(self._sleep(delay), run.cancel_event.wait())
            run.raise_if_canceled()
            tries.n += 1

    # one attempt -----------------------------------------------------------------------

    async def _attempt(self, run: JobRun, pid: str, provider: ImageProvider, st: BackendState, retry: int,
                       target: _Target | None) -> GenerationResult:
        """One try on one backend, recorded as an Attempt; health cache updated.

        Raises:
            ImageStudioError: the adapter's error, normalised (see :func:`normalize`).
        """
        attempt = await run.begin(pid, st.label, retry)
        size = self._sizes.get(run.job_id)
        attempt.size = size
        limit = self._pconfig(pid).timeout
        ctx = run.context(provider, st.backend, http=self.http, timeout=min(limit, run.remaining()),
                          resume_id=target.resume_id if target else None)
        run.current = Running(provider, ctx)
        t0 = self._clock()
        try:
            result = await run.generate(provider, ctx, limit if limit < run.remaining() else None)
        except asyncio.CancelledError:
            if run.expired():
                kind, text = "ProviderTimeout", f"job timed out after {run.timeout:g} s"
            elif run.cancel_event.is_set():
                kind, text = "JobCanceled", "canceled"
            else:
                kind, text = "Interrupted", "the service stopped during this attempt"
            await run.finish(attempt, self._clock() - t0, "failed", kind, text)
            raise
        except Exception as exc:  # noqa: BLE001 - every adapter failure is classified below
            err = normalize(exc, pid, st.label)
            if run.cancel_event.is_set() and not isinstance(err, JobCanceled):
                err = JobCanceled(f"job {run.job_id} canceled")
            skipped = isinstance(err, Unsupported)
            if isinstance(err, ProviderError):
                self._pool.record_failure(st, describe(err), unhealthy=isinstance(
                    err, (ProviderUnavailable, ProviderTimeout, AuthenticationFailed)))
            await run.finish(attempt, self._clock() - t0, "skipped" if skipped else "failed",
                             type(err).__name__, err.message)
            if err is exc:
                raise
            raise err from exc
        finally:
            run.current = None
        self._pool.record_success(st, run.request.model)
        cost = result.info.get("cost") if isinstance(result.info, dict) else None
        if isinstance(cost, (int, float)) and not isinstance(cost, bool) and cost >= 0:
            attempt.cost = float(cost)  # USD, as the adapter's answer reported it (analytics)
        await run.finish(attempt, self._clock() - t0, "succeeded")
        update: dict[str, Any] = {"provider": pid}
        if size is not None:
            update["size"] = size
        if result.backend is None:
            update["backend"] = st.label
        if result.provider_job_id is None and ctx.provider_job_id is not None:
            update["provider_job_id"] = ctx.provider_job_id
        return result.model_copy(update=update)


__all__ = ["Orchestrator"]
