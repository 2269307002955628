"""pyfiledrop's HTTP/1.1 server: runs the ASGI app (lifespan and http) on asyncio, in this process.

Chosen by measurement over granian and uvicorn (see benchmarks/PROFILE.md): both hand the body to Python in
pieces, each a fresh bytes object and a wake-up of the event loop, which cost more CPU than hashing the
bytes. This server offers the app the ``pyfiledrop.readinto`` extension,
``await scope["extensions"]["pyfiledrop.readinto"]["readinto"](view, idle_timeout, observe=None)``: a worker thread
reads the socket straight into the storage's aligned buffer and, with ``observe``, hands that callable the bytes
it read before returning (the hash sees them in that thread). Its ``read_whole(view, idle_timeout, then)`` reads a
whole small body the same way and returns ``then()``, run in that same thread. Everything else is plain ASGI 3.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pyfiledrop.web.connection import App, Connection
from pyfiledrop.web.wire import Refusal, RequestHead, plain_refusal

log = logging.getLogger("pyfiledrop.http")


class StartupFailed(Exception):
    pass


@dataclass(frozen=True, slots=True)
class ServerOptions:
    host: str
    port: int
    tls_cert: str | None = None
    tls_key: str | None = None
    backlog: int = 2048
    head_timeout: float = 30.0  # a request head must arrive within this (slowloris)
    keepalive_timeout: float = 120.0  # an idle keep-alive connection is closed after this
    grace: float = 5.0  # on stop: how long running requests may go on


_READERS = 64  # socket-reading threads: as many bodies read at once


def _start_all(pool: concurrent.futures.ThreadPoolExecutor) -> None:
    """Start every reading thread now, from a thread of its own: started on demand, each new one held up the
    event loop ~2 ms (``Thread.start`` waits for it) — 28 of them during the first burst of 50 uploads, more than
    a tenth of that burst's time. Idle threads cost little memory (their stacks are touched only when used)."""
    everyone = threading.Barrier(_READERS)

    def meet() -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            everyone.wait(10)  # all busy at once: the pool has to start them all

    with contextlib.suppress(RuntimeError):  # the server stopped meanwhile: the pool takes no more jobs
        for _ in range(_READERS):
            pool.submit(meet)


class HttpServer:
    def __init__(self, app: App, options: ServerOptions) -> None:
        self.app = app
        self.options = options
        self.head_timeout = options.head_timeout
        self.keepalive_timeout = options.keepalive_timeout
        self.connections: set[Connection] = set()
        self.stopping = False
        self._stop = asyncio.Event()
        # Socket-reading threads block for a whole buffer; their own pool keeps them off the default executor.
        self.executor = concurrent.futures.ThreadPoolExecutor(_READERS, thread_name_prefix="pyfiledrop-recv")
        # Answers the server makes on its own (a malformed head, a body cut short) are worded by the app when it
        # says how (``refusal``): an API client gets JSON there too.
        self.refusal: Refusal = getattr(app, "refusal", plain_refusal)
        self._tls = options.tls_cert is not None
        self._extensions: dict[str, Any] = {"http.response.pathsend": {}}

    def stop(self) -> None:
        self.stopping = True
        self._stop.set()

    async def serve(self, ready: Callable[[], None] | None = None) -> None:
        lifespan = _Lifespan(self.app)
        await lifespan.startup()
        threading.Thread(target=_start_all, args=(self.executor,), name="pyfiledrop-prestart", daemon=True).start()
        try:
            server = await self._listen()
            if ready is not None:
                ready()
            async with server:
                await self._stop.wait()
                server.close()
                await self._finish_connections()
        finally:
            await lifespan.shutdown()
            self.executor.shutdown(wait=False, cancel_futures=True)

    async def _listen(self) -> asyncio.Server:
        options = self.options
        context = None
        if options.tls_cert:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(options.tls_cert, options.tls_key)
        host: str | None = options.host
        if host in ("::", ""):  # every address, IPv4 and IPv6
            host = None
        return await asyncio.get_running_loop().create_server(
            lambda: Connection(self), host, options.port, backlog=options.backlog, reuse_address=True, ssl=context,
            family=socket.AF_UNSPEC,
        )  # fmt: skip

    async def _finish_connections(self) -> None:
        for conn in list(self.connections):
            if conn.idle:
                conn._wake()  # its head reader sees `stopping` and returns
        tasks = [c.task for c in self.connections if c.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.options.grace)
            for conn in list(self.connections):
                conn.abort()
            for task in pending:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait(pending, timeout=1)

    def scope(
        self, conn: Connection, head: RequestHead, reading: dict[str, Callable[..., Awaitable[Any]]]
    ) -> dict[str, Any]:
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": head.version,
            "method": head.method,
            "scheme": "https" if self._tls else "http",
            "path": head.path,
            "raw_path": head.raw_path,
            "query_string": head.query,
            "root_path": "",
            "headers": head.headers,
            "client": conn.client,
            "server": conn.sockname,
            "extensions": {**self._extensions, "pyfiledrop.readinto": reading},
        }


class _Lifespan:
    """ASGI lifespan: startup before the first connection, shutdown after the last."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        self.task = asyncio.ensure_future(self.app(scope, self.inbox.get, self.answers.put))
        self.inbox.put_nowait({"type": "lifespan.startup"})
        answer = await self._answer()
        if answer.get("type") == "lifespan.startup.failed":
            raise StartupFailed(str(answer.get("message") or "the app did not start"))
        if answer.get("type") != "lifespan.startup.complete":  # ASGI: an app without lifespan raises; serve it anyway
            log.debug("the app does not support lifespan: %s", answer.get("message"))
            self.task = None

    async def shutdown(self) -> None:
        if self.task is None or self.task.done():
            return
        self.inbox.put_nowait({"type": "lifespan.shutdown"})
        with contextlib.suppress(Exception):
            async with asyncio.timeout(30):
                await self._answer()

    async def _answer(self) -> dict[str, Any]:
        assert self.task is not None
        getter = asyncio.ensure_future(self.answers.get())
        done, _ = await asyncio.wait({getter, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            return getter.result()
        getter.cancel()
        error = self.task.exception()
        return {"type": "failed", "message": str(error) if error else "the app's lifespan ended"}
