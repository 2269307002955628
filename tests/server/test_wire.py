"""The wire format, pure: ``parse_head`` (every refusal and its status), ``chunk_size``, ``response_head``.

Heads are written as lists of lines and joined with CRLF, the way ``Connection`` hands them over: everything
before the blank line that ends the header section.
"""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from pyfiledrop.httpd.response import http_date, plain_refusal, response_head, status_body
from pyfiledrop.httpd.wire import (
    MAX_HEADERS,
    RequestHead,
    WireError,
    chunk_size,
    parse_head,
    target_path,
)


def head(*lines: str | bytes) -> bytes:
    return b"\r\n".join(line.encode("latin-1") if isinstance(line, str) else line for line in lines)


def get(*headers: str | bytes, target: str = "/", version: str = "1.1", method: str = "GET") -> bytes:
    return head(f"{method} {target} HTTP/{version}", "Host: example.com", *headers)


def refused(raw: bytes) -> WireError:
    with pytest.raises(WireError) as caught:
        parse_head(raw)
    return caught.value


# -- heads that parse -------------------------------------------------------------------------------------------


def test_minimal_head() -> None:
    parsed = parse_head(b"GET / HTTP/1.1\r\nHost: a")
    assert parsed == RequestHead(
        method="GET", raw_path=b"/", path="/", query=b"", version="1.1", headers=[(b"host", b"a")], content_length=None,
        chunked=False, keep_alive=True, expect_continue=False,
    )  # fmt: skip


def test_header_names_lower_cased_values_trimmed_and_kept() -> None:
    parsed = parse_head(
        get("X-Thing:   Mixed Case Value \t", "ACCEPT:*/*", "x-empty:", "X-Tab: a\tb", "X-Latin: caf\xe9")
    )
    assert parsed.headers == [
        (b"host", b"example.com"), (b"x-thing", b"Mixed Case Value"), (b"accept", b"*/*"), (b"x-empty", b""),
        (b"x-tab", b"a\tb"), (b"x-latin", b"caf\xe9"),
    ]  # fmt: skip


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "M-SEARCH", "get"])
def test_methods_are_tokens_kept_as_sent(method: str) -> None:
    assert parse_head(get(method=method)).method == method


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        ("/", "/", b""),
        ("/a/b", "/a/b", b""),
        ("/a/b?x=1&y=%20", "/a/b", b"x=1&y=%20"),  # the query stays raw
        ("/a?", "/a", b""),
        ("/a?b?c", "/a", b"b?c"),
        ("/a%20b/%C3%A9", "/a b/é", b""),  # the path is percent-decoded as UTF-8
        ("/name%2Fwith%2Fslash", "/name/with/slash", b""),
        ("/bad%FFutf8", "/bad\ufffdutf8", b""),
        ("/100%", "/100%", b""),  # a lone % stays
        ("//double", "//double", b""),
        ("*", "*", b""),  # OPTIONS *
        ("http://example.com/x?y=1", "/x", b"y=1"),  # absolute form: the path and query are kept
        ("https://example.com:8443/a%20b", "/a b", b""),
        ("http://example.com", "/", b""),
    ],
)
def test_request_targets(target: str, path: str, query: bytes) -> None:
    parsed = parse_head(get(target=target))
    assert (parsed.path, parsed.query) == (path, query)
    assert unquote(parsed.raw_path.decode("latin-1"), errors="replace") == path, "raw_path is the path as sent"


def test_absolute_form_without_path_keeps_query() -> None:
    parsed = parse_head(get(target="http://example.com?x=1"))
    assert (parsed.path, parsed.query) == ("/", b"x=1")


def test_absolute_form_scheme_is_case_insensitive() -> None:
    parsed = parse_head(get(target="HTTP://example.com/x"))
    assert parsed.path == "/x"


