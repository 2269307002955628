"""Fixtures: a real pyfiledrop server (the shipped CLI and its own HTTP server, a real socket) in a subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import httpx
import pytest

from tests.backends import postgres, postgres_url, s3_server  # noqa: F401 - session fixtures for every suite

ADMIN_TOKEN = "test-admin-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    """``pyfiledrop serve`` on 127.0.0.1; can be killed with SIGKILL and started again on the same storage."""

    storage: Path
    extra_args: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    database: str | None = None  # a PostgreSQL URL (--database); see ``start``

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launcher(self) -> list[str]:
        """The command that starts ``pyfiledrop serve`` (a subclass may start it another way)."""
        return [sys.executable, "-m", "pyfiledrop"]

    def start(self, timeout: float = 20.0, scheme: str = "http") -> Self:
        args = [*self.launcher(), "serve", "--host", "127.0.0.1", "-p", str(self.port),
                "-s", str(self.storage), "--admin-token", ADMIN_TOKEN, *self.extra_args]  # fmt: skip
        if self.database is None and (server := os.environ.get("PYFILEDROP_TEST_SERVER_POSTGRES")):
            from tests.pg import Cluster  # opt-in: every server of the suite on PostgreSQL, a database each

            self.database = Cluster(server).database("server")
        if self.database is not None:
            args += ["--database", self.database]
        logs = Path(tempfile.gettempdir()) / "pyfiledrop-test-logs"
        logs.mkdir(exist_ok=True)
        restart = self.log_path is not None  # a restart of this server appends; a first start begins a new log
        self.log_path = logs / f"server-{self.port}.log"  # (a port may have served an earlier run's server too)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYFILEDROP_")}
        with self.log_path.open("ab" if restart else "wb") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                ready = f"{scheme}://127.0.0.1:{self.port}/api/config"
                if httpx.get(ready, timeout=1, verify=False).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown code runs."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self._wait_port_closed()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._wait_port_closed()

    def _wait_port_closed(self) -> None:
        for _ in range(200):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.05)


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the many tests that do not restart it (downloads allowed, small max size)."""
    root = tmp_path_factory.mktemp("shared")
    server = ServerProcess(root / "storage", ["--allow-downloads", "--max-size", "64", "--timeout", "5000"]).start()
    yield server
    server.stop()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[type[ServerProcess]]:
    started: list[ServerProcess] = []

    class _Factory(ServerProcess):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            started.append(self)

    yield _Factory
    for server in started:
        server.kill()


@pytest.fixture
def client(shared_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_server.url, timeout=30) as c:
        yield c


@pytest.fixture
def owner(client: httpx.Client) -> str:
    """A fresh owner token, as a browser or script would get it."""
    token = client.get("/api/session").json()["token"]
    client.cookies.clear()
    return str(token)
