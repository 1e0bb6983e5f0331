"""InvokeAI: the provider for an InvokeAI 6.x server's session queue (a local server, like Automatic1111).

* :mod:`.provider`: :class:`InvokeAIProvider` and :class:`InvokeAISettings`; the HTTP calls, the
  board and model look-ups, the init image upload, polling, cancel and resume.
* :mod:`.wire`: the wire format (invoke-ai/InvokeAI ``invokeai/app/services/shared/graph.py``,
  ``session_queue_common.py`` and the web UI's graph builders), as pure functions.
"""

from .provider import InvokeAIProvider
from .settings import InvokeAISettings

__all__ = ["InvokeAIProvider", "InvokeAISettings"]
