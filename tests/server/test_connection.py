"""The HTTP/1.1 server in this process (``HttpServer``, ``Connection``) against a small ASGI app of the test's own.

The server runs its own asyncio loop in a thread on 127.0.0.1; the tests talk to it with raw sockets so that
every byte on the wire is theirs to choose: keep-alive, pipelining, chunked bodies, ``Expect: 100-continue``,
clients that stall or vanish, refusals, streamed and sent-file responses, HEAD, HTTP/1.0, shutdown.
Every socket read is bounded (``WAIT``) and every test by ``pytest.mark.timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from pyfiledrop.httpd.server import HttpServer, ServerOptions, StartupFailed

pytestmark = pytest.mark.timeout(10)

WAIT = 5.0  # the longest one socket read (or one wait for the app) may take
MiB = 1 << 20

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


# -- the app ----------------------------------------------------------------------------------------------------


class EchoApp:
    """Routes by path; anything not listed echoes the request. Records what it saw for the tests to wait on.

    ``/echo`` reads the body with ``receive()`` or, with ``?mode=readinto``, with the ``pyfiledrop.readinto``
    extension (``buf`` its buffer size, ``idle`` its idle timeout), then answers JSON: method, path, query,
    the body's length and sha256. ``delay`` sleeps before reading; ``wait`` waits for http.disconnect after the
    body before answering.
    """

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.cond = threading.Condition()
        self.file: Path | None = None

    # recording, from the server's thread; waiting, from the test's

    def record(self, kind: str, detail: Any = None) -> None:
        with self.cond:
            self.events.append((kind, detail))
            self.cond.notify_all()

    def wait_for(self, kind: str, timeout: float = WAIT) -> Any:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for name, detail in self.events:
                    if name == kind:
                        return detail
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the app never recorded {kind!r}; it recorded {self.events!r}")
                self.cond.wait(left)

    def seen(self, kind: str) -> list[Any]:
        with self.cond:
            return [detail for name, detail in self.events if name == kind]

    # ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        assert scope["type"] == "http"
        self.record("request", scope["path"])
        query = {k: v[-1] for k, v in parse_qs(scope["query_string"].decode("latin-1")).items()}
        match scope["path"]:
            case "/early":
                await respond(send, 200, b"early\n")
            case "/stream":
                await self.stream(send, query)
            case "/boom":
                raise RuntimeError("boom: the app failed before answering")
            case "/boom-late":
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": b"partial", "more_body": True})
                raise RuntimeError("boom: the app failed in the middle of its answer")
            case "/silent":
                return
            case "/file":
                await self.send_file(send, query)
            case "/whole":
                await self.whole(scope, send, query)
            case _:
                await self.echo(scope, receive, send, query)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.record("startup")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.record("shutdown")
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def echo(self, scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
        if "delay" in query:
            await asyncio.sleep(float(query["delay"]))
        digest = hashlib.sha256()
        counts: list[int] = []
        mode = query.get("mode", "receive")
        try:
            if mode == "pump" and not await self.pump(scope, query, digest, counts):
                mode = "receive"  # the server said this body cannot pump: read it the plain way
            if mode == "receive":
                await self.receive_body(receive, digest, counts)
            elif mode == "readinto":
                readinto = scope["extensions"]["pyfiledrop.readinto"]["readinto"]
                view = memoryview(bytearray(int(query.get("buf", MiB))))
                while n := await readinto(view, float(query.get("idle", WAIT))):
                    counts.append(n)
                    digest.update(view[:n])
        except _Disconnected:
            self.record("disconnect", counts)
            return
        except ConnectionError as exc:
            self.record("ConnectionError", (counts, str(exc)))
            return
        except TimeoutError:
            self.record("TimeoutError", counts)
            await respond(send, 408, b"the body stopped coming\n")
            return
        self.record("counts", counts)
        if "wait" in query:
            while (await receive())["type"] != "http.disconnect":
                pass
            self.record("disconnect after body")
        body = {
            "method": scope["method"], "path": scope["path"], "raw_path": scope["raw_path"].decode("latin-1"),
            "query": scope["query_string"].decode("latin-1"), "http_version": scope["http_version"],
            "scheme": scope["scheme"], "client": scope["client"], "server": scope["server"],
            "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]],
            "mode": mode, "length": sum(counts), "sha256": digest.hexdigest(),
        }  # fmt: skip
        await respond(send, 200, json.dumps(body).encode(), b"application/json")

    async def receive_body(self, receive: Receive, digest: Any, counts: list[int]) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected()
            body = message.get("body", b"")
            counts.append(len(body))
            digest.update(body)
            if not message.get("more_body", False):
                return

    async def pump(self, scope: Scope, query: dict[str, str], digest: Any, counts: list[int]) -> bool:
        """The extension's ``pump`` into a target of ``buf``-byte views, at most ``views`` of them per call (then
        it says stop and is called again); records the calls made. False: the server would not pump this body."""
        pump = scope["extensions"]["pyfiledrop.readinto"]["pump"]
        size, per_call = int(query.get("buf", MiB)), int(query.get("views", 0))
        calls = 0
        while True:
            target = _Target(size, per_call, digest, counts)
            n = await pump(target, float(query.get("idle", WAIT)))
            if n is None:
                self.record("pump refused")
                return False
            calls += 1
            if n == 0:
                self.record("pump calls", calls)
                return True
            assert n == sum(target.counts), (n, target.counts)

    async def whole(self, scope: Scope, send: Send, query: dict[str, str]) -> None:
        """The extension's ``read_whole``: the body into a buffer of its Content-Length, then a function (it hashes
        the buffer and names its thread; raises with ``fail``) run in a worker thread; answers what it returned."""
        read_whole = scope["extensions"]["pyfiledrop.readinto"]["read_whole"]
        length = int(dict(scope["headers"])[b"content-length"])
        view = memoryview(bytearray(length))
        loop_thread = threading.current_thread().name

        def then() -> dict[str, Any]:
            self.record("then", threading.current_thread().name)
            if "fail" in query:
                raise ValueError("then failed")
            return {"sha256": sha(bytes(view)), "thread": threading.current_thread().name, "loop": loop_thread}

        try:
            answer = await read_whole(view, WAIT, then)
        except ConnectionError as exc:
            self.record("ConnectionError", str(exc))
            return
        except ValueError as exc:
            await respond(send, 422, str(exc).encode())
            return
        await respond(send, 200, json.dumps(answer).encode(), b"application/json")

    async def stream(self, send: Send, query: dict[str, str]) -> None:
        """An answer without a length: pieces, empty pieces between them, a large one with ``size``."""
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for i in range(int(query.get("n", 3))):
            await send({"type": "http.response.body", "body": b"piece %d\n" % i, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": True})
        if "size" in query:
            await send({"type": "http.response.body", "body": b"x" * int(query["size"]), "more_body": True})
        await send({"type": "http.response.body", "body": b"end\n"})

    async def send_file(self, send: Send, query: dict[str, str]) -> None:
        assert self.file is not None
        headers = [(b"content-type", b"application/octet-stream")]
        if query.get("cl") == "1":
            headers.append((b"content-length", b"%d" % self.file.stat().st_size))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.pathsend", "path": str(self.file)})


class _Disconnected(Exception):
    pass


class _Target:
    """A ``storage.base.FillTarget`` for the echo app: hashes what it is given, in the pumping thread."""

    def __init__(self, size: int, per_call: int, digest: Any, counts: list[int]) -> None:
        self.view = memoryview(bytearray(size))
        self.per_call = per_call
        self.given = 0
        self.digest = digest
        self.all_counts = counts
        self.counts: list[int] = []
        self.thread = threading.current_thread()

    def next_view(self) -> memoryview | None:
        assert threading.current_thread() is not self.thread, "a pump reads in a worker thread"
        if self.per_call and self.given == self.per_call:
            return None
        self.given += 1
        return self.view

    def filled(self, n: int) -> None:
        self.digest.update(self.view[:n])
        self.counts.append(n)
        self.all_counts.append(n)


async def respond(send: Send, status: int, body: bytes, content_type: bytes = b"text/plain") -> None:
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# -- the client -------------------------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    head: str
    body: bytes = b""
    chunk_sizes: list[int] = field(default_factory=list)  # of a chunked body, as sent (without the last 0)

    def header(self, name: str) -> str | None:
        values = [v for n, v in self.headers if n == name]
        return ", ".join(values) if values else None

    def json(self) -> Any:
        return json.loads(self.body)


_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]+)(;.*)?")


class Client:
    """A raw socket to the server, with just enough HTTP/1.1 parsing to check what came back."""

    def __init__(self, port: int, timeout: float = WAIT) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = bytearray()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()

    def reset(self) -> None:
        """Close with RST (SO_LINGER 0) instead of FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def _more(self) -> bool:
        data = self.sock.recv(MiB)
        self.buf += data
        return bool(data)

    def read_until(self, marker: bytes) -> bytes:
        while (end := self.buf.find(marker)) < 0:
            if not self._more():
                raise EOFError(f"the server closed before {marker!r}; got {bytes(self.buf[:200])!r}")
        out = bytes(self.buf[:end])
        del self.buf[: end + len(marker)]
        return out

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._more():
                raise EOFError(f"the server closed after {len(self.buf)} of {n} bytes")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_to_eof(self) -> bytes:
        while self._more():
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def pending(self, wait: float) -> bytes:
        """What arrives within ``wait`` seconds (b"" if nothing does); the socket must stay open meanwhile."""
        self.sock.settimeout(wait)
        try:
            with contextlib.suppress(TimeoutError):
                self._more()
        finally:
            self.sock.settimeout(WAIT)
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def response(self, method: str = "GET") -> Response:
        head = self.read_until(b"\r\n\r\n").decode("latin-1")
        status_line, *lines = head.split("\r\n")
        match = re.fullmatch(r"HTTP/1\.1 (\d{3}) (.*)", status_line)
        assert match is not None, f"not a status line: {status_line[:100]!r}"
        headers = []
        for line in lines:
            name, colon, value = line.partition(":")
            assert colon, f"not a header line: {line[:100]!r}"
            headers.append((name.lower(), value.strip()))
        response = Response(int(match[1]), match[2], headers, head)
        if response.status < 200 or response.status in (204, 304) or method == "HEAD":
            return response
        coding, length = response.header("transfer-encoding"), response.header("content-length")
        if coding is not None:
            assert coding.lower() == "chunked", coding
            assert length is None, "both Content-Length and Transfer-Encoding"
            response.body = self._chunked(response.chunk_sizes)
        elif length is not None:
            response.body = self.read_exact(int(length))
        else:
            response.body = self.read_to_eof()
        return response

    def _chunked(self, sizes: list[int]) -> bytes:
        parts = []
        while True:
            line = self.read_until(b"\r\n")
            match = _CHUNK_LINE.fullmatch(line)
            assert match is not None, f"not a chunk size line: {line[:60]!r}"
            size = int(match[1], 16)
            if size == 0:
                break
            sizes.append(size)
            parts.append(self.read_exact(size))
            assert self.read_exact(2) == b"\r\n", "a chunk is longer than its size line says"
        while self.read_until(b"\r\n"):  # trailers
            pass
        return b"".join(parts)


