"""Stability AI: the provider for the REST v2beta Stable Image API (https://api.stability.ai).

* :mod:`.provider`: :class:`StabilityProvider` (config type ``stability``) and
  :class:`StabilitySettings`; the HTTP calls, the creative-upscale polling, health and lists.
* :mod:`.wire`: the wire format (https://platform.stability.ai/docs/api-reference) as pure
  functions: endpoint choice, multipart fields, answer parsing and error mapping.
"""

from .provider import StabilityProvider, StabilitySettings

__all__ = ["StabilityProvider", "StabilitySettings"]
