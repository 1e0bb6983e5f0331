"""Plumbing shared by the Google Gemini API adapters (Gemini image models, Imagen, Veo).

Wire format followed (Gemini Developer API, ``https://generativelanguage.googleapis.com/v1beta``):

* authentication: the API key in the ``x-goog-api-key`` header
  (https://ai.google.dev/api, "Authentication");
* errors: the Google JSON error body ``{"error": {"code", "status", "message", "details"}}``
  with ``details`` holding ``google.rpc.RetryInfo`` (``retryDelay`` as ``"17s"``) and
  ``google.rpc.ErrorInfo`` (``reason`` such as ``API_KEY_INVALID``)
  (https://ai.google.dev/gemini-api/docs/troubleshooting, https://cloud.google.com/apis/design/errors);
* models: ``GET /models`` (``pageSize``, ``pageToken`` -> ``models[]``, ``nextPageToken``) and
  ``GET /models/{model}`` (discovery document ``generativelanguage:v1beta``, methods
  ``models.list`` / ``models.get``), both free.

The generation calls themselves live in :mod:`.gemini`, :mod:`.imagen` and :mod:`..veo`.
"""

from __future__ import annotations

import base64
import io
import math
import re
import time
from typing import Any, ClassVar

import httpx
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field

from ...config import BackendConfig
from ...errors import (AuthenticationFailed, ContentRejected, GenerationFailed, ImageStudioError, InvalidRequest,
                       ProviderError, ProviderTimeout, RateLimited, Unsupported)
from ...types import GenerationRequest, HealthStatus, MediaKind, ModelInfo
from ..base import ImageProvider, JobContext, parse_retry_after
from ..common import api_key, json_or_none

GOOGLE_API_URL = "https://generativelanguage.googleapis.com/v1beta"
"""The Gemini Developer API base URL (overridable by ``backends[0].url``)."""

MAX_MODEL_PAGES = 20
"""Pages of ``GET /models`` read at most by :meth:`GoogleProvider.list_models`."""

_SAFETY_WORDS = ("safety", "responsible ai", "sensitive", "prohibited", "violate", "blocked", "rai ")

# Our request field for words in a Google INVALID_ARGUMENT message, first match wins.
_FIELD_HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("aspect",), "width"),
    (("imagesize", "image size", "sampleimagesize"), "extra.image_size"),
    (("resolution",), "width"),
    (("samplecount", "candidatecount", "number of"), "n"),
    (("negativeprompt", "negative prompt"), "negative_prompt"),
    (("seed",), "seed"),
    (("durationseconds", "duration"), "extra.duration_seconds"),
    (("persongeneration", "person generation"), "extra.person_generation"),
    (("inlinedata", "inline_data", "bytesbase64encoded", "image"), "init_image"),
    (("prompt", "contents", "text"), "prompt"),
    (("model",), "model"),
)


class GoogleSettings(BaseModel):
    """Settings every Google adapter shares. Times in seconds."""

    model_config = ConfigDict(extra="forbid")

    request_timeout: float = Field(30.0, gt=0, le=300, description="seconds for model lists and status polls")
    health_timeout: float = Field(10.0, gt=0, le=60, description="seconds for the health probe")


def retry_delay(error: dict[str, Any]) -> float | None:
    """Seconds from a ``google.rpc.RetryInfo`` in ``error["details"]`` (``"17s"``, ``"0.5s"``), or None."""
    for detail in error.get("details") or []:
        if not isinstance(detail, dict) or not str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            continue
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)s\s*", str(detail.get("retryDelay", "")))
        if match:
            return float(match.group(1))
    return None


def _error_reasons(error: dict[str, Any]) -> set[str]:
    return {str(d.get("reason")) for d in error.get("details") or [] if isinstance(d, dict) and d.get("reason")}


def looks_like_safety(message: str) -> bool:
    """True when a Google error message reads as a safety/Responsible-AI refusal."""
    text = message.lower()
    return any(word in text for word in _SAFETY_WORDS)


def request_field(message: str, default: str | None = None) -> str | None:
    """Our request field (``width``, ``n``, ``extra.image_size`` ...) a Google message is about."""
    text = message.lower()
    for words, field in _FIELD_HINTS:
        if any(w in text for w in words):
            return field
    return default


