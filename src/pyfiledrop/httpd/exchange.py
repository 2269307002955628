"""One request and its response on a connection: run the app for it and frame what the app sends.

What goes out is the server's to keep right whoever built it: headers are checked (``response.checked_headers``,
a bad one is a logged 500), every answer has a Date, a 408 closes the connection, and when the request's body was
malformed or cut short the answer is the server's own 400 (RFC 9112 §7.1), not what the app makes of the
disconnect (pyfiledrop's app would say 499, a status for logs only).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from pyfiledrop.httpd.body import RequestBody
from pyfiledrop.httpd.connection import Connection
from pyfiledrop.httpd.response import InvalidResponse, checked_headers, response_head
from pyfiledrop.httpd.sendfile import send_file
from pyfiledrop.httpd.wire import RequestHead, WireError
from pyfiledrop.sockets import Gone

log = logging.getLogger("pyfiledrop.http")

_COALESCE = 64 * 1024  # a body up to this size goes out in the same send as its head
_NO_BODY_STATUS = frozenset({204, 304})
_CLOSING_STATUS = frozenset({408})  # the request took too long: what is left of it is not worth waiting for


class ClientGone(ConnectionError):
    """Raised by ``send()`` once the client is gone (ASGI: a server-specific OSError); the app has nothing to do."""


class Exchange:
    def __init__(self, conn: Connection, head: RequestHead) -> None:
        self.conn = conn
        self.head = head
        self.body = RequestBody(conn, head)
        self.last_given = False  # receive() has said more_body=False
        self.started = False
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_sent = False
        self.chunked_response = False
        self.finished = False
        self.replaced = False  # the server answered in the app's stead: what the app sends goes nowhere
        self.sent = 0  # body bytes of the answer that went out
        self.gone: str | None = None  # why sending found the client gone
        self.keep_alive = head.keep_alive

    async def run(self) -> bool:
        """Serve the request; True when the connection may carry another."""
        conn, shared, body = self.conn, self.conn.shared, self.body
        scope = shared.scope(self.head, conn.client, conn.sockname, body.extension())
        try:
            await shared.app(scope, self._receive, self._send)
        except (Gone, ClientGone) as exc:
            self.gone = self.gone or str(exc) or "it closed the connection"
        except Exception as exc:  # the app's own error boundary should have answered; this is the last one
            if isinstance(exc, InvalidResponse):
                log.error("%s %s: answered 500 instead: %s", self.head.method, self.head.path, exc)
            else:
                log.exception("unhandled error in %s %s", self.head.method, self.head.path)
            if self.head_sent:
                conn.abort()
                return False
            self._fallback(500, "internal server error")
        if self.gone:  # one line, not a traceback: clients stop downloads all the time
            log.info("%s %s: answer cut off after %d body bytes: %s", self.head.method, self.head.path, self.sent,
                     self.gone)  # fmt: skip
            conn.abort()
            return False
        if not self.finished:
            if self.head_sent:  # the app stopped in the middle of its answer
                conn.abort()
                return False
            error = body.error or WireError(500, "the server did not answer")
            self._fallback(error.status, error.message)
        if conn.lost.done():
            return False
        keep_alive = self.keep_alive and not body.broken
        if not body.done and (not keep_alive or not await body.drop_rest()):
            await conn.linger_close()
            return False
        await conn.join_socket_read()
        return keep_alive and not shared.stopping

    def _fallback(self, status: int, message: str) -> None:
        self.keep_alive = False
        self.conn.write(self.conn.refusal(self.head.path, status, message))
        self.finished = True

    async def _receive(self) -> dict[str, Any]:
        body = self.body
        if self.finished or body.error is not None:
            return {"type": "http.disconnect"}
        if body.done:
            if not self.last_given:
                self.last_given = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await self.conn.wait_gone()  # ASGI: after the body, receive() waits for the client to leave
            return {"type": "http.disconnect"}
        try:
            piece = await body.next_piece()
        except Gone:
            body.cut_short()
            return {"type": "http.disconnect"}
        except WireError as exc:
            body.error = exc
            return {"type": "http.disconnect"}
        self.last_given = body.done
        return {"type": "http.request", "body": piece, "more_body": not body.done}

    async def _send(self, message: dict[str, Any]) -> None:
        if self.replaced:
            return
        if self.gone:
            raise ClientGone(self.gone)
        try:
            await self._send_message(message)
        except Gone as exc:
            self.gone = str(exc) or "the client closed the connection"
            raise ClientGone(str(exc) or "the client closed the connection") from exc

    def _start(self, message: dict[str, Any]) -> None:
        if self.started:
            raise RuntimeError("http.response.start sent twice")
        error = self.body.error
        if error is not None:  # the body was malformed or cut short: the server's 400, whatever the app says
            self._fallback(error.status, error.message)
            self.replaced = True
            return
        status = message.get("status")
        if not isinstance(status, int) or not 200 <= status <= 999:
            raise InvalidResponse(f"status {status!r:.40} is not a final HTTP status")
        self.headers = checked_headers(message.get("headers", ()))
        self.status = status
        self.started = True
        if status in _CLOSING_STATUS:
            self.keep_alive = False

    async def _send_message(self, message: dict[str, Any]) -> None:
        conn = self.conn
        match message["type"]:
            case "http.response.start":
                self._start(message)
            case "http.response.body":
                body: bytes = message.get("body", b"")
                more = bool(message.get("more_body", False))
                out = b"" if self.head_sent else self._head_bytes(None if more else len(body))
                if body and self._has_body():
                    framed = b"%x\r\n%b\r\n" % (len(body), body) if self.chunked_response else body
                    if len(framed) > _COALESCE:
                        conn.write(out)  # a large body is not copied just to join its head
                        out = b""
                    out += framed
                if not more:
                    if self.chunked_response:
                        out += b"0\r\n\r\n"
                    self.finished = True
                if out:
                    conn.write(out)  # head and a small body in one send: one syscall per answer
                    self.sent += len(body)
                await conn.drain()
            case "http.response.pathsend":
                await self._send_path(Path(str(message["path"])))
            case other:
                raise RuntimeError(f"unexpected ASGI message {other!r}")

    def _has_body(self) -> bool:
        return self.head.method != "HEAD" and self.status not in _NO_BODY_STATUS and self.status >= 200

    def _head_bytes(self, length: int | None) -> bytes:
        if not self.started:
            raise RuntimeError("http.response.body before http.response.start")
        names = {name for name, _ in self.headers}
        headers = self.headers
        if self._has_body() and b"content-length" not in names and b"transfer-encoding" not in names:
            if length is not None:
                headers.append((b"content-length", b"%d" % length))
            elif self.head.version == "1.1":
                headers.append((b"transfer-encoding", b"chunked"))
                self.chunked_response = True
            else:
                self.keep_alive = False  # HTTP/1.0 without a length: the end of the body is the close
        if self.body.unread_is_too_much():
            self.keep_alive = False  # too much unread body to drop: this answer ends the connection
        if self.conn.shared.stopping:
            self.keep_alive = False
        if not self.keep_alive and b"connection" not in names:
            headers.append((b"connection", b"close"))
        elif self.keep_alive and self.head.version == "1.0":
            headers.append((b"connection", b"keep-alive"))
        self.head_sent = self.body.answered = True
        return response_head(self.status, headers)

    async def _send_path(self, path: Path) -> None:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if not self.head_sent:
                self.conn.write(self._head_bytes(size))
            if self._has_body():
                self.sent += await send_file(self.conn, handle, size)
                if self.sent < size:
                    raise Gone(f"{path.name} got shorter while it was sent")
            else:
                await self.conn.drain()
        self.finished = True
