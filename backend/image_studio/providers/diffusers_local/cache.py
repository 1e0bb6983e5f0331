"""Model management: the diffusers pipelines on this machine, downloads and deletes.

Models come from three places, each a :class:`LocalModel` with its size in bytes and location:

* the Hugging Face cache (``settings.cache_dir`` or the ``HF_HUB_CACHE`` default), scanned with
  ``huggingface_hub.scan_cache_dir``; only model repos whose snapshot holds ``model_index.json``
  (diffusers pipelines) are listed, with id = the repo id;
* every sub-folder of ``settings.model_dirs`` that holds ``model_index.json`` (id = folder name);
* the configured ``settings.model`` when it is a folder (id = the setting as written).

:func:`download` runs ``huggingface_hub.snapshot_download`` with only what diffusers loads
(configs, tokenizer files, ``*.safetensors`` in component folders; the ``variant`` files when
one is set), reporting progress through a ``tqdm_class`` (the hub's documented hook: "must
inherit from tqdm.auto.tqdm"). :func:`delete` uses the cache's ``delete_revisions(...).execute()``
strategy. API followed: huggingface_hub "Manage cache" and ``snapshot_download`` reference.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .settings import DiffusersLocalSettings

REPORT_EVERY = 0.2
"""Seconds between two download progress reports of one bar (the last is always sent)."""


@dataclass(frozen=True)
class LocalModel:
    """A diffusers pipeline on disk. ``size_bytes`` on disk; ``source``: hf_cache or folder."""

    id: str
    path: str
    size_bytes: int
    source: str
    pipeline_class: str | None = None
    last_modified: float | None = None


@dataclass(frozen=True)
class DownloadProgress:
    """One progress report of a download: ``done`` of ``total`` ``unit`` (``B`` bytes or
    ``it`` files); ``total`` None when not yet known; ``desc`` the hub's bar label."""

    desc: str
    unit: str
    done: float
    total: float | None


