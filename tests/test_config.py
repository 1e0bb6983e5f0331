"""Config file loading: ${VAR} expansion, error fields and sources, references, precedence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from image_studio.config import (
    Settings,
    StudioConfig,
    check_references,
    expand_env,
    load_config,
    load_config_file,
)
from image_studio.crypto import SecretBox, config_to_storable
from image_studio.errors import ConfigError

COMFY_YAML = """\
default_provider: comfy
fallback_chain: [comfy, a1111]
providers:
  comfy:
    type: comfyui
    credentials: {token: "${COMFY_TOKEN}"}
    settings:
      workflow: weightfree
      tags: ["${TAG_A}", {nested: ["x-${TAG_B:-fallback}-y"]}]
      literal: "$${NOT_A_VAR} and $${X:-y}"
    backends:
      - {url: "http://${COMFY_HOST}:${COMFY_PORT:-8188}/", headers: {"${NOT_EXPANDED}": "v"}}
    timeout: "${COMFY_TIMEOUT:-120}"
  a1111:
    type: automatic1111
    backends: [{url: "http://127.0.0.1:7860"}]
"""

BASE_ENV = {"COMFY_TOKEN": "tok-abc", "TAG_A": "alpha", "COMFY_HOST": "127.0.0.1"}


def write(tmp_path: Path, text: str, name: str = "studio.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def settings_for(tmp_path: Path, config: Path | None = None) -> Settings:
    return Settings(data_dir=tmp_path / "data", config=config)


# ------------------------------------------------------------------ expansion


def test_expansion_set_default_escape_and_nested_lists(tmp_path: Path) -> None:
    cfg = load_config_file(write(tmp_path, COMFY_YAML), env=BASE_ENV)
    comfy = cfg.providers["comfy"]
    assert comfy.credentials["token"].get_secret_value() == "tok-abc"
    assert comfy.backends[0].url == "http://127.0.0.1:8188"  # default port, trailing slash stripped
    assert comfy.settings["tags"] == ["alpha", {"nested": ["x-fallback-y"]}]
    assert comfy.settings["literal"] == "${NOT_A_VAR} and ${X:-y}"
    assert comfy.timeout == 120.0  # the expanded string "120" validates as a number
    # keys are never expanded
    assert comfy.backends[0].headers == {"${NOT_EXPANDED}": "v"}


def test_default_applies_to_empty_variable_and_set_value_wins(tmp_path: Path) -> None:
    path = write(tmp_path, COMFY_YAML)
    cfg = load_config_file(path, env={**BASE_ENV, "COMFY_PORT": "", "TAG_B": "bee"})
    assert cfg.providers["comfy"].backends[0].url == "http://127.0.0.1:8188"
    assert cfg.providers["comfy"].settings["tags"][1] == {"nested": ["x-bee-y"]}
    cfg = load_config_file(path, env={**BASE_ENV, "COMFY_PORT": "9000"})
    assert cfg.providers["comfy"].backends[0].url == "http://127.0.0.1:9000"


def test_expanded_value_is_not_expanded_again() -> None:
    assert expand_env("${A}", {"A": "${B}", "B": "no"}) == "${B}"
    assert expand_env("$${A}${A}", {"A": "x"}) == "${A}x"


def test_missing_variable_names_variable_file_and_path(tmp_path: Path) -> None:
    path = write(tmp_path, COMFY_YAML)
    env = {k: v for k, v in BASE_ENV.items() if k != "COMFY_HOST"}
    with pytest.raises(ConfigError) as info:
        load_config_file(path, env=env)
    err = info.value
    assert err.field == "providers.comfy.backends.0.url"
    assert "COMFY_HOST" in err.message and str(path) in err.message
    assert err.source == str(path)


def test_missing_variable_inside_nested_list(tmp_path: Path) -> None:
    env = {k: v for k, v in BASE_ENV.items() if k != "TAG_A"}
    with pytest.raises(ConfigError) as info:
        load_config_file(write(tmp_path, COMFY_YAML), env=env)
    assert info.value.field == "providers.comfy.settings.tags.0"
    assert "TAG_A" in info.value.message


def test_malformed_reference_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, 'providers: {p: {type: x, label: "${1BAD}"}}\n')
    with pytest.raises(ConfigError) as info:
        load_config_file(path, env={})
    assert info.value.field == "providers.p.label"
    assert "$${" in info.value.message


# ------------------------------------------------------------------ validation and files


def test_validation_error_field_is_dotted_path_and_message_names_file(tmp_path: Path) -> None:
    path = write(tmp_path, "providers:\n  comfy:\n    type: comfyui\n    backends: [{url: ftp://host}]\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(path, env={})
    assert info.value.field == "providers.comfy.backends.0.url"
    assert str(path) in info.value.message
    assert "must start with http:// or https://" in info.value.message


def test_unknown_field_and_bad_number_are_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "providers:\n  p: {type: x, concurrency: 0, colour: red}\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(path, env={})
    assert info.value.field in {"providers.p.concurrency", "providers.p.colour"}
    assert "providers.p.concurrency" in info.value.message and "providers.p.colour" in info.value.message


def test_validation_error_never_quotes_secret_input(tmp_path: Path) -> None:
    path = write(tmp_path, 'api_keys: [{key: "short7!", owner: bob}]\n')
    with pytest.raises(ConfigError) as info:
        load_config_file(path, env={})
    assert info.value.field == "api_keys.0.key"
    assert "short7!" not in info.value.message


def test_unknown_provider_type_is_not_checked_here(tmp_path: Path) -> None:
    cfg = load_config_file(write(tmp_path, "providers: {x: {type: no-such-type}}\n"), env={})
    assert cfg.providers["x"].type == "no-such-type"


def test_json_file_is_accepted_and_expanded(tmp_path: Path) -> None:
    data = {"default_provider": "p", "providers": {"p": {"type": "placeholder",
                                                         "settings": {"delay": "${DELAY:-0.5}"}}}}
    cfg = load_config_file(write(tmp_path, json.dumps(data), "studio.json"), env={})
    assert cfg.default_provider == "p"
    assert cfg.providers["p"].settings == {"delay": "0.5"}


def test_json_syntax_error_names_file(tmp_path: Path) -> None:
    path = write(tmp_path, '{"providers": ', "studio.json")
    with pytest.raises(ConfigError) as info:
        load_config_file(path, env={})
    assert str(path) in info.value.message and "does not parse" in info.value.message


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "providers:\n  p: {type: x\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(path, env={})
    assert str(path) in info.value.message and "line" in info.value.message


def test_missing_empty_and_non_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_file(tmp_path / "nope.yaml", env={})
    assert info.value.field == "config" and "nope.yaml" in info.value.message
    assert load_config_file(write(tmp_path, "# nothing\n"), env={}) == StudioConfig()
    with pytest.raises(ConfigError, match="mapping"):
        load_config_file(write(tmp_path, "- a\n- b\n", "list.yaml"), env={})


# ------------------------------------------------------------------ references


def test_unknown_default_provider(tmp_path: Path) -> None:
    path = write(tmp_path, "default_provider: ghost\nproviders: {p: {type: x}}\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(path, env={})
    assert info.value.field == "default_provider"
    assert "ghost" in info.value.message and str(path) in info.value.message


def test_unknown_fallback_chain_entry_names_its_index(tmp_path: Path) -> None:
    path = write(tmp_path, "fallback_chain: [p, ghost]\nproviders: {p: {type: x}}\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(path, env={})
    assert info.value.field == "fallback_chain.1"


def test_check_references_accepts_configured_ids() -> None:
    cfg = StudioConfig.model_validate({"default_provider": "a", "fallback_chain": ["a", "b"],
                                       "providers": {"a": {"type": "x"}, "b": {"type": "y"}}})
    check_references(cfg)  # no error
    with pytest.raises(ConfigError):
        check_references(StudioConfig(fallback_chain=["a"]))


# ------------------------------------------------------------------ precedence


FILE_YAML = """\
default_provider: a
fallback_chain: [a]
providers:
  a:
    type: automatic1111
    backends: [{url: "http://127.0.0.1:7860"}]
    settings: {sampler: Euler, steps: 20}
  keep:
    type: placeholder
