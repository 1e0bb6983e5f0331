"""Run an ASGI app under a real uvicorn server on 127.0.0.1 in a background thread.

Used by the API tests: the studio app runs with its lifespan on its own event loop, and tests
talk to it over real HTTP (and SSE), as a client would.
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn


class ServerThread:
    """``with ServerThread(app) as server: server.url`` — started and stopped around the block.

    Args:
        app: the ASGI app.
        lifespan: ``"on"`` to run the app's lifespan (start-up errors then fail the start).
        start_timeout: seconds to wait for the server to accept connections.
    """

    def __init__(self, app, *, lifespan: str = "on", start_timeout: float = 30.0) -> None:  # noqa: ANN001
        self.app = app
        self.lifespan = lifespan
        self.start_timeout = start_timeout
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, lifespan=lifespan, log_level="warning",
                                                    timeout_graceful_shutdown=3))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> "ServerThread":
        self.thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the server thread ended during start-up (see the log above)")
            if time.monotonic() > deadline:
                raise TimeoutError(f"server on {self.url} did not start in {self.start_timeout} s")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
