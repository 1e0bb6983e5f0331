"""What a prompt is and what the studio will do with it: its length against the limits, an
estimate of its tokens for a CLIP text encoder, its keywords (subject, style, quality terms).

Limits (characters): over :data:`HARD_LIMIT` a prompt is refused (HTTP 400, ``PromptTooLong``);
over :data:`SOFT_LIMIT` it is shortened below it by an LLM (:mod:`.optimize`) before it runs; a
provider may set its own ``Capabilities.max_prompt_chars`` (DALL-E 3: 4,000), and providers whose
text encoder is CLIP (Stable Diffusion 1.x/2.x/XL through ComfyUI, Automatic1111, InvokeAI,
diffusers) read only :data:`CLIP_WINDOW` tokens: past that a warning says the rest is ignored
(Automatic1111 and ComfyUI chunk longer prompts into 75-token pieces, which weakens them).

The token count is an *estimate*: CLIP's tokenizer (openai/CLIP ``simple_tokenizer.py``: a
lower-cased regex pre-split into words, numbers and punctuation runs, then byte-pair merges over
a 49,408-entry vocabulary) is followed for the pre-split; the BPE step is estimated (a word of up
to 7 letters is one token, longer words one more per 5 further letters, each digit and each
punctuation mark one), which is within a few tokens of the real count on English prompts
without shipping the vocabulary.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import InvalidRequest

HARD_LIMIT = 10_000
"""Characters: a longer prompt is refused."""
SOFT_LIMIT = 3_000
"""Characters: a longer prompt is shortened below this by the LLM."""
CLIP_WINDOW = 77
"""Tokens CLIP's text encoder reads, start and end tokens included (75 of the prompt's own)."""

Action = Literal["none", "optimize", "refuse"]

# CLIP's pre-tokenizer (simple_tokenizer.py), with Python's re for \p{L} and \p{N}.
_CLIP_SPLIT = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|[^\s\w]+|_+", re.IGNORECASE)

QUALITY_TERMS = frozenset({
    "masterpiece", "best quality", "high quality", "highly detailed", "detailed", "ultra detailed",
    "intricate details", "intricate", "8k", "4k", "uhd", "hd", "hdr", "sharp focus", "sharp", "photorealistic",
    "realistic", "hyperrealistic", "ultra realistic", "professional", "award winning", "trending on artstation",
    "studio lighting", "volumetric lighting", "cinematic lighting", "soft lighting", "dramatic lighting",
    "octane render", "unreal engine", "ray tracing", "depth of field", "bokeh", "high resolution", "absurdres",
})
STYLE_TERMS = frozenset({
    "oil painting", "watercolor", "watercolour", "acrylic", "digital art", "digital painting", "concept art",
    "illustration", "anime", "manga", "cartoon", "pixel art", "3d render", "low poly", "photograph", "photo",
    "photography", "film photography", "polaroid", "sketch", "pencil sketch", "charcoal", "ink", "line art",
    "impressionism", "impressionist", "surrealism", "surreal", "art nouveau", "art deco", "baroque", "cyberpunk",
    "steampunk", "vaporwave", "synthwave", "fantasy", "sci-fi", "minimalist", "isometric", "vector art",
    "ukiyo-e", "pop art", "comic", "comic book", "cinematic", "noir", "vintage", "retro", "gothic", "studio ghibli",
    "pastel", "flat design", "claymation", "stained glass", "mosaic", "tilt-shift", "macro", "portrait",
    "landscape", "long exposure", "black and white", "monochrome",
})
_STYLE_PATTERNS = (re.compile(r"\b(in the style of|style of|by)\s+[^,.;]+", re.IGNORECASE),
                   re.compile(r"\b[\w-]+\s+style\b", re.IGNORECASE))


class PromptTooLong(InvalidRequest):
    """The prompt is over :data:`HARD_LIMIT` characters (HTTP 400, field ``prompt``)."""

    http_status = 400


def check_hard_limit(prompt: str, field: str = "prompt", limit: int = HARD_LIMIT) -> None:
    """Raises :class:`PromptTooLong` when ``prompt`` is over ``limit`` characters."""
    if len(prompt) > limit:
        raise PromptTooLong(f"the {field.replace('_', ' ')} is {len(prompt):,} characters; the limit is {limit:,}",
                            field=field)


def clip_token_estimate(text: str) -> int:
    """Estimated CLIP tokens of ``text``, without the start and end tokens (see the module
    docstring for the method)."""
    count = 0
    for piece in _CLIP_SPLIT.findall(text.lower()):
        if piece[0].isalpha():
            count += 1 + max(0, math.ceil((len(piece) - 7) / 5))
        elif piece[0] in "'_":
            count += 1
        else:  # a digit, or a run of punctuation: CLIP's BPE keeps most marks one token each
            count += len(piece) if not piece.isdigit() else 1
    return count


def _clauses(prompt: str) -> list[str]:
    return [c.strip() for c in re.split(r"[,;\n]|\.\s", prompt) if c.strip()]


def keywords(prompt: str) -> dict[str, list[str]]:
    """``{"subject": [...], "style": [...], "quality": [...]}``: the first clause(s) that are
    neither style nor quality terms are the subject; style and quality terms are matched from
    word lists and "in the style of ..."/"... style"/"by ..." phrases. Each list keeps the
    prompt's order and has no repeats."""
    subject: list[str] = []
    style: list[str] = []
    quality: list[str] = []

    def add(bucket: list[str], term: str) -> None:
        if term and term not in bucket:
            bucket.append(term)

    for clause in _clauses(prompt):
        low = clause.lower().strip(" .()[]")
        words = re.sub(r"[()\[\]:]+|(?<=\D)[0-9.]+(?=\))", " ", low).split()
        norm = " ".join(words)
        matched = False
        if norm in QUALITY_TERMS:
            add(quality, norm)
            matched = True
        elif norm in STYLE_TERMS:
            add(style, norm)
            matched = True
        else:
            for pattern in _STYLE_PATTERNS:
                for m in pattern.finditer(clause):
                    add(style, m.group(0).strip().lower())
                    matched = True
            for n in (3, 2, 1):  # multi-word terms first
                for i in range(len(words) - n + 1):
                    gram = " ".join(words[i:i + n])
                    if gram in QUALITY_TERMS and not any(gram in q for q in quality):
                        add(quality, gram)
                        matched = True
                    elif gram in STYLE_TERMS and not any(gram in s for s in style):
                        add(style, gram)
                        matched = True
        if not matched or (not subject and len(words) > 2):
            if len(subject) < 3 and norm not in quality and norm not in style:
                add(subject, clause.strip())
    return {"subject": subject, "style": style, "quality": quality}