@pytest.mark.parametrize(
    ("version", "headers", "keep_alive"),
    [
        ("1.1", [], True),
        ("1.1", ["Connection: keep-alive"], True),
        ("1.1", ["Connection: Upgrade"], True),
        ("1.1", ["Connection: close"], False),
        ("1.1", ["Connection: Close"], False),
        ("1.1", ["Connection: keep-alive, close"], False),
        ("1.1", ["Connection: upgrade", "Connection: close"], False),  # several Connection headers are one list
        ("1.0", [], False),
        ("1.0", ["Connection: keep-alive"], True),
        ("1.0", ["Connection: Keep-Alive"], True),
        ("1.0", ["Connection: close"], False),
        ("1.0", ["Connection: upgrade", "Connection: keep-alive"], True),
    ],
)
def test_keep_alive_rules(version: str, headers: list[str], keep_alive: bool) -> None:
    parsed = parse_head(get(*headers, version=version))
    assert parsed.version == version
    assert parsed.keep_alive is keep_alive


def test_a_later_minor_version_is_answered_as_1_1() -> None:
    assert parse_head(get(version="1.2")).version == "1.1"


@pytest.mark.parametrize(
    ("headers", "length"),
    [
        ([], None),
        (["Content-Length: 0"], 0),
        (["Content-Length: 42"], 42),
        (["content-LENGTH: 42"], 42),
        (["Content-Length:    42   "], 42),
        (["Content-Length: 42", "Content-Length: 42"], 42),  # the same value twice is one value
        (["Content-Length: 42, 42"], 42),
        (["Content-Length: 42,42", "Content-Length: 42"], 42),
        (["Content-Length: 9223372036854775807"], 2**63 - 1),
    ],
)
def test_content_length(headers: list[str], length: int | None) -> None:
    parsed = parse_head(get(*headers, method="POST"))
    assert parsed.content_length == length
    assert parsed.chunked is False


@pytest.mark.parametrize("value", ["chunked", "Chunked", "CHUNKED", "  chunked  "])
def test_chunked_transfer_encoding(value: str) -> None:
    parsed = parse_head(get(f"Transfer-Encoding: {value}", method="POST"))
    assert parsed.chunked is True
    assert parsed.content_length is None


@pytest.mark.parametrize(
    ("version", "value", "expect_continue"),
    [("1.1", "100-continue", True), ("1.1", "100-Continue", True), ("1.0", "100-continue", False)],
)
def test_expect_continue(version: str, value: str, expect_continue: bool) -> None:
    parsed = parse_head(get(f"Expect: {value}", "Content-Length: 5", version=version, method="POST"))
    assert parsed.expect_continue is expect_continue


def test_as_many_header_lines_as_allowed() -> None:
    lines = [f"X-H{i}: {i}" for i in range(MAX_HEADERS - 1)]  # plus Host
    assert len(parse_head(get(*lines)).headers) == MAX_HEADERS


# -- refusals ---------------------------------------------------------------------------------------------------

