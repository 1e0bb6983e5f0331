"""A fake ComfyUI server that replays the transcripts in ``tests/fixtures/comfyui/`` and
``tests/fixtures/comfyui_recorded/``.

It is a real HTTP + websocket server (Starlette on uvicorn, 127.0.0.1, a free port), run in a
background thread by :class:`FakeComfyUI` (``with FakeComfyUI() as fake: fake.url``) or in
the foreground with ``python -m tests.fakes.comfyui_server --port 8188``.

What it serves comes from the recordings (ComfyUI 0.3.64): ``/object_info`` from
``object_info_subset.json`` and ``object_info_more.json`` (model lists empty, so ``txt2img``
fails validation with the recorded ``value_not_in_list`` unless checkpoints are given),
``/system_stats`` and ``/features`` from ``system_stats.json``, the recorded 400 bodies for the
recorded bad prompts, and for every accepted prompt the recorded websocket frame sequence
(``execution_start``, ``execution_cached``, ``progress_state``, ``executing``, ``progress``,
binary previews, ``executed``, ``execution_success`` / ``execution_error`` /
``execution_interrupted``, ``status``, ``executing {node: null}``) with this run's prompt_id,
node ids and file names; preview JPEGs and output files (PNG; WebM and animated WebP, see
``comfyui_media.py``; of the size the graph says) are synthesised. The scenario follows from
the graph (a ``FixtureRaiseError`` node fails, a ``FixtureSleepProgress`` node reports
progress and previews, binary event 4 for clients that sent ``feature_flags``, else event 1)
or is forced with :meth:`FakeComfyUI.force`.
"""
from __future__ import annotations

import argparse
import asyncio
import copy
import json
import mimetypes
import socket
import threading
import time
import uuid
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from tests.fakes.comfyui_media import ADDED_TYPES, load_recorded
from tests.fakes.comfyui_sim import Simulator
from tests.fakes.comfyui_sockets import SocketHub
from tests.fakes.comfyui_validation import (canonical, load_fixture, recorded_http, recorded_rejections,
                                            validate_prompt)


