"""ComfyUI: the provider, its client (HTTP plus one websocket per backend) and workflow templates.

* :mod:`.provider`: :class:`ComfyUIProvider` (provider type ``comfyui``) and its settings.
* :mod:`.client`: :class:`ComfyUIClient`, the HTTP API and the shared websocket (:mod:`.ws`).
* :mod:`.workflow`: templates, parameter slots, :func:`apply`, :func:`detect_slots`;
  :mod:`.convert`: :func:`ui_to_api` (UI format to API format).
* :mod:`.protocol`: the wire shapes (binary frames, error bodies, history entries).
"""

from .client import ComfyUIClient
from .convert import ui_to_api
from .provider import ComfyUIProvider, ComfyUISettings
from .workflow import WorkflowTemplate, apply, detect_slots, list_templates, load_template

__all__ = [
    "ComfyUIClient",
    "ComfyUIProvider",
    "ComfyUISettings",
    "WorkflowTemplate",
    "apply",
    "detect_slots",
    "list_templates",
    "load_template",
    "ui_to_api",
]
