"""Google's Gemini API image adapters.

* :mod:`.gemini`: :class:`GeminiProvider` (type ``gemini``), the Gemini image models through
  ``models/{model}:generateContent``.
* :mod:`.imagen`: :class:`ImagenProvider` (type ``imagen``), Imagen through ``models/{model}:predict``.
* :mod:`.google`: what they (and :mod:`image_studio.providers.veo`) share: the API-key header,
  Google error bodies, model list, health probe, aspect-ratio and input-image helpers.
"""

from .gemini import GeminiProvider, GeminiSettings
from .imagen import ImagenProvider, ImagenSettings

__all__ = ["GeminiProvider", "GeminiSettings", "ImagenProvider", "ImagenSettings"]