REFUSALS: list[tuple[str, bytes, int]] = [
    # the request line
    ("empty head", b"", 400),
    ("no version", b"GET /", 400),
    ("only a method", b"GET", 400),
    ("trailing space", b"GET / HTTP/1.1 ", 400),
    ("leading space", b" GET / HTTP/1.1", 400),
    ("two spaces", b"GET  / HTTP/1.1", 400),
    ("tabs for spaces", b"GET\t/\tHTTP/1.1", 400),
    ("lower-case protocol", b"GET / http/1.1", 400),
    ("no minor version", b"GET / HTTP/1", 400),
    ("two-digit major", b"GET / HTTP/11.1", 400),
    ("method not a token", b"G(T / HTTP/1.1", 400),
    ("method with a slash", b"GE/T / HTTP/1.1", 400),
    ("relative target", b"GET foo HTTP/1.1", 400),
    ("scheme-relative junk target", b"GET http:/x HTTP/1.1", 400),
    ("bare LF in the request line", b"GET / HTTP/1.1\nHost: x", 400),
    # versions
    ("HTTP/2.0", b"GET / HTTP/2.0", 505),
    ("HTTP/2 prior-knowledge preface", b"PRI * HTTP/2.0", 505),
    ("HTTP/3.0", b"GET / HTTP/3.0", 505),
    ("HTTP/0.9", b"GET / HTTP/0.9", 505),
    # header lines
    ("no colon", get("Host example.com"), 400),
    ("space before the colon", get("Content-Length : 5"), 400),
    ("tab before the colon", get("Transfer-Encoding\t: chunked"), 400),
    ("empty name", get(": value"), 400),
    ("space in the name", get("X Thing: v"), 400),
    ("separator in the name", get("X(y): v"), 400),
    ("non-ASCII name", get(b"X-\xe9: v"), 400),
    ("obs-fold with a space", get("X-A: one", " two"), 400),
    ("obs-fold with a tab", get("X-A: one", "\ttwo"), 400),
    ("obs-fold with a colon", get("X-A: one", " X-B: two"), 400),
    ("obs-fold as the first header", head("GET / HTTP/1.1", " Host: x"), 400),
    ("NUL in a value", get(b"X-A: a\x00b"), 400),
    ("SOH in a value", get(b"X-A: a\x01b"), 400),
    ("VT in a value", get(b"X-A: a\x0bb"), 400),
    ("US in a value", get(b"X-A: a\x1fb"), 400),
    ("DEL in a value", get(b"X-A: a\x7fb"), 400),
    ("bare CR in a value", get(b"X-A: a\rb"), 400),
    ("bare LF in a value", get(b"X-A: a\nb"), 400),
    ("bare LF as a line end", get(b"X-A: a\nX-B: b"), 400),
    ("VT before chunked", get(b"Transfer-Encoding: \x0bchunked"), 400),
    # smuggling: one body framed two ways
    ("Content-Length and chunked", get("Content-Length: 5", "Transfer-Encoding: chunked"), 400),
    ("chunked and Content-Length", get("Transfer-Encoding: chunked", "Content-Length: 5"), 400),
    ("Content-Length 0 and chunked", get("Content-Length: 0", "Transfer-Encoding: chunked"), 400),
    ("differing Content-Length headers", get("Content-Length: 5", "Content-Length: 6"), 400),
    ("differing Content-Length list", get("Content-Length: 5, 6"), 400),
    ("Content-Length with a leading zero beside one without", get("Content-Length: 05", "Content-Length: 5"), 400),
    ("empty Content-Length", get("Content-Length:"), 400),
    ("negative Content-Length", get("Content-Length: -1"), 400),
    ("signed Content-Length", get("Content-Length: +5"), 400),
    ("hex Content-Length", get("Content-Length: 0x10"), 400),
    ("float Content-Length", get("Content-Length: 1.0"), 400),
    ("exponent Content-Length", get("Content-Length: 1e3"), 400),
    ("word Content-Length", get("Content-Length: five"), 400),
    ("two numbers in Content-Length", get("Content-Length: 1 2"), 400),
    ("Content-Length of 20 digits", get("Content-Length: 10000000000000000000"), 400),
    ("non-ASCII digits in Content-Length", get("Content-Length: \xb2"), 400),
    # transfer codings the server does not decode
    ("gzip", get("Transfer-Encoding: gzip"), 501),
    ("gzip, chunked", get("Transfer-Encoding: gzip, chunked"), 501),
    ("chunked, gzip", get("Transfer-Encoding: chunked, gzip"), 501),
    ("chunked twice", get("Transfer-Encoding: chunked", "Transfer-Encoding: chunked"), 501),
    ("identity", get("Transfer-Encoding: identity"), 501),
    ("chunked with a parameter", get("Transfer-Encoding: chunked;q=1"), 501),
    ("xchunked", get("Transfer-Encoding: xchunked"), 501),
    # expectations
    ("unknown expectation", get("Expect: something"), 417),
    ("100-continue and more", get("Expect: 100-continue, other"), 417),
    ("unknown expectation over HTTP/1.0", get("Expect: something", version="1.0"), 417),
    # size
    ("one header line too many", get(*[f"X-H{i}: {i}" for i in range(MAX_HEADERS)]), 431),
]


@pytest.mark.parametrize(("raw", "status"), [(raw, status) for _, raw, status in REFUSALS],
                         ids=[name for name, _, _ in REFUSALS])  # fmt: skip
def test_refusals(raw: bytes, status: int) -> None:
    error = refused(raw)
    assert error.status == status
    assert error.message
    assert str(error) == error.message


def test_refusal_messages_say_what_is_wrong() -> None:
    assert "folded" in refused(get("X-A: one", " two")).message
    assert "Transfer-Encoding" in refused(get("Content-Length: 5", "Transfer-Encoding: chunked")).message
    assert "control characters" in refused(get(b"X-A: a\x00b")).message
    assert "gzip" in refused(get("Transfer-Encoding: gzip")).message
    assert "HTTP/2.0" in refused(b"GET / HTTP/2.0").message


