"""Shared fixtures. Tests reach nothing beyond 127.0.0.1 (pytest-socket, see pyproject)."""

from __future__ import annotations

import socket

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
    """Tests never see the developer's IMAGE_STUDIO_* or WEBUI_SECRET_KEY settings."""
    import os

    for name in list(os.environ):
        if name.startswith("IMAGE_STUDIO_") or name == "WEBUI_SECRET_KEY":
            monkeypatch.delenv(name, raising=False)
