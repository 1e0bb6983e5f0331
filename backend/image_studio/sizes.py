"""Size rules: whether a provider accepts a size, the nearest size it accepts, and the pixels an
aspect ratio gives. Pure functions over :class:`~image_studio.types.SizeRule`; no I/O.

Definitions (sizes in pixels):

* *ratio distance* of two sizes: ``|ln(w1/h1) - ln(w2/h2)|`` (the relative aspect-ratio
  difference, the same for portrait and landscape); *area distance*: ``|ln(w1*h1 / (w2*h2))|``.
* *nearest* accepted size: the smallest ratio distance, then (within
  :data:`RATIO_TIE`) the smallest area distance. For a ``multiple_of`` rule the candidates
  are the request scaled into the rule's bounds (keeping its ratio) with each side rounded
  down or up to the multiple, so 1000x600 on multiples of 64 gives 960x576 (the same 5:3).
* ``aspect_ratios`` rules (Gemini, Imagen, Veo, Stability) are told a ratio, not pixels: a
  size fits when its ratio is one they offer (1920x1080 is 16:9, 512x512 is 1:1) or it is one
  of their listed pixel sizes; ``nearest`` takes the offered ratio nearest to the request's.
  Of that ratio's entries (tiers such as 1K/2K or 720p/1080p/4k) the smallest whose long side
  is at least the request's long side is used, else the largest; the request sent on gets
  that entry's pixels (so the adapter picks the same tier) and the job records them.
* An ``aspect_ratio`` request (``"16:9"``) with a target area (the request's width x height):
  ``fixed`` rules take the listed size of that ratio (within :data:`RATIO_TOLERANCE`) with the
  closest area; ``aspect_ratios`` rules that ratio's entry (tier) with the closest area;
  ``multiple_of`` rules the nearest preferred bucket when one is within
  :data:`BUCKET_TOLERANCE`, else the multiples nearest to that ratio at that area. With
  ``size_policy: nearest`` a ratio the provider lacks gives its nearest ratio instead.

Where rules apply (:func:`fit`): every txt2img request and video; an img2img or inpaint
request only on ``fixed`` and ``multiple_of`` rules (those send width and height) or when it
gives an ``aspect_ratio`` (the aspect-ratio APIs otherwise follow the input image); never an
upscale. A provider with no rule accepts any size up to its ``max_width`` x ``max_height``
(over it, ``exact`` leaves the refusal to ``Capabilities.check`` as before and ``nearest``
scales the size down into it).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .types import Capabilities, GenerationMode, GenerationRequest, RatioSize, SizeRule

RATIO_TIE = 1e-6
"""Ratio distances closer than this count as equal (then the area decides)."""
RATIO_TOLERANCE = 0.01
"""Ratio distance (about 1 %) within which a listed size counts as having a requested ratio."""
BUCKET_TOLERANCE = 0.05
"""Ratio distance (about 5 %) within which a preferred bucket serves an aspect-ratio request."""

SDXL_BUCKETS: tuple[str, ...] = ("1024x1024", "1152x896", "896x1152", "1216x832", "832x1216", "1344x768",
                                 "768x1344", "1536x640", "640x1536")
"""The SDXL training resolution buckets (about 1 megapixel each, sides multiples of 64)."""

_SIZE = re.compile(r"^\s*(\d{1,6})\s*[xX×]\s*(\d{1,6})\s*$")


@dataclass(frozen=True)
class Fit:
    """What :func:`fit` decided for one provider: ``request`` to send it (width/height set to
    the size used) and ``size`` (``"WxH"``, None where no rule applied), or ``reason`` (why
    the provider cannot take the size) and ``field`` (``width``, ``height`` or
    ``aspect_ratio``)."""

    request: GenerationRequest | None
    size: str | None = None
    reason: str | None = None
    field: str | None = None
    snapped: bool = False


# parsing ---------------------------------------------------------------------------------


def parse_size(text: str) -> tuple[int, int] | None:
    """``(width, height)`` from ``"WxH"`` (``x``, ``X`` or ``×``), None when it is not one."""
    match = _SIZE.match(text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def parse_ratio(text: str) -> float:
    """``W/H`` of ``"W:H"``. Raises ValueError when it is not two positive integers."""
    w, sep, h = text.partition(":")
    if not sep or int(w) <= 0 or int(h) <= 0:
        raise ValueError(f"{text!r} is not W:H")
    return int(w) / int(h)


def size_text(width: int, height: int) -> str:
    """``"WxH"``."""
    return f"{width}x{height}"


def ratio_distance(w1: float, h1: float, w2: float, h2: float) -> float:
    """``|ln(w1/h1) - ln(w2/h2)|``: 0 for the same aspect ratio."""
    return abs(math.log(w1 / h1) - math.log(w2 / h2))


def area_distance(w1: float, h1: float, w2: float, h2: float) -> float:
    """``|ln(w1*h1 / (w2*h2))|``: 0 for the same area."""
    return abs(math.log((w1 * h1) / (w2 * h2)))


def _closest(candidates: list[tuple[int, int]], ratio: float, area: float) -> tuple[int, int]:
    """The candidate with the smallest ratio distance to ``ratio``, then the closest area."""
    best_ratio = min(abs(math.log(w / h) - math.log(ratio)) for w, h in candidates)
    near = [(w, h) for w, h in candidates if abs(math.log(w / h) - math.log(ratio)) <= best_ratio + RATIO_TIE]
    return min(near, key=lambda s: abs(math.log(s[0] * s[1] / area)))


# rules -----------------------------------------------------------------------------------


def implicit_rule(caps: Capabilities) -> SizeRule:
    """The rule of a provider that declares none: any size from 8 pixels up to its maximum."""
    return SizeRule(kind="multiple_of", multiple=1, min=8, max=min(caps.max_width, caps.max_height),
                    note="any size up to the provider's maximum")


def fixed_sizes(rule: SizeRule) -> list[tuple[int, int]]:
    """The pixel sizes of a ``fixed`` rule (``auto`` left out)."""
    return [s for s in (parse_size(t) for t in rule.sizes) if s is not None]


def ratio_entries(rule: SizeRule) -> list[RatioSize]:
    """The entries of an ``aspect_ratios`` rule."""
    return list(rule.ratios)


def accepts(rule: SizeRule, width: int, height: int) -> bool:
    """Whether ``rule`` takes ``width`` x ``height`` pixels as they are."""
    if rule.kind == "fixed":
        return (width, height) in fixed_sizes(rule)
    if rule.kind == "aspect_ratios":
        return bool(_ratio_match(rule, width, height))
    return _multiple_problem(rule, width, height) is None


def _ratio_match(rule: SizeRule, width: int, height: int) -> list[RatioSize]:
    """Entries of an ``aspect_ratios`` rule with the size's ratio (or its exact pixels)."""
    exact = [e for e in rule.ratios if (e.width, e.height) == (width, height)]
    if exact:
        return [e for e in rule.ratios if e.ratio == exact[0].ratio]
    return [e for e in rule.ratios if _same_label(e.ratio, width / height)]


