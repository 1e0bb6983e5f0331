"""Provider types by name: the built-ins plus the ``image_studio.providers`` entry-point group.

This is the only module that branches on provider type names. Adapters are imported lazily,
on first use, so that an unused provider's dependencies are never loaded.

A third-party package adds a provider with, in its ``pyproject.toml``::

    [project.entry-points."image_studio.providers"]
    mycloud = "mycloud_studio:MyCloudProvider"

where ``MyCloudProvider`` subclasses :class:`image_studio.providers.base.ImageProvider`.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

import httpx

from ..config import ProviderConfig
from ..errors import ConfigError
from .base import ImageProvider

BUILTINS: dict[str, str] = {
    "placeholder": "image_studio.providers.placeholder:PlaceholderProvider",
    "comfyui": "image_studio.providers.comfyui.provider:ComfyUIProvider",
    "automatic1111": "image_studio.providers.automatic1111:Automatic1111Provider",
    # API-compatible forks of Automatic1111 use the same adapter.
    "forge": "image_studio.providers.automatic1111:Automatic1111Provider",
    "sdnext": "image_studio.providers.automatic1111:Automatic1111Provider",
    # Cloud APIs and other local servers.
    "openai": "image_studio.providers.openai:OpenAIProvider",
    "openai_compatible": "image_studio.providers.openai_compatible:OpenAICompatibleProvider",
    "gemini": "image_studio.providers.gemini:GeminiProvider",
    "imagen": "image_studio.providers.gemini:ImagenProvider",
    "veo": "image_studio.providers.veo:VeoProvider",
    "stability": "image_studio.providers.stability:StabilityProvider",
    "replicate": "image_studio.providers.replicate:ReplicateProvider",
    "fal": "image_studio.providers.fal:FalProvider",
    "runware": "image_studio.providers.runware:RunwareProvider",
    "leonardo": "image_studio.providers.leonardo:LeonardoProvider",
    "huggingface": "image_studio.providers.huggingface:HuggingFaceProvider",
    "invokeai": "image_studio.providers.invokeai:InvokeAIProvider",
    "diffusers_local": "image_studio.providers.diffusers_local:DiffusersLocalProvider",
}

ENTRY_POINT_GROUP = "image_studio.providers"

_cache: dict[str, type[ImageProvider]] = {}


def _load(target: str) -> type[ImageProvider]:
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr)


def _entry_point_targets() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_types() -> list[str]:
    """Every provider type name known: built-ins and installed entry points, sorted."""
    return sorted(set(BUILTINS) | set(_entry_point_targets()))


def provider_class(type_name: str) -> type[ImageProvider]:
    """The adapter class for ``type_name``.

    Raises:
        ConfigError: no such type, or its module fails to import (the cause named).
    """
    if type_name in _cache:
        return _cache[type_name]
    target = BUILTINS.get(type_name) or _entry_point_targets().get(type_name)
    if target is None:
        raise ConfigError(
            f"unknown provider type {type_name!r}; known: {', '.join(available_types())}", field="type"
        )
    try:
        cls = _load(target)
    except Exception as exc:  # noqa: BLE001 - any import failure is a config problem to report
        raise ConfigError(f"provider type {type_name!r} failed to load: {exc}", field="type") from exc
    if not (isinstance(cls, type) and issubclass(cls, ImageProvider)):
        raise ConfigError(f"{target} is not an ImageProvider", field="type")
    _cache[type_name] = cls
    return cls


def create_provider(provider_id: str, config: ProviderConfig, http: httpx.AsyncClient) -> ImageProvider:
    """Build the adapter for one configured provider.

    Raises:
        ConfigError: unknown type or invalid settings, with ``providers.<id>...`` as the field.
    """
    try:
        cls = provider_class(config.type)
    except ConfigError as exc:
        raise ConfigError(exc.message, field=f"providers.{provider_id}.type") from exc
    return cls(provider_id, config, http)
