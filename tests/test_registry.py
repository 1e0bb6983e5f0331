"""The provider registry: built-ins, lazy loading, and third-party providers through the
``image_studio.providers`` entry-point group (a real installed distribution on sys.path)."""

from __future__ import annotations

import sys
import textwrap

import httpx
import pytest

from image_studio.config import ProviderConfig
from image_studio.errors import ConfigError
from image_studio.providers import registry


@pytest.fixture
def third_party(tmp_path, monkeypatch):
    """A distribution 'studio-extra' that registers provider type 'extra' via entry points."""
    pkg = tmp_path / "studio_extra"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent('''
        from image_studio.providers.placeholder import PlaceholderProvider

        class ExtraProvider(PlaceholderProvider):
            type = "extra"
    '''))
    dist = tmp_path / "studio_extra-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: studio-extra\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[image_studio.providers]\nextra = studio_extra:ExtraProvider\n"
                                           "broken = studio_extra_missing:Nope\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    registry._cache.pop("extra", None)
    sys.modules.pop("studio_extra", None)


def test_builtins_are_known_and_forks_share_the_a1111_adapter():
    types = registry.available_types()
    assert {"placeholder", "comfyui", "automatic1111", "forge", "sdnext"} <= set(types)
    assert registry.provider_class("forge") is registry.provider_class("automatic1111")


async def test_entry_point_provider_is_found_and_built(third_party):
    assert "extra" in registry.available_types()
    async with httpx.AsyncClient() as http:
        provider = registry.create_provider("x", ProviderConfig(type="extra"), http)
        assert type(provider).__name__ == "ExtraProvider" and provider.id == "x"


def test_unknown_and_broken_types_are_config_errors(third_party):
    with pytest.raises(ConfigError) as info:
        registry.provider_class("nope")
    assert "known:" in info.value.message
    with pytest.raises(ConfigError) as info:
        registry.provider_class("broken")
    assert "failed to load" in info.value.message


async def test_create_provider_names_the_provider_field():
    async with httpx.AsyncClient() as http:
        with pytest.raises(ConfigError) as info:
            registry.create_provider("p1", ProviderConfig(type="nope"), http)
        assert info.value.field == "providers.p1.type"
        with pytest.raises(ConfigError) as info:
            registry.create_provider("p2", ProviderConfig(type="placeholder", settings={"delay": -1}), http)
        assert info.value.field == "providers.p2.settings.delay"
