"""mount() on a stand-in for Open WebUI's app (same route layout: its own routes, a ``/static``
mount named ``static`` and a final catch-all SPA mount named ``spa-static-files``), with a real
Studio and fake auth. The real Open WebUI is in test_integration.py; these run without it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi import FastAPI, HTTPException, Request
from fastapi.staticfiles import StaticFiles
from fastapi.testclient import TestClient
from starlette.exceptions import HTTPException as StarletteHTTPException

from image_studio.api.deps import Principal
from image_studio.config import ProviderConfig, Settings, StudioConfig
from image_studio.errors import PermissionDenied
from image_studio.openwebui import entry
from image_studio.openwebui import mount as mount_mod
from image_studio.openwebui.mount import mount
from image_studio.studio import Studio

API = "/api/v1/image-studio"


class SPA(StaticFiles):
    """Open WebUI's SPAStaticFiles (main.py:310): index.html for any unknown path."""

    async def get_response(self, path: str, scope):  # noqa: ANN001, ANN201
        try:
            return await super().get_response(path, scope)
        except StarletteHTTPException as exc:
            if exc.status_code == 404:
                return await super().get_response("index.html", scope)
            raise


def host_app(tmp_path: Path) -> FastAPI:
    static = tmp_path / "static"
    static.mkdir()
    (static / "loader.js").write_text("/* open webui's own loader */\n")
    (static / "favicon.txt").write_text("favicon")
    spa = tmp_path / "spa"
    spa.mkdir()
    (spa / "index.html").write_text("<html>Open WebUI</html>")
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict:
        return {"status": True}

    @app.get("/api/v1/host-error")
    async def host_error() -> dict:
        raise HTTPException(400, "host's own error")

    app.mount("/static", StaticFiles(directory=static), name="static")
    app.mount("/", SPA(directory=spa, html=True), name="spa-static-files")
    return app


def make_studio(tmp_path: Path, **settings) -> Studio:  # noqa: ANN003
    return Studio(Settings(data_dir=tmp_path / "studio", secret_key="test-secret", **settings),
                  config=StudioConfig(default_provider="ph", providers={"ph": ProviderConfig(type="placeholder")}))


async def fake_auth(request: Request) -> Principal:
    who = request.headers.get("x-test-user")
    if not who:
        raise HTTPException(401, detail={"type": "Unauthorized", "message": "sign in"})
    owner, _, role = who.partition(":")
    return Principal(owner=owner, role=role or "user")


class Gate:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def __call__(self, request: Request, principal: Principal) -> None:
        self.calls.append(f"{request.method} {request.url.path} {principal.owner}")
        if request.headers.get("x-deny"):
            raise PermissionDenied("no images for you", field="features.image_generation")


@pytest.fixture
def web_dir(tmp_path: Path) -> Path:
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<html>Image Studio UI</html>")
    return web


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def mounted(tmp_path, web_dir, gate):
    app = host_app(tmp_path)
    assert mount(app, studio=make_studio(tmp_path), authenticate=fake_auth, generation_gate=gate, web_dir=web_dir)
    with TestClient(app) as client:
        yield app, client


def names(app: FastAPI) -> list[str | None]:
    return [getattr(r, "name", None) for r in app.router.routes]


def test_studio_routes_are_reached_and_the_host_keeps_its_own(mounted):
    app, client = mounted
    assert names(app)[-1] == "spa-static-files"
    health = client.get(f"{API}/health")
    assert health.status_code == 200 and health.json()["providers"] == ["ph"]
    assert client.get("/health").json() == {"status": True}
    assert client.get("/chat/some-page").text == "<html>Open WebUI</html>"
    assert client.get("/static/favicon.txt").text == "favicon"
    host_error = client.get("/api/v1/host-error")
    assert host_error.status_code == 400 and host_error.json() == {"detail": "host's own error"}


def test_without_mount_the_catch_all_shadows_routes_added_later(tmp_path):
    """Why mount() moves the SPA mount: the trap it fixes, shown on the same stand-in."""
    app = host_app(tmp_path)
    app.get(f"{API}/late")(lambda: {"ok": True})
    with TestClient(app) as client:
        assert client.get(f"{API}/late").text == "<html>Open WebUI</html>"
    mount_mod.move_to_end(app, "spa-static-files")
    with TestClient(app) as client:
        assert client.get(f"{API}/late").json() == {"ok": True}


def test_ui_is_served_with_a_redirect_from_the_bare_path(mounted):
    _, client = mounted
    assert client.get("/image-studio/").text == "<html>Image Studio UI</html>"
    redirect = client.get("/image-studio", follow_redirects=False)
    assert redirect.status_code == 307 and redirect.headers["location"] == "/image-studio/"


