"""OpenAI: the provider for the OpenAI Images API (GPT image models, DALL·E 2 and 3).

* :mod:`.provider`: :class:`OpenAIProvider` (type ``openai``) and :class:`OpenAISettings`;
  the HTTP calls, uploads, downloads, health and model list. The ``openai_compatible`` type
  (:mod:`image_studio.providers.openai_compatible`) subclasses it.
* :mod:`.families`: what each model family accepts (sizes, n, body fields).
* :mod:`.wire`: the wire format as pure functions: edit uploads and masks, answers, errors,
  rate-limit headers.
"""

from .provider import OpenAIProvider, OpenAISettings

__all__ = ["OpenAIProvider", "OpenAISettings"]
