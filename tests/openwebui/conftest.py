"""One real Open WebUI (the ``open-webui`` package) with the studio inside, for the whole session.

The server runs as ``python -m image_studio.cli openwebui`` in a subprocess (its own process
group) on a free 127.0.0.1 port, with a temporary ``DATA_DIR``, ``OFFLINE_MODE=true`` and
``ENABLE_FORWARD_USER_INFO_HEADERS=true`` (the setting docs/openwebui.md recommends: Open WebUI's
own image calls then name their user to the studio's facade). The
interpreter is ``$OPENWEBUI_PYTHON`` (``make test`` points it at ``.venv-openwebui``, where
Open WebUI's exact pins live), else ``.venv-openwebui/bin/python`` when it exists, else this
one. The tests that need it are skipped, with the reason, only when that interpreter cannot
``import open_webui``; the unit tests in this folder never need it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 240.0
"""Seconds allowed for Open WebUI's first start (about 12 s here: ~100 migrations)."""
STOP_TIMEOUT = 30.0

# Variables of the developer's shell that would change the server under test.
_DROPPED = ("DATA_DIR", "DATABASE_URL", "WEBUI_SECRET_KEY", "WEBUI_JWT_SECRET_KEY", "FROM_INIT_PY", "PORT",
            "ENABLE_IMAGE_GENERATION", "DEFAULT_USER_ROLE", "ENABLE_SIGNUP", "WEBUI_AUTH", "ENABLE_PERSISTENT_CONFIG",
            "UVICORN_WORKERS", "REDIS_URL", "VECTOR_DB", "FORWARD_USER_INFO_HEADER_JWT_SECRET")


def openwebui_python() -> str:
    """The interpreter that runs Open WebUI (see the module docstring)."""
    given = os.environ.get("OPENWEBUI_PYTHON", "").strip()
    if given:
        return given
    local = REPO / ".venv-openwebui" / "bin" / "python"
    return str(local) if local.exists() else sys.executable


@dataclass
class OpenWebUI:
    """The running server: ``url`` (no trailing slash), its ``data_dir`` and ``log`` file."""

    url: str
    data_dir: Path
    log: Path
    process: subprocess.Popen

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _server_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGE_STUDIO_") and k not in _DROPPED}
    env.update(OFFLINE_MODE="true", PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1",
               ENABLE_VERSION_UPDATE_CHECK="false", ENABLE_FORWARD_USER_INFO_HEADERS="true")
    return env


def _wait_healthy(server: OpenWebUI) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                pytest.fail(f"Open WebUI exited with {server.process.returncode}:\n{server.log_tail()}")
            try:
                if client.get(server.url + "/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
    pytest.fail(f"Open WebUI did not answer /health within {START_TIMEOUT:g} s:\n{server.log_tail()}")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the whole process group, then SIGKILL if it lingers."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)


@pytest.fixture(scope="session")
def openwebui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenWebUI]:
    """Start Open WebUI with the studio once for the session; stop it (its process group) after."""
    python = openwebui_python()
    probe = subprocess.run([python, "-c", "import open_webui"], capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        reason = (probe.stderr.strip().splitlines() or ["?"])[-1]
        pytest.skip(f"open_webui cannot be imported by {python} ({reason}); `make test` installs it in "
                    ".venv-openwebui, or set OPENWEBUI_PYTHON")
    root = tmp_path_factory.mktemp("openwebui")
    data_dir, log = root / "data", root / "server.log"
    port = free_port()
    cmd = [python, "-m", "image_studio.cli", "openwebui", "--host", "127.0.0.1", "--port", str(port),
           "--data-dir", str(data_dir), "--offline"]
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=_server_env(data_dir), cwd=root,
                                   start_new_session=True)
    server = OpenWebUI(url=f"http://127.0.0.1:{port}", data_dir=data_dir, log=log, process=process)
    try:
        _wait_healthy(server)
        yield server
    finally:
        _stop(process)


LATE_MODULES = ("test_facade_in_openwebui.py", "test_asset_files.py", "test_browser.py", "test_import_config.py")
"""Modules that run after the other Open WebUI modules of the session."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Move the tests of :data:`LATE_MODULES` to the end (keeping their order): the session has
    one Open WebUI, whose first signup becomes its admin, and test_integration.py's ``accounts``
    fixture makes (and asserts) that first signup; the late modules sign in to that admin when it
    exists and sign it up only when they run alone."""
    late = [item for item in items if item.path.name in LATE_MODULES]
    if late:
        items[:] = [item for item in items if item.path.name not in LATE_MODULES] + late
