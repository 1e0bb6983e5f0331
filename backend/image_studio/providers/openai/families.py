"""OpenAI image model families: which sizes, counts, qualities and body fields each model takes.

Pure data and checks, no I/O. Source: the openai-python SDK's generated types
(``src/openai/types/image_generate_params.py``, ``image_edit_params.py``, ``image_model.py``,
August 2026) and https://platform.openai.com/docs/api-reference/images (create, create edit):

==============  =====================================  ======  =====  ==========================
family          sizes (pixels)                         max n   edits  model-only body fields
==============  =====================================  ======  =====  ==========================
dall-e-2        256x256, 512x512, 1024x1024            10      yes*   response_format
dall-e-3        1024x1024, 1792x1024, 1024x1792        1       no     quality, style,
                                                                      response_format
gpt-image       1024x1024, 1536x1024, 1024x1536, auto  10      yes    quality, background,
(-1, -1-mini,                                                         output_format,
-1.5, chatgpt-                                                        output_compression,
image-latest)                                                         moderation (generate),
                                                                      input_fidelity (edit)
gpt-image-2     any WxH: sides multiples of 16, aspect 10      yes    as gpt-image
                ratio 1:3..3:1, at most 3840 px a side
                and 3840x2160 pixels; the three
                standard sizes and auto
==============  =====================================  ======  =====  ==========================

\\* dall-e-2 edits need a mask (or a transparent image): no img2img without one. The GPT image
models always answer ``b64_json`` and reject ``response_format``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ... import sizes
from ...errors import InvalidRequest
from ...types import SizeRule

GENERATE_ONLY = frozenset({"moderation", "style"})
"""Model fields ``POST /images/generations`` takes and ``/images/edits`` does not."""
EDIT_ONLY = frozenset({"input_fidelity"})
"""Model fields only ``POST /images/edits`` takes."""
MODEL_FIELDS = ("quality", "style", "background", "output_format", "output_compression", "moderation",
                "input_fidelity", "response_format")
"""Settings that become body fields where the model family takes them."""

FLEX_MAX_SIDE = 3840
FLEX_MAX_PIXELS = 3840 * 2160
FLEX_MULTIPLE = 16
FLEX_MAX_RATIO = 3.0


@dataclass(frozen=True)
class Family:
    """What one family of OpenAI image models accepts.

    ``sizes`` are the fixed ``WxH`` strings (pixels), None when any size passes (an unknown
    model: the server decides); ``flexible`` adds the gpt-image-2 rule for other sizes;
    ``auto_size`` allows ``size: "auto"``; ``max_side`` pixels; ``fields`` the optional body
    fields (see :data:`MODEL_FIELDS`) the family takes; ``qualities``/``styles`` their values.
    """

    name: str
    sizes: tuple[str, ...] | None
    max_side: int
    max_n: int
    edits: bool
    img2img: bool
    fields: frozenset[str]
    qualities: tuple[str, ...] = ()
    styles: tuple[str, ...] = ()
    auto_size: bool = False
    flexible: bool = False
    max_prompt: int | None = None


_GPT_FIELDS = frozenset({"quality", "background", "output_format", "output_compression", "moderation",
                         "input_fidelity"})
_GPT_SIZES = ("1024x1024", "1536x1024", "1024x1536")

DALL_E_2 = Family("dall-e-2", ("256x256", "512x512", "1024x1024"), 1024, 10, edits=True, img2img=False,
                  fields=frozenset({"quality", "response_format"}), qualities=("standard",), max_prompt=1000)
DALL_E_3 = Family("dall-e-3", ("1024x1024", "1792x1024", "1024x1792"), 1792, 1, edits=False, img2img=False,
                  fields=frozenset({"quality", "style", "response_format"}), qualities=("standard", "hd"),
                  styles=("vivid", "natural"), max_prompt=4000)
GPT_IMAGE = Family("gpt-image", _GPT_SIZES, 1536, 10, edits=True, img2img=True, fields=_GPT_FIELDS,
                   qualities=("auto", "low", "medium", "high"), auto_size=True, max_prompt=32000)
GPT_IMAGE_2 = Family("gpt-image-2", _GPT_SIZES, FLEX_MAX_SIDE, 10, edits=True, img2img=True, fields=_GPT_FIELDS,
                     qualities=("auto", "low", "medium", "high"), auto_size=True, flexible=True,
                     max_prompt=32000)
OTHER = Family("other", None, 16384, 10, edits=True, img2img=True, fields=frozenset(MODEL_FIELDS))
"""A model this module does not know: nothing is checked, set fields are all sent."""

IMAGE_MODEL_PREFIXES = ("gpt-image", "chatgpt-image", "dall-e")
"""Model ids that ``GET /models`` lists and that are image models."""


def family_of(model: str) -> Family:
    """The family of model id ``model`` (``gpt-image-1-mini`` -> :data:`GPT_IMAGE`)."""
    name = model.strip().lower()
    if name.startswith("dall-e-2"):
        return DALL_E_2
    if name.startswith("dall-e-3"):
        return DALL_E_3
    if name.startswith("gpt-image-2"):
        return GPT_IMAGE_2
    if name.startswith(("gpt-image", "chatgpt-image")):
        return GPT_IMAGE
    return OTHER


def size_rule_of(family: Family) -> SizeRule | None:
    """The :class:`SizeRule` of ``family``: its fixed sizes (and ``auto``), the gpt-image-2
    rule (multiples of 16 up to 3840 px, 3840x2160 pixels, aspect 1:3..3:1, its standard sizes
    preferred), or None when any size goes (a model this module does not know)."""
    if family.sizes is None:
        return None
    if family.flexible:
        rule = sizes.multiple_of(FLEX_MULTIPLE, FLEX_MULTIPLE, FLEX_MAX_SIDE, buckets=family.sizes,
                                 max_pixels=FLEX_MAX_PIXELS, max_ratio=FLEX_MAX_RATIO, note=family.name)
        return rule.model_copy(update={"auto": family.auto_size})
    return sizes.fixed(*family.sizes, auto=family.auto_size, note=family.name)


MODEL_SIZE_KEYS = {"dall-e-2": DALL_E_2, "dall-e-3": DALL_E_3, "gpt-image-1": GPT_IMAGE, "gpt-image-2": GPT_IMAGE_2}
"""Model names whose size rules ``GET /providers`` lists (``Capabilities.model_sizes``)."""


def is_image_model(model: str) -> bool:
    """Whether a ``GET /models`` id is one of OpenAI's image models."""
    return model.lower().startswith(IMAGE_MODEL_PREFIXES)


