"""Three real ``pyfiledrop serve`` replicas on one set of stores, behind a real nginx (round-robin, no stickiness).

The stores are a parameter (``BACKENDS``): each entry gives the serve arguments that select them. Today: a local
storage folder with its SQLite database, shared by the three processes. PostgreSQL and S3 are one line each once
those backends exist, e.g. ``"postgres+s3": lambda tmp, request: ["--storage", request.getfixturevalue("s3_url"),
"--database", request.getfixturevalue("postgres_url")]``.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess, free_port
from tests.interop.conftest import make_source, tus_js  # noqa: F401 - fixtures for this folder's tests

CONFIG_TEMPLATE = Path(__file__).parents[2] / "docs" / "nginx" / "pyfiledrop.conf"
REPLICAS = 3

Backend = Callable[[Path, pytest.FixtureRequest], list[str]]
BACKENDS: dict[str, Backend] = {
    "local+sqlite": lambda tmp, _request: ["--storage", str(tmp / "storage")],
}


class Replica(ServerProcess):
    """A ``pyfiledrop serve`` whose stores come from the backend's arguments (the last ``--storage`` wins)."""

    backend_args: list[str]

    def start(self, timeout: float = 20.0, scheme: str = "http") -> Replica:
        saved = self.extra_args
        self.extra_args = [*saved, *self.backend_args]
        try:
            super().start(timeout, scheme)
        finally:
            self.extra_args = saved
        return self


def render_config(replicas: list[ServerProcess], listen_port: int) -> str:
    """The shipped template with this cluster's replicas and listening address filled in."""
    template = CONFIG_TEMPLATE.read_text()
    servers = "\n    ".join(f"server 127.0.0.1:{r.port} max_fails=1 fail_timeout=2s;" for r in replicas)
    rendered = template.replace("@REPLICAS@", servers).replace("@LISTEN@", f"listen 127.0.0.1:{listen_port};")
    assert "@" not in re.sub(r"#.*", "", rendered), "a placeholder was left in the nginx config"
    return rendered


@dataclass
class Nginx:
    """nginx as a foreground subprocess of the test, as the current user, everything under ``prefix``."""

    prefix: Path
    replicas: list[ServerProcess]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Nginx:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            pytest.fail("the replica tests need nginx (Debian: apt-get install nginx-light)")
        self.prefix.mkdir(parents=True, exist_ok=True)
        (self.prefix / "pyfiledrop.conf").write_text(render_config(self.replicas, self.port))
        user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""  # root: workers stay root, not nobody
        temp = "\n".join(f"    {kind}_temp_path {self.prefix / kind};" for kind in
                         ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))  # fmt: skip
        (self.prefix / "nginx.conf").write_text(
            f"{user}\ndaemon off;\nworker_processes 1;\npid {self.prefix / 'nginx.pid'};\n"
            f"error_log {self.prefix / 'error.log'} info;\nevents {{ worker_connections 512; }}\n"
            "http {\n    log_format upstream '$request_method $status $upstream_addr';\n"
            f"    access_log {self.prefix / 'access.log'} upstream;\n{temp}\n"
            f"    include {self.prefix / 'pyfiledrop.conf'};\n}}\n"
        )
        command = [binary, "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf"), "-e",
                   str(self.prefix / "error.log")]  # fmt: skip
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stderr
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.error_log()
            try:
                if httpx.get(f"{self.url}/api/config", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx did not start:\n{self.error_log()}")

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def upstreams(self) -> list[str]:
        """The replica (address) each proxied request went to, from the access log's ``$upstream_addr``."""
        return [line.split()[-1] for line in (self.prefix / "access.log").read_text().splitlines()]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGQUIT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


@dataclass
class Cluster:
    replicas: list[Replica]
    nginx: Nginx
    backend: str

    @property
    def url(self) -> str:
        return self.nginx.url


def start_cluster(tmp: Path, backend: str, request: pytest.FixtureRequest, extra: list[str]) -> Iterator[Cluster]:
    args = BACKENDS[backend](tmp, request)
    replicas: list[Replica] = []
    nginx = None
    try:
        for _ in range(REPLICAS):
            replica = Replica(tmp / "storage", ["--behind-proxy", "--allow-downloads", "--timeout", "10000", *extra])
            replica.backend_args = args
            replicas.append(replica)
        # Started one after the other: the first one's start-up recovery runs alone, then the others join.
        for replica in replicas:
            replica.start()
        nginx = Nginx(tmp / "nginx", list(replicas)).start()
        yield Cluster(replicas, nginx, backend)
    finally:
        if nginx is not None:
            nginx.stop()
        for replica in replicas:
            replica.kill()


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three replicas and nginx, shared by a module's tests (a test that kills a replica starts it again)."""
    yield from start_cluster(tmp_path_factory.mktemp("cluster"), request.param, request, [])
