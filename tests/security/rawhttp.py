"""One HTTP/1.1 exchange on a raw socket: the exact bytes of the answer, as no client library would show them."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class RawAnswer:
    raw: bytes  # everything the server sent before it closed

    @property
    def head(self) -> bytes:
        return self.raw.split(b"\r\n\r\n", 1)[0]

    @property
    def body(self) -> bytes:
        return self.raw.split(b"\r\n\r\n", 1)[1]

    @property
    def status(self) -> int:
        return int(self.head.split(b" ", 2)[1])

    def header_lines(self, name: bytes) -> list[bytes]:
        """The values of every field line named ``name`` (case-insensitive) in the head."""
        found = []
        for line in self.head.split(b"\r\n")[1:]:
            field, _, value = line.partition(b":")
            if field.strip().lower() == name.lower():
                found.append(value.strip())
        return found


def exchange(port: int, request: bytes, timeout: float = 10.0) -> RawAnswer:
    """Send ``request`` (which should ask for ``Connection: close``) and read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            piece = sock.recv(65536)
            if not piece:
                break
            chunks.append(piece)
    return RawAnswer(b"".join(chunks))


def get(port: int, path: str, headers: dict[str, str] | None = None) -> RawAnswer:
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return exchange(port, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
