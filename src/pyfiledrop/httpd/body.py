"""A request's body as the app reads it: pieces for ASGI ``receive()``, and the ``pyfiledrop.readinto``
extension — ``readinto``, ``read_whole``, ``pump`` and ``lend`` — which read the socket in a worker thread straight
into the caller's buffer (one kernel copy, no Python object per piece, no wake-up of the event loop per piece).
Content-Length and chunked framing, ``Expect: 100-continue``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

from pyfiledrop.httpd.connection import Connection, Observer
from pyfiledrop.httpd.wire import MAX_HEADERS, RequestHead, WireError, chunk_size, trailer
from pyfiledrop.sockets import PARK_AFTER_S, Gone, Parked, fill_from_socket

_T = TypeVar("_T")

PIECE = 1 << 20  # largest piece receive() hands out
DRAIN_LIMIT = 1 << 20  # an unread body up to this size is read and dropped to keep the connection


class FillTarget(Protocol):
    """Buffers ``pump`` reads a body into, handed out and taken back in one worker thread; neither method raises
    (a failure is kept by the target, which then says stop). pyfiledrop's storage gives one (``storage.base``)."""

    def next_view(self) -> memoryview | None: ...  # room for the next bytes, or None: stop

    def filled(self, n: int) -> None: ...  # ``n`` bytes were read into the start of the last view


class SocketWork(Protocol):
    """Whoever ``lend`` lends the socket to: reads body bytes into ``view[start:]`` of the lender's buffer from the
    non-blocking socket ``fd`` and returns how many and why it stopped short (``sockets.Gone``, ``sockets.Parked``,
    TimeoutError) or None. Must not touch the socket once it returned."""

    async def __call__(self, fd: int, start: int, idle_timeout: float) -> tuple[int, BaseException | None]: ...


