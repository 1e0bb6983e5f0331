"""Automatic1111: the provider for the stable-diffusion-webui HTTP API, also served by Forge and SD.Next.

* :mod:`.provider`: :class:`Automatic1111Provider` (provider types ``automatic1111``, ``forge``,
  ``sdnext``) and :class:`Automatic1111Settings`; the HTTP calls, progress polling, cancel and
  the one-job-at-a-time lock per backend.
* :mod:`.wire`: the wire format (AUTOMATIC1111/stable-diffusion-webui v1.10 ``modules/api``),
  as pure functions: request bodies, answer and ``info`` parsing, error mapping.
"""

from .provider import Automatic1111Provider, Automatic1111Settings

__all__ = ["Automatic1111Provider", "Automatic1111Settings"]
