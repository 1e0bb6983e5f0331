"""A fake Automatic1111 web UI API: a real HTTP server (FastAPI on uvicorn, 127.0.0.1, a thread).

It follows the wire format of AUTOMATIC1111/stable-diffusion-webui v1.10:

* ``modules/api/models.py``: the request models are built from the processing classes' fields,
  every field optional, unknown fields *ignored* (pydantic's default; the generated models do
  not forbid extras), so a wrong type is a FastAPI 422 ``{"detail": [{"loc": ["body", name],
  ...}]}`` and an unknown name is silently dropped. ``TextToImageResponse`` /
  ``ImageToImageResponse`` are ``{"images": [base64 PNG], "parameters": {request}, "info":
  "<JSON string of Processed.js()>"}``.
* ``modules/api/api.py``: the routes, ``force_task_id``, ``--api-auth`` HTTP Basic on every
  ``/sdapi`` route (401 ``Incorrect username or password``), the exception middleware's body
  ``{"error", "detail", "body", "errors"}``, sampler check (400 ``Sampler not found``),
  ``Invalid encoded image`` (500), one job at a time under ``queue_lock``, interrupt.
* ``modules/progress.py``: ``POST /internal/progress`` ``{"id_task", "id_live_preview",
  "live_preview"}`` -> ``{"active", "queued", "completed", "progress", "eta", "live_preview"
  (a data URL), "id_live_preview", "textinfo"}``; not behind ``--api-auth``.

An interrupt stops sampling and returns the images of the iterations begun, as the real one.

Use in tests::

    with FakeA1111(step_delay=0.01, auth=("user", "pw")) as fake:
        fake.hold(at_step=2)        # sampling waits at step 2 until fake.release()
        fake.inject("/sdapi/v1/txt2img", status=500)   # failure injection: 500, 422, 401, delay
        ... fake.url, fake.bodies("/sdapi/v1/txt2img"), fake.interrupts, fake.runs ...

Standalone: ``python -m tests.fakes.a1111_server --port 7860``.

The catalogue (samplers, schedulers, checkpoints), the request models and the image outputs are
in :mod:`tests.fakes.a1111_models`; ``MODELS`` is re-exported here.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import random
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from PIL import Image

try:
    from tests.fakes.a1111_models import (MODELS, SAMPLER_ITEMS, SCHEDULER_ITEMS, UPSCALERS, VAES, Img2ImgRequest,
                                          InternalProgressRequest, Txt2ImgRequest, decode_image, find_model,
                                          make_infotext, make_png, processed_info, sampler_and_scheduler,
                                          ExtrasSingleImageRequest, upscale_single)
except ImportError:  # run as a file
    from a1111_models import (MODELS, SAMPLER_ITEMS, SCHEDULER_ITEMS, UPSCALERS, VAES,  # type: ignore[no-redef]
                              Img2ImgRequest, InternalProgressRequest, Txt2ImgRequest, decode_image, find_model,
                              make_infotext, make_png, processed_info, sampler_and_scheduler,
                              ExtrasSingleImageRequest, upscale_single)

__all__ = ["MODELS", "FakeA1111", "Injection", "main"]


@dataclass
class Injection:
    """A failure to answer on ``path``: ``status`` (None: only ``delay`` seconds, then normal)."""

    path: str
    status: int | None = 500
    times: int = 1
    delay: float = 0.0
    body: Any = None


@dataclass
class _State:
    current_task: str | None = None
    pending: dict[str, float] = field(default_factory=dict)
    finished: list[str] = field(default_factory=list)
    job_count: int = 0
    job_no: int = 0
    sampling_step: int = 0
    sampling_steps: int = 0
    interrupted: bool = False
    time_start: float = 0.0
    id_live_preview: int = 0
    preview: str | None = None


class FakeA1111:
    """The fake server. Args: ``step_delay`` seconds per sampling step; ``auth`` a
    ``(username, password)`` pair for ``--api-auth``; ``loras`` a list served at
    ``/sdapi/v1/loras`` (None: that route 404s, as without the Lora extension);
    ``live_previews`` whether ``/internal/progress`` sends previews; ``port`` 0 for a free one.

    Recorded, for assertions: ``requests`` (dicts: method, path, json, headers), ``interrupts``
    (the task running at each interrupt call), ``runs`` (``("start"|"end", task_id)``),
    ``max_concurrent`` (most generation requests in the server at once)."""

    def __init__(self, *, step_delay: float = 0.0, auth: tuple[str, str] | None = None,
                 loras: list[dict] | None = None, live_previews: bool = True,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.step_delay, self.auth, self.loras, self.live_previews = step_delay, auth, loras, live_previews
        self.host, self.port = host, port
        self.options: dict[str, Any] = {"sd_model_checkpoint": MODELS[0]["title"], "sd_vae": "Automatic",
                                        "samples_format": "png", "live_previews_enable": live_previews,
                                        "live_previews_image_format": "png", "CLIP_stop_at_last_layers": 1}
        self.requests: list[dict[str, Any]] = []
        self.interrupts: list[str | None] = []
        self.runs: list[tuple[str, str]] = []
        self.max_concurrent = 0
        self._inflight = 0
        self._injections: list[Injection] = []
        self._hold_at: int | None = None
        self._gate = threading.Event()
        self._gate.set()
        self._mutex = threading.Lock()
        self._state = _State()
        self._queue_lock: asyncio.Lock | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = self._build_app()

    # control from tests ------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:<port>``."""
        return f"http://{self.host}:{self.port}"

    def inject(self, path: str, status: int | None = 500, *, times: int = 1, delay: float = 0.0,
               body: Any = None) -> None:
        """Answer the next ``times`` requests to ``path`` with ``status`` (500: the A1111 error
        body; 422: a validation body naming ``width``; 401: bad credentials), after ``delay`` s."""
        with self._mutex:
            self._injections.append(Injection(path, status, times, delay, body))

    def hold(self, at_step: int = 1) -> None:
        """Make sampling wait once it reaches ``at_step`` until :meth:`release` or an interrupt."""
        self._hold_at = at_step
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def bodies(self, path: str) -> list[Any]:
        """JSON bodies received on ``path``, oldest first."""
        return [r["json"] for r in self.requests if r["path"] == path]

    # server lifecycle ----------------------------------------------------------------------

    def start(self) -> "FakeA1111":
        """Serve in a background thread; returns once the socket listens."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake A1111 server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving (held jobs are released first) and join the thread."""
        self._state.interrupted = True
        self._gate.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> "FakeA1111":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # the app -------------------------------------------------------------------------------

    def _take_injection(self, path: str) -> Injection | None:
        with self._mutex:
            for inj in self._injections:
                if inj.path == path and inj.times > 0:
                    inj.times -= 1
                    return inj
        return None

    def _injected_response(self, inj: Injection) -> JSONResponse:
        if inj.body is not None:
            return JSONResponse(inj.body, status_code=inj.status or 500)
        if inj.status == 422:
            detail = [{"loc": ["body", "width"], "msg": "value is not a valid integer", "type": "type_error.integer"}]
            return JSONResponse({"detail": detail}, status_code=422)
        if inj.status == 401:
            return JSONResponse({"error": "HTTPException", "detail": "Incorrect username or password", "body": "",
                                 "errors": "401: Incorrect username or password"}, status_code=401,
                                headers={"WWW-Authenticate": "Basic"})
        return JSONResponse({"error": "OutOfMemoryError", "detail": "", "body": "",
                             "errors": "CUDA out of memory. Tried to allocate 2.00 GiB"}, status_code=inj.status or 500)

    def _build_app(self) -> FastAPI:
        app = FastAPI()
        basic = HTTPBasic(auto_error=False)

        def check_auth(creds: HTTPBasicCredentials | None = Depends(basic)) -> None:
            if self.auth is None:
                return
            if creds is None:
                raise HTTPException(401, "Not authenticated", headers={"WWW-Authenticate": "Basic"})
            if (creds.username, creds.password) != self.auth:
                raise HTTPException(401, "Incorrect username or password", headers={"WWW-Authenticate": "Basic"})

        @app.middleware("http")
        async def record(request: Request, call_next):  # type: ignore[no-untyped-def]
            raw = await request.body()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            self.requests.append({"method": request.method, "path": request.url.path, "json": body,
                                  "headers": dict(request.headers)})
            inj = self._take_injection(request.url.path)
            if inj is not None:
                await asyncio.sleep(inj.delay)
                if inj.status is not None:
                    return self._injected_response(inj)
            try:
                return await call_next(request)
            except Exception as e:  # noqa: BLE001 - A1111's exception_handling middleware does so
                err = {"error": type(e).__name__, "detail": "", "body": "", "errors": str(e)}
                return JSONResponse(err, status_code=500)

        @app.exception_handler(HTTPException)
        async def http_error(_: Request, e: HTTPException) -> JSONResponse:
            err = {"error": type(e).__name__, "detail": e.detail, "body": "", "errors": f"{e.status_code}: {e.detail}"}
            return JSONResponse(err, status_code=e.status_code, headers=e.headers)

        api = [Depends(check_auth)]
        app.post("/sdapi/v1/txt2img", dependencies=api)(self._txt2img)
        app.post("/sdapi/v1/img2img", dependencies=api)(self._img2img)
        app.post("/sdapi/v1/interrupt", dependencies=api)(self._interrupt)
        app.post("/sdapi/v1/extra-single-image", dependencies=api)(self._extras)
        app.post("/internal/progress")(self._internal_progress)
        app.get("/internal/ping")(lambda: {})
        app.get("/sdapi/v1/options", dependencies=api)(lambda: dict(self.options))
        app.post("/sdapi/v1/options", dependencies=api)(self._set_options)
        app.get("/sdapi/v1/sd-models", dependencies=api)(lambda: MODELS)
        app.get("/sdapi/v1/samplers", dependencies=api)(lambda: SAMPLER_ITEMS)
        app.get("/sdapi/v1/schedulers", dependencies=api)(lambda: SCHEDULER_ITEMS)
        app.get("/sdapi/v1/upscalers", dependencies=api)(lambda: UPSCALERS)
        app.get("/sdapi/v1/sd-vae", dependencies=api)(lambda: VAES)
        if self.loras is not None:
            app.get("/sdapi/v1/loras", dependencies=api)(lambda: self.loras)
        return app

    async def _extras(self, req: ExtrasSingleImageRequest) -> dict[str, Any]:
        return upscale_single(req)

    async def _txt2img(self, req: Txt2ImgRequest) -> dict[str, Any]:
        return await self._generate(req, [], None)

    async def _img2img(self, req: Img2ImgRequest) -> dict[str, Any]:
        if req.init_images is None:
            raise HTTPException(status_code=404, detail="Init image not found")
        mask = decode_image(req.mask) if req.mask else None
        return await self._generate(req, [decode_image(x) for x in req.init_images], mask)

    def _set_options(self, req: dict[str, Any]) -> None:
        ckpt = req.get("sd_model_checkpoint")
        if ckpt is not None and find_model(ckpt) is None:
            raise RuntimeError(f"model {ckpt!r} not found")
        self.options.update(req)

    async def _generate(self, req: Any, inits: list[Image.Image], mask: Image.Image | None) -> dict[str, Any]:
        task_id = req.force_task_id or f"task({secrets.token_hex(8)[:15]})"
        sampler, scheduler = sampler_and_scheduler(req.sampler_name or req.sampler_index, req.scheduler)
        model = find_model((req.override_settings or {}).get("sd_model_checkpoint")) \
            or find_model(self.options["sd_model_checkpoint"]) or MODELS[0]
        self._state.pending[task_id] = time.time()
        self._inflight += 1
        self.max_concurrent = max(self.max_concurrent, self._inflight)
        try:
            if self._queue_lock is None:
                self._queue_lock = asyncio.Lock()
            async with self._queue_lock:
                info, images = await self._run(task_id, req, sampler, scheduler, model, inits, mask)
        finally:
            self._inflight -= 1
        params = req.model_dump()
        if isinstance(req, Img2ImgRequest) and not req.include_init_images:
            params["init_images"], params["mask"] = None, None
        return {"images": images if req.send_images else [], "parameters": params, "info": json.dumps(info)}

    async def _run(self, task_id: str, req: Any, sampler: str, scheduler: str, model: dict,
                   inits: list[Image.Image], mask: Image.Image | None) -> tuple[dict[str, Any], list[str]]:
        st = self._state
        st.pending.pop(task_id, None)
        st.current_task, st.interrupted, st.time_start = task_id, False, time.time()
        st.job_count, st.job_no, st.sampling_step, st.sampling_steps = req.n_iter or 1, 0, 0, req.steps or 50
        self.runs.append(("start", task_id))
        batch, total = req.batch_size or 1, (req.n_iter or 1) * (req.batch_size or 1)
        seed = req.seed if req.seed is not None and req.seed != -1 else random.randrange(2**32)
        subseed = req.subseed if req.subseed is not None and req.subseed != -1 else random.randrange(2**32)
        seeds, subseeds = [seed + i for i in range(total)], [subseed + i for i in range(total)]
        prompts = [req.prompt or ""] * total
        infotexts: list[str] = []
        images: list[str] = []
        for it in range(req.n_iter or 1):
            if st.interrupted:
                break
            st.job_no = it
            await self._sample(req, seeds[it * batch])
            for k in range(it * batch, (it + 1) * batch):
                text = make_infotext(req, prompts[k], seeds[k], sampler, scheduler, model)
                base = inits[k % len(inits)] if inits else None
                infotexts.append(text)
                data = make_png(req.width or 512, req.height or 512, seeds[k], text, base, mask)
                images.append(base64.b64encode(data).decode())
        st.finished.append(task_id)
        st.current_task = None
        self.runs.append(("end", task_id))
        info = processed_info(req, prompts=prompts, seed=seed, seeds=seeds, subseed=subseed, subseeds=subseeds,
                              infotexts=infotexts, sampler=sampler, scheduler=scheduler, model=model)
        return info, images

    async def _sample(self, req: Any, seed: int) -> None:
        st = self._state
        for step in range(1, (req.steps or 50) + 1):
            if st.interrupted:
                return
            st.sampling_step = step
            if self.live_previews:
                st.id_live_preview += 1
                side = max(8, min(64, req.width or 512))
                shade = int(255 * step / (req.steps or 50))
                buf = io.BytesIO()
                Image.new("RGB", (side, side), (shade, seed % 256, 255 - shade)).save(buf, format="PNG")
                st.preview = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
            while self._hold_at is not None and step >= self._hold_at and not (self._gate.is_set() or st.interrupted):
                await asyncio.sleep(0.01)
            await asyncio.sleep(self.step_delay)

    def _progress_fraction(self) -> float:
        st = self._state
        progress = st.job_no / st.job_count if st.job_count > 0 else 0.0
        if st.sampling_steps > 0 and st.job_count > 0:
            progress += 1 / st.job_count * st.sampling_step / st.sampling_steps
        return min(progress, 1.0)

    async def _internal_progress(self, req: InternalProgressRequest) -> dict[str, Any]:
        st = self._state
        active, queued = req.id_task == st.current_task, req.id_task in st.pending
        base = {"active": active, "queued": queued, "completed": req.id_task in st.finished, "progress": None,
                "eta": None, "live_preview": None, "id_live_preview": -1, "textinfo": None}
        if not active:
            base["textinfo"] = "In queue" if queued else "Waiting..."
            return base
        progress = self._progress_fraction()
        elapsed = time.time() - st.time_start
        base.update(progress=progress, eta=(elapsed / progress - elapsed) if progress > 0 else None,
                    id_live_preview=req.id_live_preview)
        if self.options.get("live_previews_enable") and req.live_preview and st.id_live_preview != req.id_live_preview:
            base.update(live_preview=st.preview, id_live_preview=st.id_live_preview)
        return base

    async def _interrupt(self) -> dict[str, Any]:
        self.interrupts.append(self._state.current_task)
        self._state.interrupted = True
        return {}

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (the standalone mode)."""
        uvicorn.run(self.app, host=self.host, port=self.port or 7860, log_level="info")


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.fakes.a1111_server [--host H] [--port P] [--step-delay S] [--auth u:p]``."""
    parser = argparse.ArgumentParser(description="Fake Automatic1111 web UI API")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--step-delay", type=float, default=0.05, help="seconds per sampling step")
    parser.add_argument("--auth", default=None, help="user:password, like --api-auth")
    args = parser.parse_args(argv)
    user, _, password = (args.auth or "").partition(":")
    auth = (user, password) if args.auth else None
    FakeA1111(step_delay=args.step_delay, auth=auth, host=args.host, port=args.port).serve_forever()


if __name__ == "__main__":
    main()
