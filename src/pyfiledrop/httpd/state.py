"""What the server and its connections share: the options, the app, the reading threads, the open connections.

Its own module so that ``server.py`` (which listens) and ``connection.py`` (which serves one socket) both depend on
it and never on each other.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pyfiledrop.httpd.response import Refusal, plain_refusal
from pyfiledrop.httpd.wire import RequestHead

log = logging.getLogger("pyfiledrop.http")

App = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Callable[[dict[str, Any]], Awaitable[None]]],
               Awaitable[None]]  # fmt: skip
Reading = dict[str, Callable[..., Awaitable[Any]]]  # the ``pyfiledrop.readinto`` extension of one request

READERS = 64  # socket-reading threads: as many bodies read at once


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
    send_timeout: float = 60.0  # a client that takes none of an answer's bytes for this long is cut off (nginx's)
    max_connections: int | None = None  # None: as many as the open-file limit leaves room for (see limits.py)


class Tracked(Protocol):
    """What the server needs of a connection it keeps track of (``connection.Connection``)."""

    idle: bool  # between requests (or before the first): may be closed without losing anything

    def wake(self) -> None: ...

    def abort(self) -> None: ...

    def shed(self) -> None: ...  # close an idle connection to make room


class Shared:
    """The server as its connections see it."""

    def __init__(self, app: App, options: ServerOptions) -> None:
        self.app = app
        self.options = options
        self.head_timeout = options.head_timeout
        self.keepalive_timeout = options.keepalive_timeout
        self.connections: dict[Tracked, None] = {}  # oldest first
        self.capacity = options.max_connections or 1 << 30  # set from the open-file limit when serving starts
        self.send_timeout = options.send_timeout
        self._shed_logged = -1e9
        self.stopping = False
        # Socket-reading threads block for a whole buffer; their own pool keeps them off the default executor.
        self.executor = concurrent.futures.ThreadPoolExecutor(READERS, thread_name_prefix="pyfiledrop-recv")
        # Answers the server makes on its own (a malformed head, a body cut short) are worded by the app when it
        # says how (an attribute ``refusal``, see ``response.Refusal``): an API client gets JSON there too.
        self.refusal: Refusal = getattr(app, "refusal", plain_refusal)
        self.tls = options.tls_cert is not None
        self.extensions: dict[str, Any] = {"http.response.pathsend": {}}

    def admit(self, new: Tracked) -> bool:
        """Track a new connection; False (refuse it) past the capacity with none idle to close for it."""
        if len(self.connections) >= self.capacity and self.shed_idle() == 0:
            return False
        self.connections[new] = None
        return True

    def shed_idle(self) -> int:
        """Close the oldest idle connections, a few at a time, to make room before the process runs out of file
        descriptors; how many."""
        idle = [conn for conn in self.connections if conn.idle][: max(1, self.capacity // 32)]
        if idle:  # a line at most every 10 s: a flood of idle clients must not flood the log too
            now = time.monotonic()
            level = logging.INFO if now - self._shed_logged > 10 else logging.DEBUG
            self._shed_logged = now if level == logging.INFO else self._shed_logged
            log.log(level, "%d connections open, room for %d: closing %d idle ones", len(self.connections),
                    self.capacity, len(idle))  # fmt: skip
        for conn in idle:
            self.connections.pop(conn, None)
            conn.shed()
        return len(idle)

    def scope(
        self, head: RequestHead, client: tuple[str, int] | None, server: tuple[str, int] | None, reading: Reading
    ) -> dict[str, Any]:
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": head.version,
            "method": head.method,
            "scheme": "https" if self.tls else "http",
            "path": head.path,
            "raw_path": head.raw_path,
            "query_string": head.query,
            "root_path": "",
            "headers": head.headers,
            "client": client,
            "server": server,
            "extensions": {**self.extensions, "pyfiledrop.readinto": reading},
        }
