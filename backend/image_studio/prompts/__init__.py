"""Prompts: length limits, a CLIP token estimate, keywords, and shortening long prompts
through an OpenAI-compatible chat LLM (Ollama at 127.0.0.1:11434 by default).

* :mod:`.analysis` — limits, token estimate, keywords and what would be done to a prompt.
* :mod:`.optimize` — the LLM call that shortens a prompt, never failing a generation.
"""

from .analysis import (HARD_LIMIT, SOFT_LIMIT, CLIP_WINDOW, PromptAnalysis, PromptTooLong, analyse,
                       clip_token_estimate, keywords)
from .optimize import Optimization, PromptOptimizer

__all__ = ["CLIP_WINDOW", "HARD_LIMIT", "Optimization", "PromptAnalysis", "PromptOptimizer", "PromptTooLong",
           "SOFT_LIMIT", "analyse", "clip_token_estimate", "keywords"]
