"""From an OpenAI Images request to a :class:`GenerationRequest`. No I/O.

Body fields (JSON for generations, form fields for edits), after the route's ``defaults``,
``provider``, ``workflow``, ``model`` and ``params`` (see :mod:`.mapping`):

* ``prompt``, ``n``; ``size`` ``WxH`` (pixels) sets ``width`` and ``height``; ``auto`` or no
  size keeps the route's defaults (1024x1024 unless set), or for an edit the first image's size,
  with ``size_policy: nearest`` (unless the body or the route sets one): any size the provider
  accepts near it will do. The size then goes through the provider's size rules like any
  request (:mod:`image_studio.sizes`): with ``exact`` a size the provider does not take is
  refused with field ``size`` and the accepted sizes in the message;
* ``model`` is the route's name and is never passed on; ``response_format`` is always
  answered as ``b64_json``; ``stream`` true is refused (field ``stream``);
* OpenAI's ``quality``, ``style``, ``background``, ``output_format``, ``output_compression``,
  ``moderation``, ``input_fidelity``, ``user``: into ``extra`` when the route has
  ``openai_options``, else ignored;
* a GenerationRequest field (``negative_prompt``, ``steps``, ``cfg_scale``, ``sampler``,
  ``scheduler``, ``seed``, ``provider``, ``workflow``, ``loras``, ``width``, ``height`` ...)
  is taken as is (over the route's value); ``params`` and ``extra`` objects are merged over
  the route's;
* any other field goes into ``extra`` (passed to the provider as its own field).

Masks: OpenAI's convention (fully transparent pixels, alpha 0, mark where to paint) is turned
into the studio's (white is painted, black is kept); a mask without transparent pixels is
taken in the studio's convention as it is.
"""

from __future__ import annotations

import base64
import io
import json
import re
from typing import Any

from PIL import Image, UnidentifiedImageError
from pydantic import ValidationError

from ...config import FacadeModel
from ...errors import InvalidRequest
from ...types import GenerationRequest, MediaKind

OPENAI_OPTIONS = frozenset({"quality", "style", "background", "output_format", "output_compression",
                            "moderation", "input_fidelity", "user"})
"""OpenAI's image options: passed on in ``extra`` only for routes with ``openai_options``."""
NOT_PASSED = frozenset({"model", "size", "response_format", "stream", "partial_images"})
"""Body fields read by the facade itself."""
STUDIO_FIELDS = frozenset(GenerationRequest.model_fields) - {"model"}
"""GenerationRequest fields a body may set (``model`` is the facade's model name)."""
JSON_FORM_FIELDS = frozenset({"params", "extra", "loras", "hires", "upscale"})
"""Form fields of an edit holding JSON text."""

_SIZE = re.compile(r"^\s*(\d{1,6})\s*[xX×]\s*(\d{1,6})\s*$")


def parse_size(size: str | None) -> tuple[int, int] | None:
    """``(width, height)`` in pixels from ``"WxH"`` (``x``, ``X`` or ``×``); None for None,
    ``""`` or ``"auto"``.

    Raises:
        InvalidRequest: anything else (field ``size``).
    """
    if size is None or size.strip().lower() in ("", "auto"):
        return None
    match = _SIZE.match(size)
    if not match:
        raise InvalidRequest(f"size {size!r} is not WIDTHxHEIGHT (pixels) or auto", field="size")
    return int(match.group(1)), int(match.group(2))


SIZE_FIELDS = frozenset({"width", "height", "aspect_ratio"})
"""Request fields a size refusal may name; the facade reports them as ``size``."""


def size_error(exc: InvalidRequest, body: dict[str, Any]) -> InvalidRequest:
    """``exc`` with field ``size`` when it is about the size and the body gave one as ``size``
    (OpenAI clients know no ``width``/``height``); else ``exc`` unchanged."""
    if exc.field in SIZE_FIELDS and body.get("size") not in (None, "") and not SIZE_FIELDS & body.keys():
        return InvalidRequest(exc.message, field="size")
    return exc


