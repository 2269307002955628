"""A thin typed layer over raw ASGI: the hot path reads ``receive`` directly, no framework in between."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl

from pyfiledrop.errors import BadRequest, ClientDisconnected, RequestTimeout
from pyfiledrop.storage.base import FillTarget, ReadObserver, SocketWork
from pyfiledrop.workers import in_thread

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[str, str]]
_T = TypeVar("_T")


class Request:
    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self.receive = receive
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        raw = scope.get("raw_path")
        self.raw_path: str = raw.decode("latin-1").split("?", 1)[0] if raw else self.path
        self.headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            self.headers[name] = f"{self.headers[name]}, {value}" if name in self.headers else value
        self.query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        self.body_consumed = False
        self.behind_proxy = False  # set by the app from --behind-proxy: X-Forwarded-* are then believed
        self.idle_timeout = 30.0  # set by the app from --timeout: how long a body may stall

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    @property
    def cookies(self) -> dict[str, str]:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(self.headers.get("cookie", ""))
        except Exception:  # noqa: BLE001 - a garbled Cookie header is the same as none
            return {}
        return {key: morsel.value for key, morsel in jar.items()}

    @property
    def content_length(self) -> int | None:
        raw = self.headers.get("content-length")
        if raw is None:
            return None
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:  # str.isdigit() takes '²', int() does not
            raise BadRequest(f"Content-Length {raw[:40]!r} is not a non-negative integer")
        return int(raw)

    @property
    def scheme(self) -> str:
        forwarded = self.headers.get("x-forwarded-proto") if self.behind_proxy else None
        if forwarded in ("http", "https"):
            return forwarded
        return str(self.scope.get("scheme", "http"))

    def base_url(self, public_url: str | None) -> str:
        """Where links in answers point: --public-url, else the Host the client asked for (X-Forwarded-Host behind a
        proxy) when it is a host; a value that is not one never reaches a Location header or a JSON link."""
        if public_url:
            return public_url.rstrip("/")
        forwarded = self.headers.get("x-forwarded-host") if self.behind_proxy else None
        host = next((h for h in (forwarded, self.headers.get("host")) if h and is_host(h)), "localhost")
        return f"{self.scheme}://{host}"

    async def body(self, limit: int, idle_timeout: float | None = None) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for piece in timed_stream(self, self.idle_timeout if idle_timeout is None else idle_timeout):
            size += len(piece)
            if size > limit:
                raise BadRequest(f"request body is larger than {limit} bytes")
            chunks.append(piece)
        return b"".join(chunks)

    async def json(self, limit: int = 64 * 1024) -> Any:
        raw = await self.body(limit)
        try:
            value = json.loads(raw or b"{}", parse_constant=_no_constants)
            # JSON may escape lone surrogates ("\ud800"): not text, and nothing downstream can store them.
            json.dumps(value, ensure_ascii=False).encode()
        except ValueError as exc:  # UnicodeError is a ValueError
            raise BadRequest(f"request body is not valid JSON: {exc}") from exc
        return value


# RFC 9110 §7.2: uri-host [ ":" port ], the host an IP-literal, IPv4 or reg-name (unreserved, pct-encoded, sub-delims).
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]{2,60}\]|[A-Za-z0-9\-._~%!$&'()*+,;=]{1,253})(?::[0-9]{0,5})?")


def is_host(value: str) -> bool:
    return _HOST.fullmatch(value) is not None


def as_utf8(value: str) -> str:
    """A header value (decoded as Latin-1 on arrival, so any bytes pass) read as the UTF-8 that curl and browsers
    send for text outside ASCII; bytes that are not UTF-8 keep their Latin-1 reading."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def timed_stream(request: Request, idle_timeout: float) -> RequestBody:
    """The request body, with the idle timeout turned into the domain error."""
    return RequestBody(request, idle_timeout)


