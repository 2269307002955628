"""Differential test against a reference parser (issue 14): request heads and chunked bodies made by hypothesis are
read by our parser and by h11. Whatever h11 refuses, we refuse too (we may be stricter, never looser); where both
accept, both read the same message: method, target, framing, and for chunked bodies the same bytes and the same end.

Our side is the server's own code: ``wire.head_end`` + ``wire.parse_head`` for heads, and ``body.RequestBody`` over
a ``Connection`` holding the bytes (then end of file) for chunked bodies. Bounded: a few hundred examples each.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

import h11
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyfiledrop.httpd.body import RequestBody
from pyfiledrop.httpd.connection import Connection
from pyfiledrop.httpd.state import ServerOptions, Shared
from pyfiledrop.httpd.wire import RequestHead, WireError, head_end, parse_head
from pyfiledrop.sockets import Gone

pytestmark = pytest.mark.timeout(120)

BOUNDED = settings(max_examples=250, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

# -- what h11 makes of it -----------------------------------------------------------------------------------------


def h11_read(raw: bytes) -> tuple[str, Any, bytes]:
    """(what, the request or the error's message, the body): what is "error", "incomplete" or "whole"."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(raw)
    conn.receive_data(b"")  # the end of the stream: an unfinished message is h11's error or stays incomplete
    request, body = None, b""
    try:
        while True:
            event = conn.next_event()
            match event:
                case h11.Request():
                    request = event
                case h11.Data():
                    body += bytes(event.data)
                case h11.EndOfMessage():
                    return "whole", request, body
                case h11.ConnectionClosed() | h11.NEED_DATA | h11.PAUSED:
                    return "incomplete", request, body
                case _:
                    raise AssertionError(event)
    except h11.RemoteProtocolError as exc:
        return "error", str(exc), b""


# -- heads ----------------------------------------------------------------------------------------------------------

TOKEN = st.text("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=8)
ANY_BYTES = st.binary(max_size=12)
NAME = st.one_of(
    TOKEN.map(str.encode),
    ANY_BYTES,
    st.sampled_from([b"Host", b"Content-Length", b"Transfer-Encoding", b"Connection", b"Expect", b"X A", b"", b" X"]),
)
VALUE = st.one_of(
    st.sampled_from([b"chunked", b"gzip", b"chunked, gzip", b"gzip, chunked", b" chunked ", b"identity", b"0", b"5",
                     b"05", b"-1", b"+1", b"1, 1", b"1, 2", b"9" * 25, b"close", b"keep-alive", b"100-continue",
                     b"example.com", b"a b", b"[::1]:80", b"\xe9t\xe9", b"a\x00b", b"a\rb", b"a\x7fb", b"a\tb"]),
    st.binary(max_size=16),
)  # fmt: skip
SEPARATOR = st.sampled_from([b": ", b":", b" : ", b":\t", b" :"])
LINE_END = st.sampled_from([b"\r\n"] * 12 + [b"\n", b"\r"])
HEADER = st.tuples(NAME, SEPARATOR, VALUE, LINE_END)
METHOD = st.one_of(st.sampled_from([b"GET", b"POST", b"PUT", b"PATCH", b"HEAD"]), TOKEN.map(str.encode), ANY_BYTES)
TARGET = st.one_of(
    st.sampled_from([b"/", b"/files/abc?x=1", b"*", b"http://h.example/x", b"http://user@h/x", b"https://h:1",
                     b"/a b", b"/\xc3\xa9", b"x", b"/%2e%2e/"]),
    st.binary(min_size=1, max_size=12),
)  # fmt: skip
VERSION = st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/1.1", b"HTTP/2.0", b"HTTP/1.9", b"HTTP/1", b"http/1.1"])


@st.composite
def heads(draw: st.DrawFn) -> bytes:
    line = draw(METHOD) + draw(st.sampled_from([b" ", b"  ", b"\t"])) + draw(TARGET) + b" " + draw(VERSION)
    host = draw(st.sampled_from([[], [b"Host: example.com"], [b"Host: a", b"Host: b"], [b"Host: example.com"]]))
    lines = [line + b"\r\n"] + [h + b"\r\n" for h in host]
    for name, separator, value, end in draw(st.lists(HEADER, max_size=6)):
        lines.insert(draw(st.integers(1, len(lines))), name + separator + value + end)
    return b"".join(lines) + b"\r\n"


def ours_head(raw: bytes) -> RequestHead | None:
    """Our reading of a head (None: refused). ``raw`` is a whole head, so our reader must have found its end."""
    try:
        end = head_end(raw)
        return parse_head(raw[:end]) if end >= 0 else None  # -1: we wait for the rest (then 408): not accepted
    except WireError:
        return None


def h11_framing(request: h11.Request) -> tuple[int | None, bool]:
    lengths = [v for n, v in request.headers if n == b"content-length"]
    chunked = any(n == b"transfer-encoding" for n, _ in request.headers)
    return (None if chunked or not lengths else int(lengths[0])), chunked


@BOUNDED
@given(heads())
def test_we_never_accept_a_head_h11_refuses_and_read_the_rest_alike(raw: bytes) -> None:
    theirs, request, _ = h11_read(raw)
    ours = ours_head(raw)
    if theirs == "error":
        assert ours is None, f"h11 refuses {raw!r} ({request}); we accepted it"
    if ours is None or not isinstance(request, h11.Request):
        return
    assert ours.method.encode() == request.method
    target = request.target
    if not target.startswith((b"http://", b"https://")):
        assert ours.raw_path + (b"?" + ours.query if ours.query else b"") == target or target == b"*"
    assert ("HTTP/" + ours.version).encode() == b"HTTP/" + request.http_version or request.http_version not in (
        b"1.0",
        b"1.1",
    )
    assert (ours.content_length, ours.chunked) == h11_framing(request)


@pytest.mark.parametrize(
    "raw",
    [
        b"GET / HTTP/1.1\r\n\r\n",  # no Host (h11: Missing mandatory Host)
        b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",  # a raw non-ASCII target
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
    ],
)
def test_known_refusals_of_both(raw: bytes) -> None:
    assert h11_read(raw)[0] == "error"
    assert ours_head(raw) is None


# -- chunked bodies -------------------------------------------------------------------------------------------------

HEAD = b"POST /up HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
SIZE_LINE = st.one_of(
    st.sampled_from([b"%x", b"%X", b"0%x", b"%x;ext", b"%x;a=b;c=\"d;e\"", b"%x ", b"%x\t", b"%x ;ext", b" %x",
                     b"%x;\x00", b"-%x", b"+%x", b"0x%x", b"%xg", b"00000000000000000%x"]),
    st.binary(max_size=6).map(lambda b: b"%x" + b),
)  # fmt: skip
CHUNK_END = st.sampled_from([b"\r\n"] * 8 + [b"\n", b"", b"\r", b"x\r\n"])
TRAILER = st.one_of(st.sampled_from([b"X-Sum: 1", b"X: a b", b"bad trailer", b" folded", b"X:\x00", b"X: \xe9"]),
                    st.binary(max_size=10))  # fmt: skip


@st.composite
def chunked_bodies(draw: st.DrawFn) -> bytes:
    out = b""
    for data in draw(st.lists(st.binary(min_size=1, max_size=20), max_size=4)):
        size = len(data) + draw(st.sampled_from([0] * 8 + [-1, 1]))  # now and then a size that lies
        line = draw(SIZE_LINE).replace(b"%x", b"%x" % max(size, 0)).replace(b"%X", b"%X" % max(size, 0))
        out += line + draw(LINE_END) + data + draw(CHUNK_END)
    out += draw(st.sampled_from([b"0", b"00", b"0;last", b"0 "])) + draw(LINE_END)
    for trailer in draw(st.lists(TRAILER, max_size=2)):
        out += trailer + draw(LINE_END)
    return out + draw(st.sampled_from([b"\r\n"] * 6 + [b"\n", b"", b"\r\nGET / HTTP/1.1\r\n"]))


_SHARED: Shared | None = None


def ours_body(raw: bytes) -> tuple[str, bytes]:
    """("body", bytes) | ("error", message) | ("incomplete", b""), as our server reads it."""
    return asyncio.run(_ours_body(raw))


async def _ours_body(raw: bytes) -> tuple[str, bytes]:
    global _SHARED
    if _SHARED is None:
        _SHARED = Shared(_no_app, ServerOptions("127.0.0.1", 0))
        _SHARED.executor.shutdown()
        _SHARED.executor = concurrent.futures.ThreadPoolExecutor(1)
    conn = Connection(_SHARED, _no_handler)
    conn.chunks.append(raw)
    conn.buffered = len(raw)
    conn.eof = True  # all of it arrived, then the client closed
    body = RequestBody(conn, parse_head(HEAD[:-4]))
    pieces = []
    try:
        while not body.done:
            pieces.append(await body.next_piece())
    except WireError as exc:
        return "error", exc.message.encode()
    except Gone:
        return "incomplete", b""
    return "body", b"".join(pieces)


async def _no_app(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("not called")


async def _no_handler(conn: Connection) -> None:
    raise AssertionError("not called")


@BOUNDED
@given(chunked_bodies())
def test_we_never_accept_a_chunked_body_h11_refuses_and_end_it_where_h11_does(wire: bytes) -> None:
    theirs, why, their_body = h11_read(HEAD + wire)
    ours, our_body = ours_body(wire)
    if theirs == "error":
        assert ours != "body", f"h11 refuses {wire!r} ({why}); we read {our_body!r}"
    elif theirs == "incomplete":
        assert ours != "body", f"h11 waits for more of {wire!r}; we read {our_body!r} and would go on"
    elif ours == "body":
        assert our_body == their_body, wire


@pytest.mark.parametrize(
    "wire",
    [b"5x\r\nhello\r\n0\r\n\r\n", b"-5\r\nhello\r\n0\r\n\r\n", b"5\nhello\r\n0\r\n\r\n", b"5 ;e\r\nhello\r\n0\r\n\r\n",
     b"3\r\nhello\r\n0\r\n\r\n", b"5\r\nhello\r\n0\r\nbad trailer\r\n\r\n"],
)  # fmt: skip
def test_known_chunked_refusals_of_both(wire: bytes) -> None:
    assert h11_read(HEAD + wire)[0] == "error"
    assert ours_body(wire)[0] == "error"
