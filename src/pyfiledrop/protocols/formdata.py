"""A streamed ``multipart/form-data`` body with a fast way through its file part.

``FormStream`` yields the parser's events (fields, a file part's start, its data, its end). Right after a
``FilePart``, ``file_data()`` gives that part's bytes as a body storage can read two ways: as pieces (through the
parser, as before), or with ``readinto``: the request body fills the storage's buffer straight from the socket,
and each buffer is searched once for the delimiter — no Python object per piece, no copy. Where the delimiter
turns up, the rest goes back to the parser, which ends the part and reads whatever follows (more fields, the
epilogue) as usual. Dropzone sends its file as the last part, so nearly the whole body takes the fast way.
"""

from __future__ import annotations

import ctypes
import re
from collections import deque
from collections.abc import AsyncIterator, Callable

from pyfiledrop.errors import BadRequest
from pyfiledrop.protocols.multipart import Event, MultipartParser, PartEnd
from pyfiledrop.storage.base import Fillable, FillTarget, Pumpable, ReadObserver

_SMALL_VIEW = 1024  # a buffer's last few bytes: read through a bounce buffer, the delimiter must fit


class FormStream:
    def __init__(self, body: AsyncIterator[bytes], boundary: bytes, **limits: int) -> None:
        self.body = body
        self.parser = MultipartParser(boundary, **limits)
        self.events: deque[Event] = deque()
        self.ended = False

    def __aiter__(self) -> FormStream:
        return self

    async def __anext__(self) -> Event:
        while not self.events:
            if self.ended:
                raise StopAsyncIteration
            try:
                piece = await anext(self.body)
            except StopAsyncIteration:
                self.ended = True
                self.parser.close()
                continue
            self.events.extend(self.parser.feed(piece))
        return self.events.popleft()

    def file_data(self) -> AsyncIterator[bytes]:
        """The data of the file part whose ``FilePart`` was the last event taken."""
        return FileData(self) if isinstance(self.body, Fillable) else _pieces(self)


async def _pieces(stream: FormStream) -> AsyncIterator[bytes]:
    async for event in stream:
        if isinstance(event, PartEnd):
            return
        if isinstance(event, bytes):
            yield event
    raise BadRequest("the multipart body ended inside the file part")


class FileData:
    """A file part's bytes; ``readinto`` reads the request body into the caller's buffer itself."""

    def __init__(self, stream: FormStream) -> None:
        self.stream = stream
        self.pieces = _pieces(stream)
        self.carry = b""  # bytes read that may begin the delimiter: they go first into the next buffer
        self.raw = False  # reading the body directly (the parser waits for the delimiter)
        self.done = False
        self.overflow = b""  # bytes read through the bounce buffer that did not fit the caller's view

    def __aiter__(self) -> FileData:
        return self

    async def __anext__(self) -> bytes:
        return await anext(self.pieces)

    async def readinto(self, view: memoryview, observe: ReadObserver | None = None) -> int:
        if self.done:
            return 0
        parsed = self._from_parsed(view)
        if parsed is None:
            if len(view) >= _SMALL_VIEW:
                return await self._read_raw(view, observe)  # observed in the reading thread
            parsed = await self._bounce(view)
        if observe is not None and parsed:  # a few bytes the parser or the bounce buffer gave: seen here
            observe(view[:parsed])
        return parsed

    async def pump(self, target: FillTarget) -> int | None:
        """The file's bytes into ``target`` by the request body's own pump: its thread looks for the delimiter in
        each view, hands the target the file data before it and keeps what may begin one for the next view. None
        while the parser holds bytes of the file (``readinto`` gives them) or the body cannot pump."""
        if self.done:
            return 0
        body = self.stream.body
        if self.overflow or (self.stream.events and not self.raw) or not isinstance(body, Pumpable):
            return None
        if not self.raw:
            self.carry, self.raw = self.stream.parser.take_held_back(), True
        scan = _ScanTarget(target, self.carry, self.stream.parser.delimiter)
        got = await body.pump(scan)
        self.carry = scan.carry
        if scan.tail is not None:  # the part ends: the parser takes over again from the delimiter
            self.raw = False
            events = self.stream.events
            events.extend(self.stream.parser.feed(scan.tail))
            if events and isinstance(events[0], PartEnd):
                events.popleft()
                self.done = True
            return scan.data if scan.data or self.done else None
        if got is None:
            return None
        if scan.data or scan.target_stopped:
            return scan.data  # (0: the storage's target stopped it at once; it knows why)
        if got == 0 and not scan.stopped_small:
            raise BadRequest("the multipart body ended inside the file part")
        return None  # nothing for the file yet (a small view, or only bytes that may begin the delimiter)

    async def _read_raw(self, view: memoryview, observe: ReadObserver | None) -> int:
        """Read the body straight into ``view``; the reading thread looks for the delimiter and lets ``observe``
        see the file's bytes before it (the event loop does neither)."""
        if not self.raw:
            self.carry, self.raw = self.stream.parser.take_held_back(), True
        delimiter = self.stream.parser.delimiter
        body = self.stream.body
        assert isinstance(body, Fillable)
        while True:
            carry = self.carry
            view[: len(carry)] = carry
            scan = _Scan(view, len(carry), delimiter, observe)
            n = await body.readinto(view[len(carry) :], scan.after_read)  # n == 0: not called, nothing found
            filled = len(carry) + n
            if scan.found >= 0:  # the part ends here: the parser takes over again from the delimiter
                self.raw, self.carry = False, b""
                self.stream.events.extend(self.stream.parser.feed(bytes(view[scan.found : filled])))
                return scan.found if scan.found else await self.readinto(view, observe)
            if n == 0:
                raise BadRequest("the multipart body ended inside the file part")
            self.carry = bytes(view[scan.data_end : filled])  # may begin a delimiter: waits for the next read
            if scan.data_end:
                return scan.data_end

    def _from_parsed(self, view: memoryview) -> int | None:
        """Bytes the parser (or the bounce buffer) produced already come first; None when there are none."""
        if self.overflow:
            n = min(len(view), len(self.overflow))
            view[:n], self.overflow = self.overflow[:n], self.overflow[n:]
            return n
        events = self.stream.events
        if not events or self.raw:
            return None
        event = events[0]
        if isinstance(event, PartEnd):
            events.popleft()
            self.done = True
            return 0
        if not isinstance(event, bytes):
            raise BadRequest("the multipart body has a part inside the file part")
        n = min(len(view), len(event))
        view[:n] = event[:n]
        if n == len(event):
            events.popleft()
        else:
            events[0] = event[n:]
        return n

    async def _bounce(self, view: memoryview) -> int:
        """A view too small to hold a delimiter: fill a bounce buffer, hand out what fits, keep the rest."""
        bounce = memoryview(bytearray(64 * 1024))
        n = await self.readinto(bounce)
        take = min(n, len(view))
        view[:take] = bounce[:take]
        self.overflow = bytes(bounce[take:n])
        return take


