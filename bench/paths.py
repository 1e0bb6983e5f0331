"""The three ways the overhead benchmark gets one image out of the same ComfyUI.

* :class:`DirectPath`: the minimal client of :mod:`bench.direct` (the baseline).
* :class:`InProcessPath`: a :class:`~image_studio.studio.Studio` in this process, ``submit``
  then ``wait``, with a :class:`~bench.stages.StageRecorder` on it.
* :class:`HttpPath`: the standalone app, ``image-studio serve`` in its own process (uvicorn,
  127.0.0.1), ``POST /generations`` with ``Prefer: wait=60`` and then
  ``GET /assets/{id}/content``.

All three run the graph of the shipped ``weightfree`` template (EmptyImage -> ImageInvert ->
SaveImage, no model files; the studio gets it inline with only the SaveImage prefix changed)
at the same size; every run gets its own EmptyImage colour so that
ComfyUI's node cache never turns a run into a cached rerun.
"""

from __future__ import annotations

import copy
import functools
import json
import sys
import tempfile
import time
from contextlib import ExitStack
from importlib import resources
from pathlib import Path
from typing import Any

import httpx

from image_studio.config import Settings, StudioConfig
from image_studio.studio import Studio
from image_studio.types import GenerationRequest, JobStatus

from .common import child_process, free_port, proc_cpu_seconds
from .direct import DirectClient
from .stages import StageRecorder, clock

API = "/api/v1/image-studio"
PROVIDER = "comfy"


class Colors:
    """Unique EmptyImage colours (0xRRGGBB) for this run, starting from a time-based offset."""

    def __init__(self) -> None:
        self.next = (int(time.time() * 1000) * 7919) % 0xF00000 + 1

    def __call__(self) -> int:
        self.next = self.next % 0xFFFFFE + 1
        return self.next


OUTPUT_PREFIX = "imgstudio_bench"
"""SaveImage ``filename_prefix`` of every benchmark image, so that a real ComfyUI's output
folder shows which files the benchmark left (``imgstudio_bench_*.png``)."""


@functools.lru_cache(maxsize=1)
def _shipped_weightfree() -> str:
    path = resources.files("image_studio.providers.comfyui") / "workflows" / "weightfree.json"
    return path.read_text(encoding="utf-8")


def weightfree_template() -> dict[str, Any]:
    """The shipped ``weightfree`` template (EmptyImage -> ImageInvert -> SaveImage), its
    SaveImage prefix set to :data:`OUTPUT_PREFIX`."""
    template = json.loads(_shipped_weightfree())
    template["prompt"]["3"]["inputs"]["filename_prefix"] = OUTPUT_PREFIX
    return template


def weightfree_prompt(width: int, height: int, color: int) -> dict[str, Any]:
    """The template's API prompt with the size and colour set (what the direct client sends)."""
    prompt = copy.deepcopy(weightfree_template()["prompt"])
    prompt["1"]["inputs"].update(width=width, height=height, color=color)
    return prompt


def studio_config(url: str, concurrency: int) -> dict[str, Any]:
    """One ComfyUI provider ``comfy`` running :func:`weightfree_template` (inline), with
    ``concurrency`` jobs in flight on the backend; every other setting at its default."""
    return {"default_provider": PROVIDER,
            "providers": {PROVIDER: {"type": "comfyui", "backends": [{"url": url}], "concurrency": concurrency,
                                     "settings": {"workflow": weightfree_template()}}}}


def request_body(width: int, height: int, color: int) -> dict[str, Any]:
    return {"prompt": "benchmark: an inverted solid colour", "width": width, "height": height,
            "params": {"color": color}}


class DirectPath:
    """The baseline. ``clients`` websockets (one per concurrent caller in the throughput run)."""

    name = "direct client"

    def __init__(self, url: str, width: int, height: int) -> None:
        self.url, self.width, self.height = url, width, height
        self.clients: list[DirectClient] = []
        self.last_png: bytes = b""

    async def start(self, clients: int = 1) -> None:
        while len(self.clients) < clients:
            client = DirectClient(self.url)
            await client.start()
            self.clients.append(client)

    async def one(self, color: int, slot: int = 0) -> dict[str, float]:
        """One image; returns ``{"total", "rtt", "fetch"}`` seconds."""
        marks: dict[str, float] = {}
        prompt = weightfree_prompt(self.width, self.height, color)
        t0 = clock()
        self.last_png = await self.clients[slot].generate(prompt, marks=marks)
        return {"total": clock() - t0, "rtt": marks["done"] - marks["post"], "fetch": marks["fetched"] - marks["done"]}

    async def stop(self) -> None:
        for client in self.clients:
            await client.forget()
            await client.close()


