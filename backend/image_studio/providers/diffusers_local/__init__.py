"""diffusers_local: Stable Diffusion 1.x/2.x, SDXL and turbo pipelines run in this process.

* :mod:`.provider`: :class:`DiffusersLocalProvider` (config type ``diffusers_local``): generation
  in a worker thread, one at a time, with progress, cancel, health and model management.
* :mod:`.settings`: :class:`DiffusersLocalSettings`, the settings form.
* :mod:`.loader`: device and precision choice, locating the model (never downloading unless
  allowed), loading and keeping the pipeline, the idle unload.
* :mod:`.runner`: one generation on a loaded pipeline: seeds, call arguments, samplers, the
  per-step callback (progress, preview, interrupt).
* :mod:`.cache`: models on disk (HF cache and folders), download with progress, delete.

Needs the ``local`` extra (torch, diffusers, transformers, accelerate); nothing heavy is
imported until a generation, health probe or model listing needs it.
"""

from .provider import DiffusersLocalProvider
from .settings import DiffusersLocalSettings

__all__ = ["DiffusersLocalProvider", "DiffusersLocalSettings"]