def google_error(response: httpx.Response, *, what: str, provider: str,
                 backend: str | None) -> ImageStudioError | None:
    """The error a non-2xx answer with a Google error body means, or None for other bodies.

    400 INVALID_ARGUMENT -> InvalidRequest (our field named), or AuthenticationFailed for an
    invalid key (ErrorInfo ``API_KEY_INVALID``), or ContentRejected for a safety refusal;
    400 FAILED_PRECONDITION -> ProviderError (not retryable: e.g. region or billing);
    401/403 -> AuthenticationFailed; 404 -> InvalidRequest (field ``model``); 429
    RESOURCE_EXHAUSTED -> RateLimited (``RetryInfo.retryDelay``, else ``Retry-After``); 5xx ->
    left to :func:`base.raise_for_status` (ProviderUnavailable / ProviderTimeout).
    """
    body = json_or_none(response)
    error = body.get("error") if isinstance(body, dict) else None
    if response.is_success or not isinstance(error, dict) or response.status_code >= 500:
        return None
    status, code = str(error.get("status") or ""), response.status_code
    message = f"{what}: {status or code}: {error.get('message') or ''}".strip()
    kw: dict[str, Any] = {"provider": provider, "backend": backend, "status": code}
    if code in (401, 403) or status in ("UNAUTHENTICATED", "PERMISSION_DENIED") or \
            "API_KEY_INVALID" in _error_reasons(error) or "api key not valid" in message.lower():
        return AuthenticationFailed(message, **kw)
    if code == 429 or status == "RESOURCE_EXHAUSTED":
        delay = retry_delay(error)
        return RateLimited(message, retry_after=delay if delay is not None else
                           parse_retry_after(response.headers.get("retry-after")), **kw)
    if status == "FAILED_PRECONDITION":
        return ProviderError(message, retryable=False, **kw)
    if looks_like_safety(message):
        return ContentRejected(message, **kw)
    if code == 404 or status == "NOT_FOUND":
        return InvalidRequest(message, field="model")
    if code in (400, 413, 422) or status in ("INVALID_ARGUMENT", "OUT_OF_RANGE"):
        return InvalidRequest(message, field=request_field(str(error.get("message") or "")))
    return None


def nearest_ratio(width: int, height: int, choices: tuple[str, ...]) -> str:
    """The ``"W:H"`` of ``choices`` closest to ``width``/``height`` (pixels) on a log scale.
    Ties go to the earlier choice."""
    target = math.log(width / height)

    def distance(choice: str) -> float:
        w, _, h = choice.partition(":")
        return abs(math.log(float(w) / float(h)) - target)

    return min(choices, key=distance)


_MIME_BY_FORMAT = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "HEIF": "image/heif",
                   "HEIC": "image/heic"}
"""Input image formats the Gemini API documents (PNG, JPEG, WebP, HEIC, HEIF), by Pillow format name."""


def image_input(data: bytes, field: str) -> tuple[str, str]:
    """``(mime type, base64 text)`` of an input image, for an ``inlineData`` or
    ``bytesBase64Encoded`` part.

    Raises:
        InvalidRequest: ``data`` is not an image of a kind Google accepts (``field`` named).
    """
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = (im.format or "").upper()
    except (UnidentifiedImageError, OSError) as exc:
        raise InvalidRequest("not a readable image", field=field) from exc
    mime = _MIME_BY_FORMAT.get(fmt)
    if mime is None:
        raise InvalidRequest(f"image format {fmt or 'unknown'} not accepted (PNG, JPEG, WebP, HEIC)", field=field)
    return mime, base64.b64encode(data).decode("ascii")


def extra_dict(request: GenerationRequest, key: str) -> dict[str, Any]:
    """``request.extra[key]`` as a dict ({} when absent).

    Raises:
        InvalidRequest: it is not an object (field ``extra.<key>``).
    """
    value = request.extra.get(key) or {}
    if not isinstance(value, dict):
        raise InvalidRequest(f"extra.{key} must be an object", field=f"extra.{key}")
    return value


def decode_b64(text: Any, *, what: str, **kw: Any) -> bytes:
    """Bytes of a base64 field of an answer. Raises GenerationFailed when it is not base64."""
    try:
        return base64.b64decode(str(text), validate=False)
    except (ValueError, TypeError) as exc:
        raise GenerationFailed(f"{what}: not base64 data", **kw) from exc


