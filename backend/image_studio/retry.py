"""The orchestrator's retry and cooldown policy: what each error does, per provider in the chain.

======================  ===================================================================
error                   action
======================  ===================================================================
Unsupported             skip (Attempt ``skipped``), next provider; also from ``capabilities``
ProviderUnavailable     retry after ``min(0.5 * 2**n, 8)`` s times a uniform jitter factor
                        in [0.75, 1.25], up to ``max_retries``; then cool the backend(s)
                        down (30 s, doubling per streak, at most 300 s) and fall back
ProviderTimeout         retry once (same backoff), then fall back; no cooldown
RateLimited             ``retry_after`` known and <= ``rate_limit_wait_max``: wait exactly
                        that plus 0..0.25 s (never less) and retry, counting toward
                        ``max_retries``; else cool the backend down for ``retry_after`` (when
                        known) and fall back
AuthenticationFailed    no retry; cool down ``AUTH_COOLDOWN`` (600 s); fall back
ContentRejected         raised at once, unless ``fallback_on_content_rejected`` is true in the
                        provider's config (``fallback_on_content_rejected``) or in
                        ``request.extra``: then fall back (never retried on the same provider)
GenerationFailed        no retry; fall back (any other ProviderError likewise) — unless the
                        adapter marked it ``retryable`` (an out-of-memory error): then the
                        ProviderUnavailable backoff
any ProviderError with  no retry, whatever its class (the adapter knows a retry cannot help,
``retryable=False``     e.g. a server started without its API); fall back
InvalidRequest          raised at once: no retry, no fallback
JobCanceled             raised at once
any other exception     wrapped as GenerationFailed (message kept); fall back
======================  ===================================================================

Backoff and Retry-After follow DESIGN.md ("Backoff: min(0.5 * 2**n, 8) s with jitter; honour
Retry-After"); the jitter is the +-25 % kind, so waits stay near the documented values.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from .balancer import AUTH_COOLDOWN, BackendPool, BackendState
from .errors import (
    AuthenticationFailed,
    ContentRejected,
    GenerationFailed,
    ImageStudioError,
    InvalidRequest,
    JobCanceled,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from .run_state import truthy
from .types import GenerationRequest

BACKOFF_BASE = 0.5
"""Seconds before the first retry (before jitter)."""
BACKOFF_MAX = 8.0
"""Cap of the backoff before jitter, seconds."""
BACKOFF_JITTER = 0.25
"""Backoff is multiplied by a uniform factor in [1 - BACKOFF_JITTER, 1 + BACKOFF_JITTER]."""
RETRY_AFTER_JITTER = 0.25
"""Seconds (uniform 0..this) added to an honoured Retry-After, never subtracted."""


@dataclass
class Tries:
    """Retry bookkeeping for one provider within one job: ``n`` retries so far, ``timeouts``
    ProviderTimeouts seen, backend labels that ``failed`` (tried last on the next retry), and
    the backends that were ``unavailable`` (cooled down when the provider is given up)."""

    n: int = 0
    timeouts: int = 0
    failed: set[str | None] = field(default_factory=set)
    unavailable: list[BackendState] = field(default_factory=list)

    def record(self, err: ImageStudioError, st: BackendState) -> None:
        """Note a failed try of ``st`` with ``err``."""
        self.failed.add(st.label)
        if isinstance(err, ProviderUnavailable) and all(s is not st for s in self.unavailable):
            self.unavailable.append(st)
        if isinstance(err, ProviderTimeout):
            self.timeouts += 1


@dataclass
class RetryPolicy:
    """Decides retry, fallback or abort for an error (see the module table).

    Args:
        max_retries: retries per provider; a provider is tried at most ``1 + max_retries`` times.
        rate_limit_wait_max: the longest Retry-After (seconds) waited for instead of falling back.
        rng: randomness for the jitter.
    """

    max_retries: int = 3
    rate_limit_wait_max: float = 30.0
    rng: random.Random = field(default_factory=random.Random)

    def backoff(self, n: int) -> float:
        """Seconds to wait before retry ``n + 1`` (``n`` from 0): ``min(0.5 * 2**n, 8)`` times a
        uniform factor in [0.75, 1.25], so 0.375 to 10 s."""
        base = min(BACKOFF_BASE * 2**n, BACKOFF_MAX)
        return base * self.rng.uniform(1 - BACKOFF_JITTER, 1 + BACKOFF_JITTER)

    def delay(self, err: ImageStudioError, tries: Tries, *, settings: dict[str, Any],
              request: GenerationRequest) -> float | None:
        """Seconds to wait before trying the same provider again, or None to fall back.

        ``tries`` is the state before this failure is recorded; ``settings`` the provider's
        ``ProviderConfig.settings`` with its ``fallback_on_content_rejected`` flag added.

        Raises:
            InvalidRequest, JobCanceled: ``err`` itself, always.
            ContentRejected: ``err`` itself, unless fallback on rejection is configured.
        """
        if isinstance(err, (InvalidRequest, JobCanceled)):
            raise err
        if isinstance(err, ContentRejected):
            if truthy(settings.get("fallback_on_content_rejected")) or truthy(
                request.extra.get("fallback_on_content_rejected")
            ):
                return None
            raise err
        if tries.n >= self.max_retries:
            return None
        if isinstance(err, ProviderError) and not err.retryable:
            return None  # the adapter knows this will not change (e.g. a server without --api)
        if isinstance(err, ProviderUnavailable):
            return self.backoff(tries.n)
        if isinstance(err, GenerationFailed):
            return self.backoff(tries.n)  # retryable only when the adapter said so (out of memory)
        if isinstance(err, ProviderTimeout):
            return self.backoff(tries.n) if tries.timeouts == 0 else None
        if isinstance(err, RateLimited) and err.retry_after is not None and err.retry_after <= self.rate_limit_wait_max:
            return err.retry_after + self.rng.uniform(0.0, RETRY_AFTER_JITTER)
        return None

    @staticmethod
    def cool_down(pool: BackendPool, err: ImageStudioError, st: BackendState, tries: Tries) -> None:
        """Put backends in cooldown as the provider is given up after ``err`` on ``st``:
        every backend that was unavailable (growing cooldown), a refused credential
        (``AUTH_COOLDOWN``), a long rate limit (its ``retry_after``)."""
        if isinstance(err, ProviderUnavailable):
            for bad in tries.unavailable:
                pool.cool_down(bad)
        elif isinstance(err, AuthenticationFailed):
            pool.cool_down(st, AUTH_COOLDOWN)
        elif isinstance(err, RateLimited) and err.retry_after:
            pool.cool_down(st, err.retry_after)