def _merge_object(fields: dict[str, Any], key: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise InvalidRequest(f"{key} must be an object", field=key)
    fields[key] = {**fields.get(key, {}), **value}


def _route_fields(route: FacadeModel) -> dict[str, Any]:
    fields: dict[str, Any] = dict(route.defaults)
    fields["extra"] = dict(fields.get("extra") or {})
    fields["params"] = dict(route.params)
    for key in ("provider", "workflow", "model"):
        if getattr(route, key) is not None:
            fields[key] = getattr(route, key)
    return fields


def build_request(body: dict[str, Any], route: FacadeModel, *,
                  image_size: tuple[int, int] | None = None) -> GenerationRequest:
    """The GenerationRequest for ``body`` on ``route`` (rules in the module docstring).
    ``image_size`` (pixels) is the size used for ``auto`` or no size (an edit's input).

    Raises:
        InvalidRequest: a malformed ``size``, ``stream`` true, a ``media`` other than image,
            ``params``/``extra`` not objects, or a field GenerationRequest refuses (the field
            named; ``size`` when the size came from it).
    """
    if body.get("stream"):
        raise InvalidRequest("streamed answers are not served by this facade; leave stream unset", field="stream")
    fields = _route_fields(route)
    explicit = parse_size(body.get("size"))
    size = explicit or image_size
    if size is not None:
        fields["width"], fields["height"] = size
    if explicit is None and "size_policy" not in body:
        fields.setdefault("size_policy", "nearest")  # "auto" or none: any accepted size near it
    sized_by = {"width": "size", "height": "size"} if body.get("size") not in (None, "", "auto") else {}
    for key, value in body.items():
        if key in NOT_PASSED:
            continue
        if key in OPENAI_OPTIONS:
            if route.openai_options and value is not None:
                fields["extra"][key] = value
        elif key in ("params", "extra"):
            _merge_object(fields, key, value)
        elif key in STUDIO_FIELDS:
            fields[key] = value
            sized_by.pop(key, None)
        else:
            fields["extra"][key] = value
    if fields.get("media", MediaKind.image.value) not in (MediaKind.image, MediaKind.image.value):
        raise InvalidRequest("the OpenAI-compatible facade makes images only (media: image)", field="media")
    try:
        return GenerationRequest.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        loc = [str(p) for p in first.get("loc", ())]
        field = sized_by.get(loc[0], ".".join(loc)) if loc else None
        if field is None:  # a whole-request check: its message names the field
            field = next((f for f in ("mask", "upscale", "prompt") if f in first.get("msg", "")), None)
        message = f"{field}: {first['msg']}" if field else first["msg"]
        raise InvalidRequest(message, field=field) from None


def form_fields(form: dict[str, Any]) -> dict[str, Any]:
    """An edit's extra form fields as body fields: ``params``, ``extra``, ``loras``, ``hires``
    and ``upscale`` parsed from JSON text; every other value stays text (GenerationRequest
    converts numbers).

    Raises:
        InvalidRequest: a JSON field that does not parse (field named).
    """
    out: dict[str, Any] = {}
    for key, value in form.items():
        if key in JSON_FORM_FIELDS and isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise InvalidRequest(f"{key} must be JSON: {exc}", field=key) from None
        out[key] = value
    return out


def image_dimensions(data: bytes, field: str) -> tuple[int, int]:
    """``(width, height)`` in pixels of an uploaded image.

    Raises:
        InvalidRequest: not a decodable image (``field`` named).
    """
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.width, im.height
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise InvalidRequest(f"{field} is not a decodable image ({exc})", field=field) from None


def studio_mask(data: bytes) -> bytes:
    """A PNG mask in the studio's convention (white painted, black kept) from an uploaded mask:
    an OpenAI mask (some pixels fully transparent) becomes white where alpha is 0, black
    elsewhere; a mask with no transparent pixel is returned unchanged.

    Raises:
        InvalidRequest: not a decodable image (field ``mask``).
    """
    image_dimensions(data, "mask")
    with Image.open(io.BytesIO(data)) as im:
        has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
        if not has_alpha:
            return data
        alpha = im.convert("RGBA").getchannel("A")
    if alpha.getextrema()[0] > 0:
        return data
    out = io.BytesIO()
    alpha.point(lambda v: 255 if v == 0 else 0).save(out, format="PNG")
    return out.getvalue()


OPENWEBUI_EXTRA_KEY = "openwebui"
"""``request.extra`` key for the Open WebUI chat a job came from (``{chat_id, message_id}``)."""
CHAT_HEADERS = {"chat_id": "X-OpenWebUI-Chat-Id", "message_id": "X-OpenWebUI-Message-Id"}
"""Headers Open WebUI sends with ``ENABLE_FORWARD_USER_INFO_HEADERS`` (``open_webui/env.py``,
``utils/headers.py``; seen on the wire from its image router, docs/openwebui-notes.md)."""


def with_chat_context(request: GenerationRequest, headers: Any,
                      host_keys: set[str] | frozenset[str]) -> GenerationRequest:
    """``request`` with ``extra['openwebui'] = {chat_id, message_id}`` from Open WebUI's
    forwarded chat headers, when the host (the studio mounted in Open WebUI) declared that key
    in ``Studio.host_extra_keys``; else ``request`` unchanged (a standalone studio never passes
    the key on to a provider). ``headers``: a case-insensitive mapping (Starlette's)."""
    if OPENWEBUI_EXTRA_KEY not in host_keys:
        return request
    context = {name: headers.get(header) for name, header in CHAT_HEADERS.items() if headers.get(header)}
    if not context.get("chat_id"):
        return request
    return request.model_copy(update={"extra": {**request.extra, OPENWEBUI_EXTRA_KEY: context}})


def b64(data: bytes) -> str:
    """Base64 text (standard alphabet, padded) of ``data``."""
    return base64.b64encode(data).decode("ascii")