class FakeComfyUI(SocketHub):
    """The fake server. Attributes for tests to inspect (appended from the server thread):

    ``requests``: ``{"method", "path", "query", "json"}`` per HTTP call; ``ws_log``:
    ``{"event": "open"|"recv"|"close"|"refused", "sid", "text"?}``; ``sent``: every frame sent,
    ``{"sid", "type"}`` plus ``data`` (JSON) or ``event``/``length`` (binary).

    Args:
        time_scale: multiplies ``FixtureSleepProgress.step_seconds`` (1.0 replays the
            recorded pace; the default is fast).
        frame_delay: seconds between websocket frames of a run.
        checkpoints: names offered for ``ckpt_name`` (a run that loads one fails like
            ``execution_error_bad_checkpoint.json``: there are no weights).
        preview_size: side in pixels of the synthesised preview JPEGs (recorded: 512).
        cache: replay ComfyUI's node cache (a repeated node is listed in ``execution_cached``).
        upscale_models: names offered for ``UpscaleModelLoader.model_name`` (also
            ``fake.sim.media.upscale_models``; another name is accepted but fails at run time,
            as recorded in ``upscale.json``).
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, time_scale: float = 0.01,
                 frame_delay: float = 0.0, checkpoints: list[str] | tuple[str, ...] = (), preview_size: int = 512,
                 cache: bool = True, upscale_models: list[str] | tuple[str, ...] = ()) -> None:
        self.host, self.port = host, port
        self.time_scale, self.frame_delay = time_scale, frame_delay
        self.checkpoints = list(checkpoints)
        self.object_info = {**load_fixture("object_info_subset"), **load_recorded("object_info_more")}
        self.system_stats = recorded_http("system_stats", "/system_stats")
        self.features = recorded_http("system_stats", "/features")
        self.rejections = recorded_rejections()
        self.sim = Simulator(preview_size=preview_size, cache=cache)
        self.sim.media.upscale_models = list(upscale_models)
        super().__init__()
        self.requests: list[dict[str, Any]] = []
        self.pause_step: int | None = None
        self.pending: list[list[Any]] = []
        self.running: list[Any] | None = None
        self.last_node: str | None = None
        self.history: dict[str, dict[str, Any]] = {}
        self.number = 0
        self._forced: list[str] = []
        self._interrupt: str | None = None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: uvicorn.Server | None = None
        self.app = self._build_app()

    # -- control (safe from the test's thread) -----------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def force(self, scenario: str, times: int = 1) -> None:
        """Force the next prompt(s): ``execution_error`` (the first non-output node fails), or
        a recorded rejection ``<fixture>`` / ``<fixture>#<n>`` (e.g. ``prompt_no_outputs``,
        ``validation_error_bad_value#2``) answered as recorded whatever the prompt."""
        with self._lock:
            self._forced.extend([scenario] * times)

    def pause_at_step(self, step: int | None) -> None:
        """Hold every ``FixtureSleepProgress`` run after ``step`` until :meth:`release` (or an
        interrupt). None stops pausing."""
        self.pause_step = step

    def release(self) -> None:
        """Let paused runs go on."""
        self.pause_step = None

    def drop_sockets(self) -> None:
        """Close every client websocket from the server side."""
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self.drop(), self._loop).result(10)

    def start(self) -> FakeComfyUI:
        """Serve in a background thread; returns when it accepts connections."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="off",
                                                     timeout_graceful_shutdown=2, ws_ping_interval=None))
        self._thread = threading.Thread(target=lambda: asyncio.run(self.serve([sock])), daemon=True,
                                        name=f"fake-comfyui:{self.port}")
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake ComfyUI server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and join the thread."""
        if self._server is not None:
            self._server.should_exit = True
        self.pause_step = None
        if self._thread is not None:
            self._thread.join(15)
        self._thread = self._server = self._loop = None

    def __enter__(self) -> FakeComfyUI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        """Serve on this event loop until ``should_exit`` (standalone and thread mode)."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if self._server is None:
            self._server = uvicorn.Server(uvicorn.Config(self.app, host=self.host, port=self.port,
                                                         log_level="info", lifespan="off"))
        worker = asyncio.create_task(self._worker())
        try:
            await self._server.serve(sockets=sockets)
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)

    # -- HTTP --------------------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        routes = [("/prompt", self.post_prompt, "POST"), ("/prompt", self.get_prompt, "GET"),
                  ("/queue", self.get_queue, "GET"), ("/queue", self.post_queue, "POST"),
                  ("/interrupt", self.post_interrupt, "POST"), ("/history", self.get_history, "GET"),
                  ("/history/{prompt_id}", self.get_history, "GET"), ("/history", self.post_history, "POST"),
                  ("/view", self.view, "GET"), ("/upload/image", self.upload, "POST"),
                  ("/object_info", self.get_object_info, "GET"),
                  ("/object_info/{node_class}", self.get_object_info, "GET"),
                  ("/system_stats", self.simple, "GET"), ("/features", self.simple, "GET"),
                  ("/embeddings", self.simple, "GET"), ("/models/{folder}", self.simple, "GET")]
        table = [Route(prefix + path, handler, methods=[method])
                 for prefix in ("", "/api") for path, handler, method in routes]
        table.append(WebSocketRoute("/ws", self.websocket))
        return Starlette(routes=table)

    async def _record(self, request: Request) -> Any:
        body: Any = None
        if request.headers.get("content-type", "").startswith("application/json"):
            raw = await request.body()
            try:
                body = json.loads(raw) if raw else {}
            except json.JSONDecodeError:
                body = {}
        self.requests.append({"method": request.method, "path": request.url.path,
                              "query": dict(request.query_params), "json": body})
        return body

    def _queue_info(self) -> dict[str, Any]:
        return {"exec_info": {"queue_remaining": len(self.pending) + (1 if self.running else 0)}}

    def _take_forced(self, validation: bool) -> str | None:
        with self._lock:
            for i, name in enumerate(self._forced):
                if name.split("#")[0] in self.rejections if validation else name == "execution_error":
                    return self._forced.pop(i)
        return None

    async def post_prompt(self, request: Request) -> Response:
        body = await self._record(request)
        if not isinstance(body, dict) or "prompt" not in body:
            return JSONResponse({"error": {"type": "no_prompt", "message": "No prompt provided",
                                           "details": "No prompt provided", "extra_info": {}}, "node_errors": {}}, 400)
        prompt = body["prompt"]
        forced = self._take_forced(validation=True)
        if forced:
            name, _, index = forced.partition("#")
            return JSONResponse(self.rejections[name][int(index or 0)][1], 400)
        for recorded in self.rejections.values():
            for recorded_prompt, answer in recorded:
                if recorded_prompt == canonical(prompt):
                    return JSONResponse(answer, 400)
        error, node_errors, outputs = validate_prompt(prompt, self._object_info(), self.sim.inputs)
        if error or not outputs:
            error = error or {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                              "details": "", "extra_info": {}}
            return JSONResponse({"error": error, "node_errors": node_errors}, 400)
        number = -self.number if body.get("front") else self.number
        self.number += 1
        prompt_id = str(body.get("prompt_id") or uuid.uuid4())
        extra = dict(body.get("extra_data") or {})
        if body.get("client_id"):
            extra["client_id"] = body["client_id"]
        fail = self._take_forced(validation=False) is not None
        self.pending.append([number, prompt_id, prompt, extra, outputs, fail])
        await self._broadcast_status()
        self._wake.set()
        return JSONResponse({"prompt_id": prompt_id, "number": number, "node_errors": node_errors})

    async def get_prompt(self, request: Request) -> Response:
        await self._record(request)
        return JSONResponse(self._queue_info())

    async def get_queue(self, request: Request) -> Response:
        await self._record(request)
        running = [self.running[:5]] if self.running else []
        return JSONResponse({"queue_running": running, "queue_pending": [item[:5] for item in self.pending]})

    async def post_queue(self, request: Request) -> Response:
        body = await self._record(request) or {}
        before = len(self.pending)
        if body.get("clear"):
            self.pending.clear()
        for prompt_id in body.get("delete") or []:
            self.pending = [item for item in self.pending if item[1] != prompt_id]
        if len(self.pending) != before:
            await self._broadcast_status()
        return Response(status_code=200)

    async def post_interrupt(self, request: Request) -> Response:
        body = await self._record(request) or {}
        target = body.get("prompt_id")
        if self.running and (not target or target == self.running[1]):
            self._interrupt = self.running[1]
        return Response(status_code=200)

    async def get_history(self, request: Request) -> Response:
        await self._record(request)
        prompt_id = request.path_params.get("prompt_id")
        if prompt_id is not None:
            return JSONResponse({prompt_id: self.history[prompt_id]} if prompt_id in self.history else {})
        items = list(self.history.items())
        if request.query_params.get("max_items"):
            items = items[-int(request.query_params["max_items"]):]
        return JSONResponse(dict(items))

    async def post_history(self, request: Request) -> Response:
        body = await self._record(request) or {}
        if body.get("clear"):
            self.history.clear()
        for prompt_id in body.get("delete") or []:
            self.history.pop(prompt_id, None)
        return Response(status_code=200)

    async def view(self, request: Request) -> Response:
        await self._record(request)
        q = request.query_params
        key = (q.get("type", "output"), q.get("subfolder", ""), q.get("filename", ""))
        data = self.sim.files.get(key)
        if data is None:
            return Response(status_code=404)
        media = ADDED_TYPES.get(key[2].rpartition(".")[2].lower()) or mimetypes.guess_type(key[2])[0]
        return Response(data, media_type=media or "application/octet-stream",
                        headers={"Content-Disposition": f'filename="{key[2]}"'})

    async def upload(self, request: Request) -> Response:
        async with request.form() as form:
            image = form.get("image")
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            self.requests.append({"method": "POST", "path": request.url.path, "query": {}, "json": None,
                                  "fields": fields, "filename": getattr(image, "filename", None)})
            if image is None or isinstance(image, str) or not image.filename:
                return Response(status_code=400)
            data = await image.read()
        answer = self.sim.store_upload(data, image.filename, fields.get("subfolder", ""),
                                       fields.get("type") or "input", fields.get("overwrite") in ("true", "1"))
        return JSONResponse(answer)

    def _object_info(self) -> dict[str, Any]:
        info = copy.deepcopy(self.object_info)
        info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0] = list(self.checkpoints)
        info["LoadImage"]["input"]["required"]["image"][0] = sorted({"example.png", *self.sim.input_names()})
        info["UpscaleModelLoader"]["input"]["required"]["model_name"][1]["options"] = list(self.sim.media.upscale_models)
        return info

    async def get_object_info(self, request: Request) -> Response:
        await self._record(request)
        info = self._object_info()
        node_class = request.path_params.get("node_class")
        if node_class is not None:
            return JSONResponse({node_class: info[node_class]} if node_class in info else {})
        return JSONResponse(info)

    async def simple(self, request: Request) -> Response:
        await self._record(request)
        path = request.url.path.removeprefix("/api")
        if path.startswith("/models/"):
            folder = path.removeprefix("/models/")
            return JSONResponse(self.checkpoints if folder == "checkpoints" else [])
        return JSONResponse({"/system_stats": self.system_stats, "/features": self.features}.get(path, []))

    async def _broadcast_status(self) -> None:
        await self.send(None, "status", {"status": self._queue_info()})

    async def greet(self, sid: str) -> None:
        """Messages for a (re)connected socket, as ComfyUI's ``websocket_handler`` sends them."""
        await self.send(sid, "status", {"status": self._queue_info(), "sid": sid})
        if self.running and self.running[3].get("client_id") == sid and self.last_node is not None:
            await self.send(sid, "executing", {"node": self.last_node})  # only {node}, as recorded

    # -- execution ---------------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.pending:
                self.pending.sort(key=lambda item: item[0])
                self.running = self.pending.pop(0)
                self._interrupt = None
                try:
                    await self._execute(*self.running)
                finally:
                    self.running, self.last_node = None, None

    def interrupted(self, prompt_id: str) -> bool:
        return self._interrupt == prompt_id

    async def pace(self, seconds: float = 0.0) -> None:
        """Sleep between frames: ``seconds * time_scale + frame_delay``."""
        await asyncio.sleep(max(0.0, seconds * self.time_scale + self.frame_delay))

    async def _execute(self, number: int, prompt_id: str, prompt: dict[str, Any], extra: dict[str, Any],
                       outputs: list[str], fail: bool) -> None:
        await self._broadcast_status()
        run = self.sim.plan(prompt, outputs, self._object_info(), fail=fail, extra=extra)
        sid = extra.get("client_id")
        ui, status, messages = await run.play(self, prompt_id, sid, metadata_previews=self.metadata_previews(sid))
        self.history[prompt_id] = {
            "prompt": [number, prompt_id, prompt, extra, outputs], "outputs": ui,
            "status": {"status_str": status, "completed": status == "success", "messages": messages},
            "meta": {n: {"node_id": n, "display_node": n, "parent_node": None, "real_node_id": n} for n in ui}}
        self.running = None
        await self._broadcast_status()
        await self.send(sid, "executing", {"node": None, "prompt_id": prompt_id})


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.fakes.comfyui_server --port 8188``: serve in the foreground."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8188)
    parser.add_argument("--time-scale", type=float, default=0.01,
                        help="multiplies FixtureSleepProgress step_seconds (1.0: recorded pace)")
    parser.add_argument("--frame-delay", type=float, default=0.0, help="seconds between websocket frames")
    parser.add_argument("--preview-size", type=int, default=512)
    parser.add_argument("--checkpoint", action="append", default=[], help="a checkpoint name to offer")
    args = parser.parse_args(argv)
    fake = FakeComfyUI(host=args.host, port=args.port, time_scale=args.time_scale, frame_delay=args.frame_delay,
                       checkpoints=args.checkpoint, preview_size=args.preview_size)
    print(f"fake ComfyUI on {fake.url} (Ctrl-C stops)", flush=True)
    try:
        asyncio.run(fake.serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
