"""pyfiledrop's HTTP/1.1 server: runs an ASGI app (lifespan and http) on asyncio, in this process.

See the package's docstring (``pyfiledrop/httpd/__init__.py``) for what it offers the app beyond plain ASGI 3.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import ssl
import threading
from collections.abc import Callable

from pyfiledrop.httpd.connection import Connection
from pyfiledrop.httpd.head import serve_connection
from pyfiledrop.httpd.lifespan import Lifespan, StartupFailed
from pyfiledrop.httpd.limits import set_up_capacity
from pyfiledrop.httpd.listener import Listener, open_sockets
from pyfiledrop.httpd.state import READERS, App, ServerOptions, Shared

__all__ = ["HttpServer", "ServerOptions", "StartupFailed"]

log = logging.getLogger("pyfiledrop.http")


def _start_all(pool: concurrent.futures.ThreadPoolExecutor) -> None:
    """Start every reading thread now, from a thread of its own: started on demand, each new one held up the
    event loop ~2 ms (``Thread.start`` waits for it) — 28 of them during the first burst of 50 uploads, more than
    a tenth of that burst's time. Idle threads cost little memory (their stacks are touched only when used)."""
    everyone = threading.Barrier(READERS)

    def meet() -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            everyone.wait(10)  # all busy at once: the pool has to start them all

    with contextlib.suppress(RuntimeError):  # the server stopped meanwhile: the pool takes no more jobs
        for _ in range(READERS):
            pool.submit(meet)


class HttpServer:
    def __init__(self, app: App, options: ServerOptions) -> None:
        self.app = app
        self.options = options
        self.shared = Shared(app, options)
        self.executor = self.shared.executor
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self.shared.stopping = True
        self._stop.set()

    async def serve(self, ready: Callable[[], None] | None = None) -> None:
        lifespan = Lifespan(self.app)
        await lifespan.startup()
        self.shared.capacity = set_up_capacity(self.options.max_connections)
        threading.Thread(target=_start_all, args=(self.executor,), name="pyfiledrop-prestart", daemon=True).start()
        try:
            listener = self._listen()
            if ready is not None:
                ready()
            try:
                await self._stop.wait()
            finally:
                listener.close()
            await self._finish_connections()
        finally:
            await lifespan.shutdown()
            self.executor.shutdown(wait=False, cancel_futures=True)

    def _listen(self) -> Listener:
        options = self.options
        context = None
        if options.tls_cert:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(options.tls_cert, options.tls_key)
        sockets = open_sockets(options.host, options.port, options.backlog)
        return Listener(self.shared, sockets, lambda: Connection(self.shared, serve_connection), context)

    async def _finish_connections(self) -> None:
        connections = [c for c in self.shared.connections if isinstance(c, Connection)]
        for conn in connections:
            if conn.idle:
                conn.wake()  # its head reader sees `stopping` and returns
        tasks = [c.task for c in connections if c.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.options.grace)
            for tracked in list(self.shared.connections):
                tracked.abort()
            for task in pending:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait(pending, timeout=1)
