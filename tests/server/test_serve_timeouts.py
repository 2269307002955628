"""The server's timeouts as ``pyfiledrop serve`` takes them: ``--send-timeout`` (PYFILEDROP_SEND_TIMEOUT) cuts off a
download whose client stopped reading, with one log line and no traceback; ``--timeout`` also bounds small JSON
bodies (they waited ~35 s whatever it said)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pyfiledrop import cli, config
from pyfiledrop.errors import ConfigError
from tests.conftest import ADMIN_TOKEN, ServerProcess

pytestmark = pytest.mark.timeout(60)


def test_send_timeout_setting() -> None:
    assert config.load({}, environ={}).send_timeout == 60  # nginx's default
    assert config.load({}, environ={"PYFILEDROP_SEND_TIMEOUT": "5"}).send_timeout == 5
    assert config.load({"send_timeout": "2m"}, environ={}).send_timeout == 120
    assert config.load({"send_timeout": "0.5"}, environ={}).send_timeout == 0.5
    flags = vars(cli.build_parser().parse_args(["serve", "--send-timeout", "7"]))
    assert config.load(flags, environ={}).send_timeout == 7
    for bad in ("0", "-1", "soon"):
        with pytest.raises(ConfigError, match="--send-timeout"):
            config.load({"send_timeout": bad}, environ={})


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path / "storage", extra_args=["--send-timeout", "1", "--timeout", "1000"]).start()
    yield server
    server.stop()


def test_a_download_that_is_not_read_is_cut_off_after_send_timeout(served: ServerProcess) -> None:
    data = os.urandom(1 << 20) * 48
    put = httpx.put(f"{served.url}/big.bin", content=data, headers={"accept": "application/json"}, timeout=60)
    assert put.status_code == 201
    target = put.json()["download_url"].removeprefix(served.url)
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nX-Pyfiledrop-Token: {ADMIN_TOKEN}\r\n\r\n".encode())
        deadline = time.monotonic() + 15
        while "send timeout" not in served.log() and time.monotonic() < deadline:
            time.sleep(0.1)  # reads nothing meanwhile
        log = served.log()
        assert "send timeout" in log
        assert "Traceback" not in log and " ERROR " not in log
        received = 0
        with pytest.raises(OSError):  # cut: a reset once the buffered part is read, never the whole file
            while chunk := sock.recv(1 << 20):
                received += len(chunk)
            raise ConnectionResetError(f"closed after {received} bytes")
        assert received < len(data)
    assert httpx.get(f"{served.url}/api/config").status_code == 200


def test_a_stalled_json_body_gets_408_after_timeout_not_30_s(served: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"pass")  # fmt: skip
        answer = sock.recv(4096)
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in answer.lower()
    assert elapsed < 5, f"--timeout 1000 (1 s) took {elapsed:.1f} s"
