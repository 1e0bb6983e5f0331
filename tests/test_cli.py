"""The image-studio command: generate in-process (progress, files, parameters in the PNG,
asset in the same database), against a running server, providers and jobs tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from image_studio.cli import app, parse_size
from image_studio.storage.metadata import read_png_text

runner = CliRunner()


@pytest.fixture
def env(tmp_path, monkeypatch) -> Path:
    cfg = tmp_path / "studio.json"
    cfg.write_text(json.dumps({"default_provider": "ph", "providers": {
        "ph": {"type": "placeholder", "settings": {"delay": 0.2}},
        "down": {"type": "automatic1111", "backends": [{"url": "http://127.0.0.1:9"}]}}}))
    monkeypatch.setenv("IMAGE_STUDIO_CONFIG", str(cfg))
    monkeypatch.setenv("IMAGE_STUDIO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IMAGE_STUDIO_SECRET_KEY", "cli-test")
    return tmp_path


def test_generate_in_process_saves_png_with_parameters(env):
    out = env / "out"
    result = runner.invoke(app, ["generate", "a cli fox", "--size", "80x48", "--seed", "5", "--n", "2",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    paths = [Path(line) for line in result.stdout.split() if line.endswith(".png")]
    assert len(paths) == 2 and all(p.is_file() and p.parent == out.resolve() for p in paths)
    texts = [read_png_text(p.read_bytes())["parameters"] for p in paths]
    assert all("a cli fox" in t and "Size: 80x48" in t for t in texts)
    assert {"Seed: 5" in t for t in texts} == {True, False}  # seeds 5 and 6
    jobs = runner.invoke(app, ["jobs"])
    assert jobs.exit_code == 0 and "succeeded" in jobs.stdout and "a cli fox" in jobs.stdout


def test_generate_reports_bad_size_and_failures(env):
    bad = runner.invoke(app, ["generate", "x", "--size", "big"])
    assert bad.exit_code != 0 and "WIDTHxHEIGHT" in bad.output
    failed = runner.invoke(app, ["generate", "x", "--provider", "down", "--size", "64x64", "--out", str(env)])
    assert failed.exit_code == 1 and "error:" in failed.output


def test_providers_table_and_test(env):
    result = runner.invoke(app, ["providers"])
    assert "ph" in result.stdout and "down" in result.stdout
    assert runner.invoke(app, ["providers", "test", "ph"]).exit_code == 0
    assert runner.invoke(app, ["providers", "test", "down"]).exit_code == 1


def test_generate_against_a_running_server(env):
    from image_studio.api.app import create_app
    from image_studio.config import Settings
    from tests.fakes.serve import ServerThread

    with ServerThread(create_app(Settings())) as server:
        result = runner.invoke(app, ["generate", "remote fox", "--size", "64x64", "--server", server.url,
                                     "--out", str(env / "remote")])
    assert result.exit_code == 0, result.output
    path = Path(result.stdout.split()[-1])
    assert "remote fox" in read_png_text(path.read_bytes())["parameters"]


def test_parse_size():
    assert parse_size("512x768") == (512, 768) and parse_size(" 64 X 32 ") == (64, 32)
