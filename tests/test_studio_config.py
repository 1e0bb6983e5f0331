"""ConfigManager: the admin's saved layer over the file, removal of file providers, secret
key rotation and a changed key."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet

from image_studio.config import Settings
from image_studio.errors import ConfigError
from image_studio.jobs.store import JobStore
from image_studio.studio_config import FINGERPRINT_KEY, SAVED_KEY, ConfigManager


def write_config(path, delay: float) -> None:
    path.write_text(json.dumps({
        "default_provider": "fromfile",
        "providers": {"fromfile": {"type": "placeholder", "settings": {"delay": delay}}},
    }))


@pytest.fixture
async def store(tmp_path):
    s = JobStore(f"sqlite+aiosqlite:///{tmp_path}/db.sqlite")
    await s.open()
    yield s
    await s.close()


async def test_admin_layer_keeps_file_edits_and_secrets_encrypted(tmp_path, store):
    cfg_file = tmp_path / "studio.json"
    write_config(cfg_file, 0.1)
    settings = Settings(data_dir=tmp_path, config=cfg_file, secret_key="first key material")
    manager = ConfigManager(settings, store)
    await manager.load()
    update = manager.public()
    update["providers"]["mine"] = {"type": "placeholder", "credentials": {"token": "tok-secret-value-1"}}
    await manager.save(update)
    saved = await store.get_setting(SAVED_KEY)
    assert set(saved["providers"]) == {"mine"}, "unchanged file providers are not copied into the database"
    assert "tok-secret-value-1" not in json.dumps(saved)
    write_config(cfg_file, 0.7)  # the file changes later
    again = await ConfigManager(settings, store).load()
    assert again.providers["fromfile"].settings["delay"] == 0.7
    assert again.providers["mine"].credentials["token"].get_secret_value() == "tok-secret-value-1"


async def test_removing_a_file_provider_disables_it(tmp_path, store):
    cfg_file = tmp_path / "studio.json"
    write_config(cfg_file, 0.0)
    settings = Settings(data_dir=tmp_path, config=cfg_file, secret_key="k")
    manager = ConfigManager(settings, store)
    await manager.load()
    update = manager.public()
    update["providers"] = {"other": {"type": "placeholder"}}
    update["default_provider"] = "other"
    new = await manager.save(update)
    assert new.providers["fromfile"].enabled is False
    reloaded = await ConfigManager(settings, store).load()
    assert reloaded.providers["fromfile"].enabled is False and reloaded.default_provider == "other"


async def test_rotation_moves_saved_secrets_to_the_new_key(tmp_path, store):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    manager = ConfigManager(Settings(data_dir=tmp_path, secret_key=old), store)
    await manager.load()
    update = manager.public()
    update["providers"] = {"p": {"type": "placeholder", "credentials": {"token": "rotate-me-please"}}}
    await manager.save(update)
    old_fp = (await store.get_setting(FINGERPRINT_KEY))["fingerprint"]

    rotated = ConfigManager(Settings(data_dir=tmp_path, secret_key=new, secret_key_old=old), store)
    cfg = await rotated.load()
    assert cfg.providers["p"].credentials["token"].get_secret_value() == "rotate-me-please"
    assert (await store.get_setting(FINGERPRINT_KEY))["fingerprint"] != old_fp
    # the old key is no longer needed
    cfg = await ConfigManager(Settings(data_dir=tmp_path, secret_key=new), store).load()
    assert cfg.providers["p"].credentials["token"].get_secret_value() == "rotate-me-please"


async def test_changed_key_is_a_clear_error(tmp_path, store):
    manager = ConfigManager(Settings(data_dir=tmp_path, secret_key="key one"), store)
    await manager.load()
    update = manager.public()
    update["providers"] = {"p": {"type": "placeholder", "credentials": {"token": "abcdefghijkl"}}}
    await manager.save(update)
    with pytest.raises(ConfigError) as info:
        await ConfigManager(Settings(data_dir=tmp_path, secret_key="key two"), store).load()
    assert info.value.field == "secret_key" and "IMAGE_STUDIO_SECRET_KEY_OLD" in info.value.message