class _Scan:
    """Run by the thread that filled ``view`` (after ``carried`` bytes kept from the read before): where does the
    file part end in it, and which bytes are surely file data (``data_end``) — those ``observe`` sees."""

    def __init__(self, view: memoryview, carried: int, delimiter: bytes, observe: ReadObserver | None) -> None:
        self.view = view
        self.carried = carried
        self.delimiter = delimiter
        self.observe = observe
        self.found = -1
        self.data_end = 0

    def after_read(self, read: memoryview) -> None:
        view, delimiter = self.view, self.delimiter
        filled = self.carried + len(read)
        self.found = _find(view, delimiter, filled)
        self.data_end = self.found if self.found >= 0 else filled - _held_back(view, filled, delimiter)
        if self.observe is not None and self.data_end:
            self.observe(view[: self.data_end])


class _ScanTarget:
    """A fill target in front of the storage's, used by the body's pumping thread: each view begins with the bytes
    kept back from the one before; the file data up to the delimiter (or up to what could begin one) goes to the
    storage's target, the bytes from the delimiter on are kept for the parser (``tail``), and then it says stop."""

    def __init__(self, target: FillTarget, carry: bytes, delimiter: bytes) -> None:
        self.target = target
        self.carry = carry
        self.delimiter = delimiter
        self.view = memoryview(b"")
        self.tail: bytes | None = None
        self.data = 0  # file bytes handed to the target
        self.stopped_small = False  # a view too small for a delimiter: readinto has a bounce buffer for that
        self.target_stopped = False

    def next_view(self) -> memoryview | None:
        if self.tail is not None:
            return None
        view = self.target.next_view()
        if view is None:
            self.target_stopped = True
            return None
        if len(view) < _SMALL_VIEW:
            self.stopped_small = True
            return None
        self.view = view
        view[: len(self.carry)] = self.carry
        return view[len(self.carry) :]

    def filled(self, n: int) -> None:
        view, delimiter = self.view, self.delimiter
        filled = len(self.carry) + n
        found = _find(view, delimiter, filled)
        data_end = found if found >= 0 else filled - _held_back(view, filled, delimiter)
        if found >= 0:
            self.tail, self.carry = bytes(view[found:filled]), b""
        else:
            self.carry = bytes(view[data_end:filled])
        if data_end:
            self.data += data_end
            self.target.filled(data_end)


def _held_back(view: memoryview, filled: int, delimiter: bytes) -> int:
    """How many of the last bytes of ``view[:filled]`` could begin a delimiter (one starts with CR)."""
    start = max(0, filled - len(delimiter) + 1)
    tail = bytes(view[start:filled])
    cr = tail.find(b"\r")
    while cr >= 0 and not delimiter.startswith(tail[cr:]):
        cr = tail.find(b"\r", cr + 1)
    return 0 if cr < 0 else len(tail) - cr


_PATTERNS: dict[bytes, re.Pattern[bytes]] = {}


def _libc_memmem() -> Callable[[int, int, bytes, int], int | None] | None:
    """glibc's ``memmem``: a two-byte-hash Horspool for short needles, about twice as fast as ``mmap.find``'s
    two-way search on random bytes (0.15 vs 0.28 ms per 2 MiB here), and ctypes lets go of the GIL during the
    call. ``mmap.find`` cost the event-loop thread 0.4 s per GiB of Dropzone chunks."""
    try:
        memmem = ctypes.CDLL(None).memmem
    except (AttributeError, OSError):
        return None
    memmem.restype = ctypes.c_void_p
    memmem.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
    return memmem


_MEMMEM = _libc_memmem()


def _find(view: memoryview, needle: bytes, end: int) -> int:
    """``needle``'s first place in ``view[:end]``, without copying: libc's ``memmem`` over the buffer's memory
    when the view is writable and contiguous — the storage's buffers are — else a compiled regex."""
    if end <= 0:
        return -1
    if _MEMMEM is not None and not view.readonly and view.contiguous:
        start = _address(view)
        found = _MEMMEM(start, end, needle, len(needle))
        return -1 if found is None else found - start
    pattern = _PATTERNS.get(needle)
    if pattern is None:
        pattern = _PATTERNS[needle] = re.compile(re.escape(needle))
    match = pattern.search(view, 0, end)
    return match.start() if match else -1


def _address(view: memoryview) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(view))