def request(
    method: str = "GET", target: str = "/echo", headers: tuple[str, ...] = (), body: bytes = b"", version: str = "1.1"
) -> bytes:
    lines = [f"{method} {target} HTTP/{version}", "Host: test", *headers]
    framed = any(h.lower().startswith(("content-length:", "transfer-encoding:")) for h in headers)
    if body and not framed:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(*pieces: bytes, extension: bytes = b"", trailers: tuple[bytes, ...] = ()) -> bytes:
    out = b"".join(b"%x%b\r\n%b\r\n" % (len(p), extension, p) for p in pieces)
    return out + b"0" + extension + b"\r\n" + b"".join(t + b"\r\n" for t in trailers) + b"\r\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def send_as(client: Client, raw: bytes, size: int, arrival: str) -> None:
    """A request whose body is its last ``size`` bytes: all at once "with the head", or "after the head, in
    pieces" (three, 50 ms apart: a worker thread reads the socket for most of it)."""
    if arrival == "with the head":
        client.send(raw)
        return
    split = len(raw) - size
    client.send(raw[:split])
    for start in range(split, len(raw), max(size // 3, 1)):
        time.sleep(0.05)
        client.send(raw[start : start + max(size // 3, 1)])


def full_buffers_until_the_end(counts: list[int], buf: int) -> bool:
    """``readinto`` fills the whole buffer every time but the last (where the body ends)."""
    return all(n == buf for n in counts[:-1]) and (not counts or 0 < counts[-1] <= buf)


# -- the server -------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Running:
    """``HttpServer.serve()`` on its own asyncio loop in a thread."""

    def __init__(self, app: Any, options: ServerOptions) -> None:
        self.app = app
        self.options = options
        self.port = options.port
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: HttpServer | None = None
        self.clients: list[Client] = []
        self.thread = threading.Thread(target=self._main, name=f"http-server-{self.port}", daemon=True)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self.error = exc
        finally:
            self.ready.set()

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.server = HttpServer(self.app, self.options)
        await self.server.serve(ready=self.ready.set)

    def start(self) -> Running:
        self.thread.start()
        assert self.ready.wait(WAIT), "the server did not start"
        if self.error is not None:
            raise self.error
        return self

    def connect(self) -> Client:
        client = Client(self.port)
        self.clients.append(client)
        return client

    def exchange(self, data: bytes, method: str = "GET") -> Response:
        """One request on a fresh connection."""
        client = self.connect()
        client.send(data)
        return client.response(method)

    def stop(self, timeout: float = WAIT) -> float:
        """Calls ``stop()`` on the server's loop; returns how long ``serve()`` took to return."""
        started = time.monotonic()
        if self.thread.is_alive():
            assert self.loop is not None and self.server is not None
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self.loop.call_soon_threadsafe(self.server.stop)
            self.thread.join(timeout)
        assert not self.thread.is_alive(), "serve() did not return after stop()"
        return time.monotonic() - started

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.stop()


@pytest.fixture
def app() -> EchoApp:
    return EchoApp()


@pytest.fixture
def start(app: EchoApp) -> Iterator[Callable[..., Running]]:
    """Starts servers (the test's ``app`` unless told otherwise); closes their clients and stops them after."""
    running: list[Running] = []

    def _start(other_app: Any = None, **options: Any) -> Running:
        options.setdefault("grace", 1.0)
        server = Running(other_app or app, ServerOptions("127.0.0.1", free_port(), **options))
        running.append(server)
        return server.start()

    yield _start
    for server in running:
        server.close()


@pytest.fixture
def server(start: Callable[..., Running]) -> Running:
    return start()


def expect_closed(client: Client) -> None:
    """The server closed the connection cleanly (FIN, not a reset) and sent nothing more."""
    assert client.read_to_eof() == b""


# -- lifespan ---------------------------------------------------------------------------------------------------


def test_lifespan_startup_before_serving_and_shutdown_after(start: Callable[..., Running], app: EchoApp) -> None:
    running = start()
    assert app.seen("startup") == [None]
    assert app.seen("shutdown") == []
    assert running.exchange(request()).status == 200
    running.stop()
    assert app.seen("shutdown") == [None]
    assert [kind for kind, _ in app.events] == ["startup", "request", "counts", "shutdown"]


def test_lifespan_startup_failure_stops_serve(start: Callable[..., Running]) -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no storage"})

    with pytest.raises(StartupFailed, match="no storage"):
        start(failing)


def test_app_without_lifespan_support_is_served(start: Callable[..., Running]) -> None:
    async def http_only(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"unsupported scope {scope['type']}")
        await respond(send, 200, b"hi\n")

    running = start(http_only)
    assert running.exchange(request("GET", "/")).body == b"hi\n"


# -- keep-alive and pipelining ----------------------------------------------------------------------------------


def test_the_reading_threads_are_all_started_with_the_server(server: Running) -> None:
    """Started on demand, each new one held up the event loop while it started (during the first burst)."""
    assert server.server is not None
    pool = server.server.executor
    deadline = time.monotonic() + WAIT
    while len(pool._threads) < pool._max_workers and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(pool._threads) == pool._max_workers == 64
    assert server.exchange(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n").status == 200


def test_keep_alive_several_requests_on_one_connection(server: Running, app: EchoApp) -> None:
    client = server.connect()
    port = client.sock.getsockname()[1]
    body = os.urandom(100_000)
    exchanges: list[tuple[bytes, str, dict[str, Any]]] = [
        (request("GET", "/echo?a=1&b=%20"), "GET", {"method": "GET", "query": "a=1&b=%20", "length": 0}),
        (request("POST", "/echo", body=body), "POST", {"length": len(body), "sha256": sha(body), "mode": "receive"}),
        (request("PUT", "/echo?mode=readinto", body=body), "PUT", {"length": len(body), "sha256": sha(body)}),
        (request("DELETE", "/echo/x?mode=readinto"), "DELETE", {"path": "/echo/x", "length": 0}),
        (request("PATCH", "/up", ("Content-Length: 0",)), "PATCH", {"path": "/up", "length": 0}),
    ]
    for raw, method, expected in exchanges:
        client.send(raw)
        response = client.response()
        assert response.status == 200
        assert response.header("connection") is None
        echoed = response.json()
        assert echoed["method"] == method
        assert echoed["client"] == ["127.0.0.1", port]  # the same connection every time
        assert {k: echoed[k] for k in expected} == expected
    assert len(app.seen("request")) == len(exchanges)


def test_scope_of_a_request(server: Running) -> None:
    client = server.connect()
    client.send(request("GET", "/a%20b/%C3%A9?q=%20&r", ("X-Mixed-Case:  Value  ",)))
    echoed = client.response().json()
    assert echoed["path"] == "/a b/é"
    assert echoed["raw_path"] == "/a%20b/%C3%A9"
    assert echoed["query"] == "q=%20&r"
    assert echoed["http_version"] == "1.1"
    assert echoed["scheme"] == "http"
    assert echoed["server"] == ["127.0.0.1", server.port]
    assert echoed["client"] == ["127.0.0.1", client.sock.getsockname()[1]]
    assert echoed["headers"] == [["host", "test"], ["x-mixed-case", "Value"]]


def test_absolute_form_target_scope(server: Running) -> None:
    echoed = server.exchange(request("GET", "http://test/x%20y?q=1")).json()
    assert (echoed["path"], echoed["query"]) == ("/x y", "q=1")
    assert echoed["raw_path"] == "/x%20y"


def test_pipelined_requests_in_one_write(server: Running) -> None:
    one, two, three = os.urandom(3000), os.urandom(2 * MiB + 17), os.urandom(5000)
    client = server.connect()
    client.send(
        request("POST", "/echo?n=1", body=one)
        + request("POST", "/echo?n=2&mode=readinto&buf=65536", body=two)
        + request("GET", "/echo?n=3")
        + request("POST", "/echo?n=4&mode=readinto", ("Transfer-Encoding: chunked",), chunked(three[:10], three[10:]))
        + request("POST", "/echo?n=5", ("Transfer-Encoding: chunked",), chunked(one))
        + request("GET", "/stream")
        + request("HEAD", "/echo?n=7")
        + request("GET", "/echo?n=8")
    )
    bodies = {"1": one, "2": two, "3": b"", "4": three, "5": one}
    for n, body in bodies.items():
        response = client.response()
        assert response.status == 200, response.body
        echoed = response.json()
        assert echoed["query"].startswith(f"n={n}")
        assert (echoed["length"], echoed["sha256"]) == (len(body), sha(body))
    assert client.response().body == b"piece 0\npiece 1\npiece 2\nend\n"
    head = client.response("HEAD")
    assert head.status == 200
    assert client.response().json()["query"] == "n=8"
    assert client.pending(0.2) == b""  # nothing more than eight answers


def test_pipelined_request_after_a_small_unread_body(server: Running) -> None:
    """An answer that did not read a small body: the server drops the body and keeps the connection."""
    client = server.connect()
    client.send(request("POST", "/early", body=b"u" * 100_000) + request("GET", "/echo?after=1"))
    first = client.response()
    assert (first.status, first.body, first.header("connection")) == (200, b"early\n", None)
    assert client.response().json()["query"] == "after=1"
    client.send(request("GET", "/echo?again=1"))
    assert client.response().json()["query"] == "again=1"


def test_stray_line_ends_between_requests_are_ignored(server: Running) -> None:
    client = server.connect()
    client.send(request("GET", "/echo?n=1") + b"\r\n\r\n\r\n" + request("GET", "/echo?n=2"))
    assert client.response().json()["query"] == "n=1"
    assert client.response().json()["query"] == "n=2"


def test_half_closed_client_still_gets_its_answer(server: Running) -> None:
    client = server.connect()
    body = os.urandom(300_000)
    client.send(request("POST", "/echo?mode=readinto", body=body))
    client.sock.shutdown(socket.SHUT_WR)
    assert client.response().json()["sha256"] == sha(body)
    expect_closed(client)


def test_connection_close_from_the_client(server: Running) -> None:
    client = server.connect()
    client.send(request("GET", "/echo", ("Connection: close",)))
    response = client.response()
    assert response.status == 200
    assert response.header("connection") == "close"
    expect_closed(client)


# -- request bodies ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["readinto", "receive"])
def test_50_mb_body(server: Running, app: EchoApp, mode: str) -> None:
    body = os.urandom(50 * MiB)
    client = server.connect()
    client.send(request("PUT", f"/echo?mode={mode}&buf={4 * MiB}", body=body))
    echoed = client.response().json()
    assert (echoed["length"], echoed["sha256"]) == (len(body), sha(body))
    counts = app.wait_for("counts")
    assert sum(counts) == len(body)
    if mode == "readinto":
        assert full_buffers_until_the_end(counts, 4 * MiB), counts
    else:
        assert max(counts) <= MiB  # receive() hands out pieces of at most 1 MiB
    client.send(request("GET", "/echo?after=1"))
    assert client.response().json()["query"] == "after=1"


@pytest.mark.parametrize(
    ("size", "buf"),
    [(10, 1), (10, 3), (300_001, 4093), (300_001, 65536), (300_001, 300_001), (300_001, MiB), (2 * MiB, MiB)],
)
@pytest.mark.parametrize("arrival", ["with the head", "after the head, in pieces"])
def test_readinto_buffer_sizes(server: Running, app: EchoApp, size: int, buf: int, arrival: str) -> None:
    echo_in_buffers(server, app, f"mode=readinto&buf={buf}", size, buf, arrival)


def echo_in_buffers(server: Running, app: EchoApp, query: str, size: int, buf: int, arrival: str) -> Client:
    """POST ``size`` random bytes to ``/echo?query``; the echo must match and have come in full ``buf``-byte
    buffers until the last. Returns the connection, still open."""
    body = os.urandom(size)
    client = server.connect()
    send_as(client, request("POST", f"/echo?{query}", body=body), size, arrival)
    echoed = client.response().json()
    assert (echoed["length"], echoed["sha256"]) == (size, sha(body))
    counts = app.wait_for("counts")
    assert full_buffers_until_the_end(counts, buf), counts
    return client


@pytest.mark.parametrize(
    ("size", "buf", "views"),
    [(10, MiB, 0), (300_001, 4093, 1), (300_001, 65_536, 2), (5 * MiB + 3, MiB, 0), (5 * MiB + 3, MiB, 1)],
)
@pytest.mark.parametrize("arrival", ["with the head", "after the head, in pieces"])
def test_pump_fills_view_after_view_in_one_thread_call_and_resumes_where_a_target_stopped(
    server: Running, app: EchoApp, size: int, buf: int, views: int, arrival: str
) -> None:
    """``pump``: the body goes into view after view without coming back to the app, each view full except the
    last; a target that says stop gets the rest on the next call — including bytes that came with the head and
    did not fit its views (they go back in front of the socket's)."""
    client = echo_in_buffers(server, app, f"mode=pump&buf={buf}&views={views}", size, buf, arrival)
    calls = app.wait_for("pump calls")
    if views == 0:
        assert calls == 2  # all of it in one call, then 0: the end
    else:
        assert calls == -(-size // (buf * views)) + 1
    client.send(request("GET", "/echo?after=1"))
    assert client.response().json()["query"] == "after=1"


def test_pump_a_client_leaving_mid_body_is_an_error_after_its_bytes(server: Running, app: EchoApp) -> None:
    client = server.connect()
    client.send(request("PUT", "/echo?mode=pump&buf=65536", ("Content-Length: 1000000",)) + b"a" * 100_000)
    time.sleep(0.1)
    client.close()
    counts, message = app.wait_for("ConnectionError")
    assert sum(counts) == 100_000
    assert "closed" in message


def test_pump_is_refused_for_a_chunked_body(server: Running, app: EchoApp) -> None:
    """Chunk framing is parsed on the event loop: no pump, the app reads it another way."""
    body = os.urandom(70_000)
    raw = request("POST", "/echo?mode=pump", ("Transfer-Encoding: chunked",), chunked(body[:10], body[10:]))
    echoed = server.exchange(raw).json()
    assert (echoed["length"], echoed["sha256"]) == (len(body), sha(body))
    app.wait_for("pump refused")


@pytest.mark.parametrize("size", [10, 100_000, 3 * MiB])
@pytest.mark.parametrize("arrival", ["with the head", "after the head, in pieces"])
def test_read_whole_runs_the_function_in_a_worker_thread_after_the_whole_body(
    server: Running, app: EchoApp, size: int, arrival: str
) -> None:
    """``read_whole``: a small upload is read and stored by one thread job. Whether the body came with its head
    (asyncio read it) or after it (a worker thread reads the socket), the function sees all of it, runs off the
    event loop, and its result is the answer; the connection stays open for the next request."""
    body = os.urandom(size)
    raw = request("PUT", "/whole", body=body)
    client = server.connect()
    send_as(client, raw, size, arrival)
    answer = client.response().json()
    assert answer["sha256"] == sha(body)
    assert answer["thread"] != answer["loop"]
    assert app.seen("then") == [answer["thread"]]  # once
    client.send(request("GET", "/echo?after=1"))
    assert client.response().json()["query"] == "after=1"


def test_read_whole_a_client_leaving_mid_body_is_an_error_and_the_function_never_runs(
    server: Running, app: EchoApp
) -> None:
    client = server.connect()
    client.send(request("PUT", "/whole", ("Content-Length: 1000000",)) + b"a" * 100_000)
    time.sleep(0.1)
    client.close()
    assert "closed" in app.wait_for("ConnectionError")
    assert app.seen("then") == []


def test_read_whole_what_the_function_raises_reaches_the_app_and_the_connection_stays(
    server: Running, app: EchoApp
) -> None:
    client = server.connect()
    client.send(request("PUT", "/whole?fail=1", body=os.urandom(300_000)))
    response = client.response()
    assert (response.status, response.body) == (422, b"then failed")
    assert response.header("connection") is None  # the body was read whole: keep-alive
    client.send(request("GET", "/echo?after=1"))
    assert client.response().json()["query"] == "after=1"


@pytest.mark.parametrize("mode", ["readinto", "receive"])
def test_chunked_body_with_extensions_and_trailers(server: Running, mode: str) -> None:
    pieces = [b"hello ", os.urandom(70_000), b"", b"x", os.urandom(3 * MiB)]
    body_wire = (
        b"6;name=value\r\nhello \r\n"
        + b'%X; q="a;b"\r\n%b\r\n' % (len(pieces[1]), pieces[1])  # upper-case hex and a quoted extension
        + b"1;ext\r\nx\r\n"  # (not "1 ;ext": RFC 9112 allows that whitespace, h11 and we refuse it)
        + b"%x\r\n%b\r\n" % (len(pieces[4]), pieces[4])
        + b"0;last=yes\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n"
    )
    client = server.connect()
    client.send(request("POST", f"/echo?mode={mode}&buf=65536", ("Transfer-Encoding: chunked",), body_wire))
    response = client.response()
    assert response.status == 200
    whole = b"".join(pieces)
    assert (response.json()["length"], response.json()["sha256"]) == (len(whole), sha(whole))
    assert response.header("connection") is None  # the whole body was read: the connection goes on
    client.send(request("GET", "/echo?after=1"))
    assert client.response().json()["query"] == "after=1"


@pytest.mark.parametrize("mode", ["readinto", "receive"])
def test_chunked_body_sent_in_small_pieces(server: Running, mode: str) -> None:
    body = os.urandom(50_000)
    wire = chunked(*(body[i : i + 7000] for i in range(0, len(body), 7000)), trailers=(b"T: 1",))
    client = server.connect()
    client.send(request("POST", f"/echo?mode={mode}&buf=4096", ("Transfer-Encoding: chunked",)))
    for i in range(0, len(wire), 3001):  # splits size lines, CRLFs and data
        client.send(wire[i : i + 3001])
        time.sleep(0.005)
    assert client.response().json()["sha256"] == sha(body)


MALFORMED_CHUNKED = {
    "size not hex": b"zz\r\nhello\r\n0\r\n\r\n",
    "size 0x-prefixed": b"0x5\r\nhello\r\n0\r\n\r\n",
    "negative size": b"-5\r\nhello\r\n0\r\n\r\n",
    "space before size": b" 5\r\nhello\r\n0\r\n\r\n",
    "empty size line": b"\r\nhello\r\n0\r\n\r\n",
    "size of 16 hex digits": b"1000000000000000\r\nhello\r\n",
    "size line over 8 KiB": b"5;" + b"e" * 9000 + b"\r\nhello\r\n0\r\n\r\n",
    "chunk longer than its size": b"3\r\nhello\r\n0\r\n\r\n",
    "no CRLF after the data": b"5\r\nhello0\r\n\r\n",
    "bare LF after the size": b"5\nhello\r\n0\r\n\r\n",
    "bare LF after the data": b"5\r\nhello\n0\r\n\r\n",
    "trailer line over 8 KiB": b"5\r\nhello\r\n0\r\nX: " + b"t" * 9000 + b"\r\n\r\n",
}


@pytest.mark.parametrize("mode", ["readinto", "receive"])
@pytest.mark.parametrize("wire", MALFORMED_CHUNKED.values(), ids=MALFORMED_CHUNKED.keys())
def test_malformed_chunked_body_is_400(server: Running, app: EchoApp, mode: str, wire: bytes) -> None:
    client = server.connect()
    client.send(request("POST", f"/echo?mode={mode}", ("Transfer-Encoding: chunked",), wire))
    response = client.response()
    assert response.status == 400
    assert response.header("connection") == "close"
    assert b"chunk" in response.body
    assert app.wait_for("ConnectionError" if mode == "readinto" else "disconnect") is not None
    client.sock.shutdown(socket.SHUT_WR)
    expect_closed(client)


LONG_LINES = {
    "size line": b"5;" + b"e" * 5000 + b"\r\nhello\r\n0\r\n\r\n",
    "trailer line": b"5\r\nhello\r\n0\r\nX: " + b"t" * 5000 + b"\r\n\r\n",
}


@pytest.mark.parametrize("wire", LONG_LINES.values(), ids=LONG_LINES.keys())
def test_chunked_body_line_over_4_kib_is_400(server: Running, wire: bytes) -> None:
    client = server.connect()
    client.send(request("POST", "/echo", ("Transfer-Encoding: chunked",), wire))
    assert client.response().status == 400


def test_chunked_body_cut_short_is_a_disconnect(server: Running, app: EchoApp) -> None:
    client = server.connect()
    client.send(request("POST", "/echo", ("Transfer-Encoding: chunked",), b"10\r\nabc"))
    time.sleep(0.1)
    client.close()
    assert app.wait_for("disconnect") is not None
    assert server.exchange(request("GET", "/echo?after=1")).json()["query"] == "after=1"


# -- Expect: 100-continue ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["readinto", "receive"])
def test_100_continue_only_when_the_app_reads_the_body(server: Running, mode: str) -> None:
    body = os.urandom(200_000)
    client = server.connect()
    client.send(
        request("PUT", f"/echo?mode={mode}&delay=0.5", (f"Content-Length: {len(body)}", "Expect: 100-continue"))
    )
    assert client.pending(0.3) == b""  # the app has not asked for the body yet: no 100
    interim = client.response()
    assert (interim.status, interim.reason, interim.headers) == (100, "Continue", [])
    client.send(body)
    final = client.response()
    assert final.status == 200
    assert final.json()["sha256"] == sha(body)
    assert final.header("connection") is None
    client.send(request("GET", "/echo?after=1"))
    assert client.response().json()["query"] == "after=1"


def test_no_100_continue_when_the_app_answers_without_reading(server: Running) -> None:
    client = server.connect()
    client.send(request("PUT", "/early", ("Content-Length: 100", "Expect: 100-continue")))
    response = client.response()
    assert response.status == 200  # the final answer straight away, no 100 before it
    assert response.body == b"early\n"
    assert response.header("connection") == "close"
    client.send(b"b" * 100)  # a client that sends the body anyway is not reset
    expect_closed(client)


def test_early_answer_lingers_so_the_client_reads_it(server: Running) -> None:
    """The app answers before reading an 8 MiB body: the server keeps reading (and dropping) while the client
    sends, so the client sees the answer and a clean close, not a reset."""
    body = os.urandom(8 * MiB)
    client = server.connect()
    failure: list[BaseException] = []

    def send_all() -> None:
        try:
            client.send(request("PUT", "/early", body=body))
            client.sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            failure.append(exc)

    sender = threading.Thread(target=send_all)
    sender.start()
    response = client.response()
    sender.join(WAIT)
    assert not sender.is_alive()
    assert failure == []
    assert (response.status, response.body, response.header("connection")) == (200, b"early\n", "close")
    expect_closed(client)


# -- clients that vanish or stall -------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["close", "reset"])
@pytest.mark.parametrize("mode", ["readinto", "receive"])
def test_client_disconnects_mid_body(server: Running, app: EchoApp, mode: str, how: str) -> None:
    client = server.connect()
    client.send(request("PUT", f"/echo?mode={mode}&buf=65536", ("Content-Length: 10000000",)) + b"a" * MiB)
    app.wait_for("request")
    time.sleep(0.2)  # the app is now waiting for the rest of the body
    other = server.connect()  # meanwhile the server serves others
    other.send(request("GET", "/echo?other=1"))
    assert other.response().json()["query"] == "other=1"
    client.reset() if how == "reset" else client.close()
    if mode == "readinto":
        counts, message = app.wait_for("ConnectionError")
        assert "closed" in message
    else:
        counts = app.wait_for("disconnect")
    assert sum(counts) <= MiB
    assert server.exchange(request("GET", "/echo?after=1")).json()["query"] == "after=1"
    other.send(request("GET", "/echo?other=2"))
    assert other.response().json()["query"] == "other=2"


def test_readinto_a_client_leaving_mid_body_is_an_error_after_its_bytes_not_an_end(
    server: Running, app: EchoApp
) -> None:
    """``readinto``'s contract (``storage.base.Fillable``): every byte that arrived is handed out, then the next
    call raises; it never answers 0 (the end of the body) for a body cut short."""
    client = server.connect()
    client.send(request("PUT", "/echo?mode=readinto&buf=65536", ("Content-Length: 1000000",)) + b"a" * 100_000)
    client.close()
    counts, _ = app.wait_for("ConnectionError")
    assert sum(counts) == 100_000
    assert 0 not in counts, counts


@pytest.mark.parametrize("mode", ["readinto", "pump"])
@pytest.mark.parametrize("idle", [0.5, 1.5])
def test_readinto_idle_timeout(server: Running, app: EchoApp, mode: str, idle: float) -> None:
    """The idle timeout counts from the last byte, also after the reading thread gave the socket back (0.25 s)."""
    client = server.connect()
    started = time.monotonic()
    client.send(request("PUT", f"/echo?mode={mode}&idle={idle}&buf=65536", (f"Content-Length: {2 * MiB}",)))
    client.send(b"a" * 100_000)
    response = client.response()
    elapsed = time.monotonic() - started
    assert response.status == 408  # the app's own answer to TimeoutError
    assert response.header("connection") == "close"  # 2 MiB unread is too much to drop
    assert idle - 0.1 < elapsed < idle + 2.5
    assert sum(app.wait_for("TimeoutError")) == 100_000


@pytest.mark.parametrize("mode", ["readinto", "pump", "whole"])
def test_a_body_with_pauses_longer_than_a_thread_waits_arrives_whole(server: Running, app: EchoApp, mode: str) -> None:
    """A client that stops for a while mid-body: the reading thread gives the socket back to the event loop after
    0.25 s of nothing (so a stalled client holds no thread), the loop waits, a thread reads on when bytes come."""
    body = os.urandom(3 * MiB + 5)
    target = "/whole" if mode == "whole" else f"/echo?mode={mode}&buf={MiB}"
    raw = request("PUT", target, body=body)
    split = len(raw) - len(body)
    client = server.connect()
    client.send(raw[:split])
    for start in range(split, len(raw), MiB):
        client.send(raw[start : start + MiB])
        time.sleep(0.6)
    answer = client.response().json()
    assert answer["sha256"] == sha(body)
    if mode != "whole":
        assert answer["length"] == len(body)
    client.send(request("GET", "/echo?after=1"))
    assert client.response().json()["query"] == "after=1"


@pytest.mark.parametrize(
    ("mode", "how"),
    [
        pytest.param("receive", "reset"),
        pytest.param("receive", "close"),
        pytest.param("readinto", "reset"),
        pytest.param("readinto", "close"),
    ],
)
def test_disconnect_after_the_body_reaches_the_app(server: Running, app: EchoApp, mode: str, how: str) -> None:
    """ASGI: after the body, receive() waits and gives http.disconnect when the client leaves."""
    client = server.connect()
    client.send(request("POST", f"/echo?mode={mode}&wait=1", body=b"z" * 1000))
    app.wait_for("counts")
    client.reset() if how == "reset" else client.close()
    app.wait_for("disconnect after body", timeout=3)


# -- request heads the server refuses ---------------------------------------------------------------------------


def test_head_timeout_408(start: Callable[..., Running], app: EchoApp) -> None:
    running = start(head_timeout=1.0)
    client = running.connect()
    started = time.monotonic()
    client.send(b"GET /echo HTTP/1.1\r\nHost: test\r\n")  # and never the blank line
    response = client.response()
    elapsed = time.monotonic() - started
    assert response.status == 408
    assert response.header("connection") == "close"
    assert 0.8 < elapsed < 3
    expect_closed(client)
    assert app.seen("request") == []


def test_head_timeout_closes_a_silent_connection(start: Callable[..., Running]) -> None:
    running = start(head_timeout=1.0)
    client = running.connect()
    started = time.monotonic()
    expect_closed(client)
    assert 0.8 < time.monotonic() - started < 3


def test_head_timeout_also_bounds_later_heads(start: Callable[..., Running]) -> None:
    running = start(head_timeout=0.5, keepalive_timeout=3.0)
    client = running.connect()
    client.send(request("GET", "/echo"))
    assert client.response().status == 200
    started = time.monotonic()
    client.send(b"GET /echo HTTP/1.1\r\nHost: test\r\n")  # a second head, dribbled, never finished
    assert client.response().status == 408
    assert time.monotonic() - started < 2


def test_keepalive_timeout_closes_an_idle_connection(start: Callable[..., Running]) -> None:
    running = start(keepalive_timeout=0.5)
    client = running.connect()
    client.send(request("GET", "/echo"))
    assert client.response().status == 200
    started = time.monotonic()
    expect_closed(client)
    assert 0.3 < time.monotonic() - started < 2.5


def test_head_too_large_431_while_it_arrives(server: Running, app: EchoApp) -> None:
    """70 KiB of header lines and no blank line yet: refused as soon as the limit is passed."""
    client = server.connect()
    client.send(b"GET /echo HTTP/1.1\r\n" + b"".join(b"X-Filler-%05d: %s\r\n" % (i, b"f" * 60) for i in range(1000)))
    response = client.response()
    assert response.status == 431
    assert response.header("connection") == "close"
    assert app.seen("request") == []


def test_head_too_large_431_in_one_write(server: Running, app: EchoApp) -> None:
    client = server.connect()
    client.send(request("GET", "/echo", ("X-Big: " + "b" * 70 * 1024,)))
    assert client.response().status == 431
    assert app.seen("request") == []


def test_too_many_header_lines_431(server: Running, app: EchoApp) -> None:
    response = server.exchange(request("GET", "/echo", tuple(f"X-H{i}: {i}" for i in range(200))))
    assert response.status == 431
    assert app.seen("request") == []


REFUSED_ON_THE_WIRE = {
    "bad request line": (b"GET /echo HTTP/1.1 extra\r\nHost: test\r\n\r\n", 400),
    "relative target": (b"GET echo HTTP/1.1\r\nHost: test\r\n\r\n", 400),
    "obs-fold": (b"GET /echo HTTP/1.1\r\nHost: test\r\nX-A: 1\r\n  2\r\n\r\n", 400),
    "space before colon": (b"GET /echo HTTP/1.1\r\nHost : test\r\n\r\n", 400),
    "NUL in a value": (b"GET /echo HTTP/1.1\r\nHost: te\x00st\r\n\r\n", 400),
    "differing Content-Length": (b"POST /echo HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    "HTTP/2.0": (b"GET /echo HTTP/2.0\r\nHost: test\r\n\r\n", 505),
    "HTTP/2 preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    "gzip body": (b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: gzip\r\n\r\nxx", 501),
    "unknown expectation": (b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx", 417),
    "closed mid-head": (b"GET /echo HTTP/1.1\r\nHost: te", 400),
}


@pytest.mark.parametrize(("wire", "status"), REFUSED_ON_THE_WIRE.values(), ids=REFUSED_ON_THE_WIRE.keys())
def test_refused_heads(server: Running, app: EchoApp, wire: bytes, status: int) -> None:
    client = server.connect()
    client.send(wire)
    if not wire.endswith(b"\r\n\r\n") and b"\r\n\r\n" not in wire:
        client.sock.shutdown(socket.SHUT_WR)
    response = client.response()
    assert response.status == status
    assert response.header("connection") == "close"
    assert response.header("content-type") == "text/plain; charset=utf-8"
    assert response.body.endswith(b"\n")
    expect_closed(client)
    assert app.seen("request") == []


def test_smuggled_request_behind_content_length_and_chunked_is_never_seen(server: Running, app: EchoApp) -> None:
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: test\r\n\r\n"
    client = server.connect()
    client.send(
        b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n%b"
        % (5 + len(smuggled), smuggled)
    )
    assert client.response().status == 400
    client.sock.shutdown(socket.SHUT_WR)
    expect_closed(client)  # one answer, nothing for the smuggled request
    assert app.seen("request") == []


# -- the app's failures -----------------------------------------------------------------------------------------


def test_app_exception_is_500_and_the_server_goes_on(server: Running) -> None:
    bystander = server.connect()  # a keep-alive connection opened before the failure
    bystander.send(request("GET", "/echo?n=1"))
    assert bystander.response().status == 200
    client = server.connect()
    client.send(request("GET", "/boom"))
    response = client.response()
    assert response.status == 500
    assert response.header("connection") == "close"
    assert b"boom" not in response.body  # the exception's text stays in the log
    expect_closed(client)
    assert server.exchange(request("GET", "/echo?after=1")).json()["query"] == "after=1"
    bystander.send(request("GET", "/echo?n=2"))
    assert bystander.response().json()["query"] == "n=2"


def test_app_exception_in_the_middle_of_its_answer_cuts_the_connection(server: Running) -> None:
    client = server.connect()
    client.send(request("GET", "/boom-late"))
    with pytest.raises((EOFError, ConnectionResetError)):
        client.response()  # the chunked body never gets its last chunk
    assert server.exchange(request("GET", "/echo?after=1")).status == 200


def test_app_that_never_answers_gets_500(server: Running) -> None:
    client = server.connect()
    client.send(request("GET", "/silent"))
    response = client.response()
    assert response.status == 500
    assert response.header("connection") == "close"
    expect_closed(client)


# -- responses --------------------------------------------------------------------------------------------------


def test_streamed_response_is_chunked(server: Running) -> None:
    client = server.connect()
    client.send(request("GET", "/stream?n=3&size=300000"))
    response = client.response()
    assert response.status == 200
    assert response.header("transfer-encoding") == "chunked"
    assert response.header("content-length") is None
    assert response.body == b"piece 0\npiece 1\npiece 2\n" + b"x" * 300_000 + b"end\n"
    assert response.chunk_sizes == [8, 8, 8, 300_000, 4]  # no empty chunk before the last
    client.send(request("GET", "/echo?after=1"))
    assert client.response().json()["query"] == "after=1"


def test_streamed_response_over_http_1_0_ends_with_the_connection(server: Running) -> None:
    client = server.connect()
    client.send(request("GET", "/stream?n=2", ("Connection: keep-alive",), version="1.0"))
    response = client.response()
    assert response.header("transfer-encoding") is None
    assert response.header("connection") == "close"
    assert response.body == b"piece 0\npiece 1\nend\n"  # read to the end of the connection


@pytest.mark.parametrize("target", ["/echo", "/stream", "/early"])
def test_head_gets_no_body(server: Running, target: str) -> None:
    client = server.connect()
    client.send(request("GET", target))
    get = client.response()
    client.send(request("HEAD", target))
    head = client.response("HEAD")
    assert head.status == get.status == 200
    assert head.header("content-type") == get.header("content-type")
    if target != "/echo":  # the echo's JSON differs by method
        assert head.header("content-length") == get.header("content-length")
    assert head.header("transfer-encoding") is None
    assert client.pending(0.3) == b""
    client.send(request("GET", "/echo?after=1"))
    assert client.response().json()["query"] == "after=1"


def test_http_1_0_closes_after_the_answer(server: Running) -> None:
    client = server.connect()
    client.send(b"GET /echo?old=1 HTTP/1.0\r\n\r\n")
    response = client.response()
    assert response.status == 200
    assert response.header("connection") == "close"
    echoed = response.json()
    assert (echoed["http_version"], echoed["query"]) == ("1.0", "old=1")
    expect_closed(client)


def test_http_1_0_keep_alive_on_request(server: Running) -> None:
    client = server.connect()
    for n in range(3):
        client.send(request("GET", f"/echo?n={n}", ("Connection: keep-alive",), version="1.0"))
        response = client.response()
        assert response.header("connection") == "keep-alive"
        assert response.json()["query"] == f"n={n}"


def test_http_1_0_expect_is_ignored(server: Running) -> None:
    client = server.connect()
    client.send(request("POST", "/echo", ("Expect: 100-continue",), b"abc", version="1.0"))
    response = client.response()
    assert response.status == 200  # no 100 to an HTTP/1.0 client
    assert response.json()["length"] == 3


@pytest.fixture
def big_file(tmp_path: Path, app: EchoApp) -> bytes:
    data = b"first line\r\n" + os.urandom(5 * MiB + 123)
    path = tmp_path / "file.bin"
    path.write_bytes(data)
    app.file = path
    return data


def test_pathsend_sends_the_exact_file(server: Running, big_file: bytes) -> None:
    client = server.connect()
    client.send(request("GET", "/file?cl=1"))
    response = client.response()
    assert response.status == 200
    assert response.header("content-length") == str(len(big_file))
    assert sha(response.body) == sha(big_file)
    client.send(request("GET", "/echo?after=1"))
    assert client.response().json()["query"] == "after=1"


def test_pathsend_without_content_length(server: Running, big_file: bytes) -> None:
    client = server.connect()
    client.send(request("GET", "/file"))
    assert client.response().body == big_file


def test_pathsend_to_head_sends_no_body(server: Running, big_file: bytes) -> None:
    client = server.connect()
    client.send(request("HEAD", "/file?cl=1"))
    response = client.response("HEAD")
    assert response.header("content-length") == str(len(big_file))
    assert client.pending(0.3) == b""


# -- stopping ---------------------------------------------------------------------------------------------------


def test_stop_ends_serve_promptly_with_an_idle_keep_alive_connection(start: Callable[..., Running]) -> None:
    running = start(grace=5.0)
    client = running.connect()
    client.send(request("GET", "/echo"))
    assert client.response().header("connection") is None  # kept alive, and now idle
    took = running.stop()
    assert took < 1.5  # not the 5 s grace
    expect_closed(client)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", running.port), timeout=WAIT).close()


def test_stop_lets_a_running_request_finish(start: Callable[..., Running], app: EchoApp) -> None:
    running = start(grace=5.0)
    client = running.connect()
    client.send(request("POST", "/echo?delay=0.5", body=b"abc"))
    app.wait_for("request")
    stopper = threading.Thread(target=running.stop)
    stopper.start()
    response = client.response()
    assert response.json()["length"] == 3
    assert response.header("connection") == "close"  # the server is stopping: no more requests here
    expect_closed(client)
    stopper.join(WAIT)
    assert not stopper.is_alive()
    assert app.seen("shutdown") == [None]
