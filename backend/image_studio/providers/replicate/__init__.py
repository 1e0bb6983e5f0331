"""Replicate: the provider for Replicate's prediction API (https://api.replicate.com/v1).

* :mod:`.provider`: :class:`ReplicateProvider` (provider type ``replicate``) and
  :class:`ReplicateSettings`; the HTTP calls, the synchronous wait, polling, cancel, health.
* :mod:`.wire`: the wire format as pure functions: model references, prediction inputs
  mapped through each model's input schema, outputs and error answers.
"""

from .provider import ReplicateProvider, ReplicateSettings

__all__ = ["ReplicateProvider", "ReplicateSettings"]
