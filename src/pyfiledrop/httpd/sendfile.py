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
    sent = 0
    while sent < size:
        if conn.lost.done():
            raise Gone()
        try:
            count = os.sendfile(out, source, sent, size - sent)
        except (BlockingIOError, InterruptedError):
            await _writable(conn, out)
            continue
        except OSError as exc:
            raise Gone(str(exc)) from exc
        if count == 0:
            break  # the file is shorter than it was
        sent += count
        await asyncio.sleep(0)  # a fast reader must not keep every other connection waiting
    return sent


async def _writable(conn: Connection, fd: int) -> None:
    loop = conn.loop
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(fd, wake)
    try:
        await conn.wait_taken(ready)
    finally:
        loop.remove_writer(fd)
        ready.cancel()


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
