"""Prompts: ``POST /prompts/validate`` (length, limits, CLIP token estimate, keywords, what a
generation would do) and ``POST /prompts/optimize`` (shorten through the configured LLM)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ..prompts import analyse
from ..prompts.analysis import check_hard_limit
from .deps import PrincipalDep, StudioDep
from .schemas import ErrorBody

router = APIRouter(tags=["prompts"])


class PromptIn(BaseModel):
    """A prompt to check; ``provider`` applies that provider's own limits (its
    ``max_prompt_chars`` and CLIP token window), else the default provider's."""

    prompt: str = Field(max_length=100_000)
    negative_prompt: str | None = Field(default=None, max_length=100_000)
    provider: str | None = None


class ValidateOut(BaseModel):
    """``length`` characters; ``tokens`` the CLIP token estimate; ``token_limit`` 75 when the
    provider reads prompts with CLIP; ``action``: none, optimize or refuse; ``keywords``:
    subject, style and quality terms; ``negative`` the same for the negative prompt."""

    provider: str | None
    length: int
    hard_limit: int
    soft_limit: int
    provider_limit: int | None
    tokens: int
    token_limit: int | None
    keywords: dict[str, list[str]]
    action: str
    warnings: list[str]
    negative: dict[str, Any] | None = None


class OptimizeIn(BaseModel):
    prompt: str = Field(max_length=100_000)
    target: int | None = Field(default=None, ge=100, le=10_000,
                               description="characters to stay under (default: prompts.soft_limit)")


class OptimizeOut(BaseModel):
    """``optimized`` is None when nothing changed; ``warning`` says why (LLM down or slow)."""

    original: str
    optimized: str | None
    changed: bool
    seconds: float
    model: str | None
    original_length: int
    length: int
    warning: str | None


def _limits(studio: Any, provider_id: str | None) -> tuple[str | None, int | None, bool]:
    pid = provider_id or studio.config.default_provider
    if pid is None:
        return None, None, False
    caps = studio.provider(pid).capabilities
    return pid, caps.max_prompt_chars, caps.text_encoder == "clip"


@router.post("/prompts/validate", response_model=ValidateOut,
             responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}})
async def validate_prompt(body: PromptIn, studio: StudioDep, principal: PrincipalDep) -> ValidateOut:
    """What the studio makes of a prompt, without generating. Never refuses a long prompt
    (``action`` says ``refuse``); a generation would."""
    pid, limit, clip = _limits(studio, body.provider)
    cfg = studio.config.prompts
    kw = dict(provider_limit=limit, clip=clip, soft_limit=cfg.soft_limit, hard_limit=cfg.hard_limit,
              optimize=cfg.optimize)
    result = analyse(body.prompt, **kw)
    negative = None
    if body.negative_prompt:
        neg = analyse(body.negative_prompt, **{**kw, "optimize": False})
        negative = {"length": neg.length, "tokens": neg.tokens, "warnings": neg.warnings}
    return ValidateOut(provider=pid, negative=negative, **result.to_dict())


@router.post("/prompts/optimize", response_model=OptimizeOut,
             responses={400: {"model": ErrorBody}, 422: {"model": ErrorBody}})
async def optimize_prompt(body: OptimizeIn, studio: StudioDep, principal: PrincipalDep) -> OptimizeOut:
    """Shorten a prompt under ``target`` characters with the configured LLM (``prompts`` in the
    config). A prompt already under the target comes back unchanged; the LLM down or slow
    gives the original back with a ``warning``, never an error.

    Raises:
        PromptTooLong (400): over ``prompts.hard_limit`` characters.
    """
    cfg = studio.config.prompts
    check_hard_limit(body.prompt, limit=cfg.hard_limit)
    optimizer = studio.prompt_optimizer()
    target = body.target or cfg.soft_limit
    if optimizer is None:
        return OptimizeOut(original=body.prompt, optimized=None, changed=False, seconds=0.0, model=None,
                           original_length=len(body.prompt), length=len(body.prompt),
                           warning="prompt optimization is off (prompts.optimize in the config)")
    result = await optimizer.optimize(body.prompt, target=target)
    return OptimizeOut(**result.to_dict())
