"""fal: the provider for fal's queue API (https://queue.fal.run) and Platform API (https://api.fal.ai/v1).

* :mod:`.provider`: :class:`FalProvider` (provider type ``fal``) and :class:`FalSettings`; the
  HTTP calls, queue polling, cancel, health and model metadata.
* :mod:`.wire`: the wire format as pure functions: queue URLs (the status/result/cancel URLs
  drop the model's sub-path), inputs, results and error answers.
"""

from .provider import FalProvider, FalSettings

__all__ = ["FalProvider", "FalSettings"]