def _nearest_label(rule: SizeRule, ratio: float) -> list[RatioSize]:
    """Entries of the offered ratio nearest to ``ratio``."""
    labelled = [(e, parse_ratio(e.ratio)) for e in rule.ratios]
    best = min(abs(math.log(r / ratio)) for _, r in labelled)
    label = next(e.ratio for e, r in labelled if abs(math.log(r / ratio)) <= best + RATIO_TIE)
    return [e for e in rule.ratios if e.ratio == label]


def _tier(entries: list[RatioSize], long_side: float) -> tuple[int, int]:
    """Of one ratio's entries, the smallest whose long side is at least ``long_side``, else
    the largest."""
    ordered = sorted(entries, key=lambda e: max(e.width, e.height))
    pick = next((e for e in ordered if max(e.width, e.height) >= long_side - 0.5), ordered[-1])
    return pick.width, pick.height


def _multiple_problem(rule: SizeRule, width: int, height: int) -> tuple[str, str] | None:
    """Why a ``multiple_of`` rule refuses the size, as (field, reason), or None."""
    for name, side in (("width", width), ("height", height)):
        if side % rule.multiple:
            return name, f"{name} {side} is not a multiple of {rule.multiple}"
        if rule.min is not None and side < rule.min:
            return name, f"{name} {side} is under {rule.min}"
        if rule.max is not None and side > rule.max:
            return name, f"{name} {side} is over {rule.max}"
    if rule.max_pixels is not None and width * height > rule.max_pixels:
        return "width", f"{width}x{height} is {width * height} pixels, over {rule.max_pixels}"
    if rule.max_ratio is not None and max(width, height) > rule.max_ratio * min(width, height):
        return ("width" if width > height else "height"), f"the aspect ratio is outside 1:{rule.max_ratio:g} to " \
                                                          f"{rule.max_ratio:g}:1"
    return None


