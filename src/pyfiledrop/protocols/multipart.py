"""Streaming ``multipart/form-data`` parser (RFC 7578 on top of RFC 2046 §5.1): a sans-IO core and an async wrapper.

Built for the Dropzone endpoint: small form fields arrive whole as :class:`Field`; a file part arrives as a
:class:`FilePart`, then its data as ``bytes`` pieces, then :data:`PartEnd`. File data is never gathered up: each
piece goes out as soon as it cannot be the start of a delimiter.

Speed comes from three rules:

* the delimiter is found with ``bytes.find`` (C speed) over each buffer as a whole, never byte by byte;
* a piece is a slice of the buffer that was fed, so a buffer of plain data goes out as the very same object;
* the few bytes held back at the end of a buffer (a possible start of a delimiter) are never joined to the next,
  large buffer, which would copy all of it; only they and the first bytes of the next buffer are looked at together.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass

from pyfiledrop.errors import BadRequest

__all__ = ["Event", "Field", "FilePart", "MultipartParser", "PartEnd", "iter_multipart", "parse_boundary"]


@dataclass(frozen=True, slots=True)
class Field:
    """A form field without a filename, complete."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class FilePart:
    """The start of a part that has a filename; its data follows as ``bytes`` events, then :class:`PartEnd`.

    ``filename`` is what the client sent (possibly empty, possibly with path separators): never use it as a path.
    """

    name: str
    filename: str
    content_type: str


@dataclass(frozen=True, slots=True)
class PartEnd:
    """The end of the current file part."""


Event = Field | FilePart | bytes | PartEnd

_PART_END = PartEnd()
_DEFAULT_CONTENT_TYPE = "application/octet-stream"  # RFC 7578 §4.4: the default for a file

# Parser states. The three scanning states look for the next delimiter and differ only in what the bytes before
# it are for.
_PREAMBLE, _FIELD, _FILE, _AFTER_DELIMITER, _HEADERS, _EPILOGUE = range(6)
_SCANNING = (_PREAMBLE, _FIELD, _FILE)

# The header block ends at the first empty line. Browsers send CRLF; a bare LF costs nothing to accept.
_HEADER_END = re.compile(rb"\r?\n\r?\n")
# One ';' parameter of a header value: a token or a quoted-string with backslash escapes (RFC 9110 §5.6.4).
_PARAM = re.compile(r'\s*;\s*(?:([^\s=;"]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^;"]*))?)?\s*')
_QUOTED_PAIR = re.compile(r'\\([\\"])')
# RFC 2046 §5.1.1: 'boundary := 0*69<bchars> bcharsnospace'. Any printable ASCII is taken, as the parser does not
# depend on the exact set, but the length and 'no trailing space' rules are kept.
_BOUNDARY = re.compile(r"[\x20-\x7e]{0,69}[\x21-\x7e]")


def parse_boundary(content_type_header: str) -> bytes:
    """The boundary of a ``multipart/form-data`` Content-Type, as bytes; BadRequest if there is none."""
    media_type, params = _split_header_value(content_type_header, "Content-Type")
    if media_type.lower() != "multipart/form-data":
        shown = content_type_header if len(content_type_header) <= 80 else content_type_header[:80] + "…"
        raise BadRequest(f"Content-Type {shown!r} is not multipart/form-data")
    boundary = params.get("boundary")
    if boundary is None:
        raise BadRequest("the multipart/form-data Content-Type has no boundary parameter")
    if not _BOUNDARY.fullmatch(boundary):
        raise BadRequest(
            f"the multipart boundary {boundary[:80]!r} is not 1 to 70 printable ASCII characters "
            "without a trailing space (RFC 2046)"
        )
    return boundary.encode("ascii")


