"""kill -9 of the server mid-upload: restart, resume, and the sha256 of the result is right."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from pathlib import Path

import httpx

from tests.conftest import ServerProcess

TUS = {"tus-resumable": "1.0.0"}


def _slow_patch(port: int, path: str, data: bytes, sent: list[int], stop: threading.Event) -> None:
    """PATCH the body in small pieces so the server is killed in the middle of a request."""
    head = (f"PATCH {path} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
            f"Content-Type: application/offset+octet-stream\r\nContent-Length: {len(data)}\r\n\r\n")  # fmt: skip
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(head.encode())
            for i in range(0, len(data), 256 * 1024):
                if stop.is_set():
                    return
                sock.sendall(data[i : i + 256 * 1024])
                sent[0] = i + 256 * 1024
                time.sleep(0.03)
    except OSError:
        return  # the server died under us: expected


def test_sigkill_mid_upload_then_resume_gives_exact_sha256(make_server: type[ServerProcess], tmp_path: Path) -> None:
    data = os.urandom(32 * 2**20)
    server = make_server(tmp_path / "s").start()
    created = httpx.post(f"{server.url}/files/", headers={**TUS, "upload-length": str(len(data))})
    location = created.headers["location"]
    path = "/files/" + location.rsplit("/", 1)[-1]
    sent, stop = [0], threading.Event()
    sender = threading.Thread(target=_slow_patch, args=(server.port, path, data, sent, stop))
    sender.start()
    deadline = time.monotonic() + 30
    seen = 0
    while seen == 0 and time.monotonic() < deadline:  # a long request checkpoints what it wrote
        time.sleep(0.05)
        seen = int(httpx.head(location, headers=TUS).headers["upload-offset"])
    assert 0 < seen < len(data)
    server.kill()
    stop.set()
    sender.join(10)
    server.start()
    offset = int(httpx.head(location, headers=TUS).headers["upload-offset"])
    assert seen <= offset <= sent[0] <= len(data)  # what was reported is kept; nothing beyond what was sent
    resumed = httpx.patch(location, content=data[offset:], timeout=60,
                          headers={**TUS, "upload-offset": str(offset),
                                   "content-type": "application/offset+octet-stream"})  # fmt: skip
    assert resumed.status_code == 204
    status = httpx.get(f"{server.url}/api/uploads/{path.rsplit('/', 1)[-1]}",
                       headers={"x-pyfiledrop-token": created.headers["x-pyfiledrop-token"]}).json()  # fmt: skip
    assert status["sha256"] == hashlib.sha256(data).hexdigest()
    stored = next(p for p in server.storage.iterdir() if p.name.startswith(status["id"]))
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == status["sha256"]


def test_sigkill_between_dropzone_chunks_loses_no_acknowledged_chunk(
    make_server: type[ServerProcess], tmp_path: Path
) -> None:
    from tests.protocols.dropzone_client import DzFile

    dz = DzFile("k.bin", os.urandom(8 * 2**20), 2**20)
    server = make_server(tmp_path / "s").start()
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for index in (5, 0, 7, 2):
            assert dz.send(c, index).status_code == 200
    server.kill()
    server.start()
    with httpx.Client(base_url=server.url, timeout=30) as c:
        token = c.get("/api/session").json()["token"]
        assert token
        for index in (1, 3, 4, 6):
            last = dz.send(c, index)
        assert last.json()["sha256"] == hashlib.sha256(dz.data).hexdigest()
