"""ConfigManager: the effective provider config of a running Studio, and an admin's changes.

Loads the config from every source (:func:`image_studio.config.load_config`: defaults, file,
environment, saved settings), checks the secret key against the fingerprint stored with the
saved credentials, and saves an admin's update (``PUT /config``, ``POST /config/import``)
into the settings table with every secret encrypted (:mod:`image_studio.crypto`).

What is saved is the admin's *layer*: the providers and top-level keys that differ from
what the file and the environment give, so a later edit of the file still takes effect for
everything the admin did not change. A provider of the file that an admin removes is kept,
disabled (a file provider cannot be deleted from the panel; delete it from the file).
"""

from __future__ import annotations

from typing import Any

from .config import Settings, StudioConfig, load_config
from .crypto import SecretBox, config_from_storable, config_to_public, config_to_storable, merge_masked, rotate_secrets
from .jobs.store import JobStore

SAVED_KEY = "config"
FINGERPRINT_KEY = "secret_key_fingerprint"
TOP_LEVEL = ("default_provider", "fallback_chain", "api_keys", "openai_facade")


class ConfigManager:
    """Holds :attr:`current`, the config in force.

    Args:
        settings: process settings (file path, secret keys).
        store: where saved settings live.
        fixed: a config given in code (tests, embedding) used instead of file and environment;
            saved settings still apply over it.
    """

    def __init__(self, settings: Settings, store: JobStore, *, fixed: StudioConfig | None = None) -> None:
        self.settings = settings
        self.store = store
        self.fixed = fixed
        self.current = fixed or StudioConfig()
        self._base: StudioConfig | None = fixed
        self._box: SecretBox | None = None

    @property
    def box(self) -> SecretBox:
        if self._box is None:
            self._box = SecretBox.from_settings(self.settings)
        return self._box

    def base(self) -> StudioConfig:
        """The config without the admin's layer (the fixed one, else file and environment), as
        read at :meth:`load`, so that a save compares against what the config in force was
        built from."""
        if self._base is None:
            self._base = load_config(self.settings, None, box=self.box)
        return self._base

    async def load(self) -> StudioConfig:
        """Read every source and return the effective config. Saved credentials encrypted
        under an old key (``IMAGE_STUDIO_SECRET_KEY_OLD``) are re-encrypted under the current
        one and the key fingerprint is updated.

        Raises:
            ConfigError: an invalid source (named, with the field), or a secret key that
                differs from the one the saved credentials were encrypted with.
        """
        saved = await self.store.get_setting(SAVED_KEY)
        if saved:
            stored = await self.store.get_setting(FINGERPRINT_KEY)
            fingerprint = stored.get("fingerprint") if stored else None
            self.box.check_fingerprint(fingerprint)
            if fingerprint != self.box.fingerprint():
                saved = rotate_secrets(saved, self.box)
                await self._store(saved)
        if self.fixed is not None:
            self.current = self._over(self.fixed, saved) if saved else self.fixed
        else:
            self._base = load_config(self.settings, None, box=self.box)
            self.current = load_config(self.settings, saved, box=self.box)
        return self.current

    def _over(self, base: StudioConfig, saved: dict[str, Any]) -> StudioConfig:
        layer = config_from_storable(saved, self.box)
        merged = base.model_dump(mode="python")
        merged["providers"] = {**base.providers, **layer.providers}
        for key in TOP_LEVEL:
            if key in saved:
                merged[key] = getattr(layer, key)
        return StudioConfig.model_validate(merged)

    def public(self) -> dict[str, Any]:
        """The config in force with every secret masked (for any API response)."""
        return config_to_public(self.current)

    async def save(self, update: dict[str, Any]) -> StudioConfig:
        """Apply an admin's update (public shape; masked secrets keep their values), store the
        admin's layer encrypted, and return the new config. Nothing is stored when it does
        not validate.

        Raises:
            ConfigError: the update is invalid; ``field`` names the setting.
        """
        new = merge_masked(update, self.current)
        base = self.base()
        providers = dict(new.providers)
        for pid, pcfg in base.providers.items():
            if pid not in providers:
                providers[pid] = pcfg.model_copy(update={"enabled": False})
        new = new.model_copy(update={"providers": providers})
        layer = StudioConfig.model_validate({
            "providers": {pid: p for pid, p in providers.items() if base.providers.get(pid) != p},
            **{key: getattr(new, key) for key in TOP_LEVEL},
        })
        storable = config_to_storable(layer, self.box)
        for key in TOP_LEVEL:
            if getattr(new, key) == getattr(base, key):
                storable.pop(key, None)
        await self._store(storable)
        self.current = new
        return new

    async def _store(self, storable: dict[str, Any]) -> None:
        await self.store.put_setting(SAVED_KEY, storable)
        await self.store.put_setting(FINGERPRINT_KEY, {"fingerprint": self.box.fingerprint()})