class MultipartParser:
    """sans-IO: ``feed(bytes)`` returns the events that data completes; ``close()`` checks that the body was whole.

    Events, in order: ``Field`` for a part without a filename; ``FilePart``, then zero or more ``bytes``, then
    ``PartEnd`` for a part with one. Preamble and epilogue are ignored. Malformed input raises BadRequest, after
    which the parser must not be used again.
    """

    def __init__(
        self,
        boundary: bytes,
        *,
        max_field_bytes: int = 64 * 1024,
        max_header_bytes: int = 16 * 1024,
        max_parts: int = 64,
    ) -> None:
        if not boundary:
            raise BadRequest("the multipart boundary is empty")
        # RFC 2046 §5.1.1: 'The boundary delimiter MUST occur at the beginning of a line, i.e., following a CRLF,
        # and the initial CRLF is considered to be attached to the boundary delimiter line'.
        self._delimiter = b"\r\n--" + boundary
        self._max_field_bytes = max_field_bytes
        self._max_header_bytes = max_header_bytes
        self._max_parts = max_parts
        self._state = _PREAMBLE
        # Unconsumed input, always short: under a delimiter's length while scanning, under max_header_bytes in the
        # headers. It starts as a CRLF so that a dash-boundary at the very start of the body matches the delimiter.
        self._pending = b"\r\n"
        self._events: list[Event] = []
        self._parts = 0
        self._header_scanned = 0
        self._field_name = ""
        self._field_value = bytearray()

    def feed(self, data: bytes) -> list[Event]:
        """Parse the next piece of the body; returns the events it completes (``bytes`` are file data)."""
        events: list[Event] = []
        self._events = events
        tail = self._pending
        if not tail:
            buf, pos = data, 0
        elif len(data) <= self._reach():
            buf, pos = tail + data, 0
        else:
            buf, pos = data, self._bridge(tail, data)
        self._pending = buf[self._run(buf, pos) :]
        return events

    @property
    def delimiter(self) -> bytes:
        return self._delimiter

    @property
    def in_file_data(self) -> bool:
        return self._state == _FILE

    def take_held_back(self) -> bytes:
        """Inside a file part's data: the bytes kept back because they may begin a delimiter. The caller now reads
        the data itself and feeds the parser again from the delimiter on (``feed`` then ends the part)."""
        held, self._pending = self._pending, b""
        return held

    def close(self) -> None:
        """The body has ended: BadRequest unless the closing boundary was seen."""
        if self._state != _EPILOGUE:
            raise BadRequest("the multipart body ended before its closing boundary")

    # -- driving the states ------------------------------------------------------------------------------------

    def _run(self, buf: bytes, pos: int) -> int:
        """Step through the states over buf from pos; returns where input ran short (the rest is kept)."""
        while True:
            state = self._state
            pos = _STEPS[state](self, buf, pos)
            if self._state == state:  # a step that cannot finish its state needs more input
                return pos

    def _reach(self) -> int:
        """How many bytes past the held-back tail the current state may need to make progress."""
        if self._state in _SCANNING:
            return len(self._delimiter) - 1
        return self._max_header_bytes + len(self._delimiter)

    def _bridge(self, tail: bytes, data: bytes) -> int:
        """Settle the held-back tail with the first bytes of a large ``data``; returns where to go on in data.

        ``tail + data`` would copy all of data only to look at its first few bytes.
        """
        probe = tail + data[: self._reach()]
        if self._state in _SCANNING and probe.find(self._delimiter) < 0:
            # A delimiter starting in the tail would lie wholly within the probe: none does, so the tail is
            # plain data and the new buffer can be scanned as it is.
            self._take(tail, 0, len(tail))
            return 0
        # Each state stops at most _reach() bytes before the end of the probe, so past the tail.
        return self._run(probe, 0) - len(tail)

    # -- the states ------------------------------------------------------------------------------------------

    def _scan(self, buf: bytes, pos: int) -> int:
        """Preamble and part data: everything up to the next delimiter."""
        found = buf.find(self._delimiter, pos)
        stop = found if found >= 0 else self._hold_back(buf, pos)
        if stop > pos:
            self._take(buf, pos, stop)
        if found < 0:
            return stop
        self._finish_part()
        self._state = _AFTER_DELIMITER
        return found + len(self._delimiter)

    def _hold_back(self, buf: bytes, pos: int) -> int:
        """Where the end of buf could begin a delimiter (len(buf) if it cannot): those bytes wait for more input."""
        end = len(buf)
        delimiter = self._delimiter
        # A delimiter starts with CR, so only a CR in the last len(delimiter) - 1 bytes can begin one.
        cr = buf.find(b"\r", max(pos, end - len(delimiter) + 1))
        while cr >= 0 and not buf.startswith(delimiter[: end - cr], cr):
            cr = buf.find(b"\r", cr + 1)
        return end if cr < 0 else cr

    def _after_delimiter(self, buf: bytes, pos: int) -> int:
        """RFC 2046 §5.1.1: 'close-delimiter := delimiter "--"'; otherwise the part's header lines follow."""
        if len(buf) - pos < 2:
            return pos
        if buf.startswith(b"--", pos):
            self._state = _EPILOGUE
            return pos + 2
        self._state = _HEADERS
        self._header_scanned = 0
        return pos

    def _headers(self, buf: bytes, pos: int) -> int:
        """From the rest of the boundary line (transport padding) to the empty line that ends the headers."""
        limit = pos + self._max_header_bytes
        # Search only what has not been searched before: a client sending one byte at a time must not make this
        # quadratic. Back off 3 bytes, as a terminator may have been cut.
        match = _HEADER_END.search(buf, pos + max(0, self._header_scanned - 3), limit)
        if match is None:
            if len(buf) >= limit:
                part = self._parts + 1
                raise BadRequest(f"the headers of form part {part} are longer than {self._max_header_bytes} bytes")
            self._header_scanned = len(buf) - pos
            return pos
        self._start_part(_parse_part_headers(buf[pos : match.start()]))
        return match.end()

    def _epilogue(self, buf: bytes, pos: int) -> int:
        """RFC 2046 §5.1.1: the epilogue is to be ignored."""
        return len(buf)

    # -- parts -----------------------------------------------------------------------------------------------

    def _start_part(self, headers: dict[str, str]) -> None:
        self._parts += 1
        if self._parts > self._max_parts:
            raise BadRequest(f"the form has more than {self._max_parts} parts")
        name, filename = _parse_content_disposition(headers.get("content-disposition"))
        if filename is None:
            self._state = _FIELD
            self._field_name = name
            self._field_value = bytearray()
        else:
            self._state = _FILE
            self._events.append(FilePart(name, filename, headers.get("content-type") or _DEFAULT_CONTENT_TYPE))

    def _take(self, buf: bytes, start: int, stop: int) -> None:
        """Bytes of the current part (or of the preamble, which is dropped)."""
        if self._state == _FILE:
            self._events.append(buf[start:stop])  # buf itself when it is all data: no copy
        elif self._state == _FIELD:
            if len(self._field_value) + stop - start > self._max_field_bytes:
                raise BadRequest(f"form field {self._field_name!r} is larger than {self._max_field_bytes} bytes")
            self._field_value += memoryview(buf)[start:stop]

    def _finish_part(self) -> None:
        if self._state == _FILE:
            self._events.append(_PART_END)
        elif self._state == _FIELD:
            try:
                value = self._field_value.decode("utf-8")
            except UnicodeDecodeError:
                raise BadRequest(f"form field {self._field_name!r} is not valid UTF-8") from None
            self._events.append(Field(self._field_name, value))


