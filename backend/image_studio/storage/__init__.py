"""Asset storage: where generated files, their sidecars and thumbnails live.

:class:`AssetStore` is the contract the Studio calls; :class:`LocalAssetStore` keeps assets
on local disk (the default). :mod:`.metadata` reads and writes the generation parameters
in PNG text chunks; :mod:`.mime` sniffs formats; :mod:`.thumbnails` makes WebP thumbnails.
"""

from __future__ import annotations

from .base import AssetStore, AssetStream
from .local import LocalAssetStore
from .metadata import build_infotext, embed_png_text, read_png_text
from .mime import Sniffed, sniff

__all__ = [
    "AssetStore",
    "AssetStream",
    "LocalAssetStore",
    "Sniffed",
    "build_infotext",
    "embed_png_text",
    "read_png_text",
    "sniff",
]