def describe(rule: SizeRule) -> str:
    """The accepted sizes in words, for error messages: ``"256x256, 512x512, 1024x1024"``,
    ``"aspect ratios 1:1 (1024x1024), 16:9 (1408x768) ..."`` or ``"multiples of 64 from 256 to
    2048 pixels a side"``."""
    if rule.kind == "fixed":
        return ", ".join([*rule.sizes, *(["auto"] if rule.auto else [])])
    if rule.kind == "aspect_ratios":
        groups: dict[str, list[str]] = {}
        for e in rule.ratios:
            groups.setdefault(e.ratio, []).append(size_text(e.width, e.height) + (f" {e.tier}" if e.tier else ""))
        return "aspect ratios " + ", ".join(f"{r} ({' or '.join(v)})" for r, v in groups.items())
    text = f"multiples of {rule.multiple}" if rule.multiple > 1 else "any size"
    if rule.min is not None and rule.max is not None:
        text += f" from {rule.min} to {rule.max} pixels a side"
    elif rule.max is not None:
        text += f" up to {rule.max} pixels a side"
    if rule.max_pixels is not None:
        text += f", at most {rule.max_pixels} pixels in all"
    if rule.max_ratio is not None:
        text += f", aspect ratio within 1:{rule.max_ratio:g} to {rule.max_ratio:g}:1"
    if rule.buckets:
        text += f" (preferred: {', '.join(rule.buckets)})"
    return text


# snapping --------------------------------------------------------------------------------


def _multiple_candidates(rule: SizeRule, width: float, height: float) -> list[tuple[int, int]]:
    """Sizes a ``multiple_of`` rule takes near ``width`` x ``height``: scaled into its bounds
    keeping the ratio (the ratio itself clamped to ``max_ratio``), each side rounded down and up."""
    m = rule.multiple
    if rule.max_ratio is not None and max(width, height) > rule.max_ratio * min(width, height):
        if width > height:
            width = height * rule.max_ratio
        else:
            height = width * rule.max_ratio
    scale = 1.0
    if rule.max is not None:
        scale = min(scale, rule.max / max(width, height))
    if rule.max_pixels is not None:
        scale = min(scale, math.sqrt(rule.max_pixels / (width * height)))
    if rule.min is not None and min(width, height) * scale < rule.min:
        scale = max(scale, rule.min / min(width, height))
    width, height = width * scale, height * scale
    lo = math.ceil((rule.min or m) / m) * m
    hi = math.floor(rule.max / m) * m if rule.max is not None else None

    def sides(value: float) -> set[int]:
        out = set()
        for v in (math.floor(value / m) * m, math.ceil(value / m) * m):
            v = max(v, lo)
            if hi is not None:
                v = min(v, hi)
            out.add(int(v))
        return out

    found = [(w, h) for w in sides(width) for h in sides(height) if accepts(rule, w, h)]
    if not found:  # over max_pixels after rounding up: shrink until one fits
        w, h = min(sides(width)), min(sides(height))
        while not accepts(rule, w, h) and w > lo and h > lo:
            w, h = max(lo, w - m), max(lo, h - m)
        found = [(w, h)]
    return found


def nearest(rule: SizeRule, width: int, height: int) -> tuple[int, int]:
    """The accepted size nearest to ``width`` x ``height`` (see the module docstring); the
    size itself when ``rule`` accepts it (for an ``aspect_ratios`` rule: the pixels of the
    entry it fits)."""
    if rule.kind == "aspect_ratios":
        entries = _ratio_match(rule, width, height) or _nearest_label(rule, width / height)
        return _tier(entries, max(width, height))
    if accepts(rule, width, height):
        return width, height
    ratio, area = width / height, float(width * height)
    if rule.kind == "fixed":
        return _closest(fixed_sizes(rule), ratio, area)
    return _closest(_multiple_candidates(rule, width, height), ratio, area)


