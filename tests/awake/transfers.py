"""Uploads and downloads the keep-awake tests can hold open at will: a raw socket sends a request in pieces."""

from __future__ import annotations

import socket
from typing import Any

import httpx

from tests.conftest import ADMIN_TOKEN, ServerProcess


def stats(server: ServerProcess) -> dict[str, Any]:
    answer = httpx.get(f"{server.url}/api/admin/stats", headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    awake: dict[str, Any] = answer.json()["awake"]
    return awake


def tus_create(server: ServerProcess, size: int) -> str:
    answer = httpx.post(f"{server.url}/files", headers={"tus-resumable": "1.0.0", "upload-length": str(size)},
                        timeout=10)  # fmt: skip
    assert answer.status_code == 201, answer.text
    return httpx.URL(answer.headers["location"]).path


def tus_patch(server: ServerProcess, path: str, offset: int, data: bytes) -> httpx.Response:
    headers = {"tus-resumable": "1.0.0", "upload-offset": str(offset),
               "content-type": "application/offset+octet-stream"}  # fmt: skip
    return httpx.patch(f"{server.url}{path}", content=data, headers=headers, timeout=30)


class RawRequest:
    """One HTTP/1.1 request written by hand, so a test decides when each part of it goes out."""

    def __init__(self, server: ServerProcess, head: str, receive_buffer: int | None = None) -> None:
        self.sock = socket.socket()
        if receive_buffer is not None:  # before connecting: the window stays small, the server's send must wait
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(30)
        self.sock.connect(("127.0.0.1", server.port))
        self.sock.sendall(head.encode("latin-1"))

    @classmethod
    def tus_patch(cls, server: ServerProcess, path: str, offset: int, length: int) -> RawRequest:
        return cls(server, f"PATCH {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ntus-resumable: 1.0.0\r\n"
                           f"upload-offset: {offset}\r\ncontent-type: application/offset+octet-stream\r\n"
                           f"content-length: {length}\r\n\r\n")  # fmt: skip

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_some(self, size: int = 1024) -> bytes:
        return self.sock.recv(size)

    def status(self) -> int:
        """Read the answer's status line (the rest is left unread)."""
        received = b""
        while b"\r\n" not in received:
            piece = self.sock.recv(4096)
            if not piece:
                break
            received += piece
        return int(received.split(b" ", 2)[1])

    def drain(self) -> int:
        """Read to the end of the connection (the server closes it after ``connection: close``); bytes read."""
        total = 0
        while piece := self.sock.recv(1 << 20):
            total += len(piece)
        return total

    def close(self) -> None:
        self.sock.close()
