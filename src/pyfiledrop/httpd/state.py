"""What the server and its connections share: the options, the app, the reading threads, the open connections.

Its own module so that ``server.py`` (which listens) and ``connection.py`` (which serves one socket) both depend on
it and never on each other.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pyfiledrop.httpd.response import Refusal, plain_refusal
from pyfiledrop.httpd.wire import RequestHead

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


class Tracked(Protocol):
    """What the server needs of a connection it keeps track of (``connection.Connection``)."""

    idle: bool

    def wake(self) -> None: ...

    def abort(self) -> None: ...


class Shared:
    """The server as its connections see it."""

    def __init__(self, app: App, options: ServerOptions) -> None:
        self.app = app
        self.options = options
        self.head_timeout = options.head_timeout
        self.keepalive_timeout = options.keepalive_timeout
        self.connections: set[Tracked] = set()
        self.stopping = False
        # Socket-reading threads block for a whole buffer; their own pool keeps them off the default executor.
        self.executor = concurrent.futures.ThreadPoolExecutor(READERS, thread_name_prefix="pyfiledrop-recv")
        # Answers the server makes on its own (a malformed head, a body cut short) are worded by the app when it
        # says how (an attribute ``refusal``, see ``response.Refusal``): an API client gets JSON there too.
        self.refusal: Refusal = getattr(app, "refusal", plain_refusal)
        self.tls = options.tls_cert is not None
        self.extensions: dict[str, Any] = {"http.response.pathsend": {}}

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