def for_ratio(rule: SizeRule, ratio_text: str, area: float, *, allow_other: bool) -> tuple[int, int] | None:
    """The size ``rule`` gives for aspect ratio ``ratio_text`` (``"W:H"``) at about ``area``
    pixels; None when the rule has no such ratio and ``allow_other`` is false (with it, the
    nearest ratio the rule has)."""
    ratio = parse_ratio(ratio_text)
    if rule.kind == "aspect_ratios":
        same = [e for e in rule.ratios if _same_label(e.ratio, ratio)]
        if not same and not allow_other:
            return None
        entries = same or _nearest_label(rule, ratio)
        return min(((e.width, e.height) for e in entries), key=lambda s: abs(math.log(s[0] * s[1] / area)))
    if rule.kind == "fixed":
        sizes = fixed_sizes(rule)
        same = [s for s in sizes if abs(math.log(s[0] / s[1] / ratio)) <= RATIO_TOLERANCE]
        if same:
            return min(same, key=lambda s: abs(math.log(s[0] * s[1] / area)))
        return _closest(sizes, ratio, area) if allow_other else None
    buckets = [s for s in (parse_size(b) for b in rule.buckets) if s is not None and accepts(rule, *s)]
    if buckets:
        pick = _closest(buckets, ratio, area)
        if abs(math.log(pick[0] / pick[1] / ratio)) <= BUCKET_TOLERANCE:
            return pick
    width, height = math.sqrt(area * ratio), math.sqrt(area / ratio)
    pick = _closest(_multiple_candidates(rule, width, height), ratio, area)
    if abs(math.log(pick[0] / pick[1] / ratio)) > BUCKET_TOLERANCE and not allow_other:
        return None
    return pick


def _same_label(label: str, ratio: float) -> bool:
    try:
        return abs(math.log(parse_ratio(label) / ratio)) <= RATIO_TIE
    except ValueError:
        return False


def ratios_of(rule: SizeRule) -> list[str]:
    """The aspect ratios a rule offers, for messages: the labels of an ``aspect_ratios`` rule,
    the reduced ratios of a ``fixed`` one (``1792x1024`` is ``7:4``)."""
    if rule.kind == "aspect_ratios":
        return list(dict.fromkeys(e.ratio for e in rule.ratios))
    out = []
    for w, h in fixed_sizes(rule):
        g = math.gcd(w, h)
        out.append(f"{w // g}:{h // g} ({w}x{h})")
    return out


# applying to a request -------------------------------------------------------------------


def applies(rule: SizeRule, request: GenerationRequest) -> bool:
    """Whether the size rule governs ``request`` (see the module docstring)."""
    mode = request.mode
    if mode is GenerationMode.upscale:
        return False
    if mode in (GenerationMode.img2img, GenerationMode.inpaint):
        return rule.kind != "aspect_ratios" or request.aspect_ratio is not None
    return True


def fit(rule: SizeRule | None, request: GenerationRequest, *, caps: Capabilities, who: str) -> Fit:
    """Apply a provider's size rule to ``request`` under its ``size_policy``.

    ``rule`` None means :func:`implicit_rule` (``caps`` gives the maximum); ``who`` names the
    provider or model in messages. Returns a :class:`Fit`: the request to send (width and
    height set to the size used, same object when nothing changed) and its size, or the reason
    the provider cannot take it (``exact`` and a size it does not accept; an aspect ratio it
    does not offer), with the accepted sizes in the message.
    """
    implicit = rule is None
    rule = rule or implicit_rule(caps)
    if not applies(rule, request):
        return Fit(request=request)
    exact = request.size_policy == "exact"
    if implicit and exact and request.aspect_ratio is None:
        return Fit(request=request, size=size_text(request.width, request.height))
    asked = request.requested_size
    if request.aspect_ratio is not None:
        pick = for_ratio(rule, request.aspect_ratio, float(request.width * request.height), allow_other=not exact)
        if pick is None:
            offered = ", ".join(ratios_of(rule)) if rule.kind == "fixed" else describe(rule)
            return Fit(request=None, field="aspect_ratio",
                       reason=f"aspect ratio {asked} is not offered by {who}; it offers {offered} "
                              f"(size_policy nearest would use the nearest of these)")
        return _sized(request, pick, snapped=True)
    width, height = request.width, request.height
    if accepts(rule, width, height):
        return _sized(request, nearest(rule, width, height), snapped=False)
    pick = nearest(rule, width, height)
    if not exact:
        return _sized(request, pick, snapped=True)
    if rule.kind == "aspect_ratios":
        g = math.gcd(width, height)
        asked = f"{asked} (ratio {width // g}:{height // g})"
    return Fit(request=None, field=_field(rule, width, height),
               reason=f"size {asked} is not accepted by {who}; accepted: {describe(rule)} "
                      f"(size_policy nearest would use {size_text(*pick)})")


