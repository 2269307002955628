"""Private D-Bus buses (dbus-daemon with a config of our own, on unix sockets in a temp dir) and the fake services
of fake_services.py on them, so the keep-awake code talks real D-Bus without a desktop or a real logind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""
# Variables of the machine that would change what the server under test does (a real bus, a desktop, wakepy's
# test switches, settings of pyfiledrop's own).
_SCRUBBED = ("DBUS_SYSTEM_BUS_ADDRESS", "DBUS_SESSION_BUS_ADDRESS", "XDG_SESSION_DESKTOP", "XDG_CURRENT_DESKTOP",
             "WAKEPY_FAKE_SUCCESS", "WAKEPY_FORCE_FAILURE")  # fmt: skip


def _start_bus(folder: Path, name: str) -> tuple[subprocess.Popen[str], str]:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / f"{name}.conf"
    config.write_text(_CONFIG.format(socket=folder / f"{name}.socket"))
    daemon = subprocess.Popen(["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address=1"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    assert daemon.stdout is not None
    address = daemon.stdout.readline().strip()  # printed once it listens
    if not address:
        daemon.kill()
        raise RuntimeError("dbus-daemon did not start")
    return daemon, address


@dataclass
class Buses:
    """What the test set up: ``env`` is what a client process needs to see exactly these buses."""

    folder: Path
    env: dict[str, str] = field(default_factory=dict)
    events_path: Path = field(init=False)
    _processes: list[subprocess.Popen[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.events_path = self.folder / "events.jsonl"
        self.events_path.touch()

    def events(self, service: str | None = None) -> list[dict[str, Any]]:
        lines = self.events_path.read_text().splitlines()
        found = [json.loads(line) for line in lines if line.strip()]
        return [e for e in found if service is None or e["service"] == service]

    def held(self, service: str = "logind") -> list[int]:
        """Ids of the inhibitors taken from ``service`` and not released."""
        taken = [e["id"] for e in self.events(service) if e["event"] == "inhibit"]
        released = {e["id"] for e in self.events(service) if e["event"] == "release"}
        return [i for i in taken if i not in released]

    def wait_for(self, check: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what or check}; events: {self.events()}")

    def close(self) -> None:
        for process in reversed(self._processes):
            process.kill()
            process.wait(10)
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()


def start_buses(folder: Path, *, logind: bool, desktop: bool, system_bus: bool = True,
                extra: list[str] | None = None) -> Buses:  # fmt: skip
    """A system bus (with the fake logind when ``logind``) and, with ``desktop``, a session bus with the fake
    desktop inhibitors. ``system_bus=False``: no system bus at all (the address names a socket that is not there)."""
    if shutil.which("dbus-daemon") is None:
        pytest.fail("dbus-daemon is missing: install the Debian package 'dbus' (scripts/test does)")
    buses = Buses(folder)
    service_args = [sys.executable, str(HERE / "fake_services.py"), str(buses.events_path), *(extra or [])]
    if system_bus:
        daemon, address = _start_bus(folder, "system")
        buses._processes.append(daemon)
        buses.env["DBUS_SYSTEM_BUS_ADDRESS"] = address
        if logind:
            service_args += ["--logind", address]
    else:
        buses.env["DBUS_SYSTEM_BUS_ADDRESS"] = f"unix:path={folder / 'no-system-bus.socket'}"
    if desktop:
        daemon, address = _start_bus(folder, "session")
        buses._processes.append(daemon)
        buses.env["DBUS_SESSION_BUS_ADDRESS"] = address
        service_args += ["--desktop", address]
    if logind or desktop:
        services = subprocess.Popen(service_args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        buses._processes.append(services)
        assert services.stdout is not None
        if services.stdout.readline().strip() != "ready":
            buses.close()
            raise RuntimeError("the fake D-Bus services did not start")
    return buses


@pytest.fixture
def bus_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[Buses], None]:
    """Point this process's environment (which server subprocesses inherit) at the given buses, and only them."""

    def use(buses: Buses) -> None:
        for name in _SCRUBBED:
            monkeypatch.delenv(name, raising=False)
        for name, value in buses.env.items():
            monkeypatch.setenv(name, value)

    return use


@pytest.fixture
def make_buses(tmp_path: Path, bus_env: Callable[[Buses], None]) -> Iterator[Callable[..., Buses]]:
    made: list[Buses] = []

    def make(**kwargs: Any) -> Buses:
        buses = start_buses(tmp_path / f"buses{len(made)}", **kwargs)
        made.append(buses)
        bus_env(buses)
        return buses

    yield make
    for buses in made:
        buses.close()


def env_without_buses() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _SCRUBBED and not k.startswith("PYFILEDROP_")}