class RequestBody:
    """The body of one request on a connection."""

    def __init__(self, conn: Connection, head: RequestHead) -> None:
        self.conn = conn
        self.head = head
        self.left = head.content_length or 0  # body bytes not read yet (Content-Length framing)
        self.chunk_left = 0  # bytes left in the current chunk (chunked framing)
        self.done = not head.chunked and self.left == 0
        self.error: WireError | None = None  # the body was malformed or cut short: the server answers for the app
        self.pending_error: BaseException | None = None  # from the socket thread, raised at the next read
        self.continue_sent = False
        self.answered = False  # the response head went out: no 100 Continue any more
        self.broken = False  # a lent socket failed mid-body: how far it was read is not known

    def extension(self) -> dict[str, Callable[..., Any]]:
        """The ``pyfiledrop.readinto`` extension of this request's scope."""
        return {"readinto": self.readinto, "read_whole": self.read_whole, "pump": self.pump, "lend": self.lend}

    async def _trailers(self) -> None:
        """The trailer section of a chunked body: header lines, checked like the head's, then ignored."""
        for _ in range(MAX_HEADERS + 1):
            line = await self.conn.read_line()
            if not line:
                return
            trailer(line)
        raise WireError(400, f"more than {MAX_HEADERS} trailer lines after a chunked body")

    def cut_short(self) -> ConnectionError:
        """The client closed its side before the whole body came: the server answers 400 (if anyone listens)."""
        self.error = WireError(400, "the connection closed before the whole request body arrived")
        return ConnectionError("the client closed the connection")

    def unread_is_too_much(self) -> bool:
        """What is left of the body cannot be read and dropped to keep the connection."""
        return not self.done and (
            self.head.chunked or self.left > DRAIN_LIMIT or (self.head.expect_continue and not self.continue_sent)
        )

    async def drop_rest(self) -> bool:
        """The app answered without reading the whole body: read and drop a small rest to keep the connection."""
        if self.unread_is_too_much():
            return False
        try:
            async with asyncio.timeout(5):
                while not self.done:
                    await self.next_piece()
        except (TimeoutError, Gone, WireError):
            return False
        return True

    def send_continue(self) -> None:
        if self.head.expect_continue and not self.continue_sent and not self.answered:
            self.conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.continue_sent = True

    async def next_piece(self, limit: int = PIECE) -> bytes:
        if self.pending_error is not None:
            raise self.pending_error
        if self.done:
            return b""
        self.send_continue()
        conn = self.conn
        if not self.head.chunked:
            piece = await conn.take_some(min(limit, self.left))
            self.left -= len(piece)
            self.done = self.left == 0
            return piece
        while self.chunk_left == 0:
            size = chunk_size(await conn.read_line())
            if size == 0:
                await self._trailers()
                self.done = True
                return b""
            self.chunk_left = size
        piece = await conn.take_some(min(limit, self.chunk_left))
        self.chunk_left -= len(piece)
        if self.chunk_left == 0 and await conn.read_line() != b"":
            raise WireError(400, "a chunk of a chunked body is longer than its size line says")
        return piece

    async def readinto(self, view: memoryview, idle_timeout: float, observe: Observer | None = None) -> int:
        """Read into ``view``: 0 at the end of the body; a short count may come before it (see
        ``storage.base.Fillable``). Raises ConnectionError when the client left (or sent a malformed body),
        TimeoutError when it sent nothing for ``idle_timeout`` seconds — bytes that arrived before either are
        returned first, the error comes with the next call. ``observe`` sees ``view[:n]`` before this returns
        n > 0, in the thread that read the socket when one did."""
        try:
            return await self._fill(view, idle_timeout, observe)
        except (Gone, WireError) as exc:
            raise as_read_error(exc, self) from exc

    async def read_whole(self, view: memoryview, idle_timeout: float, then: Callable[[], _T]) -> _T:
        """Fill ``view`` with the whole body — a Content-Length body of exactly ``len(view)`` bytes, none of it read
        yet — and return ``then()``, run in the worker thread that read the body's last bytes: a small upload is
        read, hashed and stored in one thread job. Errors as ``readinto``; whatever ``then`` raises comes as is."""
        if self.head.chunked or self.left != len(view) or self.pending_error is not None:
            raise RuntimeError("read_whole takes a whole Content-Length body of the buffer's size")
        outcome: list[tuple[bool, Any]] = []

        def finish(seen: memoryview) -> None:
            if len(seen) == len(view):  # all of it: short means the client left, the error comes next
                try:
                    outcome.append((True, then()))
                except BaseException as exc:  # noqa: BLE001 - raised on the event loop below
                    outcome.append((False, exc))

        # Only hand ``finish`` over when a thread will read the socket (not for bytes asyncio already holds).
        in_thread = self.conn.fd >= 0 and self.conn.buffered < self.left
        filled = 0
        while filled < len(view):
            n = await self.readinto(view[filled:], idle_timeout, finish if in_thread and not filled else None)
            if n == 0:
                raise ConnectionError("the body ended before its Content-Length")
            filled += n
        if not outcome:
            job = self.conn.shared.executor.submit(then)
            return await self.conn.in_thread(job, threading.Event())
        done, value = outcome[0]
        if not done:
            raise value
        return cast(_T, value)

    async def lend(self, view: memoryview, idle_timeout: float, work: SocketWork) -> bool:
        """Lend the socket to ``work`` for the rest of a Content-Length body of exactly ``len(view)`` bytes, none
        of it read yet (``storage.base.Lender``): what asyncio read along with the head goes into ``view`` first.
        False, with nothing read: chunked, TLS, or all of it already here. Errors as ``readinto``; whatever
        ``work`` raises comes as is, and the connection ends after the answer (how far it read is not known)."""
        conn = self.conn
        if self.head.chunked or conn.fd < 0 or self.left != len(view) or self.pending_error is not None:
            return False
        if conn.buffered >= self.left:
            return False
        self.send_continue()
        conn.pause_reading()
        filled = self._take_buffered(view, 0, len(view))
        try:
            while filled < len(view):
                if conn.eof:
                    raise Gone()
                try:
                    got, error = await work(conn.fd, filled, idle_timeout)
                except BaseException:
                    self.broken = True
                    raise
                filled += got
                if isinstance(error, Parked):  # nothing came for a while: wait on the loop, not in a thread
                    await self._wait_parked(idle_timeout)
                    filled = self._take_buffered(view, filled, len(view))
                elif error is not None:
                    raise error
        except (Gone, WireError) as exc:
            self.pending_error = exc
            raise as_read_error(exc, self) from exc
        finally:
            self.left -= filled
            self.done = self.left == 0
            if self.done:
                conn.resume_reading()
        return True

    async def pump(self, target: FillTarget, idle_timeout: float) -> int | None:
        """Read the body into ``target``'s views in one worker thread until it ends or the target says stop (see
        ``storage.base.Pumpable``); None for a body that cannot be read that way (chunked, TLS). Errors as
        ``readinto``."""
        conn = self.conn
        if self.head.chunked or conn.fd < 0:
            return None
        if self.pending_error is not None:
            raise as_read_error(self.pending_error, self)
        if self.done:
            return 0
        self.send_continue()
        conn.pause_reading()
        got, error = await self._pump_until_bytes(target, idle_timeout)
        if isinstance(error, Parked):
            error = None  # a short count: the caller pumps again
        self.left -= got
        self.done = self.left == 0
        if self.done:
            conn.resume_reading()
        self.pending_error = error
        if got == 0 and error is not None:
            raise as_read_error(error, self)
        return got

    async def _pump_until_bytes(self, target: FillTarget, idle_timeout: float) -> tuple[int, BaseException | None]:
        """One pumping thread; if it gave the socket back without a byte, wait on the loop and start another."""
        conn = self.conn
        while True:
            prefix = b""  # what asyncio read (with the head, or while the socket was parked) goes first
            while conn.buffered and len(prefix) < self.left:
                prefix += conn.take(self.left - len(prefix))
            stop = threading.Event()
            job = conn.shared.executor.submit(_pump_socket, conn.fd, self.left, prefix, target, idle_timeout, stop)
            got, error, rest = await conn.in_thread(job, stop)
            if rest:  # the target stopped before taking all of it: back in front of the socket's bytes
                conn.chunks.appendleft(rest)
                conn.buffered += len(rest)
            if got or not isinstance(error, Parked):
                return got, error
            if conn.eof:
                return 0, Gone()
            try:
                await self._wait_parked(idle_timeout)  # nothing came: wait on the loop without a thread
            except TimeoutError:
                raise as_read_error(TimeoutError(), self) from None

    async def _fill_from_pieces(self, view: memoryview, idle_timeout: float, observe: Observer | None) -> int:
        filled = 0
        while filled < len(view):
            async with asyncio.timeout(idle_timeout):
                piece = await self.next_piece(len(view) - filled)
            if not piece:
                break
            view[filled : filled + len(piece)] = piece
            filled += len(piece)
        if observe is not None and filled:
            await self.conn.observe_in_thread(observe, view[:filled])
        return filled

    def _take_buffered(self, view: memoryview, filled: int, want: int) -> int:
        conn = self.conn
        while filled < want and conn.buffered:
            piece = conn.take(want - filled)
            view[filled : filled + len(piece)] = piece
            filled += len(piece)
        return filled

    async def _wait_parked(self, idle_timeout: float) -> None:
        """After a reading thread gave the socket back: wait (no thread) until asyncio reads more, the client
        leaves, or the rest of the idle timeout passes (then the TimeoutError is the body's failure)."""
        conn = self.conn
        try:
            await conn.wait_data(max(idle_timeout - PARK_AFTER_S, 0))
        except TimeoutError:
            self.pending_error = TimeoutError()
            raise
        finally:
            conn.pause_reading()

    async def _fill(self, view: memoryview, idle_timeout: float, observe: Observer | None) -> int:
        conn = self.conn
        if self.head.chunked or conn.fd < 0:  # chunked framing or TLS: copy pieces into the buffer
            return await self._fill_from_pieces(view, idle_timeout, observe)
        if self.pending_error is not None:
            raise self.pending_error
        if self.done:
            return 0
        self.send_continue()
        want = min(len(view), self.left)
        filled = 0
        conn.pause_reading()
        filled = self._take_buffered(view, filled, want)  # what asyncio had read already comes first
        while filled < want:
            if conn.eof:
                self.pending_error = Gone()
                break
            got, error = await conn.read_socket_into(view[:want], filled, idle_timeout, observe)
            if got or filled or not isinstance(error, Parked):
                filled, observe = filled + got, None  # the thread has let observe see them
                self.pending_error = None if isinstance(error, Parked) else error
                break  # a short count is fine: the caller asks again
            await self._wait_parked(idle_timeout)  # nothing came: wait on the loop, then take what asyncio read
            filled = self._take_buffered(view, filled, want)
        if observe is not None and filled:  # all of it came from what asyncio read with the head: seen here
            observe(view[:filled])
        self.left -= filled
        self.done = self.left == 0
        if self.done:
            conn.resume_reading()  # the socket is asyncio's again: it sees the next request, or the close
        if filled == 0 and self.pending_error is not None:
            raise self.pending_error
        return filled


def as_read_error(error: BaseException, body: RequestBody) -> BaseException:
    """A body failure as the readers see it: ConnectionError (gone, malformed) or TimeoutError."""
    if isinstance(error, WireError):
        body.error = error
        return ConnectionError(error.message)
    if isinstance(error, Gone):
        return body.cut_short()
    return error


def _pump_socket(
    fd: int, left: int, prefix: bytes, target: FillTarget, idle_timeout: float, stop: threading.Event
) -> tuple[int, BaseException | None, bytes]:
    """In a worker thread: up to ``left`` body bytes, ``prefix`` first then the socket, into the target's views.
    Returns the bytes read, why it stopped short (if it did) and what is left of ``prefix``."""
    total = 0
    while left > 0:
        view = target.next_view()
        if view is None:
            break
        view = view[: min(len(view), left)]
        got, error = 0, None
        if prefix:
            got = min(len(prefix), len(view))
            view[:got] = prefix[:got]
            prefix = prefix[got:]
        if got < len(view):
            n, error = fill_from_socket(fd, view[got:], idle_timeout, stop.is_set)
            got += n
        total, left = total + got, left - got
        if got:
            target.filled(got)
        if error is not None:
            return total, error, prefix
    return total, None, prefix
