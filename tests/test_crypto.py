"""SecretBox (Fernet at rest, HKDF, rotation, fingerprints, key file) and config serialisation."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from image_studio.config import Settings, StudioConfig
from image_studio.crypto import (
    KEY_FILE_NAME,
    SecretBox,
    config_from_storable,
    config_to_public,
    config_to_storable,
    derive_key,
    is_fernet_key,
    mask_secret,
    merge_masked,
)
from image_studio.errors import ConfigError

WEBUI_SECRET = "t0p-s3cret webui key, not base64!"

# --------------------------------------------------------------------------- SecretBox


def test_round_trip_with_a_fernet_key_uses_it_as_is() -> None:
    key = Fernet.generate_key().decode()
    box = SecretBox(key)
    token = box.encrypt("sk-proj-ABCDEF")
    assert token.startswith("enc:v1:") and "sk-proj-ABCDEF" not in token
    assert box.is_encrypted(token) and not box.is_encrypted("sk-proj-ABCDEF")
    assert box.decrypt(token) == "sk-proj-ABCDEF"
    assert Fernet(key.encode()).decrypt(token.removeprefix("enc:v1:").encode()) == b"sk-proj-ABCDEF"


def test_arbitrary_secret_goes_through_hkdf() -> None:
    expected = base64.urlsafe_b64encode(
        HKDF(algorithm=hashes.SHA256(), length=32, salt=b"image-studio",
             info=b"image-studio credentials v1").derive(WEBUI_SECRET.encode())
    )
    assert derive_key(WEBUI_SECRET) == expected
    box = SecretBox(WEBUI_SECRET)
    token = box.encrypt("p\u00e4ssw\u00f6rd")
    assert box.decrypt(token) == "p\u00e4ssw\u00f6rd"
    assert Fernet(expected).decrypt(token.removeprefix("enc:v1:").encode()).decode() == "p\u00e4ssw\u00f6rd"
    # the derived key and the string it came from are the same key
    assert SecretBox(expected.decode()).decrypt(token) == "p\u00e4ssw\u00f6rd"


def test_is_fernet_key() -> None:
    assert is_fernet_key(Fernet.generate_key().decode())
    assert not is_fernet_key("x" * 43 + "!")  # 44 characters, not base64
    assert not is_fernet_key(base64.urlsafe_b64encode(b"\0" * 31).decode())  # wrong size
    assert not is_fernet_key(WEBUI_SECRET)


def test_empty_key_is_rejected() -> None:
    with pytest.raises(ConfigError) as info:
        SecretBox("   ")
    assert info.value.field == "secret_key"


def test_rotation_with_old_keys() -> None:
    old, new = SecretBox("the old key"), SecretBox("the new key")
    token = old.encrypt("credential")
    both = SecretBox("the new key", ["unrelated", "the old key"])
    assert both.decrypt(token) == "credential"
    rotated = both.rotate(token)
    assert new.decrypt(rotated) == "credential"
    with pytest.raises(ConfigError):
        old.decrypt(rotated)


def test_changed_key_gives_a_clear_error() -> None:
    token = SecretBox("key one").encrypt("credential")
    box = SecretBox("key two", source="IMAGE_STUDIO_SECRET_KEY")
    for call in (box.decrypt, box.rotate):
        with pytest.raises(ConfigError) as info:
            call(token, field="providers.o.credentials.api_key")
        assert "secret key changed" in info.value.message
        assert "IMAGE_STUDIO_SECRET_KEY_OLD" in info.value.message
        assert info.value.field == "providers.o.credentials.api_key"


def test_decrypt_of_a_plain_value_is_an_error() -> None:
    with pytest.raises(ConfigError, match="not an encrypted value"):
        SecretBox("k").decrypt("plain", field="x")
    with pytest.raises(ConfigError):
        SecretBox("k").decrypt("enc:v1:garbage")


def test_fingerprint_and_check() -> None:
    box = SecretBox(WEBUI_SECRET)
    fp = box.fingerprint()
    assert len(fp) == 16 and int(fp, 16) >= 0
    assert fp == SecretBox(WEBUI_SECRET).fingerprint() == SecretBox(derive_key(WEBUI_SECRET).decode()).fingerprint()
    assert fp != SecretBox("another").fingerprint()
    assert fp not in derive_key(WEBUI_SECRET).decode() and fp not in WEBUI_SECRET
    box.check_fingerprint(None)
    box.check_fingerprint(fp)
    SecretBox("newer", [WEBUI_SECRET]).check_fingerprint(fp)  # saved under an old key: still readable
    with pytest.raises(ConfigError) as info:
        SecretBox("another").check_fingerprint(fp)
    assert "IMAGE_STUDIO_SECRET_KEY_OLD" in info.value.message and info.value.field == "secret_key"


# --------------------------------------------------------------------------- from_settings


def test_secret_key_wins_over_webui_secret_key(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key="studio key")
    box = SecretBox.from_settings(settings, env={"WEBUI_SECRET_KEY": WEBUI_SECRET})
    assert box.fingerprint() == SecretBox("studio key").fingerprint()
    assert box.source == "IMAGE_STUDIO_SECRET_KEY"
    assert not (tmp_path / KEY_FILE_NAME).exists()


def test_webui_secret_key_and_old_keys(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key_old="first old, second old")
    box = SecretBox.from_settings(settings, env={"WEBUI_SECRET_KEY": WEBUI_SECRET})
    assert box.fingerprint() == SecretBox(WEBUI_SECRET).fingerprint()
    assert box.source == "WEBUI_SECRET_KEY"
    assert box.decrypt(SecretBox("second old").encrypt("x")) == "x"
    assert not (tmp_path / KEY_FILE_NAME).exists()


def test_generated_key_is_persisted_0600_and_reused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data_dir = tmp_path / "nested" / "data"
    settings = Settings(data_dir=data_dir)
    with caplog.at_level(logging.WARNING, logger="image_studio.crypto"):
        first = SecretBox.from_settings(settings, env={})
    path = data_dir / KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert is_fernet_key(path.read_text().strip())
    assert str(path) in caplog.text and path.read_text().strip() not in caplog.text
    token = first.encrypt("kept")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="image_studio.crypto"):
        second = SecretBox.from_settings(settings, env={"WEBUI_SECRET_KEY": "  "})
    assert second.decrypt(token) == "kept"
    assert caplog.text == ""  # nothing generated the second time


def test_key_file_problems(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / KEY_FILE_NAME
    path.write_text(Fernet.generate_key().decode())
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="image_studio.crypto"):
        SecretBox.from_settings(Settings(data_dir=tmp_path), env={})
    assert "0600" in caplog.text
    path.write_text("\n")
    with pytest.raises(ConfigError) as info:
        SecretBox.from_settings(Settings(data_dir=tmp_path), env={})
    assert info.value.field == "data_dir"


def test_concurrent_creation_keeps_the_first_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    winner = Fernet.generate_key()
    real_link = os.link

    def link_after_another_worker(src: str, dst: str) -> None:
        Path(dst).write_bytes(winner + b"\n")  # another worker linked its key first
        real_link(src, dst)  # so this raises FileExistsError

    monkeypatch.setattr(os, "link", link_after_another_worker)
    box = SecretBox.from_settings(Settings(data_dir=tmp_path), env={})
    assert box.fingerprint() == SecretBox(winner.decode()).fingerprint()
    assert list(tmp_path.iterdir()) == [tmp_path / KEY_FILE_NAME]  # the temporary file is gone


# --------------------------------------------------------------------------- serialisation

SECRETS = {
    "cred": "sk-live-0123456789abcdef",
    "short": "pw123",
    "password": "backend-password-xyz",
    "url_pw": "urlpass-secret-99",
    "header": "Bearer header-token-777",
    "api_key": "admin-api-key-abcdefgh",
}


def sample() -> StudioConfig:
    return StudioConfig.model_validate({
        "default_provider": "comfy",
        "fallback_chain": ["comfy", "oai"],
        "providers": {
            "comfy": {"type": "comfyui", "backends": [
                {"url": "http://127.0.0.1:8188", "username": "u", "password": SECRETS["password"],
                 "headers": {"Authorization": SECRETS["header"], "Accept": "application/json"}},
                {"url": f"http://bob:{SECRETS['url_pw']}@127.0.0.1:8189"},
            ]},
            "oai": {"type": "openai", "credentials": {"api_key": SECRETS["cred"], "org": SECRETS["short"]},
                    "settings": {"model": "gpt-image-1"}},
        },
        "api_keys": [{"key": SECRETS["api_key"], "role": "admin", "owner": "alice"}],
    })


def test_storable_encrypts_every_secret_and_round_trips() -> None:
    box = SecretBox(Fernet.generate_key().decode())
    stored = config_to_storable(sample(), box)
    text = json.dumps(stored)
    for secret in SECRETS.values():
        assert secret not in text
    assert stored["providers"]["oai"]["credentials"]["api_key"].startswith("enc:v1:")
    assert stored["providers"]["comfy"]["backends"][0]["password"].startswith("enc:v1:")
    assert stored["providers"]["comfy"]["backends"][0]["headers"]["Accept"] == "application/json"
    assert stored["api_keys"][0]["key"].startswith("enc:v1:")
    assert config_from_storable(json.loads(text), box) == sample()


def test_from_storable_with_another_key_names_the_field() -> None:
    stored = config_to_storable(sample(), SecretBox("first"))
    with pytest.raises(ConfigError) as info:
        config_from_storable(stored, SecretBox("second"))
    assert info.value.field == "providers.comfy.backends.0.password"
    assert "IMAGE_STUDIO_SECRET_KEY_OLD" in info.value.message


def test_from_storable_accepts_values_in_clear() -> None:
    data = {"providers": {"o": {"type": "openai", "credentials": {"api_key": "plain-key"}}}}
    cfg = config_from_storable(data, SecretBox("k"))
    assert cfg.providers["o"].credentials["api_key"].get_secret_value() == "plain-key"


def test_public_masks_every_secret() -> None:
    public = config_to_public(sample())
    text = json.dumps(public, ensure_ascii=False)
    for secret in SECRETS.values():
        assert secret not in text
    oai = public["providers"]["oai"]
    assert oai["credentials"] == {"api_key": "\u2022\u2022\u2022\u2022cdef", "org": "\u2022\u2022\u2022\u2022"}
    backends = public["providers"]["comfy"]["backends"]
    assert backends[0]["headers"] == {"Authorization": "\u2022\u2022\u2022\u2022-777", "Accept": "application/json"}
    assert backends[1]["url"] == "http://bob:\u2022\u2022\u2022\u2022t-99@127.0.0.1:8189"
    assert public["api_keys"][0] == {"key": "\u2022\u2022\u2022\u2022efgh", "role": "admin", "owner": "alice"}
    assert oai["settings"] == {"model": "gpt-image-1"}


def test_mask_secret() -> None:
    assert mask_secret("12345678") == "\u2022\u2022\u2022\u2022"
    assert mask_secret("123456789") == "\u2022\u2022\u2022\u20226789"


def test_merge_masked_keeps_unchanged_secrets() -> None:
    current = sample()
    assert merge_masked(config_to_public(current), current) == current
    assert merge_masked({"default_provider": "oai"}, current) == current.model_copy(update={"default_provider": "oai"})


def test_merge_masked_replaces_keeps_and_removes() -> None:
    current = sample()
    update = config_to_public(current)
    oai = update["providers"]["oai"]
    oai["credentials"] = {"api_key": "sk-new-value-0000", "org": None}  # replace one, remove one
    comfy_backends = update["providers"]["comfy"]["backends"]
    comfy_backends.reverse()  # matched by URL, not by index
    del comfy_backends[1]["password"]  # omitted: kept
    update["api_keys"][0].pop("key")  # omitted: kept
    merged = merge_masked(update, current)
    assert {k: v.get_secret_value() for k, v in merged.providers["oai"].credentials.items()} == {
        "api_key": "sk-new-value-0000"}
    first, second = merged.providers["comfy"].backends
    assert first.url == f"http://bob:{SECRETS['url_pw']}@127.0.0.1:8189"
    assert second.password.get_secret_value() == SECRETS["password"]
    assert second.headers["Authorization"] == SECRETS["header"]
    assert merged.api_keys[0].key.get_secret_value() == SECRETS["api_key"]


def test_merge_masked_rejects_a_mask_that_fits_no_secret() -> None:
    current = sample()
    update = config_to_public(current)
    update["providers"]["new"] = {"type": "openai", "credentials": {"api_key": "\u2022\u2022\u2022\u2022abcd"}}
    with pytest.raises(ConfigError) as info:
        merge_masked(update, current)
    assert info.value.field == "providers.new.credentials.api_key"
    update = config_to_public(current)
    update["api_keys"][0]["owner"] = "mallory"
    with pytest.raises(ConfigError) as info:
        merge_masked(update, current)
    assert info.value.field == "api_keys.0.key"


def test_merge_masked_validates_and_checks_references() -> None:
    current = sample()
    update = config_to_public(current)
    del update["providers"]["oai"]
    with pytest.raises(ConfigError) as info:
        merge_masked(update, current)
    assert info.value.field == "fallback_chain.1"
    update = config_to_public(current)
    update["providers"]["oai"]["timeout"] = -1
    with pytest.raises(ConfigError) as info:
        merge_masked(update, current)
    assert info.value.field == "providers.oai.timeout"


def test_merge_masked_matches_api_keys_by_mask_when_reordered() -> None:
    current = StudioConfig.model_validate({"api_keys": [
        {"key": "first-key-aaaa1111", "owner": "alice"},
        {"key": "second-key-bbbb2222", "owner": "alice", "role": "admin"},
    ]})
    update = config_to_public(current)
    update["api_keys"].reverse()
    merged = merge_masked(update, current)
    assert [(k.key.get_secret_value(), k.role) for k in merged.api_keys] == [
        ("second-key-bbbb2222", "admin"), ("first-key-aaaa1111", "user")]
