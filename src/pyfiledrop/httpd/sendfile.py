"""Sending a file as a response body: ``sendfile(2)`` from the page cache to the socket, no copy through Python.

Not asyncio's ``loop.sendfile``: its waits for the socket have no timeout, so a client that stops reading held the
socket and the open file for ever. Here each wait for room in the socket is bounded by the send timeout, counted
from the last byte the client took. Under TLS (no plain socket) the file goes through the transport in pieces.
"""

from __future__ import annotations

import asyncio
import os
from typing import BinaryIO

from pyfiledrop.httpd.connection import Connection
from pyfiledrop.sockets import Gone

_PIECE = 256 * 1024  # under TLS: read and written this much at a time


async def send_file(conn: Connection, handle: BinaryIO, size: int) -> int:
    """Send ``size`` bytes of ``handle`` from its start; how many went (fewer when the file is shorter). Raises
    ``Gone`` when the client leaves or stops reading for the send timeout."""
    if conn.fd < 0:
        return await _through_the_transport(conn, handle, size)
    await conn.flush()  # what the transport holds (the head) goes first
    out = os.dup(conn.fd)  # a descriptor of our own to wait on: the transport's is registered with the loop
    try:
        return await _sendfile(conn, out, handle.fileno(), size)
    finally:
        os.close(out)


async def _sendfile(conn: Connection, out: int, source: int, size: int) -> int:
    return await _Sender(conn, out, source, size).run()


class _Sender:
    """``sendfile(2)`` from the loop's writer callback each time the socket has room (as asyncio's own, with no
    coroutine step per call), watched by a timer: at each send timeout, no byte sent and none taken from the
    socket's queue since the last look means the client stopped reading."""

    def __init__(self, conn: Connection, out: int, source: int, size: int) -> None:
        self.conn, self.out, self.source, self.size = conn, out, source, size
        self.loop = conn.loop
        self.sent = 0
        self.done: asyncio.Future[None] = self.loop.create_future()
        self.seen = (0, 0)  # (sent, unsent) at the watchdog's last look
        self.watchdog: asyncio.TimerHandle | None = None

    async def run(self) -> int:
        self._step()
        if self.done.done():
            return self._result()
        self.loop.add_writer(self.out, self._step)
        self.seen = (self.sent, self.conn.unsent())
        self.watchdog = self.loop.call_later(self.conn.shared.send_timeout, self._watch)
        self.conn.lost.add_done_callback(self._lost)
        try:
            await self.done
        finally:
            self.loop.remove_writer(self.out)
            if self.watchdog is not None:
                self.watchdog.cancel()
            self.conn.lost.remove_done_callback(self._lost)
        return self._result()

    def _result(self) -> int:
        self.done.result()  # raises what stopped it
        return self.sent

    def _step(self) -> None:
        if self.done.done():
            return
        try:
            count = os.sendfile(self.out, self.source, self.sent, self.size - self.sent)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.done.set_exception(Gone(str(exc)))
            return
        self.sent += count
        if count == 0 or self.sent >= self.size:  # all of it, or the file is shorter than it was
            self.done.set_result(None)

    def _watch(self) -> None:
        if self.done.done():
            return
        now = (self.sent, self.conn.unsent())
        if now[0] == self.seen[0] and now[1] >= self.seen[1]:
            self.done.set_exception(self.conn.stalled())
            return
        self.seen = now
        self.watchdog = self.loop.call_later(self.conn.shared.send_timeout, self._watch)

    def _lost(self, _: asyncio.Future[None]) -> None:
        if not self.done.done():
            self.done.set_exception(Gone())


async def _through_the_transport(conn: Connection, handle: BinaryIO, size: int) -> int:
    sent = 0
    while sent < size:
        piece = await asyncio.to_thread(handle.read, min(_PIECE, size - sent))
        if not piece:
            break
        conn.write(piece)
        sent += len(piece)
        await conn.drain()
    return sent
