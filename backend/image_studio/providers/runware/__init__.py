"""Runware (https://runware.ai): the adapter in :mod:`.provider`, the wire format in :mod:`.wire`."""

from .provider import RUNWARE_URL, RunwareProvider, RunwareSettings

__all__ = ["RUNWARE_URL", "RunwareProvider", "RunwareSettings"]