# Indexed by state. Plain functions, not bound methods kept on the parser, which would make it a reference cycle
# that outlives the request until the garbage collector runs.
_STEPS: tuple[Callable[[MultipartParser, bytes, int], int], ...] = (
    MultipartParser._scan,
    MultipartParser._scan,
    MultipartParser._scan,
    MultipartParser._after_delimiter,
    MultipartParser._headers,
    MultipartParser._epilogue,
)


async def iter_multipart(body: AsyncIterable[bytes], boundary: bytes, **limits: int) -> AsyncIterator[Event]:
    """The events of a streamed body; ``limits`` are MultipartParser's keyword arguments."""
    parser = MultipartParser(boundary, **limits)
    async for chunk in body:
        for event in parser.feed(chunk):
            yield event
    parser.close()


# -- header parsing (small, once per part) ---------------------------------------------------------------------


def _parse_part_headers(block: bytes) -> dict[str, str]:
    """Header fields by lower-case name; block starts with what is left of the boundary line."""
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        # RFC 7578 §5.1: names and filenames are usually UTF-8, but older senders use the form's charset.
        text = block.decode("latin-1")
    padding, *lines = text.split("\n")
    # RFC 2046 §5.1.1: 'dash-boundary transport-padding CRLF', 'transport-padding := *LWSP-char'.
    padding = padding.removesuffix("\r")
    if padding.strip(" \t"):
        raise BadRequest(f"a multipart boundary is followed by {padding[:40]!r} on its line")
    headers: dict[str, str] = {}
    last = ""
    for line in (raw.removesuffix("\r") for raw in lines):
        if line[:1] in (" ", "\t") and last:  # obsolete line folding (RFC 5322 §3.2.2): join the lines
            headers[last] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise BadRequest(f"a form part has the malformed header line {line[:80]!r}")
        last = name.strip().lower()
        headers[last] = value.strip()
    return headers


