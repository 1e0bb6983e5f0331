"""Browser end-to-end tests: Playwright driving Debian's Chromium (``/usr/bin/chromium``, or
``$CHROMIUM``; never a downloaded browser) against a real studio server on 127.0.0.1 that
serves the built UI (``make ui``; ``IMAGE_STUDIO_WEB_DIR`` points at another build).

Fixtures:

* ``e2e``: one studio for the whole session (:class:`E2EServer`): providers ``placeholder``
  (the default, instant), ``slow`` (a placeholder taking 6 s an image, for cancel) and
  ``comfy`` (a ComfyUI provider on the fake ComfyUI that replays recorded transcripts), API keys
  :data:`ADMIN_KEY` (role admin, owner ``admin``) and :data:`USER_KEY` (role user, owner
  ``alice``). Tests that change the config use ``make_e2e`` for a studio of their own.
* ``browser``: one headless Chromium for the session (tests/conftest.py, shared with
  tests/openwebui).
* ``open_studio(server, key, page="generate")``: a new browser context signed in with ``key``
  (the API key put where the UI's sign-in form keeps it), on ``#/<page>``; closed after the
  test. Returns the Playwright ``Page``.
* ``shot(page, name)`` (tests/conftest.py): saves a full-page PNG under ``build/e2e/`` (the
  test artifacts).

Browser flags follow the machine's notes: ``--no-sandbox`` (root), no GPU, and background
networking off (the network here is closed; Chromium would otherwise retry Google's hosts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from image_studio.api.app import create_app, web_dir
from image_studio.config import Settings, StudioConfig
from image_studio.studio import Studio
from tests.fakes.comfyui_server import FakeComfyUI
from tests.fakes.serve import ServerThread

API = "/api/v1/image-studio"
ADMIN_KEY = "e2e-admin-key-0001"
USER_KEY = "e2e-user-key-0002"
TIMEOUT_MS = 20_000


def e2e_config(comfy_url: str, **over: Any) -> StudioConfig:
    """The e2e studio's config (see the module docstring)."""
    data: dict[str, Any] = {
        "default_provider": "placeholder",
        "fallback_chain": ["placeholder"],
        "providers": {
            "placeholder": {"type": "placeholder", "label": "Placeholder"},
            "slow": {"type": "placeholder", "label": "Slow placeholder", "settings": {"delay": 6.0}},
            "comfy": {"type": "comfyui", "label": "ComfyUI (fake)", "backends": [{"url": comfy_url}],
                      "settings": {"workflow": "weightfree", "history_poll_interval": 0.3}},
        },
        "api_keys": [
            {"key": ADMIN_KEY, "role": "admin", "owner": "admin"},
            {"key": USER_KEY, "role": "user", "owner": "alice"},
        ],
    }
    data.update(over)
    return StudioConfig.model_validate(data)


@dataclass
class E2EServer:
    """A running studio: ``url`` (``http://127.0.0.1:<port>``), the fake ComfyUI ``comfy``,
    and ``api(key)`` for an httpx client on the API root (for set-up and checks)."""

    url: str
    comfy: FakeComfyUI
    thread: ServerThread
    clients: list[httpx.Client] = field(default_factory=list)

    def api(self, key: str = ADMIN_KEY) -> httpx.Client:
        client = httpx.Client(base_url=self.url + API, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        self.clients.append(client)
        return client

    def close(self) -> None:
        for c in self.clients:
            c.close()
        self.thread.stop()


def _built_ui() -> Path:
    folder = web_dir()
    if not (folder / "index.html").is_file():
        pytest.fail(f"the UI is not built in {folder}: run `make ui`", pytrace=False)
    return folder


@pytest.fixture(scope="session")
def e2e_comfy() -> Iterator[FakeComfyUI]:
    with FakeComfyUI() as fake:
        yield fake


def start_studio(tmp: Path, comfy: FakeComfyUI, config: StudioConfig) -> E2EServer:
    """A studio on ``tmp`` (its data dir: seed it first when a test needs data before start)
    serving the built UI; the caller stops it with ``close()``."""
    _built_ui()
    settings = Settings(data_dir=tmp, secret_key="e2e-secret")
    thread = ServerThread(create_app(settings, studio=Studio(settings, config=config))).start()
    return E2EServer(url=thread.url, comfy=comfy, thread=thread)


@pytest.fixture(scope="session")
def e2e(tmp_path_factory, e2e_comfy) -> Iterator[E2EServer]:
    server = start_studio(tmp_path_factory.mktemp("e2e-data"), e2e_comfy, e2e_config(e2e_comfy.url))
    yield server
    server.close()


@pytest.fixture
def make_e2e(tmp_path, e2e_comfy) -> Iterator[Callable[..., E2EServer]]:
    """``make_e2e(**config_overrides)``: a studio of the test's own (stopped after it)."""
    servers: list[E2EServer] = []

    def make(**over: Any) -> E2EServer:
        server = start_studio(tmp_path / f"data{len(servers)}", e2e_comfy, e2e_config(e2e_comfy.url, **over))
        servers.append(server)
        return server

    yield make
    for s in servers:
        s.close()


@pytest.fixture
def open_studio(browser) -> Iterator[Callable[..., Any]]:
    contexts: list[Any] = []

    def open_(server: E2EServer | str, key: str | None = ADMIN_KEY, page: str = "generate", *,
              viewport: dict[str, int] | None = None, color_scheme: str = "light") -> Any:
        base = server if isinstance(server, str) else server.url
        ctx = browser.new_context(viewport=viewport or {"width": 1280, "height": 860}, color_scheme=color_scheme)
        ctx.set_default_timeout(TIMEOUT_MS)
        if key:
            ctx.add_init_script(f"window.localStorage.setItem('image-studio.api_key', {key!r});")
        contexts.append(ctx)
        p = ctx.new_page()
        errors: list[str] = []
        p.on("pageerror", lambda exc: errors.append(str(exc)))
        p.page_errors = errors  # uncaught errors in the page, for tests to assert on
        p.goto(f"{base}/image-studio/#/{page}")
        return p

    yield open_
    for ctx in contexts:
        ctx.close()
