"""One HTTP/1.1 connection: read request heads, hand each request to the ASGI app, frame its response.

Request bodies reach the app two ways. ``receive()`` gives pieces as asyncio read them (plain ASGI). The
``pyfiledrop.readinto`` extension fills a caller's buffer instead: with reading paused, a worker thread
reads the socket straight into that buffer (one kernel copy, no Python object per piece, no wake-up of the
event loop per piece) — the reason this server exists; granian and uvicorn cannot offer it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pyfiledrop.sockets import PARK_AFTER_S, Gone, Parked, fill_from_socket
from pyfiledrop.web.wire import (
    MAX_CHUNK_LINE,
    MAX_HEAD_BYTES,
    RequestHead,
    WireError,
    chunk_size,
    parse_head,
    response_head,
    status_body,
    target_path,
)
from pyfiledrop.workers import wrap_job

if TYPE_CHECKING:
    from pyfiledrop.storage.base import FillTarget, SocketWork
    from pyfiledrop.web.server import HttpServer

log = logging.getLogger("pyfiledrop.http")

_T = TypeVar("_T")
Observer = Callable[[memoryview], None]  # sees bytes just read (storage.base.ReadObserver)

_COALESCE = 64 * 1024  # a body up to this size goes out in the same send as its head
_PIECE = 1 << 20  # largest piece receive() hands out
_HIGH_WATER = 4 << 20  # pause reading the socket when this much is buffered and nobody takes it
_EAGER_BODY = 64 * 1024  # a body up to this size is read by asyncio along with its head
# asyncio reads up to this much per recv (its default, 256 KiB, pulls a large body's first 200-odd KiB in with the
# head: a big bytes object, mapped and unmapped by malloc, only to be copied into the body buffer after)
_RECV_SIZE = 64 * 1024
_DRAIN_LIMIT = 1 << 20  # an unread body up to this size is read and dropped to keep the connection
_LINGER_S = 2.0  # after an early answer, keep reading (and dropping) so the client sees the answer, not a reset
_NO_BODY_STATUS = frozenset({204, 304})

App = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Callable[[dict[str, Any]], Awaitable[None]]],
               Awaitable[None]]  # fmt: skip


class Connection(asyncio.Protocol):
    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.eof = False
        self.lost: asyncio.Future[None] = self.loop.create_future()  # the connection is gone
        self.client_done: asyncio.Future[None] = self.loop.create_future()  # EOF from the client, or gone
        self.data_waiter: asyncio.Future[None] | None = None
        self.drain_waiter: asyncio.Future[None] | None = None
        self.write_paused = False
        self.reading_paused = False
        self.high_water = _HIGH_WATER  # reading pauses when this much is buffered and nobody takes it
        self.fd = -1  # the socket, when the fast body path may read it (not under TLS)
        self.socket_read: concurrent.futures.Future[Any] | None = None  # a worker-thread job using the body buffer
        self.idle = True  # between requests: may be closed at once on shutdown
        self.task: asyncio.Task[None] | None = None
        self.client: tuple[str, int] | None = None
        self.sockname: tuple[str, int] | None = None

    # -- asyncio callbacks --------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if isinstance(getattr(transport, "max_size", None), int):  # selector transports (not documented API)
            transport.max_size = _RECV_SIZE  # type: ignore[attr-defined]
        sock = transport.get_extra_info("socket")
        if sock is not None and transport.get_extra_info("sslcontext") is None:
            self.fd = sock.fileno()
        peer = transport.get_extra_info("peername")
        self.client = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else None
        local = transport.get_extra_info("sockname")
        self.sockname = (str(local[0]), int(local[1])) if isinstance(local, tuple) else None
        self.server.connections.add(self)
        self.task = self.loop.create_task(self._run())

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > self.high_water:
            self.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        if not self.client_done.done():
            self.client_done.set_result(None)
        self._wake()
        return True  # keep the writing side open: the answer may still be on its way

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        for future in (self.lost, self.client_done):
            if not future.done():
                future.set_result(None)
        self._wake()
        self.resume_writing()
        self.server.connections.discard(self)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(None)

    def _wake(self) -> None:
        if self.data_waiter is not None and not self.data_waiter.done():
            self.data_waiter.set_result(None)

    # -- the request loop ---------------------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            first = True
            while not self.server.stopping:
                idle = self.server.head_timeout if first else self.server.keepalive_timeout
                try:
                    raw = await self._read_head(idle)
                except WireError as exc:
                    await self._refuse(exc)
                    return
                if raw is None:
                    return
                first = False
                try:
                    head = parse_head(raw)
                except WireError as exc:
                    await self._refuse(exc, target_path(raw))
                    return
                self.idle = False
                if (head.content_length or 0) > _EAGER_BODY and self.fd >= 0 and self.transport is not None:
                    # Leave a large body in the socket until the app asks: readinto then takes it straight from
                    # there, instead of asyncio reading it into pieces that are copied over after. An app that
                    # reads a few pieces first (a multipart preamble) gets one read's worth at a time.
                    self.pause_reading()
                    self.high_water = _RECV_SIZE
                keep = await _Exchange(self, head).run()
                self.high_water = _HIGH_WATER
                self.idle = True
                if not keep:
                    return
        except Exception:  # one connection's failure must never reach the server
            log.exception("connection failed")
            self.abort()
        finally:
            await self._join_socket_read()
            if self.transport is not None and not self.transport.is_closing():
                self.transport.close()

    async def _read_head(self, idle: float) -> bytes | None:
        """The bytes before the blank line, or None when the client closes (or idles ``idle`` seconds) between
        requests. Once a head has begun it must be whole within the head timeout (slow-loris)."""
        deadline = self.loop.time() + idle
        started = False
        while True:
            head = self._head_in_buffer()
            if head is not None:
                return head
            if self.buffered and not started:
                started = True
                deadline = self.loop.time() + self.server.head_timeout
            if self.eof:
                if started:
                    raise WireError(400, "the connection closed in the middle of a request head")
                return None
            if self.server.stopping and not started:
                return None
            try:
                await self._wait_data(deadline - self.loop.time())
            except TimeoutError:
                if started:
                    raise WireError(408, "the request head did not arrive in time") from None
                return None

    def _head_in_buffer(self) -> bytes | None:
        """A whole head from the buffer (taken out of it), or None if it has not all arrived."""
        if not self.chunks:
            return None
        if len(self.chunks) > 1:
            joined = b"".join(self.chunks)
            self.chunks.clear()
            self.chunks.append(joined)
        data = self.chunks[0].lstrip(b"\r\n")  # stray line ends between requests are allowed
        self.buffered -= len(self.chunks[0]) - len(data)
        self.chunks[0] = data
        end = data.find(b"\r\n\r\n", 0, MAX_HEAD_BYTES + 4)
        if end >= 0:
            self._unshift(data[end + 4 :], len(data))
            return data[:end]
        if len(data) > MAX_HEAD_BYTES:
            raise WireError(431, f"the request head is larger than {MAX_HEAD_BYTES // 1024} KiB")
        if not data:
            self.chunks.clear()
        return None

    def _unshift(self, rest: bytes, consumed_from: int) -> None:
        self.chunks.popleft()
        self.buffered -= consumed_from - len(rest)
        if rest:
            self.chunks.appendleft(rest)

    def pause_reading(self) -> None:
        """asyncio stops reading the socket (a thread is about to, or enough is buffered)."""
        if not self.reading_paused and self.transport is not None:
            self.transport.pause_reading()
            self.reading_paused = True

    def resume_reading(self) -> None:
        """asyncio reads the socket again (unless a thread is reading it)."""
        if self.reading_paused and self.socket_read is None and self.transport is not None:
            self.transport.resume_reading()
            self.reading_paused = False

    async def wait_gone(self) -> None:
        """Until the client closes its side or the connection (ASGI's http.disconnect after the body)."""
        self.resume_reading()  # a paused socket would never show the close
        await asyncio.shield(self.client_done)

    async def _wait_data(self, timeout: float | None) -> None:  # noqa: ASYNC109 - the caller's deadline
        self.resume_reading()
        self.data_waiter = self.loop.create_future()
        try:
            if timeout is None:
                await self.data_waiter
            else:
                async with asyncio.timeout(max(timeout, 0)):
                    await self.data_waiter
        finally:
            self.data_waiter = None

    def take(self, limit: int) -> bytes:
        """Up to ``limit`` buffered bytes (the caller checked there are some)."""
        first = self.chunks[0]
        if len(first) <= limit:
            self.chunks.popleft()
        else:
            self.chunks[0] = first[limit:]
            first = first[:limit]
        self.buffered -= len(first)
        return first

    async def take_some(self, limit: int) -> bytes:
        while not self.buffered:
            if self.eof:
                raise Gone()
            await self._wait_data(None)
        return self.take(limit)

    async def read_line(self) -> bytes:
        parts: list[bytes] = []
        size = 0
        while True:
            piece = await self.take_some(MAX_CHUNK_LINE)
            end = piece.find(b"\n")
            if end >= 0:
                if size + end > MAX_CHUNK_LINE:
                    raise WireError(400, "a line of a chunked body is too long")
                parts.append(piece[: end + 1])
                if end + 1 < len(piece):
                    self.chunks.appendleft(piece[end + 1 :])
                    self.buffered += len(piece) - end - 1
                line = b"".join(parts)
                if not line.endswith(b"\r\n"):
                    raise WireError(400, "a line of a chunked body does not end with CRLF")
                return line[:-2]
            parts.append(piece)
            size += len(piece)
            if size > MAX_CHUNK_LINE:
                raise WireError(400, "a line of a chunked body is too long")

    # -- the fast body path: a thread reads the socket into the caller's buffer ---------------------------------

    async def read_socket_into(
        self, view: memoryview, start: int, idle_timeout: float, observe: Observer | None
    ) -> tuple[int, BaseException | None]:
        """Fill ``view[start:]`` from the socket in a worker thread; with ``observe``, that thread then passes it
        ``view[:start + got]`` while the bytes are still in its CPU's cache."""
        assert self.transport is not None
        self.pause_reading()  # asyncio must not read the socket under the thread
        stop = threading.Event()
        job = self.server.executor.submit(_read_socket, self.fd, view, start, idle_timeout, stop, observe)
        return await self._in_thread(job, stop)

    async def observe_in_thread(self, observe: Observer, view: memoryview) -> None:
        job = self.server.executor.submit(observe, view)
        await self._in_thread(job, threading.Event())

    async def _in_thread(self, job: concurrent.futures.Future[_T], stop: threading.Event) -> _T:
        self.socket_read = job
        try:
            return await asyncio.shield(wrap_job(job))
        except asyncio.CancelledError:
            # The caller's buffer must be left alone once this returns: stop the thread (it looks within a poll
            # slice) and wait for it, then give the cancellation back.
            stop.set()
            await self._join_socket_read()
            raise
        finally:
            if job.done():
                self.socket_read = None

    async def _join_socket_read(self) -> None:
        """Wait for a socket-reading thread to be over, even through cancellation (re-raised after)."""
        job = self.socket_read
        if job is None:
            return
        cancelled = False
        while not job.done():
            try:
                await asyncio.shield(wrap_job(job))
            except asyncio.CancelledError:
                cancelled = True
            except Exception:  # noqa: BLE001, S110 - its outcome was for the reader; here only the end matters
                pass
        self.socket_read = None
        if cancelled:
            raise asyncio.CancelledError

    # -- writing ------------------------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def drain(self) -> None:
        if self.lost.done():
            raise Gone()
        if self.write_paused:
            self.drain_waiter = self.loop.create_future()
            try:
                await self.drain_waiter
            finally:
                self.drain_waiter = None
            if self.lost.done():
                raise Gone()

    async def _refuse(self, exc: WireError, path: str | None = None) -> None:
        self.write(self.refusal(path, exc.status, exc.message))
        await self.linger_close()

    def refusal(self, path: str | None, status: int, message: str) -> bytes:
        """An answer the server makes on its own, worded as the app words errors for that path."""
        return status_body(status, *self.server.refusal(path, status, message))

    async def linger_close(self) -> None:
        """Close after an answer sent before the request was read: first say we are done writing, then read
        and drop what the client still sends for a moment, so its socket gets our answer and not a reset."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        await self._join_socket_read()
        with contextlib.suppress(OSError, RuntimeError):
            if transport.can_write_eof():
                transport.write_eof()
        deadline = self.loop.time() + _LINGER_S
        while not self.eof and self.loop.time() < deadline:
            self.chunks.clear()
            self.buffered = 0
            with contextlib.suppress(TimeoutError):
                await self._wait_data(deadline - self.loop.time())
        transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def _read_socket(
    fd: int, view: memoryview, start: int, idle_timeout: float, stop: threading.Event, observe: Observer | None
) -> tuple[int, BaseException | None]:
    """Fill ``view[start:]`` from a non-blocking socket, then let ``observe`` see ``view[:start + got]``.
    Returns what arrived and why it stopped short, if it did."""
    got, error = fill_from_socket(fd, view[start:], idle_timeout, stop.is_set)
    if observe is not None and start + got:
        observe(view[: start + got])
    return got, error


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


def _as_read_error(error: BaseException, exchange: _Exchange) -> BaseException:
    """A body failure as the readers see it: ConnectionError (gone, malformed) or TimeoutError."""
    if isinstance(error, WireError):
        exchange.body_error = error
        return ConnectionError(error.message)
    if isinstance(error, Gone):
        return ConnectionError("the client closed the connection")
    return error


class _Exchange:
    """One request and its response on a connection."""

    def __init__(self, conn: Connection, head: RequestHead) -> None:
        self.conn = conn
        self.head = head
        self.left = head.content_length or 0  # body bytes not read yet (Content-Length framing)
        self.chunk_left = 0  # bytes left in the current chunk (chunked framing)
        self.body_done = not head.chunked and self.left == 0
        self.body_error: WireError | None = None
        self.pending_error: BaseException | None = None  # from the socket thread, raised at the next read
        self.last_given = False  # receive() has said more_body=False
        self.continue_sent = False
        self.started = False
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_sent = False
        self.chunked_response = False
        self.finished = False
        self.keep_alive = head.keep_alive

    async def run(self) -> bool:
        conn, server = self.conn, self.conn.server
        reading: dict[str, Callable[..., Awaitable[Any]]] = {
            "readinto": self._readinto, "read_whole": self._read_whole, "pump": self._pump, "lend": self._lend
        }  # fmt: skip
        scope = server.scope(conn, self.head, reading)
        try:
            await server.app(scope, self._receive, self._send)
        except Gone:
            conn.abort()
            return False
        except Exception:  # the app's own error boundary should have answered; this is the last one
            log.exception("unhandled error in %s %s", self.head.method, self.head.path)
            if self.head_sent:
                conn.abort()
                return False
            self._fallback(500, "internal server error")
        if not self.finished:
            if self.head_sent:  # the app stopped in the middle of its answer
                conn.abort()
                return False
            error = self.body_error or WireError(500, "the server did not answer")
            self._fallback(error.status, error.message)
        if conn.lost.done():
            return False
        if not self.body_done and (not self.keep_alive or not await self._drop_rest()):
            await conn.linger_close()
            return False
        await conn._join_socket_read()
        return self.keep_alive and not conn.server.stopping

    def _fallback(self, status: int, message: str) -> None:
        self.keep_alive = False
        self.conn.write(self.conn.refusal(self.head.path, status, message))
        self.finished = True

    async def _drop_rest(self) -> bool:
        """The app answered without reading the whole body: read and drop a small rest to keep the connection."""
        if self.head.chunked or self.left > _DRAIN_LIMIT or (self.head.expect_continue and not self.continue_sent):
            return False
        try:
            async with asyncio.timeout(5):
                while not self.body_done:
                    await self._next_piece()
        except (TimeoutError, Gone, WireError):
            return False
        return True

    # -- the request body ---------------------------------------------------------------------------------------

    def _send_continue(self) -> None:
        if self.head.expect_continue and not self.continue_sent and not self.head_sent:
            self.conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.continue_sent = True

    async def _next_piece(self, limit: int = _PIECE) -> bytes:
        if self.pending_error is not None:
            raise self.pending_error
        if self.body_done:
            return b""
        self._send_continue()
        conn = self.conn
        if not self.head.chunked:
            piece = await conn.take_some(min(limit, self.left))
            self.left -= len(piece)
            self.body_done = self.left == 0
            return piece
        while self.chunk_left == 0:
            size = chunk_size(await conn.read_line())
            if size == 0:
                while await conn.read_line():  # trailers: read and ignored
                    pass
                self.body_done = True
                return b""
            self.chunk_left = size
        piece = await conn.take_some(min(limit, self.chunk_left))
        self.chunk_left -= len(piece)
        if self.chunk_left == 0 and await conn.read_line() != b"":
            raise WireError(400, "a chunk of a chunked body is longer than its size line says")
        return piece

    async def _receive(self) -> dict[str, Any]:
        if self.finished or self.body_error is not None:
            return {"type": "http.disconnect"}
        if self.body_done:
            if not self.last_given:
                self.last_given = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await self.conn.wait_gone()  # ASGI: after the body, receive() waits for the client to leave
            return {"type": "http.disconnect"}
        try:
            piece = await self._next_piece()
        except Gone:
            return {"type": "http.disconnect"}
        except WireError as exc:
            self.body_error = exc
            return {"type": "http.disconnect"}
        self.last_given = self.body_done
        return {"type": "http.request", "body": piece, "more_body": not self.body_done}

    async def _readinto(self, view: memoryview, idle_timeout: float, observe: Observer | None = None) -> int:
        """Read into ``view``: 0 at the end of the body; a short count may come before it (see
        ``storage.base.Fillable``). Raises ConnectionError when the client left (or sent a malformed body),
        TimeoutError when it sent nothing for ``idle_timeout`` seconds — bytes that arrived before either are
        returned first, the error comes with the next call. ``observe`` sees ``view[:n]`` before this returns
        n > 0, in the thread that read the socket when one did."""
        try:
            return await self._fill(view, idle_timeout, observe)
        except (Gone, WireError) as exc:
            raise _as_read_error(exc, self) from exc

    async def _read_whole(self, view: memoryview, idle_timeout: float, then: Callable[[], _T]) -> _T:
        """Fill ``view`` with the whole body — a Content-Length body of exactly ``len(view)`` bytes, none of it read
        yet — and return ``then()``, run in the worker thread that read the body's last bytes: a small upload is
        read, hashed and stored in one thread job. Errors as ``_readinto``; whatever ``then`` raises comes as is."""
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
            n = await self._readinto(view[filled:], idle_timeout, finish if in_thread and not filled else None)
            if n == 0:
                raise ConnectionError("the body ended before its Content-Length")
            filled += n
        if not outcome:
            job = self.conn.server.executor.submit(then)
            return await self.conn._in_thread(job, threading.Event())
        done, value = outcome[0]
        if not done:
            raise value
        return cast(_T, value)

    async def _lend(self, view: memoryview, idle_timeout: float, work: SocketWork) -> bool:
        """Lend the socket to ``work`` for the rest of a Content-Length body of exactly ``len(view)`` bytes, none
        of it read yet (``storage.base.Lender``): what asyncio read along with the head goes into ``view`` first.
        False, with nothing read: chunked, TLS, or all of it already here. Errors as ``_readinto``; whatever
        ``work`` raises comes as is, and the connection ends after the answer (how far it read is not known)."""
        conn = self.conn
        if self.head.chunked or conn.fd < 0 or self.left != len(view) or self.pending_error is not None:
            return False
        if conn.buffered >= self.left:
            return False
        self._send_continue()
        conn.pause_reading()
        filled = self._take_buffered(view, 0, len(view))
        try:
            while filled < len(view):
                if conn.eof:
                    raise Gone()
                try:
                    got, error = await work(conn.fd, filled, idle_timeout)
                except BaseException:
                    self.keep_alive = False
                    raise
                filled += got
                if isinstance(error, Parked):  # nothing came for a while: wait on the loop, not in a thread
                    await self._wait_parked(idle_timeout)
                    filled = self._take_buffered(view, filled, len(view))
                elif error is not None:
                    raise error
        except (Gone, WireError) as exc:
            self.pending_error = exc
            raise _as_read_error(exc, self) from exc
        finally:
            self.left -= filled
            self.body_done = self.left == 0
            if self.body_done:
                conn.resume_reading()
        return True

    async def _pump(self, target: FillTarget, idle_timeout: float) -> int | None:
        """Read the body into ``target``'s views in one worker thread until it ends or the target says stop (see
        ``storage.base.Pumpable``); None for a body that cannot be read that way (chunked, TLS). Errors as
        ``_readinto``."""
        conn = self.conn
        if self.head.chunked or conn.fd < 0:
            return None
        if self.pending_error is not None:
            raise _as_read_error(self.pending_error, self)
        if self.body_done:
            return 0
        self._send_continue()
        conn.pause_reading()
        got, error = await self._pump_until_bytes(target, idle_timeout)
        if isinstance(error, Parked):
            error = None  # a short count: the caller pumps again
        self.left -= got
        self.body_done = self.left == 0
        if self.body_done:
            conn.resume_reading()
        self.pending_error = error
        if got == 0 and error is not None:
            raise _as_read_error(error, self)
        return got

    async def _pump_until_bytes(self, target: FillTarget, idle_timeout: float) -> tuple[int, BaseException | None]:
        """One pumping thread; if it gave the socket back without a byte, wait on the loop and start another."""
        conn = self.conn
        while True:
            prefix = b""  # what asyncio read (with the head, or while the socket was parked) goes first
            while conn.buffered and len(prefix) < self.left:
                prefix += conn.take(self.left - len(prefix))
            stop = threading.Event()
            job = conn.server.executor.submit(_pump_socket, conn.fd, self.left, prefix, target, idle_timeout, stop)
            got, error, rest = await conn._in_thread(job, stop)
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
                raise _as_read_error(TimeoutError(), self) from None

    async def _fill_from_pieces(self, view: memoryview, idle_timeout: float, observe: Observer | None) -> int:
        filled = 0
        while filled < len(view):
            async with asyncio.timeout(idle_timeout):
                piece = await self._next_piece(len(view) - filled)
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
            await conn._wait_data(max(idle_timeout - PARK_AFTER_S, 0))
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
        if self.body_done:
            return 0
        self._send_continue()
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
        self.body_done = self.left == 0
        if self.body_done:
            conn.resume_reading()  # the socket is asyncio's again: it sees the next request, or the close
        if filled == 0 and self.pending_error is not None:
            raise self.pending_error
        return filled

    # -- the response -------------------------------------------------------------------------------------------

    async def _send(self, message: dict[str, Any]) -> None:
        conn = self.conn
        match message["type"]:
            case "http.response.start":
                if self.started:
                    raise RuntimeError("http.response.start sent twice")
                self.started = True
                self.status = int(message["status"])
                self.headers = [(bytes(n).lower(), bytes(v)) for n, v in message.get("headers", [])]
            case "http.response.body":
                body: bytes = message.get("body", b"")
                more = bool(message.get("more_body", False))
                out = b"" if self.head_sent else self._head_bytes(None if more else len(body))
                if body and self._has_body():
                    framed = b"%x\r\n%b\r\n" % (len(body), body) if self.chunked_response else body
                    if len(framed) > _COALESCE:
                        conn.write(out)  # a large body is not copied just to join its head
                        out = b""
                    out += framed
                if not more:
                    if self.chunked_response:
                        out += b"0\r\n\r\n"
                    self.finished = True
                if out:
                    conn.write(out)  # head and a small body in one send: one syscall per answer
                await conn.drain()
            case "http.response.pathsend":
                path = Path(str(message["path"]))
                if not self.head_sent:
                    conn.write(self._head_bytes(path.stat().st_size))  # noqa: ASYNC240 - one stat: the length
                await conn.drain()
                if self._has_body():
                    await self._send_file(path)
                self.finished = True
            case other:
                raise RuntimeError(f"unexpected ASGI message {other!r}")

    def _has_body(self) -> bool:
        return self.head.method != "HEAD" and self.status not in _NO_BODY_STATUS and self.status >= 200

    def _head_bytes(self, length: int | None) -> bytes:
        if not self.started:
            raise RuntimeError("http.response.body before http.response.start")
        names = {name for name, _ in self.headers}
        headers = self.headers
        if self._has_body() and b"content-length" not in names and b"transfer-encoding" not in names:
            if length is not None:
                headers.append((b"content-length", b"%d" % length))
            elif self.head.version == "1.1":
                headers.append((b"transfer-encoding", b"chunked"))
                self.chunked_response = True
            else:
                self.keep_alive = False  # HTTP/1.0 without a length: the end of the body is the close
        if not self.body_done and (
            self.head.chunked or self.left > _DRAIN_LIMIT or (self.head.expect_continue and not self.continue_sent)
        ):
            self.keep_alive = False  # too much unread body to drop: this answer ends the connection
        if self.conn.server.stopping:
            self.keep_alive = False
        if not self.keep_alive and b"connection" not in names:
            headers.append((b"connection", b"close"))
        elif self.keep_alive and self.head.version == "1.0":
            headers.append((b"connection", b"keep-alive"))
        self.head_sent = True
        return response_head(self.status, headers)

    async def _send_file(self, path: Path) -> None:
        transport = self.conn.transport
        assert transport is not None
        with path.open("rb") as handle:
            try:
                await self.conn.loop.sendfile(transport, handle)
            except (ConnectionError, RuntimeError) as exc:
                raise Gone() from exc
