"""Listening sockets and accepting connections, only while there is room for them.

Not ``loop.create_server``: it accepts up to ``backlog`` sockets in one go before any of their protocols runs, so a
burst of idle clients took every file descriptor (``accept`` then fails with EMFILE, asyncio stops accepting for a
second, logs an error each time) before one of them could be shed. Here each batch is bounded by the room left
(``Shared.capacity``, a margin below the open-file limit); at the limit the oldest idle connections are closed
first, and when none is idle the rest wait in the kernel's backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable

from pyfiledrop.httpd.state import Shared

log = logging.getLogger("pyfiledrop.http")

_BATCH = 64  # sockets accepted per wake-up at most: the loop serves the others in between
_FULL_RETRY_S = 0.05  # no room and nobody idle: look again this much later
_ERROR_RETRY_S = 1.0  # accept failed (out of descriptors after all): as asyncio does


def open_sockets(host: str, port: int, backlog: int) -> list[socket.socket]:
    """Bound, listening, non-blocking sockets for ``host`` (``""`` / ``"::"``: every address, IPv4 and IPv6)."""
    wildcard = host in ("", "::")
    infos = socket.getaddrinfo(None if wildcard else host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0,
                               socket.AI_PASSIVE)  # fmt: skip
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)  # its IPv4 twin listens beside it
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class Listener:
    def __init__(self, shared: Shared, sockets: list[socket.socket], protocol: Callable[[], asyncio.Protocol],
                 tls: ssl.SSLContext | None) -> None:  # fmt: skip
        self.shared = shared
        self.sockets = sockets
        self.protocol = protocol
        self.tls = tls
        self.loop = asyncio.get_running_loop()
        self.starting: set[asyncio.Task[None]] = set()  # accepted, protocol not running yet (TLS handshake)
        self.closed = False
        for sock in sockets:
            self.loop.add_reader(sock.fileno(), self._accept, sock)

    def close(self) -> None:
        self.closed = True
        for sock in self.sockets:
            self.loop.remove_reader(sock.fileno())
            sock.close()
        for task in self.starting:
            task.cancel()

    def _room(self) -> int:
        return self.shared.capacity - len(self.shared.connections) - len(self.starting)

    def _accept(self, listening: socket.socket) -> None:
        room = self._room()
        if room <= 0 and self.shared.shed_idle() == 0:
            self._pause(listening, _FULL_RETRY_S)  # nobody idle: the new ones wait in the backlog
            return
        for _ in range(min(_BATCH, max(room, 1))):
            try:
                sock, _ = listening.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE, ENFILE, ENOBUFS…: wait, then take the backlog again
                log.warning("accepting connections failed (%s); trying again in %g s", exc, _ERROR_RETRY_S)
                self._pause(listening, _ERROR_RETRY_S)
                return
            sock.setblocking(False)
            task = self.loop.create_task(self._start(sock))
            self.starting.add(task)
            task.add_done_callback(self.starting.discard)

    async def _start(self, sock: socket.socket) -> None:
        try:
            await self.loop.connect_accepted_socket(self.protocol, sock, ssl=self.tls)
        except (OSError, ssl.SSLError, TimeoutError) as exc:  # a failed TLS handshake, a client gone at once
            log.debug("a connection failed before its first request: %s", exc)
            sock.close()

    def _pause(self, listening: socket.socket, seconds: float) -> None:
        fd = listening.fileno()
        self.loop.remove_reader(fd)

        def resume() -> None:
            if not self.closed:
                with contextlib.suppress(ValueError, OSError):
                    self.loop.add_reader(fd, self._accept, listening)

        self.loop.call_later(seconds, resume)
