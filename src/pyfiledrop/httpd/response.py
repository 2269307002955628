"""HTTP/1.1 responses on the wire, pure: frame a response head, word the answers the server makes on its own."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus


def response_head(status: int, headers: list[tuple[bytes, bytes]]) -> bytes:
    try:
        reason = HTTPStatus(status).phrase.encode()
    except ValueError:
        reason = b""
    lines = [b"HTTP/1.1 %d %s" % (status, reason)]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


Refusal = Callable[[str | None, int, str], tuple[bytes, bytes]]  # (path if known, status, message) → type, body


def plain_refusal(path: str | None, status: int, message: str) -> tuple[bytes, bytes]:
    """How the server words a refusal of its own unless the app says otherwise: plain text a person can read."""
    return b"text/plain; charset=utf-8", (message + "\n").encode()


def status_body(status: int, content_type: bytes, body: bytes) -> bytes:
    """A whole response for a request the server answers on its own, closing the connection after it."""
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body)), (b"connection", b"close")]
    return response_head(status, headers) + body