class InProcessPath:
    """A Studio in this process (data in a temporary directory), timed stage by stage."""

    name = "studio in-process"

    def __init__(self, url: str, width: int, height: int, concurrency: int) -> None:
        self.width, self.height = width, height
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-studio-")
        settings = Settings(data_dir=Path(self._tmp.name), secret_key="bench-secret-key")
        self.studio = Studio(settings, config=StudioConfig.model_validate(studio_config(url, concurrency)))
        self.recorder = StageRecorder()
        self.job_ids: list[str] = []

    async def start(self) -> None:
        self.recorder.before_start(self.studio)
        await self.studio.start()
        self.recorder.after_start(self.studio, PROVIDER)

    async def one(self, color: int, slot: int = 0) -> dict[str, float]:
        """``submit`` + ``wait``; returns ``{"total"}`` seconds (stages via :attr:`recorder`).

        Raises:
            RuntimeError: the job did not succeed.
        """
        request = GenerationRequest.model_validate(request_body(self.width, self.height, color))
        t0 = clock()
        job = await self.studio.submit(request)
        t1 = clock()
        job = await self.studio.wait(job.id, 60)
        t2 = clock()
        if job.status is not JobStatus.succeeded:
            raise RuntimeError(f"studio job {job.id} ended {job.status.value}: {job.error}")
        m = self.recorder.marks[job.id]
        m.update(submit_start=t0, submit_end=t1, wait_end=t2)
        self.job_ids.append(job.id)
        return {"total": t2 - t0}

    async def stop(self) -> None:
        await self.recorder.uninstall()
        await self.studio.stop()
        self._tmp.cleanup()


class HttpPath:
    """``image-studio serve`` in its own process; this process is only its HTTP client."""

    name = "studio HTTP"

    def __init__(self, url: str, width: int, height: int, concurrency: int) -> None:
        self.comfy_url, self.width, self.height, self.concurrency = url, width, height, concurrency
        self._stack = ExitStack()
        self.proc: Any = None
        self.http: httpx.AsyncClient | None = None

    async def start(self) -> None:
        tmp = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-http-")))
        config = tmp / "studio.json"
        config.write_text(json.dumps(studio_config(self.comfy_url, self.concurrency)))
        port = free_port()
        env = {"IMAGE_STUDIO_CONFIG": str(config), "IMAGE_STUDIO_DATA_DIR": str(tmp / "data"),
               "IMAGE_STUDIO_SECRET_KEY": "bench-secret-key", "IMAGE_STUDIO_LOG_LEVEL": "warning"}
        args = [sys.executable, "-c", "from image_studio.cli import main; main()", "serve", "--port", str(port)]
        base = f"http://127.0.0.1:{port}"
        self.proc = self._stack.enter_context(child_process(args, ready_url=base + API + "/health", env=env,
                                                            log_path=tmp / "server.log"))
        self.http = httpx.AsyncClient(base_url=base + API, timeout=90.0,
                                      limits=httpx.Limits(max_connections=32, max_keepalive_connections=32))

    def server_cpu(self) -> float:
        """CPU seconds the server process has used so far."""
        return proc_cpu_seconds(self.proc.pid)

    async def one(self, color: int, slot: int = 0) -> dict[str, float]:
        """``POST /generations`` (``Prefer: wait=60``) then ``GET`` the asset content;
        returns ``{"total", "post", "content"}`` seconds.

        Raises:
            RuntimeError: the job did not succeed or has no asset.
        """
        assert self.http is not None
        body = request_body(self.width, self.height, color)
        t0 = clock()
        r = await self.http.post("/generations", json=body, headers={"Prefer": "wait=60"})
        t1 = clock()
        job = r.json()
        if r.status_code != 200 or job.get("status") != "succeeded" or not job.get("asset_ids"):
            raise RuntimeError(f"POST /generations: {r.status_code} {r.text[:300]}")
        content = await self.http.get(f"/assets/{job['asset_ids'][0]}/content")
        content.raise_for_status()
        t2 = clock()
        return {"total": t2 - t0, "post": t1 - t0, "content": t2 - t1}

    async def sse_latencies(self, color: int) -> list[tuple[str, float]]:
        """Queue one job without waiting, follow ``GET /jobs/{id}/events`` to its end; returns
        ``(event type, seconds from the event's creation to its arrival here)`` for each
        event published after the stream opened (the first SSE message, a snapshot, is skipped)."""
        assert self.http is not None
        job = (await self.http.post("/generations", json=request_body(self.width, self.height, color))).json()
        out: list[tuple[str, float]] = []
        async with self.http.stream("GET", f"/jobs/{job['id']}/events") as resp:
            n, data = 0, ""
            async for line in resp.aiter_lines():
                if line.startswith("id:"):
                    n = int(line[3:].strip())
                elif line.startswith("data:"):
                    data = line[5:].strip()
                elif line == "" and data:
                    arrived = time.time()
                    event = json.loads(data)
                    if n >= 2:
                        ts = _parse_ts(event["ts"])
                        out.append((event["type"], arrived - ts))
                    data = ""
        return out

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.aclose()
        self._stack.close()


def _parse_ts(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