def _field(rule: SizeRule, width: int, height: int) -> str:
    """The request field at fault: ``height`` when the width alone is fine, else ``width``."""
    if rule.kind == "multiple_of":
        problem = _multiple_problem(rule, width, height)
        return problem[0] if problem else "width"
    if rule.kind == "aspect_ratios":
        return "width"
    widths = {s[0] for s in fixed_sizes(rule)} | {e.width for e in rule.ratios}
    return "height" if width in widths else "width"


def _sized(request: GenerationRequest, size: tuple[int, int], *, snapped: bool) -> Fit:
    width, height = size
    if (width, height) != (request.width, request.height):
        request = request.model_copy(update={"width": width, "height": height})
    return Fit(request=request, size=size_text(width, height), snapped=snapped)


# rule builders for adapters --------------------------------------------------------------


def fixed(*sizes: str, auto: bool = False, note: str | None = None) -> SizeRule:
    """A ``fixed`` rule of ``"WxH"`` sizes."""
    return SizeRule(kind="fixed", sizes=list(sizes), auto=auto, note=note)


def ratios(entries: list[tuple[str, int, int, str | None]], note: str | None = None) -> SizeRule:
    """An ``aspect_ratios`` rule from ``(ratio, width, height, tier)`` tuples."""
    return SizeRule(kind="aspect_ratios", note=note,
                    ratios=[RatioSize(ratio=r, width=w, height=h, tier=t) for r, w, h, t in entries])


def multiple_of(multiple: int, lo: int, hi: int, *, buckets: tuple[str, ...] | list[str] = (),
                max_pixels: int | None = None, max_ratio: float | None = None, note: str | None = None) -> SizeRule:
    """A ``multiple_of`` rule: sides multiples of ``multiple`` from ``lo`` to ``hi`` pixels."""
    return SizeRule(kind="multiple_of", multiple=multiple, min=lo, max=hi, buckets=list(buckets),
                    max_pixels=max_pixels, max_ratio=max_ratio, note=note)


def sdxl_class(model: str | None) -> bool:
    """Whether a checkpoint or model name looks SDXL-class (``sd_xl_base_1.0``,
    ``juggernautXL_v9``, ``stable-diffusion-xl-base-1.0``, ``ponyDiffusionV6XL``, ``sdxl-turbo``)."""
    if not model:
        return False
    name = model.lower().replace("-", "_")
    return "sdxl" in name or "sd_xl" in name or "_xl" in name or re.search(r"xl(?![a-z])", name) is not None


def local_rule(multiple: int, lo: int, hi: int, model: str | None, *, note: str) -> SizeRule:
    """The rule of a local Stable Diffusion backend: multiples of ``multiple``, with the SDXL
    buckets as preferred sizes when ``model`` looks SDXL-class."""
    buckets = SDXL_BUCKETS if sdxl_class(model) else ()
    return multiple_of(multiple, lo, hi, buckets=buckets, note=note)


__all__ = [
    "BUCKET_TOLERANCE", "Fit", "RATIO_TOLERANCE", "SDXL_BUCKETS", "accepts", "applies", "describe", "fit",
    "fixed", "for_ratio", "implicit_rule", "local_rule", "multiple_of", "nearest", "parse_ratio", "parse_size",
    "ratios", "sdxl_class", "size_text",
]
