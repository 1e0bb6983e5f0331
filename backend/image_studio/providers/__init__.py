"""Provider adapters. See :mod:`image_studio.providers.base` for the contract."""

from .base import ImageProvider, JobContext

__all__ = ["ImageProvider", "JobContext"]
