"""Reading request heads off a connection, and the request loop: head, exchange, head, … until the connection ends."""

from __future__ import annotations

import logging

from pyfiledrop.httpd.connection import HIGH_WATER, RECV_SIZE, Connection
from pyfiledrop.httpd.exchange import Exchange
from pyfiledrop.httpd.wire import WireError, head_end, parse_head, target_path

log = logging.getLogger("pyfiledrop.http")

_EAGER_BODY = 64 * 1024  # a body up to this size is read by asyncio along with its head


async def serve_connection(conn: Connection) -> None:
    """Every request of one connection, in turn (the connection's task)."""
    shared = conn.shared
    try:
        first = True
        while not shared.stopping:
            idle = shared.head_timeout if first else shared.keepalive_timeout
            try:
                raw = await read_head(conn, idle)
            except WireError as exc:
                await conn.refuse(exc)
                return
            if raw is None:
                return
            first = False
            try:
                head = parse_head(raw)
            except WireError as exc:
                await conn.refuse(exc, target_path(raw))
                return
            conn.idle = False
            if (head.content_length or 0) > _EAGER_BODY and conn.fd >= 0 and conn.transport is not None:
                # Leave a large body in the socket until the app asks: readinto then takes it straight from
                # there, instead of asyncio reading it into pieces that are copied over after. An app that
                # reads a few pieces first (a multipart preamble) gets one read's worth at a time.
                conn.pause_reading()
                conn.high_water = RECV_SIZE
            keep = await Exchange(conn, head).run()
            conn.high_water = HIGH_WATER
            conn.idle = True
            if not keep:
                return
    except Exception:  # one connection's failure must never reach the server
        log.exception("connection failed")
        conn.abort()
    finally:
        await conn.join_socket_read()
        if conn.transport is not None and not conn.transport.is_closing():
            conn.transport.close()


async def read_head(conn: Connection, idle: float) -> bytes | None:
    """The bytes before the blank line, or None when the client closes (or idles ``idle`` seconds) between
    requests. Once a head has begun it must be whole within the head timeout (slow-loris)."""
    loop = conn.loop
    deadline = loop.time() + idle
    started = False
    while True:
        head = _head_in_buffer(conn)
        if head is not None:
            return head
        if conn.buffered and not started:
            started = True
            deadline = loop.time() + conn.shared.head_timeout
        if conn.eof:
            if started:
                raise WireError(400, "the connection closed in the middle of a request head")
            return None
        if conn.shared.stopping and not started:
            return None
        try:
            await conn.wait_data(deadline - loop.time())
        except TimeoutError:
            if started:
                raise WireError(408, "the request head did not arrive in time") from None
            return None


def _head_in_buffer(conn: Connection) -> bytes | None:
    """A whole head from the buffer (taken out of it), or None if it has not all arrived."""
    chunks = conn.chunks
    if not chunks:
        return None
    if len(chunks) > 1:
        joined = b"".join(chunks)
        chunks.clear()
        chunks.append(joined)
    data = chunks[0].lstrip(b"\r\n")  # stray line ends between requests are allowed
    conn.buffered -= len(chunks[0]) - len(data)
    chunks[0] = data
    end = head_end(data)
    if end >= 0:
        rest = data[end + 4 :]
        chunks.popleft()
        conn.buffered -= len(data) - len(rest)
        if rest:
            chunks.appendleft(rest)
        return data[:end]
    if not data:
        chunks.clear()
    return None
