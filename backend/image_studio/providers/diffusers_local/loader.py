"""Finding, loading, keeping and unloading the diffusers pipeline.

* :func:`import_torch` / :func:`pick_device`: the torch device (``auto``: cuda, then mps, then
  cpu, as ``torch.cuda.is_available()`` / ``torch.backends.mps.is_available()`` report) and the
  dtype (fp16 unless on cpu, which always runs fp32).
* :func:`resolve_location`: a settings ``model`` (hub id or folder) to what
  ``from_pretrained`` loads, never downloading unless the spec allows it.
* :class:`PipelineHolder`: one loaded text-to-image pipeline, with the image-to-image and
  inpainting pipelines derived from it by ``AutoPipelineFor*.from_pipe`` (they share the UNet,
  VAE and text encoders, so no extra memory), a ``threading.Lock`` held for a whole generation,
  and an idle timer (``threading.Timer``) that unloads it, runs ``gc`` and empties the CUDA/MPS
  cache.

API followed: diffusers ``DiffusionPipeline.from_pretrained``/``from_pipe``,
``AutoPipelineForText2Image``/``Image2Image``/``Inpainting``, ``enable_model_cpu_offload``,
``enable_attention_slicing`` (diffusers 0.30-0.42 docs, "Load pipelines", "Reduce memory usage",
"AutoPipeline"); huggingface_hub ``try_to_load_from_cache``.
"""

from __future__ import annotations

import gc
import importlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import ConfigError

MODES = ("txt2img", "img2img", "inpaint")


def import_torch(provider_id: str) -> Any:
    """``torch``, or ConfigError (field ``providers.<id>.type``) naming the extra to install."""
    try:
        return importlib.import_module("torch")
    except ImportError as exc:
        raise ConfigError(f"diffusers_local needs torch: pip install 'open-webui-image-studio[local]' ({exc})",
                          field=f"providers.{provider_id}.type") from exc


def pick_device(setting: str, provider_id: str) -> str:
    """The torch device for ``setting`` (auto, cpu, mps, cuda, cuda:N).

    Raises:
        ConfigError: the device asked for is not available (field ``providers.<id>.settings.device``).
    """
    torch = import_torch(provider_id)
    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if setting == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if (setting.startswith("cuda") and not cuda) or (setting == "mps" and not mps):
        raise ConfigError(f"device {setting!r} is not available here (torch {torch.__version__} sees "
                          f"cuda={cuda}, mps={mps})", field=f"providers.{provider_id}.settings.device")
    return setting


def precision_for(device: str, precision: str) -> str:
    """``fp32`` on cpu (half precision is slow or unsupported there), else ``precision``."""
    return "fp32" if device == "cpu" else precision


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set (read now, not at import time)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def is_folder_ref(model: str) -> bool:
    """True when ``model`` names a folder (it exists, or is written as a path) rather than a hub id."""
    expanded = os.path.expanduser(model)
    return os.path.exists(expanded) or os.path.isabs(expanded) or model.startswith((".", "~")) or "\\" in model


def cached_snapshot(repo_id: str, cache_dir: str | None) -> str | None:
    """The cached snapshot folder of hub pipeline ``repo_id`` (it holds model_index.json), or None."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "model_index.json", cache_dir=cache_dir)
    except ValueError:  # not a valid repo id
        return None
    return os.path.dirname(found) if isinstance(found, str) else None


def resolve_location(model: str, *, cache_dir: str | None, allow_download: bool, field: str) -> tuple[str, bool]:
    """Where to load ``model`` from: ``(folder or hub id, local_only)``.

    A folder must hold ``model_index.json``; a hub id is looked up in the HF cache and loaded
    from its snapshot folder; when it is not cached it is returned as is (``local_only`` False)
    only if ``allow_download``. Never touches the network.

    Raises:
        ConfigError: the folder or cached model is missing (``field`` named, the fix said).
    """
    if is_folder_ref(model):
        folder = Path(os.path.expanduser(model))
        if not folder.is_dir():
            raise ConfigError(f"model folder {str(folder)!r} does not exist", field=field)
        if not (folder / "model_index.json").is_file():
            raise ConfigError(f"{str(folder)!r} is not a diffusers pipeline folder (no model_index.json)",
                              field=field)
        return str(folder), True
    snapshot = cached_snapshot(model, cache_dir)
    if snapshot is not None:
        return snapshot, True
    if allow_download and not hub_offline():
        return model, False
    why = "HF_HUB_OFFLINE is set" if hub_offline() else "auto_download is off"
    raise ConfigError(f"model {model!r} is not in the local Hugging Face cache ({cache_dir or 'default cache'}) "
                      f"and {why}: download it from the model manager, or point model at a local folder",
                      field=field)


@dataclass(frozen=True)
class LoadSpec:
    """Everything that decides what a loaded pipeline is; a different spec means a reload."""

    model: str
    location: str
    local_only: bool
    pipeline: str = "auto"
    device: str = "cpu"
    precision: str = "fp32"
    variant: str | None = None
    cache_dir: str | None = None
    safety_checker: bool = True
    attention_slicing: bool = False
    vae_tiling: bool = False
    cpu_offload: bool = False
    token: str | None = None


def _dtype_kwarg(diffusers: Any) -> str:
    """diffusers 0.43+ renamed ``torch_dtype`` to ``dtype`` (the old name warns); probe for it."""
    try:
        deprecation = importlib.import_module("diffusers.utils.deprecation_utils")
    except ImportError:
        return "torch_dtype"
    return "dtype" if hasattr(deprecation, "_resolve_dtype") else "torch_dtype"


def _components(location: str) -> set[str]:
    """Component names in ``location/model_index.json``; for a hub id (not on disk yet) the
    SD 1.x set that has a safety checker, so it can be turned off before the download."""
    index = Path(location) / "model_index.json"
    if not index.is_file():
        return {"safety_checker"}
    try:
        return set(json.loads(index.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return set()


def load_pipeline(spec: LoadSpec) -> Any:
    """Load the text-to-image pipeline ``spec`` describes and place it on its device.

    Raises:
        OSError: missing or unreadable files (from ``from_pretrained``).
        ImportError: ``cpu_offload`` without accelerate.
    """
    import diffusers
    import torch

    classes = {"auto": "AutoPipelineForText2Image", "sd": "StableDiffusionPipeline",
               "sdxl": "StableDiffusionXLPipeline"}
    cls = getattr(diffusers, classes[spec.pipeline])
    kwargs: dict[str, Any] = {"local_files_only": spec.local_only, "cache_dir": spec.cache_dir,
                              _dtype_kwarg(diffusers): torch.float16 if spec.precision == "fp16" else torch.float32}
    if spec.variant:
        kwargs["variant"] = spec.variant
    if spec.token:
        kwargs["token"] = spec.token
    if not spec.safety_checker and "safety_checker" in _components(spec.location):
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    pipe = cls.from_pretrained(spec.location, **kwargs)
    if spec.attention_slicing:
        pipe.enable_attention_slicing()
    if spec.vae_tiling and hasattr(pipe, "vae"):
        pipe.vae.enable_tiling()
    if not (spec.cpu_offload and spec.device.startswith("cuda")):
        pipe.to(spec.device)
    return pipe


def derive_pipeline(base: Any, mode: str) -> Any:
    """The ``mode`` (img2img or inpaint) pipeline sharing ``base``'s components (``from_pipe``)."""
    import diffusers

    cls = diffusers.AutoPipelineForImage2Image if mode == "img2img" else diffusers.AutoPipelineForInpainting
    return cls.from_pipe(base)


