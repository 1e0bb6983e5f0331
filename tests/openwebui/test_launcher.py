"""`image-studio openwebui`: the environment Open WebUI needs, the secret key file, uvicorn on
our import string, and the CLI options (uvicorn itself is replaced: the real start is in
test_integration.py)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from image_studio.cli import app as cli
from image_studio.errors import ConfigError
from image_studio.openwebui import launcher


def test_environment_for_a_fresh_data_dir(tmp_path):
    env: dict[str, str] = {}
    data = launcher.prepare_environment(tmp_path / "owui", offline=True, env=env)
    assert data == (tmp_path / "owui").resolve() and data.is_dir()
    assert env["FROM_INIT_PY"] == "true" and env["DATA_DIR"] == str(data) and env["OFFLINE_MODE"] == "true"
    key_file = data / ".webui_secret_key"
    assert env["WEBUI_SECRET_KEY"] == key_file.read_text() and len(env["WEBUI_SECRET_KEY"]) == 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    again: dict[str, str] = {}
    launcher.prepare_environment(tmp_path / "owui", env=again)
    assert again["WEBUI_SECRET_KEY"] == env["WEBUI_SECRET_KEY"] and "OFFLINE_MODE" not in again


def test_given_values_are_kept(tmp_path, monkeypatch):
    env = {"WEBUI_SECRET_KEY": "given", "FROM_INIT_PY": "false", "DATA_DIR": str(tmp_path / "from-env")}
    data = launcher.prepare_environment(env=env)
    assert data == (tmp_path / "from-env").resolve()
    assert env["WEBUI_SECRET_KEY"] == "given" and env["FROM_INIT_PY"] == "false"
    assert not (data / ".webui_secret_key").exists()
    monkeypatch.chdir(tmp_path)
    default: dict[str, str] = {}
    assert launcher.prepare_environment(env=default) == (tmp_path / "data" / "openwebui").resolve()


def test_an_empty_or_unreadable_key_file_is_a_config_error(tmp_path):
    (tmp_path / ".webui_secret_key").write_text("  \n")
    with pytest.raises(ConfigError) as err:
        launcher.prepare_environment(tmp_path, env={})
    assert err.value.field == "DATA_DIR" and "is empty" in err.value.message
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="cannot create the data folder"):
        launcher.prepare_environment(blocker / "sub", env={})


@pytest.fixture
def fake_uvicorn(monkeypatch):
    calls: list[tuple[str, dict]] = []
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: calls.append((target, kw)))
    monkeypatch.setattr(launcher.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(os, "environ", dict(os.environ))  # run() writes to os.environ
    return calls


def test_run_starts_uvicorn_on_our_import_string(tmp_path, fake_uvicorn, monkeypatch):
    migrated: list[bool] = []
    monkeypatch.setattr(launcher, "_migrate_once", lambda: migrated.append(True))
    seen: list[Path] = []
    launcher.run(host="127.0.0.1", port=8123, data_dir=tmp_path / "d", announce=seen.append)
    assert fake_uvicorn == [("image_studio.openwebui.app:app",
                             {"host": "127.0.0.1", "port": 8123, "workers": 1, "ws_per_message_deflate": True})]
    assert seen == [(tmp_path / "d").resolve()] and os.environ["DATA_DIR"] == str(seen[0]) and migrated == []
    os.environ["UVICORN_WORKERS"] = "3"
    os.environ["UVICORN_WS_PER_MESSAGE_DEFLATE"] = "false"
    launcher.run(data_dir=tmp_path / "d")
    assert fake_uvicorn[-1][1]["workers"] == 3 and fake_uvicorn[-1][1]["ws_per_message_deflate"] is False
    assert migrated == [True]  # several workers: migrations once, before they start


def test_run_without_open_webui_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(launcher.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError) as err:
        launcher.run()
    assert err.value.field == "openwebui" and "open-webui-image-studio[openwebui]" in err.value.message


def test_cli_passes_its_options_and_reports_errors(tmp_path, monkeypatch):
    calls: list[dict] = []
    monkeypatch.setattr(launcher, "run", lambda **kw: calls.append(kw))
    runner = CliRunner()
    result = runner.invoke(cli, ["openwebui", "--host", "0.0.0.0", "--port", "9000", "--workers", "2",
                                 "--data-dir", str(tmp_path), "--offline"])
    assert result.exit_code == 0, result.output
    assert calls[0] | {"announce": None} == {"host": "0.0.0.0", "port": 9000, "workers": 2, "data_dir": tmp_path,
                                             "offline": True, "announce": None}

    def refuse(**kw):  # noqa: ANN003, ANN202
        raise ConfigError("Open WebUI is not installed here: pip install 'x[openwebui]'", field="openwebui")

    monkeypatch.setattr(launcher, "run", refuse)
    failed = runner.invoke(cli, ["openwebui"])
    assert failed.exit_code == 1 and "pip install 'x[openwebui]'" in failed.output
