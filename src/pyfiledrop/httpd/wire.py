"""HTTP/1.1 requests on the wire, pure: parse a request head, a chunk size line. No sockets, no asyncio.

Strict where leniency lets one request be read two ways (request smuggling): a Content-Length that is not
one number, Content-Length beside Transfer-Encoding, folded header lines, spaces before a header's colon, bare LF
line ends (RFC 9112 §2.2 allows a server to accept them; we refuse them, at once), no Host or two (§3.2).
``tests/server/test_differential.py`` checks that we never accept what h11 refuses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 128
MAX_CHUNK_LINE = 4096
MAX_REQUEST_LINE = 8 * 1024  # as Apache's LimitRequestLine and nginx's buffers: a longer target is 414

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# A target is ASCII (RFC 3986; curl and browsers percent-encode the rest), as h11 reads it
_REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP/(\d)\.(\d)")
_VALUE_BAD = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# A size (at most 15 hex digits: 2**60 bytes), an extension without control characters, then optional whitespace —
# h11's reading, stricter than RFC 9112's BWS before ";"
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,15})(?:;[\t\x20-\x7e\x80-\xff]*)?[ \t]*")
# uri-host [":" port] (RFC 9110 §7.2), or nothing: what a Host header or an absolute-form authority may hold
_HOST = re.compile(rb"(?:\[[0-9A-Fa-f:.vV]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]*)?")


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


def head_end(data: bytes) -> int:
    """Where the head at the start of ``data`` ends (the index of the CRLF CRLF after it), or -1 while it has not all
    arrived. Refuses at once a line that ends with a bare LF (400: waiting for a CRLF CRLF that never comes would
    be a 30 s hang), a request line longer than ``MAX_REQUEST_LINE`` (414) and a head past ``MAX_HEAD_BYTES`` (431)."""
    end = data.find(b"\r\n\r\n", 0, MAX_HEAD_BYTES + 4)
    scanned = end + 2 if end >= 0 else min(len(data), MAX_HEAD_BYTES + 4)
    if data.count(b"\n", 0, scanned) != data.count(b"\r\n", 0, scanned):
        raise WireError(400, "a line of the request head ends with a bare LF; HTTP lines end with CRLF")
    line_end = data.find(b"\r\n", 0, scanned)
    if line_end > MAX_REQUEST_LINE or (line_end < 0 and scanned > MAX_REQUEST_LINE):
        raise WireError(414, f"the request target is longer than {MAX_REQUEST_LINE // 1024} KiB")
    if end < 0 and len(data) > MAX_HEAD_BYTES:
        raise WireError(431, f"the request head is larger than {MAX_HEAD_BYTES // 1024} KiB")
    return end


def parse_head(head: bytes) -> RequestHead:
    """``head`` is everything before the blank line that ends the header section."""
    lines = head.split(b"\r\n")
    if len(lines[0]) > MAX_REQUEST_LINE:
        raise WireError(414, f"the request target is longer than {MAX_REQUEST_LINE // 1024} KiB")
    match = _REQUEST_LINE.fullmatch(lines[0])
    if match is None:
        raise WireError(400, "the request line is not 'METHOD /path HTTP/1.1'")
    method, target, major, minor = match.groups()
    if major != b"1":
        raise WireError(505, f"HTTP/{major.decode()}.{minor.decode()} is not supported: use HTTP/1.1")
    version = "1.1" if minor != b"0" else "1.0"
    if len(lines) - 1 > MAX_HEADERS:
        raise WireError(431, f"more than {MAX_HEADERS} header lines")
    raw_path, path, query, authority = _split_target(target)
    headers = _with_host([_header(line) for line in lines[1:]], version, authority)
    content_length, chunked = _framing(headers)
    expect = b",".join(v for n, v in headers if n == b"expect").strip().lower()
    if expect and expect != b"100-continue":
        raise WireError(417, f"Expect: {expect.decode('latin-1')} is not supported")
    return RequestHead(
        method=method.decode("ascii"), raw_path=raw_path, path=path, query=query, version=version,
        headers=headers, content_length=content_length, chunked=chunked,
        keep_alive=_keep_alive(headers, version, chunked), expect_continue=bool(expect) and version == "1.1",
    )  # fmt: skip


def _keep_alive(headers: list[tuple[bytes, bytes]], version: str, chunked: bool) -> bool:
    connection = b",".join(v for n, v in headers if n == b"connection").lower()
    if version == "1.1":
        return b"close" not in connection
    # HTTP/1.0 with a chunked body: read it, answer, then close — a 1.0 peer (or proxy) may frame it otherwise
    return b"keep-alive" in connection and not chunked  # (RFC 9112 §6.1)


def _with_host(headers: list[tuple[bytes, bytes]], version: str, authority: bytes | None) -> list[tuple[bytes, bytes]]:
    """RFC 9112 §3.2: an HTTP/1.1 request has exactly one Host, and a valid one; with an absolute-form target the
    target's authority is the host (§3.2.2), whatever the Host header says."""
    hosts = [v for n, v in headers if n == b"host"]
    if len(hosts) > 1:
        raise WireError(400, "more than one Host header")
    if not hosts and version == "1.1":
        raise WireError(400, "an HTTP/1.1 request needs a Host header")
    for host in (*hosts, authority or b""):
        if not _HOST.fullmatch(host):
            raise WireError(400, "the Host header is not a host name or address")  # not echoed: a client's value
    if authority is None:
        return headers
    if not hosts:
        return [*headers, (b"host", authority)]
    return [(n, authority if n == b"host" else v) for n, v in headers]


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


def _split_target(target: bytes) -> tuple[bytes, str, bytes, bytes | None]:
    """(raw path, decoded path, query, authority of an absolute-form target) of an origin-form, absolute-form or
    asterisk-form target."""
    authority = None
    if target.lower().startswith((b"http://", b"https://")):  # absolute form: keep what follows the host
        rest = target[target.find(b"//") + 2 :]
        cut = min((i for i in (rest.find(b"/"), rest.find(b"?")) if i >= 0), default=len(rest))
        authority, target = rest[:cut], rest[cut:]
        target = target if target.startswith(b"/") else b"/" + target
    if target == b"*":
        return b"*", "*", b"", authority
    if not target.startswith(b"/"):
        raise WireError(400, "the request target must start with /")
    raw_path, _, query = target.partition(b"?")
    path = unquote(raw_path.decode("latin-1"), encoding="utf-8", errors="replace")
    return raw_path, path, query, authority


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


def trailer(line: bytes) -> None:
    """Checks a trailer line of a chunked body: a header line like those of the head (then ignored)."""
    _header(line)


def target_path(head: bytes) -> str | None:
    """The decoded path of a request head's target, if its request line can be read (for wording a refusal)."""
    match = _REQUEST_LINE.fullmatch(head.split(b"\r\n", 1)[0])
    if match is None:
        return None
    try:
        return _split_target(match.group(2))[1]
    except WireError:
        return None
