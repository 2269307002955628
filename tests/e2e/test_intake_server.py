"""``pyfiledrop serve`` with its intake helper (``--helpers``): small uploads received by a second process."""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from pyfiledrop.storage import intake
from tests.conftest import ServerProcess

pytestmark = pytest.mark.skipif(not intake.available(), reason="the intake needs Linux (memfd, pidfd)")


def helpers_of(server: ServerProcess) -> list[int]:
    assert server.process is not None
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == server.process.pid and b"pyfiledrop.storage.intake_helper" in cmdline:
            found.append(int(entry.name))
    return found


def put(server: ServerProcess, data: bytes, name: str) -> httpx.Response:
    return httpx.put(f"{server.url}/{name}", content=data, timeout=30)


def started_helper(server: ServerProcess) -> int:
    """The first small upload starts the helper; until it is ready the server stores them itself. Returns the
    helper's pid once an upload went through it."""
    assert helpers_of(server) == [], "no helper before a small upload comes"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        data = os.urandom(300_000)
        assert put(server, data, "warm-up.bin").status_code == 201
        helpers = helpers_of(server)
        if helpers and bytes_written(helpers[0]) > 0:
            return helpers[0]
        time.sleep(0.05)
    raise AssertionError("no upload went through the helper")


def test_small_uploads_go_through_the_helper_and_arrive_whole(make_server: type[ServerProcess], tmp_path: Path) -> None:
    server = make_server(tmp_path / "storage", ["--allow-downloads"]).start()
    helper = started_helper(server)
    data = os.urandom((1 << 20) + 777)  # more than the server reads with the head: the helper reads the rest
    written = bytes_written(helper)
    answer = put(server, data, "one.bin")
    assert bytes_written(helper) - written >= len(data), "the helper wrote the file"
    assert answer.status_code == 201 and answer.headers["x-sha256"] == hashlib.sha256(data).hexdigest()
    assert httpx.get(answer.headers["location"], timeout=30).content == data
    # tus creation-with-upload of a whole small file takes the same road
    other = os.urandom(len(data))
    tus = httpx.post(f"{server.url}/files/", content=other, timeout=30, headers={
        "Tus-Resumable": "1.0.0", "Upload-Length": str(len(other)), "Content-Type": "application/offset+octet-stream",
        "Upload-Metadata": "filename " + base64.b64encode(b"tus.bin").decode(),
    })  # fmt: skip
    assert tus.status_code == 201 and tus.headers["upload-offset"] == str(len(other))
    stored = sorted(p.read_bytes() for p in (tmp_path / "storage").iterdir() if p.is_file() and "-up" not in p.name)
    assert sorted(s for s in stored if len(s) == len(data)) == sorted([data, other])


def bytes_written(pid: int) -> int:
    """Bytes the process passed to write-like system calls."""
    counters = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return int(counters["wchar"])


def test_a_killed_helper_leaves_the_server_storing_uploads_itself(
    make_server: type[ServerProcess], tmp_path: Path
) -> None:
    server = make_server(tmp_path / "storage").start()
    os.kill(started_helper(server), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while "upload helper process exited" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "upload helper process exited" in server.log()
    data = os.urandom(3 << 19)
    answer = put(server, data, "after.bin")
    assert answer.status_code == 201 and answer.headers["x-sha256"] == hashlib.sha256(data).hexdigest()


def test_helpers_0_runs_none_and_a_stop_ends_the_helper(make_server: type[ServerProcess], tmp_path: Path) -> None:
    alone = make_server(tmp_path / "alone", ["--helpers", "0"]).start()
    data = os.urandom(1 << 20)
    assert put(alone, data, "a.bin").headers["x-sha256"] == hashlib.sha256(data).hexdigest()
    assert helpers_of(alone) == []
    alone.stop()

    helped = make_server(tmp_path / "helped").start()
    helper = started_helper(helped)
    helped.stop()  # Ctrl-C to the server's group: the helper (a group of its own) ends when the server closes
    assert not Path(f"/proc/{helper}").exists()
    assert "Traceback" not in helped.log() and "KeyboardInterrupt" not in helped.log()


@pytest.mark.parametrize("value", ["-1", "9", "two"])
def test_helpers_out_of_range_is_refused(make_server: type[ServerProcess], tmp_path: Path, value: str) -> None:
    with pytest.raises(RuntimeError, match="--helpers must be"):
        make_server(tmp_path / "s", ["--helpers", value]).start()


def raw_put(server: ServerProcess, name: str, size: int, *pieces: bytes, pause: float, close: bool = False) -> bytes:
    """A PUT sent piece by piece with pauses (longer than a reading thread waits); what the server answered."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(f"PUT /{name} HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n".encode())
        for piece in pieces:
            time.sleep(pause)
            sock.sendall(piece)
        if close:
            return b""
        answer = b""
        while b"\r\n\r\n" not in answer and (more := sock.recv(65536)):
            answer += more
        return answer


def test_a_pausing_client_and_a_client_that_leaves(make_server: type[ServerProcess], tmp_path: Path) -> None:
    server = make_server(tmp_path / "storage").start()
    helper = started_helper(server)
    data = os.urandom(1 << 20)
    written = bytes_written(helper)
    # Pauses longer than the helper waits for a socket: it gives the socket back, the server waits, lends it again.
    answer = raw_put(server, "slow.bin", len(data), data[:100_000], data[100_000:700_000], data[700_000:], pause=0.6)
    assert answer.startswith(b"HTTP/1.1 201") and hashlib.sha256(data).hexdigest().encode() in answer
    assert bytes_written(helper) - written >= len(data)
    raw_put(server, "gone.bin", len(data), data[:300_000], pause=0.1, close=True)
    time.sleep(0.5)
    assert not any("gone" in p.name for p in (tmp_path / "storage").rglob("*"))
    assert list((tmp_path / "storage" / ".partial").iterdir()) == []
    again = put(server, data[::-1], "again.bin")
    assert again.status_code == 201 and again.headers["x-sha256"] == hashlib.sha256(data[::-1]).hexdigest()


def test_large_uploads_alone_start_no_helper(make_server: type[ServerProcess], tmp_path: Path) -> None:
    server = make_server(tmp_path / "storage").start()
    data = os.urandom(5 << 20)  # more than a small upload: streamed by the server itself
    assert put(server, data, "big.bin").headers["x-sha256"] == hashlib.sha256(data).hexdigest()
    assert helpers_of(server) == []
