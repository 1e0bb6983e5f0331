"""The error tree of Image Studio, and what the orchestrator does with each error.

::

    ImageStudioError
     |- ConfigError                 fix the config; reported at startup and in the admin panel
     |- InvalidRequest              HTTP 422; no retry, no fallback
     |- Unsupported                 this provider cannot do it; skip to the next in the chain
     |- ProviderError(provider, backend, status, retryable)
     |   |- ProviderUnavailable     connect errors, 5xx; retry with backoff, then fall back, cool down
     |   |- ProviderTimeout         retry once, then fall back
     |   |- RateLimited(retry_after) wait if short, else fall back
     |   |- AuthenticationFailed    no retry; fall back; long cooldown
     |   |- ContentRejected         no retry and no fallback unless configured
     |   '- GenerationFailed        the backend ran and failed (ComfyUI execution_error)
     |- JobCanceled
     |- PermissionDenied            the caller may not do this (HTTP 403)
     |- NotFound                    an unknown job, asset, provider or workflow (HTTP 404)
     |- Conflict                    an Idempotency-Key reused with another body (HTTP 409)
     '- FallbackExhausted(attempts) every attempt with its error

Every error carries a ``message`` and, where one field of the input is at fault, ``field``
(a dotted path such as ``"providers.comfy.backends.0.url"`` or ``"width"``), so that the HTTP
layer can answer with the field named. ``to_dict()`` gives the JSON shape the API returns::

    {"type": "InvalidRequest", "message": "...", "field": "width", ...extra}
"""

from __future__ import annotations

from typing import Any


class ImageStudioError(Exception):
    """Base of every error the studio raises on purpose.

    Args:
        message: human-readable text, shown to users as is.
        field: the input field at fault, as a dotted path, or None.
    """

    http_status: int = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description: ``{"type", "message", "field", ...}``."""
        out: dict[str, Any] = {"type": type(self).__name__, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        return out


class ConfigError(ImageStudioError):
    """The configuration is wrong or incomplete (file, environment or saved settings).

    Args:
        message: what is wrong.
        field: dotted path of the setting at fault.
        source: the file or source the setting came from (a path, ``"environment"`` ...).
    """

    http_status = 503

    def __init__(self, message: str, *, field: str | None = None, source: str | None = None) -> None:
        if source and source not in message:
            message = f"{source}: {message}"
        super().__init__(message, field=field)
        self.source = source

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.source:
            out["source"] = self.source
        return out


class InvalidRequest(ImageStudioError):
    """The request cannot be served by anyone as it is (HTTP 400/422). Never retried."""

    http_status = 422


class Unsupported(ImageStudioError):
    """This provider cannot do what the request asks (e.g. inpaint); try the next one."""

    http_status = 422

    def __init__(self, message: str, *, provider: str | None = None, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.provider = provider


class NotFound(ImageStudioError):
    """An unknown job, asset, provider, workflow or template (HTTP 404)."""

    http_status = 404


class Conflict(ImageStudioError):
    """The request conflicts with stored state, e.g. an Idempotency-Key reused with
    another body (HTTP 409)."""

    http_status = 409


class PermissionDenied(ImageStudioError):
    """The caller is known but may not do this (HTTP 403)."""

    http_status = 403


class ProviderError(ImageStudioError):
    """A backend of a provider failed.

    Args:
        message: what happened, in the provider's words where it gave any.
        provider: the provider id (``"comfy"``).
        backend: the backend name or URL, if one was chosen.
        status: the HTTP status the backend answered, if any.
        retryable: whether the same request may succeed if sent again.
    """

    http_status = 502
    default_retryable = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        backend: str | None = None,
        status: int | None = None,
        retryable: bool | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message, field=field)
        self.provider = provider
        self.backend = backend
        self.status = status
        self.retryable = self.default_retryable if retryable is None else retryable

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update(provider=self.provider, backend=self.backend, status=self.status, retryable=self.retryable)
        return out


class ProviderUnavailable(ProviderError):
    """Connect errors and 5xx answers: retry with backoff, then fall back and cool down."""

    http_status = 503
    default_retryable = True


class ProviderTimeout(ProviderError):
    """The backend did not answer in time: retry once, then fall back."""

    http_status = 504
    default_retryable = True


class RateLimited(ProviderError):
    """HTTP 429 or the provider's equivalent.

    Args:
        retry_after: seconds the provider asked us to wait (``Retry-After``), or None.
    """

    http_status = 429
    default_retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["retry_after"] = self.retry_after
        return out


class AuthenticationFailed(ProviderError):
    """Credentials refused (401/403): no retry; fall back; long cooldown."""

    http_status = 502


class ContentRejected(ProviderError):
    """The provider's safety system refused the prompt or the output: no retry, and no
    fallback unless configured."""

    http_status = 422


class GenerationFailed(ProviderError):
    """The backend accepted and ran the job, and the run failed (ComfyUI
    ``execution_error``, an Automatic1111 exception)."""

    http_status = 502


class JobCanceled(ImageStudioError):
    """The job was canceled by a user or by its timeout."""

    http_status = 409


class FallbackExhausted(ImageStudioError):
    """Every provider in the chain was tried and none succeeded.

    Args:
        attempts: one dict per attempt: ``{"provider", "backend", "error_type", "error"}``.
    """

    http_status = 502

    def __init__(self, message: str, *, attempts: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.attempts = list(attempts or [])

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["attempts"] = self.attempts
        return out


def error_from_dict(data: dict[str, Any]) -> ImageStudioError:
    """Rebuild an error from :meth:`ImageStudioError.to_dict` output (jobs store errors as JSON).

    Unknown types come back as a plain :class:`ImageStudioError`.
    """
    cls = _BY_NAME.get(str(data.get("type")), ImageStudioError)
    msg = str(data.get("message", ""))
    if issubclass(cls, RateLimited):
        return cls(msg, retry_after=data.get("retry_after"), provider=data.get("provider"),
                   backend=data.get("backend"), status=data.get("status"))
    if issubclass(cls, ProviderError):
        return cls(msg, provider=data.get("provider"), backend=data.get("backend"),
                   status=data.get("status"), retryable=data.get("retryable"), field=data.get("field"))
    if issubclass(cls, FallbackExhausted):
        return cls(msg, attempts=data.get("attempts"))
    if issubclass(cls, ConfigError):
        return cls(msg, field=data.get("field"), source=data.get("source"))
    return cls(msg, field=data.get("field"))


def _subclasses(cls: type) -> list[type]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_subclasses(sub))
    return out


_BY_NAME = {c.__name__: c for c in _subclasses(ImageStudioError)}
