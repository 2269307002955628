"""`pyfiledrop upload` errors a person can act on: the URL tried, no HTML dump, no retries that cannot help."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyfiledrop.client.http import Connection, TransportError
from pyfiledrop.client.retry import retryable
from pyfiledrop.client.tus import normalize_url
from tests.conftest import ServerProcess, free_port


def _upload(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFILEDROP_")}
    return subprocess.run([sys.executable, "-m", "pyfiledrop", "upload", "--no-progress", *args], text=True,
                          capture_output=True, env={**env, "PYFILEDROP_STATE": str(state)}, timeout=60)  # fmt: skip


@pytest.fixture
def some_file(tmp_path: Path) -> Path:
    path = tmp_path / "a.bin"
    path.write_bytes(os.urandom(3000))
    return path


@pytest.fixture
def plain_web_server() -> Iterator[str]:
    """Python's own file server: POST answers 501 with an HTML page, as a random web server would."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_server_that_is_not_tus_is_named_with_its_status(
    plain_web_server: str, some_file: Path, tmp_path: Path
) -> None:
    result = _upload("--url", plain_web_server, "--retries", "3", str(some_file), state=tmp_path / "st.json")
    assert result.returncode == 1
    assert f"{plain_web_server}/ does not look like a pyfiledrop or tus server (HTTP 501)" in result.stderr
    assert "<" not in result.stderr and "retry" not in result.stderr  # no HTML, and not retried


def test_a_refused_connection_names_the_url_tried(some_file: Path, tmp_path: Path) -> None:
    port = free_port()
    result = _upload("--url", f"http://127.0.0.1:{port}", "--retries", "0", str(some_file), state=tmp_path / "s")
    assert result.returncode == 1
    assert f"http://127.0.0.1:{port}/files/: connection refused" in result.stderr


def test_a_host_name_that_cannot_resolve_is_not_retried(some_file: Path, tmp_path: Path) -> None:
    host = "x" * 64 + ".example"  # refused before any query: a label longer than 63 characters
    result = _upload("--url", f"http://{host}:16273", "--retries", "5", str(some_file), state=tmp_path / "s")
    assert result.returncode == 1
    assert f"http://{host}:16273/files/: cannot resolve host" in result.stderr
    assert "retry" not in result.stderr


def test_a_dns_failure_is_final(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_host(*args: object, **kwargs: object) -> list[object]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    conn = Connection(normalize_url("http://drop.example.org:16273"), 5)
    with pytest.raises(TransportError) as caught:
        conn.request("GET", "/api/config", {})
    assert not caught.value.transient and not retryable(caught.value)
    assert str(caught.value).startswith("http://drop.example.org:16273/api/config: cannot resolve host")


def test_a_missing_password_points_to_the_flag(
    make_server: type[ServerProcess], some_file: Path, tmp_path: Path
) -> None:
    server = make_server(tmp_path / "srv", ["--password", "hunter22"]).start()
    result = _upload("--url", server.url, "--retries", "3", str(some_file), state=tmp_path / "s")
    assert result.returncode == 1 and "--password" in result.stderr and "retry" not in result.stderr
    assert f"{server.url}/files/" in result.stderr
    wrong = _upload("--url", server.url, "--password", "nope", str(some_file), state=tmp_path / "s")
    assert wrong.returncode == 1 and "is wrong" in wrong.stderr
    right = _upload("--url", server.url, "--password", "hunter22", str(some_file), state=tmp_path / "s")
    assert right.returncode == 0, right.stderr


def test_json_gives_absolute_urls(make_server: type[ServerProcess], some_file: Path, tmp_path: Path) -> None:
    server = make_server(tmp_path / "srv", ["--allow-downloads"]).start()
    result = _upload("--url", server.url, "--json", str(some_file), state=tmp_path / "s")
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stdout)
    assert line["upload_url"].startswith(f"{server.url}/files/")
    assert line["download_url"].startswith(f"{server.url}/")
    assert "MiB/s" in result.stderr or "KiB/s" in result.stderr  # the page's units in the summary
