"""ASGI middleware around the app: the access log (a line per request) and the refusals an admin wants to see
among the events (413 too large, 429 rate limited).

It sits outside the app, so it sees each response as sent: its status, and the body bytes counted from the
``http.response.body`` messages (a file sent with ``http.response.pathsend`` counts its Content-Length). The bytes
received are the request's Content-Length: what the client declared (``-`` for a chunked body); the HTTP server
gives the app no count of the bytes it read. Answers the HTTP server makes on its own (a malformed request head,
a request that never came whole) do not reach the app and are not in this log.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pyfiledrop.engine import events
from pyfiledrop.logs import AccessLog, safe_path
from pyfiledrop.web.http import Receive, Scope, Send

_REFUSALS = {413: "request.too_large", 429: "request.rate_limited"}


class AccessLogged:
    """``app`` with every request logged to ``log`` (or only its refusals, when ``log`` is None)."""

    def __init__(self, app: Any, log: AccessLog | None, *, behind_proxy: bool) -> None:
        self.app = app
        self.log = log
        self.behind_proxy = behind_proxy

    def __getattr__(self, name: str) -> Any:
        """The app's own attributes show through (the HTTP server asks the app how to word its refusals)."""
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answer = [0, 0, 0]  # status, body bytes sent, the Content-Length of the answer (for a pathsend)

        async def counted(message: dict[str, Any]) -> None:
            match message["type"]:
                case "http.response.body":
                    answer[1] += len(message.get("body", b""))
                case "http.response.start":
                    answer[0] = message["status"]
                    answer[2] = _content_length(message.get("headers", ()))
                case "http.response.pathsend":  # the server sends the whole file: its length was announced
                    answer[1] += answer[2]
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            self._record(scope, answer[0], answer[1], time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, sent: int, seconds: float) -> None:
        refusal = _REFUSALS.get(status)
        if self.log is None and refusal is None:
            return
        client = self._client(scope)
        raw = scope.get("raw_path")
        path = raw.decode("latin-1") if isinstance(raw, bytes) else str(scope.get("path", ""))
        target = safe_path(path.split("?", 1)[0], scope.get("query_string", b"").decode("latin-1"))
        if self.log is not None:
            self.log.write(client, scope["method"], target, status, sent, _declared_length(scope), seconds)
        if refusal is not None:
            events.emit(refusal, logging.WARNING, client=client, method=scope["method"], path=target, status=status)

    def _client(self, scope: Scope) -> str:
        if self.behind_proxy:
            for name, value in scope["headers"]:
                if name == b"x-forwarded-for":
                    return str(value.decode("latin-1").split(",")[-1].strip())
        client = scope.get("client")
        return str(client[0]) if client else "-"


def _content_length(headers: Any) -> int:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
