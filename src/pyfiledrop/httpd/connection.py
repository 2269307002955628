"""One HTTP/1.1 connection as asyncio sees it: the bytes that arrived, reading paused or not, writing and its
back-pressure, worker-thread jobs that read its socket, and how it closes. What is read from it (heads, bodies)
and what is written (answers) are the jobs of ``head.py``, ``body.py`` and ``exchange.py``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import logging
import struct
import termios
import threading
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from pyfiledrop.httpd.response import status_body
from pyfiledrop.httpd.state import Shared
from pyfiledrop.httpd.wire import MAX_CHUNK_LINE, WireError
from pyfiledrop.sockets import Gone, fill_from_socket
from pyfiledrop.workers import wrap_job

log = logging.getLogger("pyfiledrop.http")

_T = TypeVar("_T")
Observer = Callable[[memoryview], None]  # sees bytes just read (storage.base.ReadObserver)
Handler = Callable[["Connection"], Coroutine[Any, Any, None]]  # serves the requests of a connection

HIGH_WATER = 4 << 20  # pause reading the socket when this much is buffered and nobody takes it
# asyncio reads up to this much per recv (its default, 256 KiB, pulls a large body's first 200-odd KiB in with the
# head: a big bytes object, mapped and unmapped by malloc, only to be copied into the body buffer after)
RECV_SIZE = 64 * 1024
_OUTQ: int | None = getattr(termios, "TIOCOUTQ", None)  # SIOCOUTQ of a socket on Linux
_LINGER_S = 2.0  # after an early answer, keep reading (and dropping) so the client sees the answer, not a reset


class Connection(asyncio.Protocol):
    def __init__(self, shared: Shared, handler: Handler) -> None:
        self.shared = shared
        self.handler = handler
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
        self.high_water = HIGH_WATER  # reading pauses when this much is buffered and nobody takes it
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
            transport.max_size = RECV_SIZE  # type: ignore[attr-defined]
        sock = transport.get_extra_info("socket")
        if sock is not None and transport.get_extra_info("sslcontext") is None:
            self.fd = sock.fileno()
        peer = transport.get_extra_info("peername")
        self.client = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else None
        local = transport.get_extra_info("sockname")
        self.sockname = (str(local[0]), int(local[1])) if isinstance(local, tuple) else None
        if not self.shared.admit(self):  # as many connections as descriptors allow, none idle: this one waits
            transport.write(status_body(503, *self.shared.refusal(None, 503, "too many connections; try again")))
            transport.close()
            return
        self.task = self.loop.create_task(self.handler(self))

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > self.high_water:
            self.pause_reading()
        self.wake()

    def eof_received(self) -> bool:
        self.eof = True
        if not self.client_done.done():
            self.client_done.set_result(None)
        self.wake()
        return True  # keep the writing side open: the answer may still be on its way

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        for future in (self.lost, self.client_done):
            if not future.done():
                future.set_result(None)
        self.wake()
        self.resume_writing()
        self.shared.connections.pop(self, None)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(None)

    def wake(self) -> None:
        if self.data_waiter is not None and not self.data_waiter.done():
            self.data_waiter.set_result(None)

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

    async def wait_data(self, timeout: float | None) -> None:  # noqa: ASYNC109 - the caller's deadline
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
            await self.wait_data(None)
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
        job = self.shared.executor.submit(_read_socket, self.fd, view, start, idle_timeout, stop, observe)
        return await self.in_thread(job, stop)

    async def observe_in_thread(self, observe: Observer, view: memoryview) -> None:
        job = self.shared.executor.submit(observe, view)
        await self.in_thread(job, threading.Event())

    async def in_thread(self, job: concurrent.futures.Future[_T], stop: threading.Event) -> _T:
        self.socket_read = job
        try:
            return await asyncio.shield(wrap_job(job))
        except asyncio.CancelledError:
            # The caller's buffer must be left alone once this returns: stop the thread (it looks within a poll
            # slice) and wait for it, then give the cancellation back.
            stop.set()
            await self.join_socket_read()
            raise
        finally:
            if job.done():
                self.socket_read = None

    async def join_socket_read(self) -> None:
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
        """Until the transport takes more (``pause_writing`` ended), within the send timeout (``wait_taken``)."""
        if self.lost.done():
            raise Gone()
        while self.write_paused and self.transport is not None:
            self.drain_waiter = self.loop.create_future()
            try:
                await self.wait_taken(self.drain_waiter)
            finally:
                self.drain_waiter = None
            if self.lost.done():
                raise Gone()

    async def wait_taken(self, ready: asyncio.Future[None]) -> None:
        """Await ``ready`` (room to write more). A client that takes none of what was sent for the send timeout is
        cut off (``Gone``); one that reads slowly is not: the time counts from its last progress, like nginx's
        ``send_timeout``. Progress is what left the socket's send queue, not only the socket turning writable
        (which it does only once a good part of its buffer is free)."""
        while True:
            unsent = self.unsent()
            try:
                async with asyncio.timeout(self.shared.send_timeout):
                    await asyncio.wait({ready, self.lost}, return_when=asyncio.FIRST_COMPLETED)
                return
            except TimeoutError:
                if self.unsent() >= unsent:
                    raise self.stalled() from None

    def unsent(self) -> int:
        """Bytes written that the client has not taken yet: in the transport's buffer and the socket's queue."""
        queued = self.transport.get_write_buffer_size() if self.transport is not None else 0
        if self.fd >= 0 and _OUTQ is not None:  # Linux: the bytes in the socket's send queue
            with contextlib.suppress(OSError):
                queued += struct.unpack("i", fcntl.ioctl(self.fd, _OUTQ, b"\0\0\0\0"))[0]
        return queued

    async def flush(self) -> None:
        """Until everything written so far has gone to the socket (before writing to it past the transport)."""
        transport = self.transport
        if transport is None or transport.get_write_buffer_size() == 0:
            return
        low, high = transport.get_write_buffer_limits()
        transport.set_write_buffer_limits(high=0, low=0)  # pause_writing until empty
        try:
            await self.drain()
        finally:
            if not transport.is_closing():
                transport.set_write_buffer_limits(high=high, low=low)

    def stalled(self) -> Gone:
        """The client read nothing for the send timeout: cut it off (its socket and the file it was sent are freed)."""
        self.abort()
        return Gone(f"{self.client[0] if self.client else 'the client'} took nothing for "
                    f"{self.shared.send_timeout:g} s (send timeout)")  # fmt: skip

    def shed(self) -> None:
        if self.idle and self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    async def refuse(self, exc: WireError, path: str | None = None) -> None:
        self.write(self.refusal(path, exc.status, exc.message))
        await self.linger_close()

    def refusal(self, path: str | None, status: int, message: str) -> bytes:
        """An answer the server makes on its own, worded as the app words errors for that path."""
        return status_body(status, *self.shared.refusal(path, status, message))

    async def linger_close(self) -> None:
        """Close after an answer sent before the request was read: first say we are done writing, then read
        and drop what the client still sends for a moment, so its socket gets our answer and not a reset."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        await self.join_socket_read()
        with contextlib.suppress(OSError, RuntimeError):
            if transport.can_write_eof():
                transport.write_eof()
        deadline = self.loop.time() + _LINGER_S
        while not self.eof and self.loop.time() < deadline:
            self.chunks.clear()
            self.buffered = 0
            with contextlib.suppress(TimeoutError):
                await self.wait_data(deadline - self.loop.time())
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