class GoogleProvider(ImageProvider):
    """Base of the Gemini API adapters: key header, error mapping, model list and health.

    Subclasses set ``model_methods`` (the ``supportedGenerationMethods`` a listed model must
    offer), ``model_matches`` (does a model name belong to this adapter), ``media``, and a
    ``Settings`` model with at least ``model``, ``request_timeout`` and ``health_timeout``.
    """

    default_url: ClassVar[str | None] = GOOGLE_API_URL
    model_methods: ClassVar[tuple[str, ...]] = ()
    media: ClassVar[MediaKind] = MediaKind.image

    @staticmethod
    def model_matches(name: str) -> bool:  # pragma: no cover - overridden
        return True

    # plumbing -------------------------------------------------------------------------------

    def headers(self, backend: BackendConfig | None) -> dict[str, str]:
        """Backend headers plus ``x-goog-api-key``. Raises ConfigError when the key is missing."""
        return {**(backend.headers if backend else {}), "x-goog-api-key": api_key(self)}

    def model_name(self, request: GenerationRequest | None = None) -> str:
        """The model id without a ``models/`` prefix: the request's, else the configured one."""
        name = (request.model if request is not None and request.model else None) or self.settings.model
        return name.removeprefix("models/")

    def check_media(self, request: GenerationRequest, ctx: JobContext) -> None:
        """Raise JobCanceled if canceled, Unsupported if ``request.media`` is not ours."""
        ctx.raise_if_canceled()
        if request.media is not self.media:
            raise Unsupported(f"{self.type} makes {self.media.value} only", provider=self.id, field="media")

    def generation_timeout(self, ctx: JobContext) -> httpx.Timeout:
        """A timeout for one generation call: what is left of the attempt (``ctx.remaining``).

        Raises:
            ProviderTimeout: nothing is left.
        """
        left = ctx.remaining
        if left <= 0:
            raise ProviderTimeout("no time left for this attempt", **self.error_kwargs(ctx.backend))
        return httpx.Timeout(left, connect=min(10.0, left))

    def check(self, response: httpx.Response, backend: BackendConfig | None, *, what: str) -> None:
        """Raise the error a non-2xx answer means (:func:`google_error`, else
        :meth:`raise_for_status`); return for 2xx."""
        error = google_error(response, what=what, **self.error_kwargs(backend))
        if error is not None:
            raise error
        self.raise_for_status(response, backend, what=what)

    async def call(self, method: str, backend: BackendConfig | None, path: str, *, what: str,
                   timeout: float | httpx.Timeout, body: dict[str, Any] | None = None,
                   params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one request to ``{base}/{path}`` and return its JSON object.

        Raises:
            ConfigError: no API key. ProviderUnavailable / ProviderTimeout: transport failures.
            The :meth:`check` errors for non-2xx answers; ProviderError for a non-object body.
        """
        url = f"{self.backend_url(backend)}/{path.lstrip('/')}"
        headers = self.headers(backend)
        async with self.transport_errors(backend):
            response = await self.http.request(method, url, headers=headers, json=body, params=params,
                                               timeout=timeout)
        self.check(response, backend, what=what)
        data = json_or_none(response)
        if not isinstance(data, dict):
            raise ProviderError(f"{what}: the answer is not a JSON object", retryable=True,
                                **self.error_kwargs(backend))
        return data

    # metadata -------------------------------------------------------------------------------

    async def health(self, backend: BackendConfig | None = None) -> HealthStatus:
        """GET ``/models/{model}`` (free: checks the key and that the model exists) within
        ``health_timeout`` s. Never raises."""
        backend = backend or self.backends[0]
        label, started, model = backend.label if backend else None, time.monotonic(), self.model_name()
        try:
            info = await self.call("GET", backend, f"models/{model}", what="GET model",
                                   timeout=self.settings.health_timeout)
        except ImageStudioError as exc:
            return HealthStatus(ok=False, provider=self.id, backend=label, latency=time.monotonic() - started,
                                message=exc.message, details={"model": model})
        return HealthStatus(ok=True, provider=self.id, backend=label, latency=time.monotonic() - started,
                            details={"model": model, "display_name": info.get("displayName"),
                                     "version": info.get("version")})

    async def list_models(self, backend: BackendConfig | None = None) -> list[ModelInfo]:
        """This adapter's models from GET ``/models`` (all pages), filtered by name and method.

        Raises:
            ConfigError: no API key. ProviderError: the API is unreachable or refuses.
        """
        backend = backend or self.backends[0]
        out: list[ModelInfo] = []
        token: str | None = None
        for _ in range(MAX_MODEL_PAGES):
            params = {"pageSize": 1000, **({"pageToken": token} if token else {})}
            page = await self.call("GET", backend, "models", what="GET models", params=params,
                                   timeout=self.settings.request_timeout)
            out.extend(self._model_info(m, backend) for m in page.get("models") or [] if self._wanted(m))
            token = page.get("nextPageToken")
            if not token:
                break
        return out

    def _wanted(self, model: Any) -> bool:
        if not isinstance(model, dict) or not isinstance(model.get("name"), str):
            return False
        methods = model.get("supportedGenerationMethods") or []
        return self.model_matches(model["name"].removeprefix("models/")) and (
            not self.model_methods or any(m in methods for m in self.model_methods))

    def _model_info(self, model: dict[str, Any], backend: BackendConfig | None) -> ModelInfo:
        keep = ("description", "version", "supportedGenerationMethods", "inputTokenLimit", "outputTokenLimit")
        return ModelInfo(id=model["name"].removeprefix("models/"), name=model.get("displayName"), kind="model",
                         provider=self.id, backend=backend.label if backend else None,
                         details={k: model[k] for k in keep if model.get(k) is not None})
