"""HTTP/1.1 responses on the wire, pure: frame a response head, word the answers the server makes on its own.

Whoever built a header, nothing that is not a valid field goes out: a name must be a token, a value must hold no
control character but HTAB (no CR, LF or NUL: no split response, no injected header). The exchange turns such a
header into a logged 500 (``InvalidResponse``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE_BAD = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class InvalidResponse(RuntimeError):
    """The app asked for a response that cannot be sent as it is (a header that is not a valid field)."""


def checked_headers(headers: Iterable[Any]) -> list[tuple[bytes, bytes]]:
    """The app's ``(name, value)`` pairs as bytes, names lower-cased, each checked (RFC 9110 §5.1, §5.5)."""
    checked = []
    for pair in headers:
        try:
            name, value = pair
        except (TypeError, ValueError):
            raise InvalidResponse(f"a header is not a (name, value) pair: {pair!r:.80}") from None
        if not isinstance(name, bytes | bytearray) or not isinstance(value, bytes | bytearray):
            raise InvalidResponse(f"header {name!r:.80} is not a pair of bytes (ASGI)")
        if not _TOKEN.fullmatch(name):
            raise InvalidResponse(f"header name {bytes(name)!r:.80} is not a token")
        if _VALUE_BAD.search(value):
            raise InvalidResponse(f"header {bytes(name).decode()} has a control character (CR, LF, NUL…) in its value")
        checked.append((bytes(name).lower(), bytes(value)))
    return checked


class _Clock:
    """The Date header's value, formatted once a second (RFC 9110 §6.6.1: every response of an origin server with a
    clock carries one)."""

    second = -1
    text = b""

    @classmethod
    def date(cls) -> bytes:
        now = int(time.time())
        if now != cls.second:
            cls.text, cls.second = formatdate(now, usegmt=True).encode("ascii"), now
        return cls.text


http_date = _Clock.date


def response_head(status: int, headers: list[tuple[bytes, bytes]]) -> bytes:
    """The head of a response; adds a Date unless the headers have one (or it is interim, 1xx)."""
    try:
        reason = HTTPStatus(status).phrase.encode()
    except ValueError:
        reason = b""
    lines = [b"HTTP/1.1 %d %s" % (status, reason)]
    lines += [name + b": " + value for name, value in headers]
    if status >= 200 and not any(name == b"date" for name, _ in headers):
        lines.append(b"date: " + http_date())
    return b"\r\n".join(lines) + b"\r\n\r\n"


Refusal = Callable[[str | None, int, str], tuple[bytes, bytes]]  # (path if known, status, message) → type, body


def plain_refusal(path: str | None, status: int, message: str) -> tuple[bytes, bytes]:
    """How the server words a refusal of its own unless the app says otherwise: plain text a person can read."""
    return b"text/plain; charset=utf-8", (message + "\n").encode()


def status_body(status: int, content_type: bytes, body: bytes) -> bytes:
    """A whole response for a request the server answers on its own, closing the connection after it."""
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body)), (b"connection", b"close")]
    return response_head(status, headers) + body
