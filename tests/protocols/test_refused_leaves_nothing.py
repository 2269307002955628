"""A one-request upload (PUT, a whole Dropzone form) that is refused or cut off leaves nothing behind: no partial
file, no record waiting for --stale-after. Its id is told only on success, so nobody could resume or delete it."""

from __future__ import annotations

import socket
import sqlite3
import time
from pathlib import Path

import pytest

from tests.conftest import ServerProcess

MiB = 1 << 20
PIECE = b"z" * (64 * 1024)


@pytest.fixture
def server(make_server: type[ServerProcess], tmp_path: Path) -> ServerProcess:
    return make_server(tmp_path / "s", ["--max-size", "1", "--timeout", "5000"]).start()


def _records(server: ServerProcess) -> list[tuple[str, str]]:
    with sqlite3.connect(f"file:{server.storage / '.pyfiledrop.sqlite3'}?mode=ro", uri=True) as db:
        return list(db.execute("SELECT id, state FROM uploads"))


def _partials(server: ServerProcess) -> list[str]:
    return sorted(path.name for path in (server.storage / ".partial").iterdir())


def _send_chunked(server: ServerProcess, head: str, pieces: list[bytes]) -> str:
    """Send a chunked body until the server answers or stops reading; return the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(head.encode())
        try:
            for piece in pieces:
                sock.sendall(b"%x\r\n%b\r\n" % (len(piece), piece))
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early and closed: what it said is still to be read
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    return answer.decode(errors="replace")


def test_a_chunked_put_over_max_size_is_413_and_leaves_no_partial_and_no_record(server: ServerProcess) -> None:
    head = "PUT /huge.bin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    answer = _send_chunked(server, head, [PIECE] * (3 * MiB // len(PIECE)))
    assert answer.startswith("HTTP/1.1 413"), answer[:300]
    assert _partials(server) == []
    assert _records(server) == []


def test_a_chunked_dropzone_form_over_max_size_is_413_and_leaves_nothing(server: ServerProcess) -> None:
    boundary = "b0undary"
    head = (f"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n")  # fmt: skip
    part = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()  # fmt: skip
    answer = _send_chunked(server, head, [part, *[PIECE] * (3 * MiB // len(PIECE)), f"\r\n--{boundary}--\r\n".encode()])
    assert answer.startswith("HTTP/1.1 413"), answer[:300]
    assert _partials(server) == []
    assert _records(server) == []


def test_a_put_cut_off_by_its_client_leaves_nothing(make_server: type[ServerProcess], tmp_path: Path) -> None:
    """Bigger than a small upload held whole (2 MiB), so it streams to a partial file; the client leaves halfway."""
    server = make_server(tmp_path / "s", ["--max-size", "64"]).start()
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(f"PUT /cut.bin HTTP/1.1\r\nHost: x\r\nContent-Length: {16 * MiB}\r\n\r\n".encode())
        for _ in range(8 * MiB // len(PIECE)):
            sock.sendall(PIECE)
        deadline = time.monotonic() + 10
        while not _records(server) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _records(server), "the streaming upload was created"
    deadline = time.monotonic() + 15
    while (_records(server) or _partials(server)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _partials(server) == []
    assert _records(server) == []


def test_a_put_within_the_limit_still_works_chunked(server: ServerProcess) -> None:
    head = "PUT /ok.bin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    answer = _send_chunked(server, head, [PIECE] * 4)
    assert answer.startswith("HTTP/1.1 201"), answer[:300]
    assert [state for _, state in _records(server)] == ["complete"]
    assert _partials(server) == []
