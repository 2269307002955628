"""The server keeps the host awake exactly while transfers are in flight (issue 18), seen from outside: a real
``pyfiledrop serve`` subprocess, a fake logind on a private system bus that records each inhibitor and sees it
released when the server's descriptor closes, and the status in /api/admin/stats."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.awake.conftest import Buses
from tests.awake.transfers import RawRequest, stats, tus_create, tus_patch
from tests.conftest import ServerProcess

CHUNK = 64 * 1024


def _payload(size: int) -> bytes:
    return bytes(range(256)) * (size // 256)


def test_auto_takes_the_lock_when_an_upload_starts_keeps_it_through_a_short_pause_and_releases_after_the_grace(
    make_buses: Callable[..., Buses], make_server: type[ServerProcess], tmp_path: Any
) -> None:
    buses = make_buses(logind=True, desktop=False)
    server = make_server(tmp_path / "storage", ["--awake-grace", "3"]).start()
    assert stats(server) == {"mode": "auto", "held": False, "method": None, "reason": "nothing in flight"}
    data = _payload(2 * CHUNK)
    path = tus_create(server, len(data))
    assert buses.events() == [], "creating an upload sends no bytes: nothing to hold for yet"

    first = RawRequest.tus_patch(server, path, 0, CHUNK)
    first.send(data[: CHUNK // 2])  # the upload is receiving now, and stays so until the rest comes
    buses.wait_for(lambda: len(buses.held()) == 1, what="the inhibitor")
    (taken,) = buses.events("logind")
    assert (taken["who"], taken["what"], taken["mode"], taken["why"]) == (
        "pyfiledrop", "sleep", "block", "1 upload in flight")  # fmt: skip
    during = stats(server)
    assert (during["held"], during["method"]) == (True, "logind")
    assert "1 upload in flight" in during["reason"] and "block" in during["reason"]
    first.send(data[CHUNK // 2 : CHUNK])
    assert first.status() == 204
    first.close()

    time.sleep(0.5)  # a resumable upload's pause between chunks, shorter than the grace
    assert buses.held() == [taken["id"]]
    assert tus_patch(server, path, CHUNK, data[CHUNK:]).status_code == 204
    finished = time.time()
    assert buses.held() == [taken["id"]], "the same lock all along: no release and retake around the pause"

    buses.wait_for(lambda: buses.held() == [], timeout=15, what="the release after the grace")
    released = buses.events("logind")[-1]
    assert released["event"] == "release" and released["id"] == taken["id"]
    assert released["at"] - finished >= 3 - 0.25, "released before the grace was over"
    assert len([e for e in buses.events() if e["event"] == "inhibit"]) == 1
    after = stats(server)
    assert (after["held"], after["method"], after["reason"]) == (False, None, "nothing in flight")
    head = httpx.head(f"{server.url}{path}", headers={"tus-resumable": "1.0.0"}, timeout=10)
    assert head.headers["upload-offset"] == str(len(data)), "the upload itself went through whole"


def test_a_pause_longer_than_the_grace_releases_and_the_next_chunk_takes_it_again(
    make_buses: Callable[..., Buses], make_server: type[ServerProcess], tmp_path: Any
) -> None:
    buses = make_buses(logind=True, desktop=False)
    server = make_server(tmp_path / "storage", ["--awake-grace", "1"]).start()
    data = _payload(2 * CHUNK)
    path = tus_create(server, len(data))
    assert tus_patch(server, path, 0, data[:CHUNK]).status_code == 204
    buses.wait_for(lambda: [e["event"] for e in buses.events()] == ["inhibit", "release"], timeout=15,
                   what="taken and released")  # fmt: skip
    assert tus_patch(server, path, CHUNK, data[CHUNK:]).status_code == 204
    buses.wait_for(lambda: [e["event"] for e in buses.events()] == ["inhibit", "release"] * 2, timeout=15,
                   what="taken and released a second time")  # fmt: skip


def test_never_never_takes_it(
    make_buses: Callable[..., Buses], make_server: type[ServerProcess], tmp_path: Any
) -> None:
    buses = make_buses(logind=True, desktop=True)
    server = make_server(tmp_path / "storage", ["--keep-awake", "never", "--awake-grace", "0"]).start()
    upload = RawRequest.tus_patch(server, tus_create(server, CHUNK), 0, CHUNK)
    upload.send(_payload(CHUNK // 2))
    time.sleep(0.5)  # long enough for a hold the server should not take
    status = stats(server)
    upload.send(_payload(CHUNK // 2))
    assert upload.status() == 204
    upload.close()
    assert (status["mode"], status["held"], status["method"]) == ("never", False, None)
    assert "never" in status["reason"]
    time.sleep(0.3)
    assert buses.events() == []


def test_always_holds_from_start_up_and_a_sigterm_releases_it(
    make_buses: Callable[..., Buses], make_server: type[ServerProcess], tmp_path: Any
) -> None:
    buses = make_buses(logind=True, desktop=False)
    server = make_server(tmp_path / "storage", ["--keep-awake", "always"]).start()
    held = buses.held()
    assert len(held) == 1, "held by the time the server answers"
    assert "always" in buses.events()[0]["why"]
    status = stats(server)
    assert (status["mode"], status["held"], status["method"]) == ("always", True, "logind")
    assert "Keep awake  always" in server.log()
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(15) == 0
    buses.wait_for(lambda: buses.held() == [], timeout=5, what="the release at exit")


def test_a_server_killed_with_sigkill_releases_it_because_its_descriptor_dies(
    make_buses: Callable[..., Buses], make_server: type[ServerProcess], tmp_path: Any
) -> None:
    buses = make_buses(logind=True, desktop=False)
    server = make_server(tmp_path / "storage", ["--keep-awake", "always"]).start()
    assert len(buses.held()) == 1
    server.kill()
    buses.wait_for(lambda: buses.held() == [], what="the release by the kernel")


def test_ctrl_c_releases_it(make_buses: Callable[..., Buses], make_server: type[ServerProcess], tmp_path: Any) -> None:
    buses = make_buses(logind=True, desktop=False)
    server = make_server(tmp_path / "storage", ["--keep-awake", "always"]).start()
    assert len(buses.held()) == 1
    server.stop()  # SIGINT to the process group, as a terminal's Ctrl-C
    assert server.process is not None and server.process.returncode == 0
    buses.wait_for(lambda: buses.held() == [], timeout=5, what="the release at exit")


def test_with_no_bus_at_all_uploads_work_with_one_warning_and_the_status_says_why(
    make_buses: Callable[..., Buses], make_server: type[ServerProcess], tmp_path: Any
) -> None:
    make_buses(logind=False, desktop=False, system_bus=False)
    assert "DBUS_SESSION_BUS_ADDRESS" not in os.environ
    server = make_server(tmp_path / "storage", ["--awake-grace", "0", "--allow-downloads"]).start()
    data = _payload(CHUNK)
    for name in ("one.bin", "two.bin"):  # the second after the first attempt's grace: a second attempt, no warning
        answer = httpx.put(f"{server.url}/{name}", content=data, timeout=30)
        assert answer.status_code == 201, answer.text
        assert httpx.get(answer.headers["location"], timeout=10).content == data
        deadline = time.monotonic() + 10
        while "no system bus" not in stats(server)["reason"] and time.monotonic() < deadline:
            time.sleep(0.05)
    status = stats(server)
    assert (status["held"], status["method"]) == (False, None)
    assert "no system bus at" in status["reason"] and "DBUS_SESSION_BUS_ADDRESS" in status["reason"]
    assert server.log().count("cannot keep the host awake") == 1


def test_on_a_desktop_session_without_logind_wakepys_inhibitor_holds_it(
    make_buses: Callable[..., Buses], make_server: type[ServerProcess], tmp_path: Any
) -> None:
    buses = make_buses(logind=False, desktop=True)  # a system bus with no logind on it, and a session bus
    server = make_server(tmp_path / "storage", ["--awake-grace", "1"]).start()
    upload = RawRequest.tus_patch(server, tus_create(server, CHUNK), 0, CHUNK)
    upload.send(_payload(CHUNK // 2))
    buses.wait_for(lambda: len(buses.held("org.freedesktop.PowerManagement")) == 1, what="the desktop inhibitor")
    status = stats(server)
    assert (status["held"], status["method"]) == (True, "org.freedesktop.PowerManagement")
    upload.send(_payload(CHUNK // 2))
    assert upload.status() == 204
    upload.close()
    buses.wait_for(lambda: buses.held("org.freedesktop.PowerManagement") == [], timeout=15, what="UnInhibit")
    assert buses.events("logind") == []


def test_a_refused_block_inhibitor_falls_back_to_delay_and_says_so(
    make_buses: Callable[..., Buses], make_server: type[ServerProcess], tmp_path: Any
) -> None:
    buses = make_buses(logind=True, desktop=False, extra=["--refuse-block"])
    server = make_server(tmp_path / "storage", ["--keep-awake", "always"]).start()
    (taken,) = buses.events("logind")
    assert taken["mode"] == "delay"
    status = stats(server)
    assert (status["held"], status["method"]) == (True, "logind")
    assert "delay" in status["reason"] and "AccessDenied" in status["reason"]


def test_a_download_in_flight_holds_it_too(
    make_buses: Callable[..., Buses], make_server: type[ServerProcess], tmp_path: Any
) -> None:
    buses = make_buses(logind=True, desktop=False)
    server = make_server(tmp_path / "storage", ["--awake-grace", "0", "--allow-downloads"]).start()
    data = os.urandom(32 << 20)  # more than the kernel buffers hold, so the server waits for the reader
    answer = httpx.put(f"{server.url}/big.bin", content=data, timeout=60)
    assert answer.status_code == 201, answer.text
    buses.wait_for(lambda: [e["event"] for e in buses.events()] == ["inhibit", "release"], what="the upload's hold")
    path = httpx.URL(answer.headers["location"]).path
    download = RawRequest(server, f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n",
                          receive_buffer=16 * 1024)  # fmt: skip
    assert download.read_some(16)  # the answer has begun; the reader then stops reading
    buses.wait_for(lambda: len(buses.held()) == 1, what="the download's hold")
    assert "1 download in flight" in stats(server)["reason"]
    assert download.drain() + 16 > len(data)
    download.close()
    buses.wait_for(lambda: buses.held() == [], what="the release after the download")