class RequestBody:
    """The request body, read once: iterate its pieces, or fill buffers with ``readinto``.

    ``readinto`` uses the server's ``pyfiledrop.readinto`` extension when there is one (the socket is read
    straight into the buffer by a worker thread); under any other ASGI server it copies the pieces.
    """

    def __init__(self, request: Request, idle_timeout: float) -> None:
        self.request = request
        self.idle_timeout = idle_timeout
        self._over = False  # the last piece has been received
        self._left = b""  # the rest of a piece that did not fit the last buffer
        self._error: BaseException | None = None  # raised by the next readinto: bytes before it went out first
        extension = request.scope.get("extensions", {}).get("pyfiledrop.readinto")
        self._fill: Callable[[memoryview, float, ReadObserver | None], Awaitable[int]] | None = (
            extension["readinto"] if extension else None
        )
        self._whole: Callable[[memoryview, float, Callable[[], Any]], Awaitable[Any]] | None = (
            extension.get("read_whole") if extension else None
        )
        self._pump: Callable[[FillTarget, float], Awaitable[int | None]] | None = (
            extension.get("pump") if extension else None
        )
        self._lend: Callable[[memoryview, float, SocketWork], Awaitable[bool]] | None = (
            extension.get("lend") if extension else None
        )

    def __aiter__(self) -> RequestBody:
        return self

    async def __anext__(self) -> bytes:
        """The next piece. Raises RequestTimeout if the client sends nothing for ``idle_timeout`` seconds,
        ClientDisconnected if it leaves. Each wait has its own timeout: iteration may pause (for ``readinto``)
        for as long as it likes without a deadline running."""
        if self._left:
            piece, self._left = self._left, b""
            return piece
        self.request.body_consumed = True
        while not self._over:
            try:
                async with asyncio.timeout(self.idle_timeout):
                    message = await self.request.receive()
            except TimeoutError:
                raise RequestTimeout(self.idle_timeout) from None
            if message["type"] == "http.disconnect":
                raise ClientDisconnected()
            self._over = not message.get("more_body", False)
            if piece := message.get("body", b""):
                return bytes(piece)
        raise StopAsyncIteration

    async def readinto(self, view: memoryview, observe: ReadObserver | None = None) -> int:
        """Read into ``view``: 0 at the end of the body (see ``storage.base.Fillable``)."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if self._fill is None or self._left:
            n = await self._copy_into(view)
            if observe is not None and n:  # not our server (or a leftover piece): no reading thread to do it
                await in_thread(observe, view[:n])
            return n
        self.request.body_consumed = True
        with self._as_domain_errors():
            return await self._fill(view, self.idle_timeout, observe)

    async def pump(self, target: FillTarget) -> int | None:
        """Read into ``target``'s buffers in one worker thread (``storage.base.Pumpable``); None when this body
        cannot (not our server, chunked, TLS, a piece already taken out): the caller uses ``readinto``."""
        if self._pump is None or self._left or self._error is not None:
            return None
        self.request.body_consumed = True
        with self._as_domain_errors():
            return await self._pump(target, self.idle_timeout)

    async def read_whole(self, view: memoryview, then: Callable[[], _T]) -> _T:
        """Fill ``view`` with the whole body (BadRequest if it is shorter or longer), then return ``then()``, run in
        a worker thread — with our server, the very thread that read the body (one job for both)."""
        whole = self._whole
        if whole is not None and not self._left and self.request.content_length == len(view):
            self.request.body_consumed = True
            with self._as_domain_errors():
                return cast(_T, await whole(view, self.idle_timeout, then))
        filled = 0
        while filled < len(view):
            n = await self.readinto(view[filled:])
            if n == 0:
                raise BadRequest(f"the body had {filled} bytes, not the {len(view)} announced")
            filled += n
        if await self.readinto(memoryview(bytearray(1))):
            raise BadRequest(f"the body is longer than the {len(view)} bytes announced")
        return await in_thread(then)

    async def lend(self, view: memoryview, work: SocketWork) -> bool:
        """``storage.base.Lender``: the client's socket to ``work`` for the rest of a body of exactly ``len(view)``
        bytes. False, with nothing read, where it cannot be lent (not our server, TLS, chunked, started)."""
        lend = self._lend
        if lend is None or self._left or self._error is not None or self.request.content_length != len(view):
            return False
        consumed, self.request.body_consumed = self.request.body_consumed, True
        with self._as_domain_errors():
            lent = await lend(view, self.idle_timeout, work)
        if not lent:
            self.request.body_consumed = consumed
        return lent

    @contextlib.contextmanager
    def _as_domain_errors(self) -> Iterator[None]:
        """The server extension's ConnectionError / TimeoutError as the errors the engine maps to HTTP."""
        try:
            yield
        except TimeoutError:
            raise RequestTimeout(self.idle_timeout) from None
        except ConnectionError:
            raise ClientDisconnected() from None

    async def _copy_into(self, view: memoryview) -> int:
        filled = 0
        while filled < len(view):
            try:
                piece = await self.__anext__()
            except StopAsyncIteration:
                break
            except Exception as exc:
                if not filled:
                    raise
                self._error = exc
                break
            take = min(len(piece), len(view) - filled)
            view[filled : filled + take] = piece[:take]
            self._left = piece[take:]
            filled += take
        return filled


@dataclass
class Response:
    status: int = 200
    headers: Headers = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str, value: str) -> Response:
        self.headers.append((name, value))
        return self

    async def send(self, send: Send, *, head: bool = False) -> None:
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers]
        if not any(k == b"content-length" for k, _ in headers) and self.status not in (204, 304):
            headers.append((b"content-length", str(len(self.body)).encode()))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else self.body})


def json_response(data: Any, status: int = 200, headers: Iterable[tuple[str, str]] = ()) -> Response:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(status, [("content-type", "application/json"), *headers], body)


def text_response(text: str, status: int = 200, headers: Iterable[tuple[str, str]] = ()) -> Response:
    return Response(status, [("content-type", "text/plain; charset=utf-8"), *headers], text.encode())


def no_content(status: int = 204, headers: Mapping[str, str] | Headers | None = None) -> Response:
    items = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
    return Response(status, items, b"")