def pipeline_class(folder: str | Path) -> str | None:
    """``_class_name`` of ``folder/model_index.json`` (e.g. StableDiffusionXLPipeline), or None."""
    try:
        data = json.loads((Path(folder) / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data.get("_class_name") if isinstance(data, dict) else None


def folder_size(folder: str | Path) -> int:
    """Bytes of every file under ``folder`` (symlinks followed, each target counted once)."""
    seen: set[str] = set()
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            real = os.path.realpath(os.path.join(root, name))
            if real not in seen and os.path.isfile(real):
                seen.add(real)
                total += os.path.getsize(real)
    return total


def _folder_model(model_id: str, folder: Path) -> LocalModel:
    return LocalModel(id=model_id, path=str(folder), size_bytes=folder_size(folder), source="folder",
                      pipeline_class=pipeline_class(folder), last_modified=folder.stat().st_mtime)


def folder_models(settings: DiffusersLocalSettings) -> list[LocalModel]:
    """Pipelines in ``settings.model_dirs`` (one level down) and the configured folder ``model``."""
    from .loader import is_folder_ref

    out: list[LocalModel] = []
    if is_folder_ref(settings.model):
        folder = Path(os.path.expanduser(settings.model))
        if (folder / "model_index.json").is_file():
            out.append(_folder_model(settings.model, folder))
    for base in settings.model_dirs:
        root = Path(os.path.expanduser(base))
        if not root.is_dir():
            continue
        for sub in sorted(root.iterdir()):
            if (sub / "model_index.json").is_file() and not any(m.path == str(sub) for m in out):
                out.append(_folder_model(sub.name, sub))
    return out


def cache_models(cache_dir: str | None) -> list[LocalModel]:
    """Diffusers pipelines in the HF cache (newest revision each); [] when there is no cache."""
    from huggingface_hub import CacheNotFound, scan_cache_dir

    try:
        info = scan_cache_dir(cache_dir)
    except (CacheNotFound, ValueError, OSError):
        return []
    out: list[LocalModel] = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        revisions = [r for r in repo.revisions if (Path(r.snapshot_path) / "model_index.json").is_file()]
        if repo.repo_type != "model" or not revisions:
            continue
        newest = max(revisions, key=lambda r: r.last_modified)
        out.append(LocalModel(id=repo.repo_id, path=str(newest.snapshot_path), size_bytes=repo.size_on_disk,
                              source="hf_cache", pipeline_class=pipeline_class(newest.snapshot_path),
                              last_modified=repo.last_modified))
    return out


def local_models(settings: DiffusersLocalSettings) -> list[LocalModel]:
    """Every pipeline this provider can load without a download: folders first, then the cache."""
    models = folder_models(settings)
    ids = {m.id for m in models}
    return models + [m for m in cache_models(settings.cache_dir) if m.id not in ids]


def find_model(settings: DiffusersLocalSettings, model_id: str) -> LocalModel | None:
    """The local model with id (or path) ``model_id``, or None."""
    for model in local_models(settings):
        if model_id in (model.id, model.path):
            return model
    return None


def progress_tqdm(report: Callable[[DownloadProgress], None]) -> type:
    """A ``tqdm.auto.tqdm`` subclass that writes nowhere and sends each bar's progress to
    ``report`` (at most every :data:`REPORT_EVERY` s per bar, and always when it closes)."""
    from tqdm.auto import tqdm

    class _Null:
        def write(self, _text: str) -> None:
            return None

        def flush(self) -> None:
            return None

    class ReportingTqdm(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)  # the hub's own bar class takes a name; plain tqdm does not
            kwargs["file"], kwargs["disable"] = _Null(), False
            super().__init__(*args, **kwargs)
            self._sent = 0.0

        def update(self, n: float | None = 1) -> bool | None:
            shown = super().update(n)
            self._send(force=False)
            return shown

        def close(self) -> None:
            if not getattr(self, "_closed_sent", False):
                self._closed_sent = True
                self._send(force=True)
            super().close()

        def _send(self, *, force: bool) -> None:
            now = time.monotonic()
            if force or now - self._sent >= REPORT_EVERY:
                self._sent = now
                report(DownloadProgress(desc=str(self.desc or ""), unit=str(self.unit or "it"),
                                        done=float(self.n), total=float(self.total) if self.total else None))

    return ReportingTqdm


def download_patterns(variant: str | None) -> tuple[list[str], list[str]]:
    """``(allow_patterns, ignore_patterns)`` for a diffusers repo: configs and tokenizer files
    everywhere, weights only inside component folders (root single-file checkpoints skipped),
    only the ``variant`` weights when one is set, else none of the fp16 ones."""
    allow = ["model_index.json", "*/*.json", "*/*.txt", "*/*.model"]
    if variant:
        allow.append(f"*/*.{variant}.safetensors")
        return allow, []
    return allow + ["*/*.safetensors"], ["*.fp16.safetensors", "*.bf16.safetensors"]


def download(repo_id: str, *, cache_dir: str | None, token: str | None, variant: str | None,
             report: Callable[[DownloadProgress], None] | None = None) -> str:
    """Download hub pipeline ``repo_id`` into the cache (blocking; run it in a thread); returns
    the snapshot folder. Raises what ``snapshot_download`` raises (the provider maps it)."""
    from huggingface_hub import snapshot_download

    allow, ignore = download_patterns(variant)
    return snapshot_download(repo_id, cache_dir=cache_dir, token=token, allow_patterns=allow,
                             ignore_patterns=ignore or None,
                             tqdm_class=progress_tqdm(report) if report else None)


def delete(repo_id: str, cache_dir: str | None) -> int | None:
    """Delete every cached revision of hub model ``repo_id``; bytes freed, or None if not cached."""
    from huggingface_hub import CacheNotFound, scan_cache_dir

    try:
        info = scan_cache_dir(cache_dir)
    except (CacheNotFound, ValueError, OSError):
        return None
    for repo in info.repos:
        if repo.repo_id == repo_id and repo.repo_type == "model":
            strategy = info.delete_revisions(*(r.commit_hash for r in repo.revisions))
            strategy.execute()
            return int(strategy.expected_freed_size)
    return None


__all__ = ["DownloadProgress", "LocalModel", "cache_models", "delete", "download", "download_patterns",
           "find_model", "folder_models", "folder_size", "local_models", "pipeline_class", "progress_tqdm"]
