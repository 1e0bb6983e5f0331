"""The provider contract: :class:`ImageProvider` and :class:`JobContext`.

Every adapter (ComfyUI, Automatic1111, the cloud APIs, the placeholder) subclasses
:class:`ImageProvider` and passes the shared contract suite in ``tests/providers/contract.py``.

An adapter talks to one *backend* per call (``ctx.backend``, chosen by the orchestrator), uses
the shared ``ctx.http`` client (so respx can see it and one retry loop governs), reports
progress through ``ctx.report_progress``, saves its provider-side job id with
``ctx.remember`` *before* it starts polling, and watches ``ctx.cancel_event``. An adapter
never retries on its own: it raises the error class from :mod:`image_studio.errors` that
says what happened, and the orchestrator decides.

A restarted service calls ``generate`` again with ``ctx.resume_id`` set to the remembered
id when ``capabilities.resumable`` is true; the adapter then polls that job instead of
submitting a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from ..config import BackendConfig, ProviderConfig
from ..errors import (
    AuthenticationFailed,
    ConfigError,
    ContentRejected,
    InvalidRequest,
    JobCanceled,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from ..types import Capabilities, GenerationRequest, GenerationResult, HealthStatus, ModelInfo, SizeRule

ProgressCallback = Callable[..., Awaitable[None]]
RememberCallback = Callable[[str], Awaitable[None]]


async def _noop_progress(**_: Any) -> None:
    return None


async def _noop_remember(_: str) -> None:
    return None


@dataclass
class JobContext:
    """What the orchestrator hands an adapter for one attempt of one job.

    Attributes:
        job_id: the studio's job id (use it as the backend's request id where one is taken).
        provider_id: the configured provider id.
        backend: the backend chosen for this attempt, or None for providers without backends.
        http: the shared ``httpx.AsyncClient``; pass ``timeout=`` per call where it matters.
        logger: a logger named for the provider.
        resume_id: a provider job id remembered by an earlier run of this job, or None.
        timeout: seconds this attempt may take in all.
        cancel_event: set when the job is canceled; adapters stop and raise :class:`JobCanceled`.
    """

    job_id: str
    provider_id: str
    http: httpx.AsyncClient
    backend: BackendConfig | None = None
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("image_studio.provider"))
    resume_id: str | None = None
    timeout: float = 600.0
    cancel_event: asyncio.Event = field(default_factory=asyncio.Event)
    on_progress: ProgressCallback = _noop_progress
    on_remember: RememberCallback = _noop_remember
    provider_job_id: str | None = None
    started: float = field(default_factory=time.monotonic)

    async def report_progress(
        self,
        value: int | float,
        max: int | float,
        preview: bytes | None = None,
        *,
        preview_mime: str = "image/jpeg",
        message: str | None = None,
    ) -> None:
        """Report ``value`` of ``max`` steps done, with an optional preview image (bytes)."""
        await self.on_progress(value=value, max=max, preview=preview, preview_mime=preview_mime, message=message)

    async def remember(self, provider_job_id: str) -> None:
        """Save the provider-side job id; call it before polling so a restart can resume."""
        self.provider_job_id = provider_job_id
        await self.on_remember(provider_job_id)

    @property
    def canceled(self) -> bool:
        return self.cancel_event.is_set()

    def raise_if_canceled(self) -> None:
        """Raise :class:`JobCanceled` if the job was canceled."""
        if self.cancel_event.is_set():
            raise JobCanceled(f"job {self.job_id} canceled")

    @property
    def remaining(self) -> float:
        """Seconds left of this attempt's ``timeout`` (never below 0)."""
        return max(0.0, self.timeout - (time.monotonic() - self.started))

    async def sleep(self, seconds: float) -> None:
        """Sleep up to ``seconds``, waking at once (and raising JobCanceled) on cancel."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.cancel_event.wait(), timeout=max(0.0, seconds))
        self.raise_if_canceled()


class NoSettings(BaseModel):
    """Settings model of a provider that takes none."""

    model_config = ConfigDict(extra="forbid")


class ImageProvider(ABC):
    """Base class of every provider adapter.

    Subclasses set ``type`` (the config's ``type`` name), may set ``Settings`` (a pydantic
    model validating ``ProviderConfig.settings``; its JSON Schema drives the settings form)
    and ``needs_backend`` (True when the config must list at least one backend URL), and
    ``credential_fields`` (``{name: required}`` of ``ProviderConfig.credentials``, for the
    settings form: secrets are write-only there).

    Raises:
        ConfigError: from ``__init__`` when the settings do not validate (field named).
    """

    type: ClassVar[str] = ""
    Settings: ClassVar[type[BaseModel]] = NoSettings
    needs_backend: ClassVar[bool] = False
    default_url: ClassVar[str | None] = None
    credential_fields: ClassVar[dict[str, bool]] = {}

    def __init__(self, provider_id: str, config: ProviderConfig, http: httpx.AsyncClient) -> None:
        self.id = provider_id
        self.config = config
        self.http = http
        self.logger = logging.getLogger(f"image_studio.providers.{provider_id}")
        try:
            self.settings = self.Settings.model_validate(config.settings)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise ConfigError(f"{err['msg']}", field=f"providers.{provider_id}.settings.{loc}") from exc
        if self.needs_backend and not config.backends and not self.default_url:
            raise ConfigError("at least one backend URL is needed", field=f"providers.{provider_id}.backends")

    @property
    def backends(self) -> list[BackendConfig | None]:
        """The backends to balance over; ``[None]`` for a provider with none configured."""
        if self.config.backends:
            return list(self.config.backends)
        if self.default_url:
            return [BackendConfig(url=self.default_url)]
        return [None]

    @property
    @abstractmethod
    def capabilities(self) -> Capabilities:
        """What this provider can do (may depend on its settings)."""

    def size_rule(self, model: str | None = None) -> SizeRule | None:
        """The sizes this provider accepts for ``model`` (None: its default model), as a
        :class:`SizeRule`; None means any size up to ``capabilities.max_width`` x
        ``max_height``. The default is ``capabilities.sizes``; adapters whose sizes depend on
        the model override it (see :mod:`image_studio.sizes`)."""
        return self.capabilities.sizes

    @abstractmethod
    async def generate(self, request: GenerationRequest, ctx: JobContext) -> GenerationResult:
        """Run ``request`` on ``ctx.backend`` and return the files.

        Raises:
            InvalidRequest: the backend refused the request as malformed (field named).
            Unsupported: this provider cannot do what the request asks.
            ProviderError: any subclass, as the backend's answer warrants.
            JobCanceled: ``ctx.cancel_event`` was set.
        """

    async def cancel(self, ctx: JobContext) -> None:
        """Stop the job on the backend (``ctx.provider_job_id`` says which). Best effort:
        never raises for a job the backend no longer knows."""
        return None

    @abstractmethod
    async def health(self, backend: BackendConfig | None = None) -> HealthStatus:
        """Probe one backend (the first if None) with a free call; never raises."""

    async def list_models(self, backend: BackendConfig | None = None) -> list[ModelInfo]:
        """Models (checkpoints) this provider offers. Raises ProviderError when unreachable."""
        return []

    async def options(self, backend: BackendConfig | None = None) -> dict[str, Any]:
        """Choices for the parameter controls: ``{"samplers": [...], "schedulers": [...], ...}``."""
        return {}

    async def close(self) -> None:
        """Release connections (websockets ...) held by this provider."""
        return None

    # helpers for adapters -------------------------------------------------------------

    def backend_url(self, ctx_or_backend: JobContext | BackendConfig | None) -> str:
        """Base URL of the backend in a context (or of a backend), without a trailing slash.

        Raises:
            ConfigError: the provider has no backend URL.
        """
        backend = ctx_or_backend.backend if isinstance(ctx_or_backend, JobContext) else ctx_or_backend
        backend = backend or (self.backends[0] if self.backends else None)
        if backend is None:
            raise ConfigError("no backend URL configured", field=f"providers.{self.id}.backends")
        return backend.url

    def error_kwargs(self, backend: BackendConfig | None) -> dict[str, Any]:
        return {"provider": self.id, "backend": backend.label if backend else None}

    @contextlib.asynccontextmanager
    async def transport_errors(self, backend: BackendConfig | None) -> AsyncIterator[None]:
        """Turn httpx transport failures into :class:`ProviderUnavailable` / :class:`ProviderTimeout`."""
        try:
            yield
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(f"timed out: {exc!r}", **self.error_kwargs(backend)) from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailable(f"cannot reach backend: {exc!r}", **self.error_kwargs(backend)) from exc

    def raise_for_status(self, response: httpx.Response, backend: BackendConfig | None, *, what: str = "") -> None:
        """Raise the error class that fits a non-2xx ``response``; return for 2xx."""
        raise_for_status(response, provider=self.id, backend=backend.label if backend else None, what=what)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _body_text(response: httpx.Response, limit: int = 500) -> str:
    try:
        text = response.text
    except Exception:  # noqa: BLE001 - undecodable bodies are reported by length only
        return f"<{len(response.content)} bytes>"
    return text[:limit]


def raise_for_status(
    response: httpx.Response, *, provider: str, backend: str | None = None, what: str = ""
) -> None:
    """Map an HTTP error answer to the error tree (statuses per RFC 9110).

    401/403 -> AuthenticationFailed; 429 -> RateLimited (Retry-After honoured); 408/504 ->
    ProviderTimeout; other 5xx -> ProviderUnavailable; 400/404/413/422 -> InvalidRequest;
    other 4xx -> ProviderError (not retryable).
    """
    if response.is_success:
        return
    status = response.status_code
    prefix = f"{what}: " if what else ""
    msg = f"{prefix}HTTP {status} from {response.request.method} {response.request.url.path}: {_body_text(response)}"
    kw: dict[str, Any] = {"provider": provider, "backend": backend, "status": status}
    if status in (401, 403):
        raise AuthenticationFailed(msg, **kw)
    if status == 429:
        raise RateLimited(msg, retry_after=parse_retry_after(response.headers.get("retry-after")), **kw)
    if status in (408, 504):
        raise ProviderTimeout(msg, **kw)
    if status >= 500:
        raise ProviderUnavailable(msg, **kw)
    if status in (400, 404, 413, 422):
        raise InvalidRequest(msg)
    raise ProviderError(msg, **kw)


__all__ = [
    "AuthenticationFailed",
    "ContentRejected",
    "ImageProvider",
    "JobContext",
    "NoSettings",
    "ProviderError",
    "parse_retry_after",
    "raise_for_status",
]
