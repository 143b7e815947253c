"""An ASGI app served by uvicorn in a daemon thread of this process (the demo's serve stage and
the server tests use it)."""

from __future__ import annotations

import threading
import time

import uvicorn


def start_in_thread(app, port: int):
    """Run `app` with uvicorn on 127.0.0.1:`port` in a daemon thread; (server, thread) once it is up."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            return server, thread
        time.sleep(0.01)
    raise RuntimeError("the reward server did not start within 5 s")
