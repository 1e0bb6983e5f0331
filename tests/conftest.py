"""Shared fixtures. Tests reach nothing beyond 127.0.0.1 (pytest-socket, see pyproject)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def unused_port() -> int:
    return free_port()


@pytest.fixture(autouse=True)
def _clean_studio_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's IMAGE_STUDIO_* or WEBUI_SECRET_KEY settings
    (but for IMAGE_STUDIO_WEB_DIR: which UI build the browser tests serve)."""
    import os

    for name in list(os.environ):
        if (name.startswith("IMAGE_STUDIO_") and name != "IMAGE_STUDIO_WEB_DIR") or name == "WEBUI_SECRET_KEY":
            monkeypatch.delenv(name, raising=False)


# --- the browser, shared by tests/e2e and tests/openwebui (one Chromium for the session) ---

ARTIFACTS = Path(__file__).resolve().parents[1] / "build" / "e2e"
"""Where browser tests save their screenshots (the test artifacts)."""
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-default-apps", "--disable-features=Translate,MediaRouter,OptimizationHints"]
"""Flags for Debian's Chromium here: root needs --no-sandbox; the network is closed, so
everything that would call out (background networking, updates, sync) is off."""


def chromium_path() -> str:
    """Debian's Chromium: ``$CHROMIUM``, else ``chromium`` on PATH. Fails the test run with the
    fix when it is missing (``make browser`` installs it; never a downloaded browser)."""
    import shutil

    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("Chromium is not installed: run `make browser` (apt-get install chromium)", pytrace=False)
    return found


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium (Playwright, sync API) for the whole test session."""
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def shot() -> Callable[[Any, str], Path]:
    """``shot(page, name)``: a full-page PNG at ``build/e2e/<name>.png``; returns its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