@dataclass
class PromptAnalysis:
    """What :func:`analyse` found. ``length`` in characters; ``tokens`` the CLIP estimate;
    ``token_limit`` 75 (CLIP's window less its start/end tokens) when the provider's text
    encoder is CLIP, else None; ``action`` what a generation will do: ``none``, ``optimize``
    (shortened below ``soft_limit`` first) or ``refuse`` (over ``hard_limit``)."""

    length: int
    hard_limit: int
    soft_limit: int
    provider_limit: int | None
    tokens: int
    token_limit: int | None
    keywords: dict[str, list[str]]
    action: Action
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"length": self.length, "hard_limit": self.hard_limit, "soft_limit": self.soft_limit,
                "provider_limit": self.provider_limit, "tokens": self.tokens, "token_limit": self.token_limit,
                "keywords": self.keywords, "action": self.action, "warnings": self.warnings}


def analyse(prompt: str, *, provider_limit: int | None = None, clip: bool = False,
            soft_limit: int = SOFT_LIMIT, hard_limit: int = HARD_LIMIT, optimize: bool = True) -> PromptAnalysis:
    """Analyse ``prompt`` for a provider that takes at most ``provider_limit`` characters
    (None: no own limit) and reads it with a CLIP text encoder when ``clip``. With
    ``optimize`` off (no LLM configured), a prompt over the soft limit is left as it is, with
    a warning."""
    length = len(prompt)
    tokens = clip_token_estimate(prompt)
    warnings: list[str] = []
    if length > hard_limit:
        action: Action = "refuse"
        warnings.append(f"over the {hard_limit:,}-character limit: it will be refused")
    elif length > soft_limit and optimize:
        action = "optimize"
        warnings.append(f"over {soft_limit:,} characters: an LLM will shorten it before it runs")
    else:
        action = "none"
        if length > soft_limit:
            warnings.append(f"over {soft_limit:,} characters and prompt optimization is off: it runs as it is")
    if provider_limit is not None and length > provider_limit and action != "refuse":
        if action == "optimize" and soft_limit <= provider_limit:
            pass  # the shortened prompt will fit
        else:
            warnings.append(f"the provider takes at most {provider_limit:,} characters: it will skip this prompt")
    token_limit = CLIP_WINDOW - 2 if clip else None
    if token_limit is not None and tokens > token_limit:
        warnings.append(f"about {tokens} CLIP tokens: the text encoder reads {token_limit}; the rest is "
                        "ignored or weakened")
    return PromptAnalysis(length=length, hard_limit=hard_limit, soft_limit=soft_limit, provider_limit=provider_limit,
                          tokens=tokens, token_limit=token_limit, keywords=keywords(prompt), action=action,
                          warnings=warnings)
