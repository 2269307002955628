"""Three real ``pyfiledrop serve`` replicas on one set of stores, behind a real nginx (round-robin, no stickiness).

The stores are a parameter (``BACKENDS``): each entry gives the serve arguments that select them.

* ``local+sqlite``: one storage folder with its SQLite database, shared by the three processes (one machine);
* ``postgres+s3``: a bucket on the session's SeaweedFS and a database on the session's PostgreSQL
  (tests/backends.py), and nothing else shared — each replica has its own ``--state-dir`` (``@REPLICA@`` in an
  argument is the replica's number), as replicas on different machines would.
"""

from __future__ import annotations

import getpass
import hashlib
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
import psycopg
import pytest

from tests.conftest import ServerProcess, free_port
from tests.interop.conftest import make_source, tus_js  # noqa: F401 - fixtures for this folder's tests
from tests.pg import Cluster as PostgresServer
from tests.weed import S3Server

CONFIG_TEMPLATE = Path(__file__).parents[2] / "docs" / "nginx" / "pyfiledrop.conf"
REPLICAS = 3

Backend = Callable[[Path, pytest.FixtureRequest], list[str]]


def _postgres_s3(tmp: Path, request: pytest.FixtureRequest) -> list[str]:
    s3: S3Server = request.getfixturevalue("s3_server")
    postgres: PostgresServer = request.getfixturevalue("postgres")
    return ["--storage", f"s3://{s3.new_bucket()}/drop", "--s3-endpoint", s3.endpoint,
            "--database", postgres.database("replicas"), "--state-dir", str(tmp / "state-@REPLICA@")]  # fmt: skip


BACKENDS: dict[str, Backend] = {
    "local+sqlite": lambda tmp, _request: ["--storage", str(tmp / "storage")],
    "postgres+s3": _postgres_s3,
}


class Replica(ServerProcess):
    """A ``pyfiledrop serve`` whose stores come from the backend's arguments (the last ``--storage`` wins)."""

    backend_args: list[str]

    def start(self, timeout: float = 60.0, scheme: str = "http") -> Replica:
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
    args: list[str] = field(default_factory=list)  # the backend's serve arguments
    s3: S3Server | None = None

    @property
    def url(self) -> str:
        return self.nginx.url

    def option(self, name: str) -> str | None:
        """The value of a serve option among the backend's arguments (the last one wins, as in the server)."""
        values = [self.args[i + 1] for i, arg in enumerate(self.args[:-1]) if arg == name]
        return values[-1] if values else None

    @property
    def bucket(self) -> str | None:
        storage = self.option("--storage") or ""
        return storage.removeprefix("s3://").split("/")[0] if storage.startswith("s3://") else None

    def open_multiparts(self) -> list[str]:
        """The bucket's multipart uploads not yet completed or aborted (none on local storage)."""
        if self.s3 is None or self.bucket is None:
            return []
        uploads = self.s3.client().list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
        return [str(upload["Key"]) for upload in uploads]

    def stored_copies(self, sha256: str) -> int:
        """How many stored files hold this content: files in the shared folder, or blob objects in the bucket
        whose record (in PostgreSQL) has this sha256."""
        if self.s3 is None or self.bucket is None:
            return len(_local_copies(self.replicas[0].storage, sha256))
        storage = self.option("--storage") or ""
        folder = "/".join([*filter(None, storage.removeprefix("s3://").split("/")[1:]), "blobs", ""])
        listed = self.s3.client().list_objects_v2(Bucket=self.bucket, Prefix=folder).get("Contents", [])
        objects = {str(item["Key"]).removeprefix(folder) for item in listed}
        with psycopg.connect(self.option("--database") or "", connect_timeout=10) as connection:
            rows = connection.execute("SELECT key FROM blobs WHERE sha256 = %s AND refs > 0", (sha256,)).fetchall()
        return len({key for (key,) in rows} & objects)


def check_no_dangling_multiparts(cluster: Cluster, admin_token: str) -> None:
    """On S3, after a module's uploads: every multipart upload still open belongs to an upload that is still
    receiving (a creation nobody finished is entitled to its multipart upload); terminating those aborts them,
    and then the bucket lists none — nothing was left behind by completions, kills, retries or joins."""
    if cluster.s3 is None:
        pytest.skip("local storage has no multipart uploads")
    admin = {"x-pyfiledrop-token": admin_token}
    deadline = time.monotonic() + 30  # a background join or read-back may still be finishing
    while time.monotonic() < deadline:
        unfinished = []
        for key in cluster.open_multiparts():
            info = httpx.get(f"{cluster.url}/api/uploads/{key.rsplit('/', 1)[-1]}", headers=admin, timeout=10)
            assert info.status_code == 200, (key, info.status_code)  # a multipart upload without a record: dangling
            unfinished.append(info.json())
        if all(not upload["complete"] for upload in unfinished):
            break
        time.sleep(0.2)
    for upload in unfinished:
        assert not upload["complete"], upload  # complete, yet its multipart upload was never completed
        deleted = httpx.delete(f"{cluster.url}/api/uploads/{upload['id']}", headers=admin, timeout=30)
        assert deleted.status_code in (200, 204), deleted.text
    assert cluster.open_multiparts() == []


def _local_copies(storage: Path, sha256: str) -> list[Path]:
    """Finished files in the shared storage folder with this content."""
    found = []
    for path in storage.iterdir():
        if path.is_file() and not path.name.startswith(".") and path.stat().st_size > 0:
            with path.open("rb") as file:
                if hashlib.file_digest(file, "sha256").hexdigest() == sha256:
                    found.append(path)
    return found


def wait_complete(url: str, upload_id: str, token: str, seconds: float = 60.0) -> None:
    """Until the upload is complete as seen at ``url``: a tus final upload is joined in the background by the
    replica that received its POST (engine/concat.py); the others see it ``receiving`` until then."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        info = httpx.get(f"{url}/api/uploads/{upload_id}", headers={"x-pyfiledrop-token": token}, timeout=10)
        if info.status_code == 200 and info.json().get("complete"):
            return
        time.sleep(0.1)
    raise AssertionError(f"{upload_id} not complete after {seconds} s")


def start_cluster(tmp: Path, backend: str, request: pytest.FixtureRequest, extra: list[str]) -> Iterator[Cluster]:
    args = BACKENDS[backend](tmp, request)
    s3 = request.getfixturevalue("s3_server") if any(arg.startswith("s3://") for arg in args) else None
    replicas: list[Replica] = []
    nginx = None
    try:
        for number in range(REPLICAS):
            replica = Replica(tmp / "storage", ["--behind-proxy", "--allow-downloads", "--timeout", "10000", *extra])
            replica.backend_args = [arg.replace("@REPLICA@", str(number)) for arg in args]
            replicas.append(replica)
        # Started one after the other: the first one's start-up recovery runs alone, then the others join.
        for replica in replicas:
            replica.start()
        nginx = Nginx(tmp / "nginx", list(replicas)).start()
        yield Cluster(replicas, nginx, backend, args, s3)
    finally:
        if nginx is not None:
            nginx.stop()
        for replica in replicas:
            replica.kill()


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three replicas and nginx, shared by a module's tests (a test that kills a replica starts it again)."""
    yield from start_cluster(tmp_path_factory.mktemp("cluster"), request.param, request, [])
