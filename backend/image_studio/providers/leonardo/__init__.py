"""Leonardo.Ai (https://leonardo.ai): the adapter in :mod:`.provider`, the wire format in :mod:`.wire`."""

from .provider import LEONARDO_URL, LeonardoProvider, LeonardoSettings

__all__ = ["LEONARDO_URL", "LeonardoProvider", "LeonardoSettings"]
