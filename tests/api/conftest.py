"""A real studio server (uvicorn on 127.0.0.1) with placeholder providers, per test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from image_studio.api.app import create_app
from image_studio.config import Settings, StudioConfig
from tests.fakes.serve import ServerThread

API = "/api/v1/image-studio"
ADMIN_KEY = "admin-key-123456"
ALICE_KEY = "alice-key-123456"
BOB_KEY = "bob-key-1234567"


def studio_config(**over: Any) -> StudioConfig:
    data: dict[str, Any] = {
        "default_provider": "fast",
        "providers": {
            "fast": {"type": "placeholder"},
            "slow": {"type": "placeholder", "settings": {"delay": 1.0}},
        },
    }
    data.update(over)
    return StudioConfig.model_validate(data)


KEYS = [
    {"key": ADMIN_KEY, "role": "admin", "owner": "root"},
    {"key": ALICE_KEY, "role": "user", "owner": "alice"},
    {"key": BOB_KEY, "role": "user", "owner": "bob"},
]


class Api:
    """A synchronous client bound to the server and one API key."""

    def __init__(self, url: str, key: str | None) -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(base_url=url + API, headers=headers, timeout=30)

    def __getattr__(self, name: str):  # noqa: ANN204 - delegate get/post/put/delete/stream
        return getattr(self.http, name)

    def events(self, job_id: str) -> list[tuple[str, dict]]:
        """Every SSE event of a job until its stream ends."""
        return self.sse(f"/jobs/{job_id}/events")

    def sse(self, path: str) -> list[tuple[str, dict]]:
        """Every ``(event, data)`` of the SSE stream at ``path`` until it ends."""
        out, event, data = [], "message", []
        with self.http.stream("GET", path) as resp:
            assert resp.status_code == 200, resp.read()
            for line in resp.iter_lines():
                if line == "":
                    if data:
                        out.append((event, json.loads("\n".join(data))))
                    event, data = "message", []
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
        return out


@pytest.fixture
def make_server(tmp_path) -> Iterator:
    servers: list[ServerThread] = []

    def make(config: StudioConfig | None = None, **settings: Any) -> ServerThread:
        s = Settings(data_dir=tmp_path / "data", secret_key="test-secret", **settings)
        server = ServerThread(create_app(s, studio=None) if config is None else _app(s, config)).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def _app(settings: Settings, config: StudioConfig):  # noqa: ANN202
    from image_studio.studio import Studio

    return create_app(settings, studio=Studio(settings, config=config))


@pytest.fixture
def server(make_server) -> ServerThread:
    return make_server(studio_config())


@pytest.fixture
def api(server) -> Api:
    return Api(server.url, None)
