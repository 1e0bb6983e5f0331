"""Prompt templates and style presets: ``{placeholders}`` filled from variables and defaults.

A template's ``prompt`` and ``negative_prompt`` hold ``{name}`` placeholders (letters, digits
and ``_``; ``{{`` and ``}}`` are literal braces). Rendering fills each from the request's
``variables``, else the template's ``defaults``; the special ``{prompt}`` takes the request's own
prompt. A style preset is a template of kind ``style`` whose ``{prompt}`` is the prompt so far
(its text is appended after a comma when it has no ``{prompt}``) and whose negative prompt is
added to the request's. The shipped presets (:data:`BUILTIN_STYLES`) follow the common SDXL
style list's wording (as Fooocus and SwarmUI ship it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidRequest

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}|\{|\}")
PROMPT_VAR = "prompt"


@dataclass(frozen=True)
class Template:
    """A template or style preset as rendering needs it; ``id`` is ``builtin:<name>`` for the
    shipped style presets."""

    id: str
    name: str
    prompt: str
    negative_prompt: str | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    kind: str = "prompt"
    description: str | None = None


def placeholders(text: str | None) -> list[str]:
    """The placeholder names in ``text``, in order, without repeats.

    Raises:
        InvalidRequest: a lone ``{`` or ``}`` or a malformed placeholder (field ``prompt``).
    """
    names: list[str] = []
    for m in _PLACEHOLDER.finditer(text or ""):
        token = m.group(0)
        if token in ("{{", "}}"):
            continue
        if m.group(1) is None:
            raise InvalidRequest(f"a lone {token!r} at character {m.start()} (write {token * 2} for a literal brace, "
                                 "or {name} for a placeholder)", field="prompt")
        if m.group(1) not in names:
            names.append(m.group(1))
    return names


def fill(text: str, values: dict[str, Any], *, template: str) -> str:
    """``text`` with every placeholder replaced by ``values[name]``.

    Raises:
        InvalidRequest: a placeholder has no value (field ``variables.<name>``).
    """
    def repl(m: re.Match[str]) -> str:
        token = m.group(0)
        if token in ("{{", "}}"):
            return token[0]
        name = m.group(1)
        if name not in values or values[name] is None:
            raise InvalidRequest(f"template {template!r} needs a value for {{{name}}} (no default)",
                                 field=f"variables.{name}")
        return str(values[name])

    return _PLACEHOLDER.sub(repl, text)


def tidy(text: str) -> str:
    """Drop the empty comma-separated pieces an empty placeholder leaves (``"a, , b,"`` ->
    ``"a, b"``) and surrounding spaces."""
    text = re.sub(r"\s*,(\s*,)+", ",", text)
    text = re.sub(r"^\s*,\s*|\s*,\s*$", "", text)
    text = re.sub(r"\s*,\s*(?=\s\.\s|$)", "", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def render(template: Template, variables: dict[str, Any], prompt: str = "") -> tuple[str, str | None]:
    """The ``(prompt, negative_prompt)`` of ``template`` filled from ``variables`` (over its
    ``defaults``); ``prompt`` is the request's own text, for ``{prompt}``.

    Raises:
        InvalidRequest: a variable the template does not have (field ``variables.<name>``), or
            a placeholder with no value.
    """
    names = set(placeholders(template.prompt)) | set(placeholders(template.negative_prompt))
    unknown = sorted(set(variables) - names)
    if unknown:
        raise InvalidRequest(f"template {template.name!r} has no placeholder {{{unknown[0]}}}; it has "
                             f"{', '.join('{' + n + '}' for n in sorted(names)) or 'none'}",
                             field=f"variables.{unknown[0]}")
    values = {**template.defaults, **variables}
    if prompt or PROMPT_VAR not in values:
        values[PROMPT_VAR] = prompt
    text = fill(template.prompt, values, template=template.name)
    negative = fill(template.negative_prompt, values, template=template.name) if template.negative_prompt else None
    return tidy(text), tidy(negative) if negative else negative


def apply_style(style: Template, prompt: str, negative_prompt: str | None) -> tuple[str, str | None]:
    """Add a style preset to a prompt: its ``{prompt}`` is the prompt so far (or its text is
    appended after a comma), its negative prompt is appended to the request's."""
    if PROMPT_VAR in placeholders(style.prompt):
        text = fill(style.prompt, {**style.defaults, PROMPT_VAR: prompt}, template=style.name)
    else:
        text = ", ".join(p for p in (prompt.strip(), style.prompt.strip()) if p)
    negative = negative_prompt
    if style.negative_prompt:
        negative = ", ".join(p for p in ((negative_prompt or "").strip(), style.negative_prompt.strip()) if p)
    return tidy(text), negative


def _style(name: str, prompt: str, negative: str, description: str) -> Template:
    return Template(id=f"builtin:{name}", name=name, prompt=prompt, negative_prompt=negative, kind="style",
                    description=description)


BUILTIN_STYLES: dict[str, Template] = {t.name: t for t in (
    _style("cinematic", "cinematic still {prompt} . emotional, harmonious, vignette, highly detailed, high budget, "
           "bokeh, cinemascope, moody, epic, gorgeous, film grain, grainy",
           "anime, cartoon, graphic, text, painting, crayon, graphite, abstract, glitch, deformed, mutated, ugly, "
           "disfigured", "A film still: shallow focus, moody grade, grain."),
    _style("photographic", "cinematic photo {prompt} . 35mm photograph, film, bokeh, professional, 4k, highly detailed",
           "drawing, painting, crayon, sketch, graphite, impressionist, noisy, blurry, soft, deformed, ugly",
           "A 35 mm photograph."),
    _style("anime", "anime artwork {prompt} . anime style, key visual, vibrant, studio anime, highly detailed",
           "photo, deformed, black and white, realism, disfigured, low contrast", "A studio anime key visual."),
    _style("digital-art", "concept art {prompt} . digital artwork, illustrative, painterly, matte painting, highly detailed",
           "photo, photorealistic, realism, ugly", "Painterly digital concept art."),
    _style("oil-painting", "oil painting of {prompt} . visible brush strokes, rich colours, canvas texture, "
           "masterpiece", "photo, photorealistic, 3d render, flat colours, text", "A classical oil painting."),
    _style("watercolor", "watercolor painting {prompt} . vibrant, beautiful, painterly, detailed, textural, artistic",
           "anime, photorealistic, 35mm film, deformed, glitch, low contrast, noisy", "A watercolour painting."),
    _style("pixel-art", "pixel-art {prompt} . low-res, blocky, pixel art style, 8-bit graphics",
           "sloppy, messy, blurry, noisy, highly detailed, ultra textured, photo, realistic", "8-bit pixel art."),
    _style("line-art", "line art drawing {prompt} . professional, sleek, modern, minimalist, graphic, line art, "
           "vector graphics", "anime, photorealistic, 35mm film, deformed, glitch, blurry, noisy, off-center, "
           "deformed, cross-eyed, closed eyes, bad anatomy, ugly, disfigured, mutated, realism, realistic, "
           "impressionism, expressionism, oil, acrylic", "Clean vector line art."),
    _style("3d-model", "professional 3d model {prompt} . octane render, highly detailed, volumetric, dramatic lighting",
           "ugly, deformed, noisy, low poly, blurry, painting", "A rendered 3D model."),
    _style("isometric", "isometric style {prompt} . vibrant, beautiful, crisp, detailed, ultra detailed, intricate",
           "deformed, mutated, ugly, disfigured, blur, blurry, noise, noisy, realistic, photographic",
           "An isometric illustration."),
)}
