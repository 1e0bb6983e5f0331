"""Shorten a long prompt through an OpenAI-compatible chat LLM, never failing the generation.

Wire format: OpenAI's Chat Completions API (``POST {base_url}/chat/completions`` with
``{"model", "messages", "temperature", "stream": false}``; the answer's
``choices[0].message.content``), which Ollama serves at ``http://127.0.0.1:11434/v1``
(Ollama's docs, "OpenAI compatibility"), as do vLLM, LM Studio and llama.cpp's server.

When the LLM cannot be reached, answers an error, times out, or gives back nothing shorter than
the target, the prompt goes through unchanged and :attr:`Optimization.warning` says why.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx

from .analysis import SOFT_LIMIT, keywords

log = logging.getLogger("image_studio.prompts")

SYSTEM_PROMPT = (
    "You shorten prompts for an image generation model. Rewrite the user's prompt in at most "
    "{target} characters. Keep the main subject and what it does, the setting, the art style, the "
    "medium, named artists, lighting, colours, camera and quality terms (such as: {keep}). Drop "
    "repetition and filler. Answer with the shortened prompt only: no preamble, no quotes, no notes."
)


@dataclass
class Optimization:
    """The outcome of :meth:`PromptOptimizer.optimize`: ``prompt`` is what will run (the
    ``original`` when nothing changed), ``seconds`` the time the LLM took, ``model`` the LLM,
    ``warning`` why the original was kept (LLM down, slow, or its answer too long)."""

    original: str
    prompt: str
    changed: bool
    seconds: float
    model: str | None
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"original": self.original, "optimized": self.prompt if self.changed else None,
                "changed": self.changed, "seconds": round(self.seconds, 3), "model": self.model,
                "original_length": len(self.original), "length": len(self.prompt), "warning": self.warning}


def _clean(answer: str) -> str:
    """The LLM's text without a leading label ("Here is ...:", "Prompt:") or wrapping quotes."""
    text = answer.strip()
    text = re.sub(r"^(here is|here's)[^:\n]*:\s*", "", text, flags=re.IGNORECASE)
    text = re.sub(r"^(shortened |optimi[sz]ed )?prompt:\s*", "", text, flags=re.IGNORECASE)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        text = text[1:-1].strip()
    return text


class PromptOptimizer:
    """Calls the LLM at ``base_url`` (``.../v1``) with ``model``; ``timeout`` seconds for the
    whole call; ``api_key`` sent as ``Authorization: Bearer`` when set.

    Args:
        http: the shared client (its own timeout is overridden per call).
    """

    def __init__(self, http: httpx.AsyncClient, *, base_url: str, model: str, timeout: float = 30.0,
                 api_key: str | None = None) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = timeout
        self.api_key = api_key

    async def optimize(self, prompt: str, *, target: int = SOFT_LIMIT) -> Optimization:
        """Shorten ``prompt`` to under ``target`` characters. Never raises for the LLM's
        failures: they give the original back with a warning."""
        t0 = time.perf_counter()

        def keep(warning: str) -> Optimization:
            log.warning("prompt optimization skipped: %s", warning)
            return Optimization(original=prompt, prompt=prompt, changed=False, seconds=time.perf_counter() - t0,
                                model=self.model, warning=warning)

        if len(prompt) < target:
            return Optimization(original=prompt, prompt=prompt, changed=False, seconds=0.0, model=None)
        terms = keywords(prompt)
        keep_terms = ", ".join((terms["style"] + terms["quality"])[:12]) or "style and quality words"
        body = {
            "model": self.model, "stream": False, "temperature": 0.2,
            "messages": [{"role": "system", "content": SYSTEM_PROMPT.format(target=target - 100, keep=keep_terms)},
                         {"role": "user", "content": prompt}],
        }
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        url = f"{self.base_url}/chat/completions"
        try:
            response = await self.http.post(url, json=body, headers=headers, timeout=self.timeout)
        except httpx.TimeoutException:
            return keep(f"the prompt LLM at {self.base_url} did not answer within {self.timeout:g} s; "
                        "the prompt runs as it is")
        except httpx.HTTPError as exc:
            return keep(f"the prompt LLM at {self.base_url} cannot be reached ({type(exc).__name__}); "
                        "the prompt runs as it is")
        if response.status_code >= 400:
            return keep(f"the prompt LLM answered HTTP {response.status_code}: {response.text[:200]}; "
                        "the prompt runs as it is")
        try:
            content = response.json()["choices"][0]["message"]["content"]
            text = _clean(str(content))
        except (ValueError, KeyError, IndexError, TypeError):
            return keep("the prompt LLM's answer is not a chat completion; the prompt runs as it is")
        if not text:
            return keep("the prompt LLM answered nothing; the prompt runs as it is")
        if len(text) >= target:
            return keep(f"the prompt LLM's answer is still {len(text):,} characters (target {target:,}); "
                        "the prompt runs as it is")
        return Optimization(original=prompt, prompt=text, changed=True, seconds=time.perf_counter() - t0,
                            model=self.model)
