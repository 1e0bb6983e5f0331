"""The Runware REST wire format: the imageInference task we send, the answers we read, and the
error each answer means.

Sources followed (Runware's public docs, 2026):

* https://runware.ai/docs/platform/authentication - ``POST https://api.runware.ai/v1`` with a
  JSON *array* of tasks; the key as ``Authorization: Bearer <key>`` (the alternative, an
  ``authentication`` task first in the array, is not used: it would put the key in the body).
* https://runware.ai/docs/en/image-inference/api-reference and the SDK's
  ``docs/text_to_image.md`` (github.com/Runware/sdk-python) - ``imageInference`` fields:
  ``positivePrompt``, ``negativePrompt``, ``width``/``height`` (multiples of 64), ``model`` (an
  AIR id), ``numberResults``, ``steps``, ``CFGScale``, ``scheduler``, ``seed``, ``seedImage`` +
  ``strength`` (img2img), ``maskImage`` (inpaint), ``outputType`` (``URL`` | ``base64Data`` |
  ``dataURI``), ``outputFormat`` (``PNG`` | ``JPG`` | ``WEBP``), ``checkNSFW``, ``includeCost``;
  results ``{taskType, taskUUID, imageUUID, imageURL | imageBase64Data | imageDataURI, seed,
  NSFWContent, cost}``.
* https://runware.ai/docs/platform/task-polling - ``"deliveryMethod": "async"`` answers at once;
  ``{"taskType": "getResponse", "taskUUID": ...}`` returns every generation of that task with
  ``status`` ``processing`` | ``success`` | ``error`` (results are cumulative across polls).
* https://runware.ai/docs/platform/errors - ``{"errors": [{code, message, parameter, taskType,
  taskUUID}]}`` with 400/401/402/403/429/5xx; the code families (auth, credits, safety, rate
  limit, timeout, server, validation) follow the classification in Runware's own client
  (github.com/Runware/runware-python ``runware/errors.py``), written anew here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ...errors import (AuthenticationFailed, ContentRejected, GenerationFailed, ImageStudioError, InvalidRequest,
                       ProviderError, ProviderTimeout, ProviderUnavailable, RateLimited)
from ...types import GenerationRequest
from ..cloudkit import data_uri, our_field

TASK = "imageInference"

FIELD_NAMES = {
    "positivePrompt": "prompt", "negativePrompt": "negative_prompt", "width": "width", "height": "height",
    "numberResults": "n", "steps": "steps", "CFGScale": "cfg_scale", "scheduler": "scheduler", "seed": "seed",
    "seedImage": "init_image", "maskImage": "mask", "strength": "denoising_strength", "model": "model",
}
"""Runware ``imageInference`` parameter -> our request field (for errors naming a parameter)."""

RESERVED = frozenset({"taskType", "taskUUID"})
"""Fields ``request.extra`` may not override: they tie the answers to our task."""

_SAFETY = re.compile(r"nsfw|contentpolicy|contentmoderation|moderation|safety|unsafe|sensitivecontent|blocked",
                     re.I)
_AUTH = re.compile(r"apikey|unauthori[sz]ed|forbidden|permission|authenticat|auth(failed|timeout)|token"
                   r"(expired|invalid|missing|revoked)|(account|organization|workspace)(suspended|disabled)", re.I)
_CREDITS = re.compile(r"credit|balance|quota|payment", re.I)
_VALIDATION = re.compile(r"^(invalid|missing|unsupported|value|array|max|min|conflict|duplicate|unknownparameter|"
                         r"incompatible|validation)", re.I)
_SERVER = re.compile(r"internalservererror|serviceunavailable|serverunavailable|noavailableserver|"
                     r"modelunavailable|modelnotready|unrecognizedresponse", re.I)


def build_task(request: GenerationRequest, *, task_uuid: str, model: str, delivery: str, output_type: str,
               output_format: str, check_nsfw: bool) -> dict[str, Any]:
    """The ``imageInference`` task for ``request`` (sizes in pixels).

    ``request.scheduler`` (else ``request.sampler``) goes to Runware's ``scheduler``, which names
    the sampling method; ``denoising_strength`` goes to ``strength`` (same sense: 1 keeps
    nothing of the init image); a seed of -1 (random) is left out. ``request.extra`` is merged
    last (any documented ``imageInference`` field: ``lora``, ``controlNet``, ``outputQuality``,
    ``clipSkip``, ``vae`` ...), except ``taskType``/``taskUUID``.

    Raises:
        InvalidRequest: ``init_image``/``mask`` is not an image, or ``extra`` sets a reserved field.
    """
    task: dict[str, Any] = {
        "taskType": TASK, "taskUUID": task_uuid, "deliveryMethod": delivery, "positivePrompt": request.prompt,
        "width": request.width, "height": request.height, "model": model, "numberResults": request.n,
        "outputType": output_type, "outputFormat": output_format, "includeCost": True,
    }
    optional = {
        "negativePrompt": request.negative_prompt or None, "steps": request.steps, "CFGScale": request.cfg_scale,
        "scheduler": request.scheduler or request.sampler,
        "seed": request.seed if request.seed is not None and request.seed >= 0 else None,
        "checkNSFW": True if check_nsfw else None,
    }
    task.update({k: v for k, v in optional.items() if v is not None})
    if request.init_image is not None:
        task["seedImage"] = data_uri(request.init_image, field="init_image")
        if request.denoising_strength is not None:
            task["strength"] = request.denoising_strength
    if request.mask is not None:
        task["maskImage"] = data_uri(request.mask, field="mask")
    clash = RESERVED & set(request.extra)
    if clash:
        raise InvalidRequest(f"{', '.join(sorted(clash))} cannot be set through extra", field="extra")
    task.update(request.extra)
    return task


def error_for(err: dict[str, Any], *, status: int | None, retry_after: float | None, extra: dict[str, Any],
              provider: str, backend: str | None) -> ImageStudioError:
    """The studio error one Runware error object ``{code, message, parameter}`` means, given the
    HTTP ``status`` it came with (None inside a 200 answer or a ``status: error`` item).

    Order: rate limit (429) -> auth (401/403, ``invalidApiKey`` ...) -> credits (402, the
    ``insufficientCredits`` family; not retryable) -> safety codes (ContentRejected) -> timeouts
    -> server (5xx) -> validation (InvalidRequest naming our field) -> GenerationFailed.
    """
    code = str(err.get("code") or "")
    message = str(err.get("message") or code or "Runware answered with an error")
    param = err.get("parameter") if isinstance(err.get("parameter"), str) else None
    text = f"Runware {code or 'error'}: {message}"
    kw: dict[str, Any] = {"provider": provider, "backend": backend, "status": status}
    if status == 429 or "ratelimit" in code.lower() or code == "tooManyRequests":
        return RateLimited(text, retry_after=retry_after, **kw)
    if status in (401, 403) or _AUTH.search(code):
        return AuthenticationFailed(text, **kw)
    if status == 402 or _CREDITS.search(code):
        return ProviderError(text, retryable=False, **kw)
    if _SAFETY.search(code):
        return ContentRejected(text, **kw)
    if "timeout" in code.lower():
        return ProviderTimeout(text, **kw)
    if (status is not None and status >= 500) or _SERVER.search(code):
        return ProviderUnavailable(text, **kw)
    if _VALIDATION.search(code) or (status in (400, 404, 422) and (param or not code)):
        return InvalidRequest(text, field=our_field(param, FIELD_NAMES, extra))
    return GenerationFailed(text, **kw)


def answer_errors(body: Any, task_uuid: str | None) -> list[dict[str, Any]]:
    """The error objects of an answer that concern our task: those with our ``taskUUID`` and
    those tied to no task (an ``authentication`` error, a malformed body)."""
    if not isinstance(body, dict):
        return []
    raw = body.get("errors")
    if raw is None and isinstance(body.get("error"), dict):
        raw = [body["error"]]
    items = [e for e in raw if isinstance(e, dict)] if isinstance(raw, list) else []
    return [e for e in items if not e.get("taskUUID") or task_uuid is None or e.get("taskUUID") == task_uuid]


def task_items(body: Any, task_uuid: str, task_type: str = TASK) -> list[dict[str, Any]]:
    """The ``data`` entries of an answer that belong to our task (matched by ``taskUUID``;
    entries of other task types, such as an ``authentication`` echo, are ignored)."""
    data = body.get("data") if isinstance(body, dict) else None
    return [d for d in data or [] if isinstance(d, dict) and d.get("taskUUID") == task_uuid
            and d.get("taskType", task_type) == task_type]


def is_image(item: dict[str, Any]) -> bool:
    """True for a finished generation: it carries an image (``imageURL``, ``imageBase64Data``
    or ``imageDataURI``)."""
    return any(item.get(k) for k in ("imageURL", "imageBase64Data", "imageDataURI"))


@dataclass
class Collected:
    """What the answers of one task brought so far: finished images keyed by ``imageUUID``
    (polls repeat earlier results), failed generations, and the last progress percent."""

    expected: int
    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    progress: float | None = None

    def add(self, items: list[dict[str, Any]]) -> None:
        """Take in the task's entries of one answer."""
        percents = []
        for item in items:
            if item.get("status") == "error":
                err = item.get("error") if isinstance(item.get("error"), dict) else item
                self.failures.append(err)
            elif is_image(item):
                self.images.setdefault(str(item.get("imageUUID") or len(self.images)), item)
            elif isinstance(item.get("progress"), (int, float)):
                percents.append(float(item["progress"]))
        if percents:
            self.progress = sum(percents) / len(percents)

    @property
    def done(self) -> bool:
        """Every expected generation finished, or one failed (the task then fails)."""
        return bool(self.failures) or len(self.images) >= self.expected


__all__ = ["Collected", "FIELD_NAMES", "TASK", "answer_errors", "build_task", "error_for", "is_image", "task_items"]