class PipelineHolder:
    """The one loaded pipeline of a provider, its derived pipelines, and its idle unload.

    Callers hold :attr:`lock` around :meth:`pipeline` and the inference that follows, and call
    :meth:`begin`/:meth:`end` around a generation so the idle timer (``idle_seconds``; 0 = never)
    only counts time with no generation running.
    """

    def __init__(self, idle_seconds: float, logger: logging.Logger) -> None:
        self.lock = threading.Lock()
        self.idle_seconds = idle_seconds
        self.logger = logger
        self.spec: LoadSpec | None = None
        self.pipes: dict[str, Any] = {}
        self._offloaded: str | None = None
        self._timer: threading.Timer | None = None
        self._timer_guard = threading.Lock()
        self.last_used = time.monotonic()
        self.load_seconds: float | None = None

    @property
    def loaded(self) -> Any | None:
        """The loaded text-to-image pipeline, or None."""
        return self.pipes.get("txt2img")

    def pipeline(self, spec: LoadSpec, mode: str) -> Any:
        """The ``mode`` pipeline for ``spec``, loading (or reloading another spec) as needed.
        The caller holds :attr:`lock`. Raises what :func:`load_pipeline` raises."""
        if self.spec != spec:
            self._unload_locked()
            started = time.monotonic()
            self.pipes["txt2img"] = load_pipeline(spec)
            self.load_seconds = time.monotonic() - started
            self.spec = spec
            self.logger.info("loaded %s on %s (%s) in %.1f s", spec.model, spec.device, spec.precision,
                             self.load_seconds)
        if mode not in self.pipes:
            self.pipes[mode] = derive_pipeline(self.pipes["txt2img"], mode)
        pipe = self.pipes[mode]
        if spec.cpu_offload and spec.device.startswith("cuda") and self._offloaded != mode:
            pipe.enable_model_cpu_offload(device=spec.device)  # hooks are per pipeline: re-arm on switch
            self._offloaded = mode
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def begin(self) -> None:
        """A generation starts: stop the idle timer."""
        with self._timer_guard:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def end(self) -> None:
        """A generation ended: restart the idle timer (if ``idle_seconds`` > 0)."""
        self.last_used = time.monotonic()
        if self.idle_seconds <= 0:
            return
        with self._timer_guard:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.idle_seconds, self._idle_unload)
            self._timer.daemon = True
            self._timer.start()

    def _idle_unload(self) -> None:
        if not self.lock.acquire(blocking=False):
            return  # a generation runs; its end() restarts the timer
        try:
            if self.pipes and time.monotonic() - self.last_used >= self.idle_seconds * 0.99:
                self.logger.info("unloading %s after %.0f s idle", self.spec.model if self.spec else "?",
                                 self.idle_seconds)
                self._unload_locked()
        finally:
            self.lock.release()

    def unload(self) -> None:
        """Free the pipeline now (waits for a running generation to finish)."""
        self.begin()
        with self.lock:
            self._unload_locked()

    def _unload_locked(self) -> None:
        # Runs in the idle timer's thread: clear spec before swapping the pipes out, so that a
        # reader who sees ``loaded`` None never sees a stale spec.
        device = self.spec.device if self.spec else "cpu"
        self.spec = None
        self._offloaded = None
        pipes, self.pipes = self.pipes, {}
        had = bool(pipes)
        pipes.clear()
        if had:
            free_memory(device)


def free_memory(device: str) -> None:
    """Collect garbage and return cached GPU memory to the driver (cuda, mps)."""
    gc.collect()
    torch = importlib.import_module("torch")
    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif device == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()


__all__ = ["LoadSpec", "MODES", "PipelineHolder", "cached_snapshot", "free_memory", "hub_offline", "import_torch",
           "is_folder_ref", "load_pipeline", "pick_device", "precision_for", "resolve_location"]