def test_refusal_messages_are_bounded() -> None:
    """A long bad header line is quoted only in part."""
    error = refused(get("X" * 10_000))
    assert error.status == 400
    assert len(error.message) < 200


@pytest.mark.parametrize("target", [b"/a\x00b", b"/a\x01b", b"/a\x7fb"], ids=["NUL", "SOH", "DEL"])
def test_control_characters_in_target_refused(target: bytes) -> None:
    assert refused(head(b"GET " + target + b" HTTP/1.1", "Host: x")).status == 400


# -- chunk size lines -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "size"),
    [
        (b"0", 0),
        (b"1", 1),
        (b"a", 10),
        (b"A", 10),
        (b"ff", 255),
        (b"FF", 255),
        (b"00000010", 16),
        (b"5;ext", 5),
        (b'5;name=value;other="quoted; value"', 5),
        (b"5\t", 5),
        (b"0;last", 0),
        (b"f" * 15, 16**15 - 1),
    ],
)
def test_chunk_size(line: bytes, size: int) -> None:
    assert chunk_size(line) == size


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"g",
        b"-1",
        b"+1",
        b"0x5",
        b" 5",
        b"5 5",
        b"5\r",
        b"5;a\nb",
        b";ext",
        b"f" * 16,
        b"1" * 40,
        b"\xef",
        b"5 ;ext",
        b"5;a\x00b",
    ],  # whitespace before an extension: RFC 9112's BWS, but h11 refuses it, and so do we
)
def test_malformed_chunk_size(line: bytes) -> None:
    with pytest.raises(WireError) as caught:
        chunk_size(line)
    assert caught.value.status == 400


# -- response heads ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (200, [], b"HTTP/1.1 200 OK\r\n\r\n"),
        (
            200,
            [(b"content-type", b"text/plain"), (b"content-length", b"5")],
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\n",
        ),
        (404, [(b"x", b"y")], b"HTTP/1.1 404 Not Found\r\nx: y\r\n\r\n"),
        (100, [], b"HTTP/1.1 100 Continue\r\n\r\n"),
        (431, [], b"HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n"),
        (599, [], b"HTTP/1.1 599 \r\n\r\n"),  # no reason phrase known: the space stays
    ],
)
def test_response_head(status: int, headers: list[tuple[bytes, bytes]], expected: bytes) -> None:
    with_date = expected[:-2] + b"date: " + http_date() + b"\r\n\r\n" if status >= 200 else expected
    assert response_head(status, headers) == with_date


@pytest.mark.parametrize("status", [400, 408, 417, 431, 500, 501, 505])
def test_status_body(status: int) -> None:
    raw = status_body(status, *plain_refusal(None, status, "what went wrong"))
    head_part, _, body = raw.partition(b"\r\n\r\n")
    lines = head_part.split(b"\r\n")
    assert lines[0].startswith(b"HTTP/1.1 %d " % status)
    headers = dict(line.split(b": ", 1) for line in lines[1:])
    assert headers[b"connection"] == b"close"
    assert headers[b"content-type"].startswith(b"text/plain")
    assert int(headers[b"content-length"]) == len(body)
    assert body == b"what went wrong\n"


def test_status_body_counts_bytes_not_characters() -> None:
    raw = status_body(400, *plain_refusal("/x", 400, "é"))
    _, _, body = raw.partition(b"\r\n\r\n")
    assert b"content-length: 3" in raw
    assert body == "é\n".encode()


@pytest.mark.parametrize(
    ("head", "path"),
    [
        (b"DELETE /api/uploads/abc HTTP/1.1\r\nContent-Length: Q", "/api/uploads/abc"),
        (b"GET /a%20b?x=1 HTTP/1.1", "/a b"),
        (b"GET http://host:1/api/x HTTP/1.1\r\nHost: host", "/api/x"),
        (b"NOT A REQUEST LINE", None),
        (b"GET /x HTTP/1.1 trailing", None),
    ],
)
def test_target_path_is_read_from_the_request_line_alone(head: bytes, path: str | None) -> None:
    assert target_path(head) == path
