"""HTTP/1.1 rules the server keeps for every app it runs (RFC 9110/9112), each with the defect it fixed (issue 14).

Live tests run ``HttpServer`` in a thread with tiny ASGI apps of their own (``test_connection``'s fixtures) and talk
to it with raw sockets; the open-file test runs ``pyfiledrop serve`` in a subprocess with a lowered limit.
"""

from __future__ import annotations

import hashlib
import logging
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from pyfiledrop.httpd.response import InvalidResponse, checked_headers
from pyfiledrop.httpd.wire import MAX_REQUEST_LINE, WireError, head_end, parse_head
from tests.conftest import ServerProcess
from tests.server.test_connection import WAIT, EchoApp, Running, expect_closed, request

pytestmark = pytest.mark.timeout(30)

Scope = dict[str, Any]


def date_is_now(response_date: str | None) -> bool:
    assert response_date is not None, "no Date header"
    return abs(parsedate_to_datetime(response_date).timestamp() - time.time()) < 5


# -- the structural defence: nothing invalid goes out -----------------------------------------------------------


BAD_HEADERS = {
    "CRLF in a value (a split response)": (b"content-type", b"text/html\r\n\r\n<script>alert(1)</script>"),
    "bare LF in a value": (b"x-a", b"1\nSet-Cookie: evil=1"),
    "bare CR in a value": (b"x-a", b"1\rSet-Cookie: evil=1"),
    "NUL in a value": (b"x-a", b"a\x00b"),
    "space in a name": (b"x a", b"1"),
    "colon in a name": (b"set-cookie: evil=1\r\nx", b"1"),
    "empty name": (b"", b"1"),
    "str, not bytes": ("x-a", "1"),
}


class BadHeaderApp:
    def __init__(self, header: tuple[Any, Any]) -> None:
        self.header = header

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise RuntimeError("no lifespan")
        if scope["path"] == "/ok":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": [self.header]})
        await send({"type": "http.response.body", "body": b"<script>alert(1)</script>"})


