"""Image Studio for Open WebUI: one request shape over many image and video generators.

Public API::

    from image_studio import Studio, Settings, GenerationRequest, create_app

``create_app`` (FastAPI) is imported on first use, so the core stays importable without
loading the HTTP layer.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

from . import errors  # noqa: E402 - the version is set first: the API layer reads it
from .config import Settings, StudioConfig
from .errors import ImageStudioError
from .studio import Studio
from .types import Asset, GenerationRequest, GenerationResult, Job, JobStatus, MediaKind, ProgressEvent

__all__ = [
    "Asset", "GenerationRequest", "GenerationResult", "ImageStudioError", "Job", "JobStatus", "MediaKind",
    "ProgressEvent", "Settings", "Studio", "StudioConfig", "__version__", "create_app", "errors",
]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .api.app import create_app

        return create_app
    raise AttributeError(f"module 'image_studio' has no attribute {name!r}")
