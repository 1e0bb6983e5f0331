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


PG_URL = os.environ.get("IMAGE_STUDIO_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
"""The real PostgreSQL every machine of this project runs (trust auth, database ``test``)."""


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A database URL: a SQLite file, or a schema of its own on the real PostgreSQL (the
    scaled-out mode), dropped afterwards."""
    import uuid

    import sqlalchemy as sa

    from image_studio.jobs.store import JobStore

    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/studio.db"
        return
    schema = "ist_" + uuid.uuid4().hex[:10]
    admin = JobStore(PG_URL)
    try:
        async with admin.engine.begin() as conn:
            await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except OSError as exc:  # pragma: no cover - PostgreSQL runs on every machine of this project
        await admin.close()
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {exc}")
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        async with admin.engine.begin() as conn:
            await conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.close()


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


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the tests that use the browser last (keeping their order). Playwright's sync API
    leaves its event loop set as the main thread's running loop while the session's Chromium
    is open, so ``asyncio.run`` (the CLI) and pytest-asyncio tests cannot run after it starts."""
    uses = [item for item in items if "browser" in getattr(item, "fixturenames", ())]
    if uses:
        items[:] = [item for item in items if "browser" not in getattr(item, "fixturenames", ())] + uses


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
