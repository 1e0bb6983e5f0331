"""ConfigManager: the effective provider config of a running Studio, and an admin's changes.

Loads the config from every source (:func:`image_studio.config.load_config`: defaults, file,
environment, saved settings), checks the secret key against the fingerprint stored with the
saved credentials, and saves an admin's update (``PUT /config``, ``POST /config/import``)
into the settings table with every secret encrypted (:mod:`image_studio.crypto`).
"""

from __future__ import annotations

from typing import Any

from .config import Settings, StudioConfig, load_config
from .crypto import SecretBox, config_to_public, config_to_storable, merge_masked
from .jobs.store import JobStore

SAVED_KEY = "config"
FINGERPRINT_KEY = "secret_key_fingerprint"


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
        self._box: SecretBox | None = None

    @property
    def box(self) -> SecretBox:
        if self._box is None:
            self._box = SecretBox.from_settings(self.settings)
        return self._box

    async def load(self) -> StudioConfig:
        """Read every source and return the effective config.

        Raises:
            ConfigError: an invalid source (named, with the field), or a secret key that
                differs from the one the saved credentials were encrypted with.
        """
        saved = await self.store.get_setting(SAVED_KEY)
        if saved:
            stored = await self.store.get_setting(FINGERPRINT_KEY)
            self.box.check_fingerprint(stored.get("fingerprint") if stored else None)
        if self.fixed is not None:
            self.current = self.fixed
            if saved:
                from .crypto import config_from_storable

                merged = self.fixed.model_dump(mode="python")
                saved_cfg = config_from_storable(saved, self.box)
                for key in saved:
                    if key == "providers":
                        merged["providers"] = {**merged["providers"], **saved_cfg.providers}
                    else:
                        merged[key] = getattr(saved_cfg, key)
                self.current = StudioConfig.model_validate(merged)
        else:
            self.current = load_config(self.settings, saved, box=self.box)
        return self.current

    def public(self) -> dict[str, Any]:
        """The config in force with every secret masked (for any API response)."""
        return config_to_public(self.current)

    async def save(self, update: dict[str, Any]) -> StudioConfig:
        """Apply an admin's update (public shape; masked secrets keep their values), store it
        encrypted, and return the new config. Nothing is stored when it does not validate.

        Raises:
            ConfigError: the update is invalid; ``field`` names the setting.
        """
        new = merge_masked(update, self.current)
        await self.store.put_setting(SAVED_KEY, config_to_storable(new, self.box))
        await self.store.put_setting(FINGERPRINT_KEY, {"fingerprint": self.box.fingerprint()})
        self.current = new
        return new
