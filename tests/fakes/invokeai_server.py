"""A fake InvokeAI 6.x server: a real HTTP server (FastAPI on uvicorn, 127.0.0.1, a thread).

It follows the routes and shapes of invoke-ai/InvokeAI ``invokeai/app/api/routers/``:
``session_queue.py`` (``enqueue_batch`` -> ``EnqueueBatchResult`` with ``item_ids``; queue items
``GET .../i/{item_id}`` with ``response_model_exclude_none``; ``PUT .../i/{item_id}/cancel``
leaving finished items as they are; ``cancel_by_batch_ids``; ``status``), ``images.py``
(multipart ``upload`` -> 201 ``ImageDTO``, 415 for a non-image; ``i/{name}`` and
``i/{name}/full``), ``boards.py`` (``GET /?all=true`` a list, else 400 without offset and limit;
``POST /?board_name=`` 201), ``model_manager.py`` (``GET /api/v2/models/`` -> ``{models}``),
``app_info.py`` (``GET /api/v1/app/version``) and, with ``token`` set, multi-user mode's Bearer
auth (401 on every route but the version). The batch is validated as InvokeAI does
(:mod:`tests.fakes.invokeai_graph`); queue items run one at a time, pending -> in_progress ->
completed / failed / canceled, a node every ``node_delay`` seconds
(:mod:`tests.fakes.invokeai_run`), and their sessions carry ``executed``, ``results`` and
``prepared_source_mapping`` as a real session does.

Use in tests::

    with FakeInvokeAI(node_delay=0.0, token="secret") as fake:
        fake.hold(after_nodes=2)           # items wait after 2 nodes until fake.release(item_id)
        fake.fail_next("OutOfMemoryError", "CUDA out of memory", after_nodes=3)
        fake.inject("/api/v1/queue/default/enqueue_batch", status=500)
        ... fake.url, fake.bodies(path), fake.items, fake.boards, fake.images, fake.uploads ...

Standalone: ``python -m tests.fakes.invokeai_server --port 9090``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import threading
import uuid
from datetime import datetime, timezone
from typing import Any

import uvicorn
from fastapi import Body, FastAPI, HTTPException, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from PIL import Image, UnidentifiedImageError

try:
    from tests.fakes.invokeai_graph import Batch, Graph, Node
    from tests.fakes.invokeai_run import MODELS, NodeFailure, node_inputs, record_result, run_node
    from tests.fakes.serve import ServerThread
except ImportError:  # run as a file
    from invokeai_graph import Batch, Graph, Node  # type: ignore[no-redef]
    from invokeai_run import MODELS, NodeFailure, node_inputs, record_result, run_node  # type: ignore[no-redef]
    from serve import ServerThread  # type: ignore[no-redef]

__all__ = ["MODELS", "FakeInvokeAI", "main"]

def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class FakeInvokeAI:
    """The fake server. Args: ``node_delay`` seconds per node; ``token`` the Bearer token of
    multi-user mode (None: single-user, no auth); ``version`` what ``/app/version`` says;
    ``item_ids`` False to answer ``enqueue_batch`` as InvokeAI 5.x did (without them).

    Recorded, for assertions: ``requests`` (dicts: method, path, query, json, headers),
    ``uploads`` (filename, content_type, data, query), ``items`` (item id -> queue item JSON),
    ``boards`` (board id -> BoardDTO), ``images`` (name -> data, width, height, board_id ...)."""

    def __init__(self, *, node_delay: float = 0.0, token: str | None = None, version: str = "6.14.0",
                 item_ids: bool = True, models: list[dict[str, Any]] | None = None,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.node_delay, self.token, self.version, self.with_item_ids = node_delay, token, version, item_ids
        self.models = list(MODELS if models is None else models)
        self.host, self.port = host, port
        self.requests: list[dict[str, Any]] = []
        self.uploads: list[dict[str, Any]] = []
        self.items: dict[int, dict[str, Any]] = {}
        self.boards: dict[str, dict[str, Any]] = {}
        self.images: dict[str, dict[str, Any]] = {}
        self._graphs: dict[int, Graph] = {}
        self._queue: list[int] = []
        self._next_id = 1
        self._hold_after: int | None = None
        self._gate = threading.Event()
        self._gate.set()
        self._released: set[int] = set()
        self._failures: list[tuple[str, str, int]] = []
        self._injections: list[dict[str, Any]] = []
        self._mutex = threading.Lock()
        self._worker: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._server: ServerThread | None = None
        self.app = self._build_app()

    # control from tests ------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:<port>`` (the API is under ``/api``)."""
        return self._server.url if self._server is not None else f"http://{self.host}:{self.port}"

    def hold(self, after_nodes: int = 1) -> None:
        """Make running items wait once ``after_nodes`` nodes ran, until :meth:`release`."""
        self._hold_after = after_nodes
        self._released.clear()
        self._gate.clear()

    def release(self, item_id: int | None = None) -> None:
        """Let every held item go (and stop holding), or only item ``item_id``."""
        if item_id is None:
            self._gate.set()
        else:
            self._released.add(item_id)

    def fail_next(self, error_type: str = "RuntimeError", message: str = "injected failure", *,
                  after_nodes: int = 1) -> None:
        """Make the next item to run fail with ``error_type``/``message`` after ``after_nodes`` nodes."""
        with self._mutex:
            self._failures.append((error_type, message, after_nodes))

    def inject(self, path: str, status: int = 500, *, times: int = 1, body: Any = None) -> None:
        """Answer the next ``times`` requests to ``path`` with ``status`` and ``body``
        (default ``{"detail": "injected"}``)."""
        with self._mutex:
            self._injections.append({"path": path, "status": status, "times": times,
                                     "body": body if body is not None else {"detail": "injected"}})

    def bodies(self, path: str, method: str | None = None) -> list[Any]:
        """JSON bodies received on ``path`` (and ``method``), oldest first."""
        return [r["json"] for r in self.calls(path, method)]

    def calls(self, path: str, method: str | None = None) -> list[dict[str, Any]]:
        """Recorded requests to ``path`` (and ``method``), oldest first."""
        return [r for r in self.requests if r["path"] == path and (method is None or r["method"] == method)]

    # lifecycle ---------------------------------------------------------------------------

    def start(self) -> "FakeInvokeAI":
        """Serve in a background thread; returns once the socket listens."""
        self._server = ServerThread(self.app, lifespan="off", start_timeout=10).start()
        return self

    def stop(self) -> None:
        """Release held items and stop serving."""
        self._gate.set()
        if self._server is not None:
            self._server.stop()

    def __enter__(self) -> "FakeInvokeAI":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (the standalone mode)."""
        uvicorn.run(self.app, host=self.host, port=self.port or 9090, log_level="info")

    # the app -------------------------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def record(request: Request, call_next):  # type: ignore[no-untyped-def]
            raw = await request.body()
            try:
                body = json.loads(raw) if raw and "json" in request.headers.get("content-type", "") else None
            except ValueError:
                body = None
            path = request.url.path
            self.requests.append({"method": request.method, "path": path, "query": dict(request.query_params),
                                  "json": body, "headers": dict(request.headers)})
            injected = self._take_injection(path)
            if injected is not None:
                return JSONResponse(injected["body"], status_code=injected["status"])
            if self.token and path != "/api/v1/app/version" and \
                    request.headers.get("authorization") != f"Bearer {self.token}":
                return JSONResponse({"detail": "Invalid or expired authentication token"}, status_code=401,
                                    headers={"WWW-Authenticate": "Bearer"})
            return await call_next(request)

        app.get("/api/v1/app/version")(lambda: {"version": self.version})
        app.post("/api/v1/queue/{queue_id}/enqueue_batch")(self._enqueue)
        app.get("/api/v1/queue/{queue_id}/i/{item_id}")(self._get_item)
        app.put("/api/v1/queue/{queue_id}/i/{item_id}/cancel")(self._cancel_item)
        app.put("/api/v1/queue/{queue_id}/cancel_by_batch_ids")(self._cancel_batches)
        app.get("/api/v1/queue/{queue_id}/status")(self._status)
        app.post("/api/v1/images/upload", status_code=201)(self._upload)
        app.get("/api/v1/images/i/{image_name}")(lambda image_name: self._image_dto(self._image(image_name), image_name))
        app.get("/api/v1/images/i/{image_name}/full")(self._full)
        app.get("/api/v1/boards/")(self._list_boards)
        app.post("/api/v1/boards/", status_code=201)(self._create_board)
        app.get("/api/v2/models/")(self._list_models)
        return app

    def _take_injection(self, path: str) -> dict[str, Any] | None:
        with self._mutex:
            for inj in self._injections:
                if inj["path"] == path and inj["times"] > 0:
                    inj["times"] -= 1
                    return inj
        return None

    # queue -------------------------------------------------------------------------------

    async def _enqueue(self, queue_id: str, batch: Batch = Body(), prepend: bool = Body(False)) -> dict[str, Any]:
        ids = []
        for field_values in batch.sessions():
            graph = batch.graph.model_copy(deep=True)
            for fv in field_values:
                old = graph.nodes[fv["node_path"]]
                graph.nodes[fv["node_path"]] = type(old).model_validate({**old.model_dump(), fv["field_name"]: fv["value"]})
            item_id, self._next_id = self._next_id, self._next_id + 1
            self._graphs[item_id] = graph
            self.items[item_id] = {
                "item_id": item_id, "status": "pending", "status_sequence": 0, "priority": 1 if prepend else 0,
                "batch_id": batch.batch_id, "origin": batch.origin, "destination": batch.destination,
                "session_id": str(uuid.uuid4()), "created_at": _now(), "updated_at": _now(), "started_at": None,
                "completed_at": None, "queue_id": queue_id, "user_id": "system", "field_values": field_values or None,
                "session": {"id": "", "graph": graph.model_dump(mode="json"), "execution_graph": {"nodes": {}, "edges": []},
                            "executed": [], "executed_history": [], "results": {}, "errors": {},
                            "prepared_source_mapping": {}, "source_prepared_mapping": {}},
            }
            self.items[item_id]["session"]["id"] = self.items[item_id]["session_id"]
            ids.append(item_id)
        self._queue = ids + self._queue if prepend else self._queue + ids
        self._kick()
        answer = {"queue_id": queue_id, "enqueued": len(ids), "requested": len(ids),
                  "batch": batch.model_dump(mode="json"), "priority": 1 if prepend else 0}
        if self.with_item_ids:
            answer["item_ids"] = ids
        return answer

    def _find(self, queue_id: str, item_id: int) -> dict[str, Any]:
        item = self.items.get(item_id)
        if item is None or item["queue_id"] != queue_id:
            raise HTTPException(404, f"Queue item with id {item_id} not found in queue {queue_id}")
        return item

    async def _get_item(self, queue_id: str, item_id: int) -> dict[str, Any]:
        return {k: v for k, v in self._find(queue_id, item_id).items() if v is not None}

    def _set_status(self, item: dict[str, Any], status: str, **fields: Any) -> None:
        if item["status"] in ("completed", "failed", "canceled"):
            return
        item.update(status=status, updated_at=_now(), status_sequence=item["status_sequence"] + 1, **fields)
        if status in ("completed", "failed", "canceled"):
            item["completed_at"] = _now()

    async def _cancel_item(self, queue_id: str, item_id: int) -> dict[str, Any]:
        item = self._find(queue_id, item_id)
        self._set_status(item, "canceled")
        return {k: v for k, v in item.items() if v is not None}

    async def _cancel_batches(self, queue_id: str, batch_ids: list[str] = Body(embed=True)) -> dict[str, Any]:
        hits = [i for i in self.items.values() if i["batch_id"] in batch_ids and i["queue_id"] == queue_id
                and i["status"] not in ("completed", "failed", "canceled")]
        for item in hits:
            self._set_status(item, "canceled")
        return {"canceled": len(hits)}

    async def _status(self, queue_id: str) -> dict[str, Any]:
        items = [i for i in self.items.values() if i["queue_id"] == queue_id]
        counts = {s: sum(1 for i in items if i["status"] == s)
                  for s in ("pending", "in_progress", "waiting", "completed", "failed", "canceled")}
        current = next((i for i in items if i["status"] == "in_progress"), None)
        queue = {"queue_id": queue_id, "item_id": current and current["item_id"],
                 "batch_id": current and current["batch_id"], "session_id": current and current["session_id"],
                 **counts, "total": len(items)}
        return {"queue": queue, "processor": {"is_started": True, "is_processing": current is not None}}

    # the processor ------------------------------------------------------------------------

    def _kick(self) -> None:
        if self._wake is None:
            self._wake = asyncio.Event()
        self._wake.set()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._process())

    async def _process(self) -> None:
        assert self._wake is not None
        while True:
            pending = [i for i in self._queue if self.items[i]["status"] == "pending"]
            if not pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._run(pending[0])

    async def _run(self, item_id: int) -> None:
        item, graph = self.items[item_id], self._graphs[item_id]
        session = item["session"]
        self._set_status(item, "in_progress", started_at=_now())
        with self._mutex:
            failure = self._failures.pop(0) if self._failures else None
        results: dict[str, dict[str, Any]] = {}
        for done, node_id in enumerate(graph.order()):
            if failure is not None and done >= failure[2]:
                self._set_status(item, "failed", error_type=failure[0], error_message=failure[1],
                                 error_traceback=f"Traceback (most recent call last):\n{failure[0]}: {failure[1]}")
                return
            while self._hold_after is not None and done >= self._hold_after and not self._gate.is_set() \
                    and item_id not in self._released and item["status"] == "in_progress":
                await asyncio.sleep(0.005)
            await asyncio.sleep(self.node_delay)
            if item["status"] != "in_progress":
                return  # canceled
            node = graph.nodes[node_id]
            try:
                outputs = run_node(node, node_inputs(graph, node_id, results), models={m["key"]: m for m in self.models},
                                   images=self.images, save=lambda d, w, h, n: self._save(d, w, h, n, item))
            except NodeFailure as exc:
                session["errors"][node_id] = str(exc)
                self._set_status(item, "failed", error_type=exc.error_type, error_message=str(exc),
                                 error_traceback=f"Traceback (most recent call last):\n{exc.error_type}: {exc}")
                return
            results[node_id] = outputs
            record_result(session, node, outputs)
        self._set_status(item, "completed")

    def _save(self, data: bytes, width: int, height: int, node: Node, item: dict[str, Any]) -> str:
        board = getattr(node, "board", None)
        if board is not None and board.board_id not in self.boards:
            raise NodeFailure("IntegrityError", f"FOREIGN KEY constraint failed (board {board.board_id})")
        name = f"{uuid.uuid4()}.png"
        self.images[name] = {"data": data, "width": width, "height": height, "board_id": board and board.board_id,
                             "is_intermediate": node.is_intermediate, "image_category": "general",
                             "session_id": item["session_id"], "node_id": node.id, "image_origin": "internal"}
        return name

    # images, boards, models ---------------------------------------------------------------

    async def _upload(self, request: Request, file: UploadFile, image_category: str = Query(),
                      is_intermediate: bool = Query(), board_id: str | None = None) -> JSONResponse:
        data = await file.read()
        self.uploads.append({"filename": file.filename, "content_type": file.content_type, "data": data,
                             "query": dict(request.query_params)})
        if not file.content_type or not file.content_type.startswith("image"):
            raise HTTPException(415, "Not an image")
        try:
            with Image.open(io.BytesIO(data)) as im:
                size = im.size
        except (UnidentifiedImageError, OSError):
            raise HTTPException(415, "Failed to read image") from None
        name = f"{uuid.uuid4()}.png"
        self.images[name] = {"data": data, "width": size[0], "height": size[1], "board_id": board_id,
                             "is_intermediate": is_intermediate, "image_category": image_category,
                             "session_id": None, "node_id": None, "image_origin": "external"}
        dto = self._image_dto(self.images[name], name)
        return JSONResponse(dto, status_code=201, headers={"Location": dto["image_url"]})

    def _image(self, image_name: str) -> dict[str, Any]:
        if image_name not in self.images:
            raise HTTPException(404)
        return self.images[image_name]

    def _image_dto(self, image: dict[str, Any], name: str) -> dict[str, Any]:
        return {"image_name": name, "image_url": f"api/v1/images/i/{name}/full",
                "thumbnail_url": f"api/v1/images/i/{name}/thumbnail", "image_origin": image["image_origin"],
                "image_category": image["image_category"], "width": image["width"], "height": image["height"],
                "created_at": _now(), "updated_at": _now(), "is_intermediate": image["is_intermediate"],
                "session_id": image["session_id"], "node_id": image["node_id"], "starred": False,
                "has_workflow": False, "board_id": image["board_id"], "user_id": "system"}

    async def _full(self, image_name: str) -> Response:
        return Response(self._image(image_name)["data"], media_type="image/png",
                        headers={"Content-Disposition": f'inline; filename="{image_name}"'})

    async def _list_boards(self, all: bool | None = None, offset: int | None = None, limit: int | None = None,
                           include_archived: bool = False) -> Any:
        boards = [self._board_dto(b) for b in self.boards.values() if include_archived or not b["archived"]]
        if all:
            return boards
        if offset is not None and limit is not None:
            return {"items": boards[offset:offset + limit], "offset": offset, "limit": limit, "total": len(boards)}
        raise HTTPException(400, "Invalid request: Must provide either 'all' or both 'offset' and 'limit'")

    def _board_dto(self, board: dict[str, Any]) -> dict[str, Any]:
        count = sum(1 for i in self.images.values() if i["board_id"] == board["board_id"])
        return {**board, "cover_image_name": None, "image_count": count, "asset_count": 0, "video_count": 0}

    async def _create_board(self, board_name: str = Query(max_length=300)) -> dict[str, Any]:
        board_id = str(uuid.uuid4())
        self.boards[board_id] = {"board_id": board_id, "board_name": board_name, "user_id": "system",
                                 "created_at": _now(), "updated_at": _now(), "archived": False,
                                 "board_visibility": "private"}
        return self._board_dto(self.boards[board_id])

    async def _list_models(self, model_type: str | None = None, model_name: str | None = None,
                           base_models: list[str] | None = Query(None)) -> dict[str, Any]:
        return {"models": [m for m in self.models if (model_type is None or m["type"] == model_type)
                           and (model_name is None or m["name"] == model_name)
                           and (not base_models or m["base"] in base_models)]}


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.fakes.invokeai_server [--host H] [--port P] [--node-delay S] [--token T]``."""
    parser = argparse.ArgumentParser(description="Fake InvokeAI 6.x API")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9090)
    parser.add_argument("--node-delay", type=float, default=0.2, help="seconds per graph node")
    parser.add_argument("--token", default=None, help="require 'Authorization: Bearer TOKEN' (multi-user mode)")
    args = parser.parse_args(argv)
    FakeInvokeAI(node_delay=args.node_delay, token=args.token, host=args.host, port=args.port).serve_forever()


if __name__ == "__main__":
    main()