def test_loader_js_is_open_webuis_file_then_the_entry_link(mounted):
    app, client = mounted
    order = names(app)
    assert order.index(entry.ROUTE_NAME) < order.index("static")
    r = client.get("/static/loader.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert r.text.startswith("/* open webui's own loader */\n")
    assert 'var HREF = "/image-studio/";' in r.text and "image-studio-entry" in r.text
    assert r.headers["cache-control"] == "no-cache"


def test_without_a_built_ui_no_ui_and_no_link(tmp_path):
    app = host_app(tmp_path)
    assert mount(app, studio=make_studio(tmp_path), authenticate=fake_auth, generation_gate=Gate(),
                 web_dir=tmp_path / "nothing-built")
    with TestClient(app) as client:
        loader = client.get("/static/loader.js").text
        assert loader.startswith("/* open webui's own loader */") and "image-studio-entry" not in loader
        assert "UI is not built" in loader
        assert client.get("/image-studio/").text == "<html>Open WebUI</html>"


def test_unknown_studio_paths_get_json_404_and_wrong_methods_405(mounted):
    _, client = mounted
    missing = client.get(f"{API}/no/such/route")
    assert missing.status_code == 404
    assert missing.json()["error"] == {"type": "NotFound", "message": f"no Image Studio route {API}/no/such/route",
                                       "field": "path"}
    wrong = client.delete(f"{API}/health")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET"
    assert wrong.json()["error"]["type"] == "MethodNotAllowed"


def test_studio_errors_keep_the_studio_shape(mounted):
    _, client = mounted
    r = client.get(f"{API}/jobs/0123456789abcdef", headers={"x-test-user": "alice"})
    assert r.status_code == 404 and r.json()["error"]["type"] == "NotFound"


def test_auth_and_the_generation_gate(mounted, gate):
    _, client = mounted
    assert client.get(f"{API}/jobs").status_code == 401
    body = {"prompt": "a fox", "width": 64, "height": 64}
    refused = client.post(f"{API}/generations", json=body, headers={"x-test-user": "alice", "x-deny": "1"})
    assert refused.status_code == 403
    assert refused.json()["error"] == {"type": "PermissionDenied", "message": "no images for you",
                                       "field": "features.image_generation"}
    refused_batch = client.post(f"{API}/generations/batch", json={"requests": [body]},
                                headers={"x-test-user": "alice", "x-deny": "1"})
    assert refused_batch.status_code == 403
    assert client.get(f"{API}/jobs", headers={"x-test-user": "alice"}).json()["items"] == []
    ok = client.post(f"{API}/generations", json=body, headers={"x-test-user": "alice", "Prefer": "wait=20"})
    assert ok.status_code == 200 and ok.json()["status"] == "succeeded" and ok.json()["owner"] == "alice"
    assert gate.calls == [f"POST {API}/generations alice", f"POST {API}/generations/batch alice",
                          f"POST {API}/generations alice"]


def test_a_studio_that_fails_to_start_answers_503_and_the_host_runs_on(tmp_path, caplog):
    app = host_app(tmp_path)
    broken = make_studio(tmp_path, queue="procrastinate")  # not part of this version: start() raises
    assert mount(app, studio=broken, authenticate=fake_auth, generation_gate=Gate(), web_dir=tmp_path / "none")
    with caplog.at_level(logging.ERROR, logger="image_studio.openwebui"), TestClient(app) as client:
        r = client.get(f"{API}/health")
        assert r.status_code == 503
        error = r.json()["error"]
        assert error["type"] == "ConfigError"
        assert error["message"].startswith("Image Studio is not available: IMAGE_STUDIO_QUEUE=procrastinate")
        assert client.get(f"{API}/jobs", headers={"x-test-user": "a"}).status_code == 503
        assert client.get("/health").json() == {"status": True}
    assert "Image Studio failed to start" in caplog.text


def test_a_failing_mount_is_logged_and_leaves_the_host_working(tmp_path, monkeypatch, caplog):
    def boom():  # noqa: ANN202
        raise RuntimeError("router exploded")

    monkeypatch.setattr(mount_mod, "build_router", boom)
    app = host_app(tmp_path)
    with caplog.at_level(logging.ERROR, logger="image_studio.openwebui"):
        assert mount(app, studio=make_studio(tmp_path), authenticate=fake_auth, generation_gate=Gate()) is False
    assert "could not be added to Open WebUI" in caplog.text and "router exploded" in caplog.text
    assert names(app)[-1] == "spa-static-files"
    with TestClient(app) as client:
        assert client.get("/health").json() == {"status": True}
        assert client.get("/static/favicon.txt").text == "favicon"


def test_mounting_twice_adds_nothing(mounted, tmp_path):
    app, _ = mounted
    before = names(app)
    assert mount(app, studio=make_studio(tmp_path / "other"), authenticate=fake_auth, generation_gate=Gate())
    assert names(app) == before