def _parse_content_disposition(value: str | None) -> tuple[str, str | None]:
    """(name, filename or None) from 'form-data; name="..."; filename="..."'."""
    # RFC 7578 §4.2: 'Each part MUST contain a Content-Disposition header field where the disposition type is
    # "form-data". The Content-Disposition header field MUST also contain an additional parameter of "name"'.
    if value is None:
        raise BadRequest("a form part has no Content-Disposition header")
    kind, params = _split_header_value(value, "Content-Disposition")
    if kind.lower() != "form-data":
        raise BadRequest(f"a form part's Content-Disposition is {kind[:40]!r}, not form-data")
    name = params.get("name")
    if name is None:
        raise BadRequest("a form part's Content-Disposition has no name")
    # RFC 7578 §4.2 says senders MUST NOT use filename*, but when one does it is the better value (RFC 6266 §4.3).
    extended = params.get("filename*")
    filename = _decode_ext_value(extended) if extended is not None else params.get("filename")
    return name, filename


def _split_header_value(value: str, header: str) -> tuple[str, dict[str, str]]:
    """'main; key=token; key="quoted \\"string\\""' -> ('main', {key: value}), keys lower-cased."""
    main, _, _ = value.partition(";")
    params: dict[str, str] = {}
    pos = len(main)
    while pos < len(value):
        match = _PARAM.match(value, pos)
        if match is None or match.end() == pos:
            raise BadRequest(f"the {header} header {value[:80]!r} is malformed")
        key, raw = match.group(1, 2)
        if key:
            if key.lower() in params:
                raise BadRequest(f"the {header} header gives {key!r} twice")
            params[key.lower()] = _unquote(raw or "")
        pos = match.end()
    return main.strip(), params


def _unquote(raw: str) -> str:
    if raw.startswith('"'):
        return _QUOTED_PAIR.sub(r"\1", raw[1:-1])
    return raw.strip()


def _decode_ext_value(value: str) -> str:
    """RFC 5987 §3.2: ext-value = charset "'" [ language ] "'" value-chars (percent-encoded)."""
    charset, quote1, rest = value.partition("'")
    _language, quote2, encoded = rest.partition("'")
    if not (quote1 and quote2) or charset.lower() not in ("utf-8", "iso-8859-1"):
        raise BadRequest(f"filename* {value[:80]!r} is not charset'language'percent-encoded in UTF-8 or ISO-8859-1")
    try:
        return urllib.parse.unquote(encoded, encoding=charset, errors="strict")
    except UnicodeDecodeError:
        raise BadRequest(f"filename* {value[:80]!r} is not valid {charset}") from None