def _parse(size: str) -> tuple[int, int] | None:
    width, sep, height = size.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        return None
    return int(width), int(height)


def _flex_problem(width: int, height: int) -> tuple[str, str] | None:
    """Why gpt-image-2 refuses ``width`` x ``height``, as (field, reason), or None."""
    for field, side in (("width", width), ("height", height)):
        if side % FLEX_MULTIPLE:
            return field, f"{field} {side} is not a multiple of {FLEX_MULTIPLE}"
        if side > FLEX_MAX_SIDE:
            return field, f"{field} {side} is over {FLEX_MAX_SIDE}"
    if max(width, height) > FLEX_MAX_RATIO * min(width, height):
        field = "width" if width > height else "height"
        return field, "the aspect ratio is outside 1:3 to 3:1"
    if width * height > FLEX_MAX_PIXELS:
        return "width", f"{width * height} pixels is over {FLEX_MAX_PIXELS} (3840x2160)"
    return None


def check_size(family: Family, model: str, width: int, height: int, size: str | None = None) -> str:
    """The ``size`` body field for ``width`` x ``height`` pixels (or an explicit ``size``,
    ``"auto"`` or ``"WxH"``, from ``request.extra``), checked against the family's sizes.

    Raises:
        InvalidRequest: the size is not one the model takes; ``field`` is ``width`` or
            ``height`` (``extra.size`` for a bad explicit size), the message lists the sizes.
    """
    text = (str(size) if size is not None else f"{width}x{height}").strip().lower()
    if family.sizes is None:
        return text
    accepted = ", ".join(family.sizes + (("auto",) if family.auto_size else ()))
    if text == "auto":
        if family.auto_size:
            return text
        raise InvalidRequest(f"{model} does not take size auto; accepted sizes: {accepted}", field="extra.size")
    parsed = _parse(text)
    if parsed is None:
        raise InvalidRequest(f"size {text!r} is not WIDTHxHEIGHT; accepted sizes for {model}: {accepted}",
                             field="extra.size")
    if text in family.sizes:
        return text
    w, h = parsed
    if family.flexible:
        problem = _flex_problem(w, h)
        if problem is None:
            return text
        field, reason = problem
        raise InvalidRequest(f"size {text} is refused by {model}: {reason}; its standard sizes are {accepted}, "
                             f"others need sides that are multiples of {FLEX_MULTIPLE}, at most "
                             f"{FLEX_MAX_SIDE} px and {FLEX_MAX_PIXELS} pixels, aspect 1:3 to 3:1",
                             field=field if size is None else "extra.size")
    widths = {_parse(s)[0] for s in family.sizes}  # type: ignore[index]
    field = "height" if w in widths else "width"
    raise InvalidRequest(f"size {text} is not accepted by {model}; accepted sizes: {accepted}",
                         field=field if size is None else "extra.size")
