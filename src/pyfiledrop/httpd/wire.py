"""HTTP/1.1 requests on the wire, pure: parse a request head, a chunk size line. No sockets, no asyncio.

Strict where leniency lets one request be read two ways (request smuggling): a Content-Length that is not
one number, Content-Length beside Transfer-Encoding, folded header lines, spaces before a header's colon.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 128
MAX_CHUNK_LINE = 4096

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e\x80-\xff]+) HTTP/(\d)\.(\d)")
_VALUE_BAD = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,15})[ \t]*(?:;.*)?")


class WireError(Exception):
    """A request the server answers itself (the app never sees it), then closes the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class RequestHead:
    method: str
    raw_path: bytes  # the path as sent, without scheme, host or query
    path: str
    query: bytes
    version: str  # "1.1" or "1.0"
    headers: list[tuple[bytes, bytes]]  # names lower-cased, values as sent
    content_length: int | None
    chunked: bool
    keep_alive: bool
    expect_continue: bool


def parse_head(head: bytes) -> RequestHead:
    """``head`` is everything before the blank line that ends the header section."""
    lines = head.split(b"\r\n")
    match = _REQUEST_LINE.fullmatch(lines[0])
    if match is None:
        raise WireError(400, "the request line is not 'METHOD /path HTTP/1.1'")
    method, target, major, minor = match.groups()
    if major != b"1":
        raise WireError(505, f"HTTP/{major.decode()}.{minor.decode()} is not supported: use HTTP/1.1")
    version = "1.1" if minor != b"0" else "1.0"
    if len(lines) - 1 > MAX_HEADERS:
        raise WireError(431, f"more than {MAX_HEADERS} header lines")
    headers = [_header(line) for line in lines[1:]]
    raw_path, path, query = _split_target(target)
    content_length, chunked = _framing(headers)
    connection = b",".join(v for n, v in headers if n == b"connection").lower()
    keep_alive = b"close" not in connection if version == "1.1" else b"keep-alive" in connection
    expect = b",".join(v for n, v in headers if n == b"expect").strip().lower()
    if expect and expect != b"100-continue":
        raise WireError(417, f"Expect: {expect.decode('latin-1')} is not supported")
    return RequestHead(
        method=method.decode("ascii"), raw_path=raw_path, path=path, query=query, version=version,
        headers=headers, content_length=content_length, chunked=chunked, keep_alive=keep_alive,
        expect_continue=bool(expect) and version == "1.1",
    )  # fmt: skip


def _header(line: bytes) -> tuple[bytes, bytes]:
    name, colon, value = line.partition(b":")
    if not colon or not _TOKEN.fullmatch(name):
        if line[:1] in (b" ", b"\t"):
            raise WireError(400, "folded header lines are not allowed")
        raise WireError(400, f"malformed header line {line[:80]!r}")
    value = value.strip(b" \t")
    if _VALUE_BAD.search(value):
        raise WireError(400, f"header {name.decode('ascii')} has control characters")
    return name.lower(), value


def _split_target(target: bytes) -> tuple[bytes, str, bytes]:
    """(raw path, decoded path, query) of an origin-form, absolute-form or asterisk-form target."""
    if target.lower().startswith((b"http://", b"https://")):  # absolute form: keep what follows the host
        rest = target[target.find(b"//") + 2 :]
        cut = min((i for i in (rest.find(b"/"), rest.find(b"?")) if i >= 0), default=len(rest))
        target = rest[cut:]
        target = target if target.startswith(b"/") else b"/" + target
    if target == b"*":
        return b"*", "*", b""
    if not target.startswith(b"/"):
        raise WireError(400, "the request target must start with /")
    raw_path, _, query = target.partition(b"?")
    path = unquote(raw_path.decode("latin-1"), encoding="utf-8", errors="replace")
    return raw_path, path, query


def _framing(headers: list[tuple[bytes, bytes]]) -> tuple[int | None, bool]:
    lengths = {v for n, v in headers if n == b"content-length"}
    codings = [v for n, v in headers if n == b"transfer-encoding"]
    if codings:
        if lengths:
            raise WireError(400, "Content-Length and Transfer-Encoding together: send one of them")
        coding = b",".join(codings).replace(b" ", b"").lower()
        if coding != b"chunked":
            raise WireError(501, f"Transfer-Encoding {coding.decode('latin-1')!r} is not supported (only chunked)")
        return None, True
    if not lengths:
        return None, False
    values = {part.strip() for value in lengths for part in value.split(b",")}
    if len(values) != 1:
        raise WireError(400, "several different Content-Length values")
    (value,) = values
    if not value.isdigit() or len(value) > 19:
        raise WireError(400, f"Content-Length {value[:40].decode('latin-1')!r} is not a non-negative integer")
    return int(value), False


def chunk_size(line: bytes) -> int:
    """The size on a chunk line of a chunked body (extensions ignored)."""
    match = _CHUNK_SIZE.fullmatch(line)
    if match is None:
        raise WireError(400, "malformed chunk size in a chunked body")
    return int(match.group(1), 16)


def target_path(head: bytes) -> str | None:
    """The decoded path of a request head's target, if its request line can be read (for wording a refusal)."""
    match = _REQUEST_LINE.fullmatch(head.split(b"\r\n", 1)[0])
    if match is None:
        return None
    try:
        return _split_target(match.group(2))[1]
    except WireError:
        return None