api_keys: [{key: file-key-123456, owner: alice}]
"""


def test_no_sources_gives_defaults(tmp_path: Path) -> None:
    assert load_config(settings_for(tmp_path), env={}) == StudioConfig()


def test_file_then_environment_then_saved(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, write(tmp_path, FILE_YAML))
    env = {
        "IMAGE_STUDIO_DEFAULT_PROVIDER": "b",
        "IMAGE_STUDIO_FALLBACK_CHAIN": " b , a ,",
        "IMAGE_STUDIO_PROVIDERS_JSON": json.dumps({
            "a": {"settings": {"steps": 30}, "credentials": {"token": "env-token"}},
            "b": {"type": "placeholder"},
        }),
    }
    cfg = load_config(settings, env=env)
    assert cfg.default_provider == "b"
    assert cfg.fallback_chain == ["b", "a"]
    a = cfg.providers["a"]
    assert a.type == "automatic1111" and a.backends[0].url == "http://127.0.0.1:7860"  # file kept
    assert a.settings == {"sampler": "Euler", "steps": 30}  # deep-merged
    assert a.credentials["token"].get_secret_value() == "env-token"

    saved = {"fallback_chain": ["a"], "providers": {"a": {"type": "comfyui", "settings": {"workflow": "w"}}}}
    cfg = load_config(settings, saved, env=env)
    assert cfg.fallback_chain == ["a"]  # saved top-level key replaces
    assert cfg.default_provider == "b"  # not saved: environment kept
    assert cfg.providers["a"].model_dump(exclude_defaults=True) == {"type": "comfyui", "settings": {"workflow": "w"}}
    assert set(cfg.providers) == {"a", "b", "keep"}  # other ids kept
    assert [k.owner for k in cfg.api_keys] == ["alice"]


def test_file_path_from_image_studio_config_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "default_provider: p\nproviders: {p: {type: placeholder}}\n")
    monkeypatch.setenv("IMAGE_STUDIO_CONFIG", str(path))
    for var in ("IMAGE_STUDIO_DEFAULT_PROVIDER", "IMAGE_STUDIO_FALLBACK_CHAIN", "IMAGE_STUDIO_PROVIDERS_JSON"):
        monkeypatch.delenv(var, raising=False)
    cfg = load_config(Settings(data_dir=tmp_path))
    assert cfg.default_provider == "p"


def test_references_are_checked_on_the_merged_config(tmp_path: Path) -> None:
    path = write(tmp_path, "fallback_chain: [p, q]\nproviders: {p: {type: placeholder}}\n")
    env = {"IMAGE_STUDIO_PROVIDERS_JSON": '{"q": {"type": "placeholder"}}'}
    assert load_config(settings_for(tmp_path, path), env=env).fallback_chain == ["p", "q"]
    with pytest.raises(ConfigError) as info:  # the file alone is incomplete
        load_config_file(path, env={})
    assert info.value.field == "fallback_chain.1"


def test_reference_error_names_environment_variable(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, write(tmp_path, FILE_YAML))
    with pytest.raises(ConfigError) as info:
        load_config(settings, env={"IMAGE_STUDIO_FALLBACK_CHAIN": "a,ghost"})
    assert info.value.field == "fallback_chain.1"
    assert info.value.source == "IMAGE_STUDIO_FALLBACK_CHAIN"


def test_bad_providers_json(tmp_path: Path) -> None:
    for raw in ("{not json", '["a"]', '{"a": 1}'):
        with pytest.raises(ConfigError) as info:
            load_config(settings_for(tmp_path), env={"IMAGE_STUDIO_PROVIDERS_JSON": raw})
        assert info.value.field == "providers"
        assert info.value.source == "IMAGE_STUDIO_PROVIDERS_JSON"


def test_new_provider_in_env_json_must_be_whole(tmp_path: Path) -> None:
    env = {"IMAGE_STUDIO_PROVIDERS_JSON": '{"x": {"enabled": false}}'}
    with pytest.raises(ConfigError) as info:
        load_config(settings_for(tmp_path), env=env)
    assert info.value.field == "providers.x.type"
    assert "IMAGE_STUDIO_PROVIDERS_JSON" in info.value.message


def test_saved_layer_is_validated_with_its_source(tmp_path: Path) -> None:
    saved = {"providers": {"p": {"type": "x", "backends": [{"url": "nope"}]}}}
    with pytest.raises(ConfigError) as info:
        load_config(settings_for(tmp_path), saved, env={})
    assert info.value.field == "providers.p.backends.0.url"
    assert info.value.source == "saved settings"


def test_saved_encrypted_secrets_are_decrypted(tmp_path: Path) -> None:
    box = SecretBox("a passphrase that is not a fernet key")
    layer = StudioConfig.model_validate(
        {"providers": {"o": {"type": "openai", "credentials": {"api_key": "sk-live-42"}}}})
    stored = config_to_storable(layer, box)
    assert stored["providers"]["o"]["credentials"]["api_key"].startswith("enc:v1:")
    cfg = load_config(settings_for(tmp_path), stored, env={}, box=box)
    assert cfg.providers["o"].credentials["api_key"].get_secret_value() == "sk-live-42"
    # without an explicit box, the key comes from the settings
    settings = Settings(data_dir=tmp_path, secret_key="a passphrase that is not a fernet key")
    cfg = load_config(settings, stored, env={})
    assert cfg.providers["o"].credentials["api_key"].get_secret_value() == "sk-live-42"


def test_secret_key_old_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGE_STUDIO_SECRET_KEY_OLD", "old-one,old-two")
    settings = Settings()
    assert settings.secret_key_old == "old-one,old-two"
    assert "old-one" not in repr(settings)
