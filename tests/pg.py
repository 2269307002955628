"""A PostgreSQL server for tests: ``PYFILEDROP_TEST_POSTGRES`` (a URL to a server where the user may create
databases) when set, otherwise a throw-away cluster made with the machine's ``initdb`` in a temporary folder,
listening on 127.0.0.1 only, on a free port, stopped and removed at the end.

initdb and the server refuse to run as root: as root they run as the ``postgres`` user (Debian's package makes it),
in a folder that user owns.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

ENV = "PYFILEDROP_TEST_POSTGRES"
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 20.0


def binaries() -> Path | None:
    """The folder with ``initdb`` and ``postgres``: Debian's versioned one, or the PATH's."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """A running server; ``database()`` makes a fresh, empty database and returns its URL."""

    def __init__(self, admin_url: str, process: subprocess.Popen[bytes] | None = None, folder: Path | None = None):
        self.admin_url = admin_url
        self.process = process
        self.folder = folder

    @classmethod
    def start(cls) -> Cluster:
        given = os.environ.get(ENV)
        if given:
            return cls(given)
        bin_dir = binaries()
        if bin_dir is None:
            raise FileNotFoundError("no PostgreSQL binaries (initdb) on this machine")
        folder = Path(tempfile.mkdtemp(prefix="pyfiledrop-pg-"))
        user = _run_as()
        if user is not None:
            os.chown(folder, user.pw_uid, user.pw_gid)
        data = folder / "data"
        subprocess.run(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True, timeout=120, **_as_user(user),
        )  # fmt: skip
        port = _free_port()
        log = (folder / "server.log").open("wb")
        process = subprocess.Popen(
            [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(folder),
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=300"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **_as_user(user),
        )  # fmt: skip
        log.close()
        cluster = cls(f"postgresql://postgres@127.0.0.1:{port}/postgres", process, folder)
        cluster._wait_ready()
        return cluster

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"postgres exited early:\n{self.log()}")
            try:
                psycopg.connect(self.admin_url, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"postgres did not start:\n{self.log()}")

    def log(self) -> str:
        path = self.folder / "server.log" if self.folder else None
        return path.read_text(errors="replace") if path and path.exists() else ""

    def database(self, prefix: str = "t") -> str:
        name = f"{prefix}_{secrets.token_hex(6)}"
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"'.encode())
        info = psycopg.conninfo.conninfo_to_dict(self.admin_url)
        info["dbname"] = name
        return f"postgresql://{info.get('user', 'postgres')}@{info['host']}:{info.get('port', 5432)}/{name}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)  # fast shutdown
            try:
                self.process.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(_STOP_TIMEOUT)
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def _run_as() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise FileNotFoundError("running as root, and there is no 'postgres' user to run the server as") from None


def _as_user(user: pwd.struct_passwd | None) -> dict[str, object]:
    if user is None:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": [], "env": {**os.environ, "HOME": user.pw_dir}}