@pytest.mark.parametrize("header", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
def test_an_invalid_header_from_the_app_is_a_logged_500_never_a_split_response(
    start: Callable[..., Running], header: tuple[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    running = start(BadHeaderApp(header))
    client = running.connect()
    client.send(request("GET", "/bad"))
    response = client.response()
    assert response.status == 500
    assert response.header("connection") == "close"
    rest = client.read_to_eof()
    wire = response.head.encode("latin-1") + response.body + rest
    assert b"evil" not in wire and b"<script>" not in wire
    assert any(r.levelno == logging.ERROR and "/bad" in r.getMessage() for r in caplog.records)
    assert running.exchange(request("GET", "/ok")).body == b"ok"  # the server goes on


def test_checked_headers_takes_valid_fields() -> None:
    assert checked_headers([(b"Content-Type", b"text/plain; charset=\xe9"), (b"x-tab", b"a\tb")]) == [
        (b"content-type", b"text/plain; charset=\xe9"), (b"x-tab", b"a\tb")
    ]  # fmt: skip
    for header in BAD_HEADERS.values():
        with pytest.raises(InvalidResponse):
            checked_headers([header])


# -- Date --------------------------------------------------------------------------------------------------------


def test_date_on_every_response(server: Running) -> None:
    assert date_is_now(server.exchange(request("GET", "/echo")).header("date"))  # the app's answer
    assert date_is_now(server.exchange(b"GET /x HTTP/1.1\r\n\r\n").header("date"))  # the server's own 400
    assert date_is_now(server.exchange(request("GET", "/fail")).header("date"))  # the fallback 500
    streamed = server.exchange(request("GET", "/stream"))
    assert date_is_now(streamed.header("date"))
    assert streamed.header("date") is not None and len([n for n, _ in streamed.headers if n == "date"]) == 1


# -- framing errors are the server's 400, not what the app makes of them ----------------------------------------


class DisconnectIs499App:
    """Like pyfiledrop's app before: a disconnect while reading the body is answered 499 ("client closed")."""

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise RuntimeError("no lifespan")
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                status, body = 499, b"client closed\n"
                break
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                status, body = 200, b"%d\n" % size
                break
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-length", b"%d" % len(body))]}
        )
        await send({"type": "http.response.body", "body": body})


MALFORMED_CHUNKS = {
    "bad hex": b"5x\r\nhello\r\n0\r\n\r\n",
    "negative size": b"-5\r\nhello\r\n0\r\n\r\n",
    "over-long size": b"1" + b"0" * 16 + b"\r\nhello\r\n0\r\n\r\n",
    "bare-LF size line": b"5\nhello\r\n0\r\n\r\n",
    "bad trailer": b"5\r\nhello\r\n0\r\nnot a header\r\n\r\n",
}


@pytest.mark.parametrize("wire", MALFORMED_CHUNKS.values(), ids=MALFORMED_CHUNKS.keys())
def test_a_malformed_chunked_body_is_400_and_close_never_499(start: Callable[..., Running], wire: bytes) -> None:
    running = start(DisconnectIs499App())
    client = running.connect()
    client.send(request("POST", "/up", ("Transfer-Encoding: chunked",), wire))
    response = client.response()
    assert (response.status, response.header("connection")) == (400, "close")
    assert b"chunk" in response.body or b"trailer" in response.body or b"header" in response.body
    client.sock.shutdown(socket.SHUT_WR)
    expect_closed(client)


def test_a_body_cut_short_by_a_half_close_is_400_not_499(start: Callable[..., Running]) -> None:
    running = start(DisconnectIs499App())
    client = running.connect()
    client.send(request("POST", "/up", ("Content-Length: 100",), b"x" * 10))
    client.sock.shutdown(socket.SHUT_WR)  # the client sends no more but still reads
    response = client.response()
    assert response.status == 400
    assert response.header("connection") == "close"


def test_a_well_formed_chunked_body_still_reaches_the_app(start: Callable[..., Running]) -> None:
    running = start(DisconnectIs499App())
    response = running.exchange(
        request("POST", "/up", ("Transfer-Encoding: chunked",), b"5;x=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n")
    )
    assert (response.status, response.body) == (200, b"5\n")


def test_http_1_0_with_a_chunked_body_is_served_then_closed(server: Running) -> None:
    client = server.connect()
    client.send(
        request("POST", "/echo", ("Transfer-Encoding: chunked", "Connection: keep-alive"),
                b"5\r\nhello\r\n0\r\n\r\n", version="1.0")
    )  # fmt: skip
    response = client.response()
    assert response.status == 200
    assert response.json()["sha256"] == hashlib.sha256(b"hello").hexdigest()
    assert response.header("connection") == "close"
    expect_closed(client)


# -- Host ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "wire",
    [
        b"GET /echo HTTP/1.1\r\n\r\n",
        b"GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET /echo HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n",
        b"GET /echo HTTP/1.1\r\nHost: a b\r\n\r\n",
        b"GET /echo HTTP/1.1\r\nHost: a/b\r\n\r\n",
        b"GET http://user@evil/echo HTTP/1.1\r\nHost: a\r\n\r\n",
    ],
    ids=["none in 1.1", "two", "two in 1.0", "a space", "a slash", "userinfo in the target"],
)
def test_no_host_or_two_or_a_bad_one_is_400(server: Running, app: EchoApp, wire: bytes) -> None:
    response = server.exchange(wire)
    assert (response.status, response.header("connection")) == (400, "close")
    assert b"host" in response.body.lower()
    assert app.seen("request") == []


def test_http_1_0_without_host_is_served(server: Running) -> None:
    assert server.exchange(b"GET /echo?x=1 HTTP/1.0\r\n\r\n").status == 200


def test_an_absolute_form_target_gives_the_host(server: Running) -> None:
    response = server.exchange(b"GET http://files.example:8080/echo?q=1 HTTP/1.1\r\nHost: other.example\r\n\r\n")
    assert response.status == 200
    assert dict(response.json()["headers"])["host"] == "files.example:8080"
    assert parse_head(b"GET http://x.example/ HTTP/1.0").headers == [(b"host", b"x.example")]


# -- heads: bare LF, long targets, timeouts ---------------------------------------------------------------------


def test_a_head_with_bare_lf_line_ends_is_400_at_once(start: Callable[..., Running]) -> None:
    running = start(head_timeout=30.0)
    client = running.connect()
    started = time.monotonic()
    client.send(b"GET /echo HTTP/1.1\nHost: test\n\n")
    response = client.response()
    assert (response.status, response.header("connection")) == (400, "close")
    assert time.monotonic() - started < 3, "no 30 s wait for a CRLF CRLF that never comes"
    expect_closed(client)


@pytest.mark.parametrize("whole", [True, False], ids=["in one write", "still arriving"])
def test_an_over_long_target_is_414(server: Running, whole: bool) -> None:
    client = server.connect()
    target = "/echo?" + "q" * (MAX_REQUEST_LINE + 10)
    client.send(request("GET", target) if whole else f"GET {target}".encode())
    response = client.response()
    assert (response.status, response.header("connection")) == (414, "close")


def test_head_end_pure() -> None:
    assert head_end(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody\n") == 23  # a bare LF in the body is not the head's
    assert head_end(b"GET / HTTP/1.1\r\nHost: a\r") == -1  # the LF may still come
    for bare in (b"GET / HTTP/1.1\nHost: a", b"GET / HTTP/1.1\r\nHost: a\n\r\n", b"GET / HTTP/1.1\r\n\n"):
        with pytest.raises(WireError) as caught:
            head_end(bare)
        assert caught.value.status == 400
    with pytest.raises(WireError) as caught:
        head_end(b"GET /" + b"a" * MAX_REQUEST_LINE)
    assert caught.value.status == 414


class StatusApp:
    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise RuntimeError("no lifespan")
        status = int(scope["path"].strip("/"))
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


def test_408_from_the_app_closes_the_connection(start: Callable[..., Running]) -> None:
    running = start(StatusApp())
    client = running.connect()
    client.send(request("GET", "/200"))
    assert client.response().header("connection") is None
    client.send(request("GET", "/408"))
    response = client.response()
    assert (response.status, response.header("connection")) == (408, "close")
    expect_closed(client)


def test_408_of_the_head_timeout_closes_with_connection_close(start: Callable[..., Running]) -> None:
    running = start(head_timeout=0.5)
    client = running.connect()
    client.send(b"GET /echo HTTP/1.1\r\n")
    response = client.response()
    assert (response.status, response.header("connection")) == (408, "close")
    expect_closed(client)


# -- a client that stops reading -------------------------------------------------------------------------------


class BigAnswerApp:
    """``/file``: a 64 MiB file by pathsend; ``/stream``: 64 MiB in 1 MiB body messages. Records how sending ended."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.outcomes: list[str] = []

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise RuntimeError("no lifespan")
        size = self.path.stat().st_size
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % size)]})
        try:
            if scope["path"] == "/file":
                await send({"type": "http.response.pathsend", "path": str(self.path)})
            else:
                piece = b"s" * (1 << 20)
                for _ in range(size >> 20):
                    await send({"type": "http.response.body", "body": piece, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
        except OSError as exc:  # ASGI: send() on a connection that is gone raises an OSError
            self.outcomes.append(type(exc).__name__)
            raise
        self.outcomes.append("sent")


@pytest.fixture
def big_answers(tmp_path: Path) -> BigAnswerApp:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(1 << 20) * 64)
    return BigAnswerApp(path)


@pytest.mark.parametrize("target", ["/file", "/stream"])
def test_a_client_that_stops_reading_is_cut_off_after_the_send_timeout(
    start: Callable[..., Running], big_answers: BigAnswerApp, target: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "pyfiledrop.http")
    running = start(big_answers, send_timeout=0.5)
    client = running.connect()
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    started = time.monotonic()
    client.send(request("GET", target))
    deadline = time.monotonic() + WAIT
    while not big_answers.outcomes and time.monotonic() < deadline:
        time.sleep(0.05)
    assert big_answers.outcomes == ["ClientGone"]
    assert time.monotonic() - started < 4
    lines = [r for r in caplog.records if r.name == "pyfiledrop.http" and "open-file limit" not in r.getMessage()]
    assert [r.levelno for r in lines] == [logging.INFO], [r.getMessage() for r in lines]
    assert "send timeout" in lines[0].getMessage() and lines[0].exc_info is None
    with pytest.raises(OSError):  # the connection was cut (reset): what is left in the buffers is not all of it
        received = client.read_to_eof()
        assert len(received) < 64 << 20
        raise ConnectionResetError


def test_a_slow_reader_is_not_cut_off(start: Callable[..., Running], big_answers: BigAnswerApp) -> None:
    """The send timeout counts from the last byte the client took, not for the whole answer."""
    running = start(big_answers, send_timeout=0.6)
    client = running.connect()
    client.send(request("GET", "/file"))
    received, reads = 0, 0
    while received < 64 << 20:
        data = client.sock.recv(8 << 20)
        assert data, f"closed after {received} bytes"
        received, reads = received + len(data), reads + 1
        if reads < 8:
            time.sleep(0.3)  # half the send timeout between reads (each takes far less than the socket holds)
    deadline = time.monotonic() + WAIT
    while not big_answers.outcomes and time.monotonic() < deadline:
        time.sleep(0.05)  # the app hears "sent" once its last send returns, a moment after the client has it all
    assert big_answers.outcomes == ["sent"]


def test_an_aborted_download_is_one_info_line(
    start: Callable[..., Running], big_answers: BigAnswerApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    running = start(big_answers)
    client = running.connect()
    client.send(request("GET", "/file"))
    client.read_until(b"\r\n\r\n")
    client.reset()
    deadline = time.monotonic() + WAIT
    while not big_answers.outcomes and time.monotonic() < deadline:
        time.sleep(0.05)
    assert big_answers.outcomes == ["ClientGone"]
    time.sleep(0.2)
    lines = [r for r in caplog.records if r.levelno >= logging.INFO and "open-file limit" not in r.getMessage()]
    assert [r.levelno for r in lines] == [logging.INFO], [r.getMessage() for r in lines]
    assert all(r.exc_info is None for r in caplog.records)


# -- file descriptors: raise the limit, shed idle connections before it -----------------------------------------


class LowFileLimit(ServerProcess):
    """``pyfiledrop serve`` started with RLIMIT_NOFILE lowered to 256 (soft and hard)."""

    def launcher(self) -> list[str]:
        code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256)); "
                "from pyfiledrop.cli import main; sys.exit(main())")  # fmt: skip
        return [sys.executable, "-c", code]


def test_idle_connections_are_shed_before_the_open_file_limit(tmp_path: Path) -> None:
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 700:
        pytest.skip("this test needs 700 descriptors of its own")
    server_process = LowFileLimit(tmp_path / "storage").start()
    idle: list[socket.socket] = []
    try:
        assert "open-file limit 256: room for" in server_process.log()
        for _ in range(400):  # more idle clients than the server has descriptors
            idle.append(socket.create_connection(("127.0.0.1", server_process.port), timeout=WAIT))
        started = time.monotonic()
        response = httpx.get(f"{server_process.url}/api/config", timeout=10)
        assert response.status_code == 200
        assert time.monotonic() - started < 3, "accept must not stall"
        log = server_process.log()
        assert "Too many open files" not in log
        assert "closing" in log and "idle" in log
        shed = 0
        for sock in idle[:50]:  # the oldest were closed to make room
            sock.settimeout(2)
            try:
                shed += sock.recv(1) == b""
            except OSError:
                shed += 1
        assert shed == 50
    finally:
        for sock in idle:
            sock.close()
        server_process.stop()


def test_the_soft_limit_is_raised_to_the_hard_one(tmp_path: Path) -> None:
    code = ("import resource; resource.setrlimit(resource.RLIMIT_NOFILE, (300, 400)); "
            "from pyfiledrop.httpd.limits import raise_open_file_limit; print(raise_open_file_limit(), "
            "resource.getrlimit(resource.RLIMIT_NOFILE)[0])")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.split() == ["400", "400"]
