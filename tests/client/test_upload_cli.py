"""`pyfiledrop upload` against a real server: sha256 printed, -j, resume after a kill, stdin, retries, failures."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess, free_port


def _env(state: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PYFILEDROP_")}
    return {**base, "PYFILEDROP_STATE": str(state)}


def _upload(
    *args: str, state: Path, stdin: bytes | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "pyfiledrop", "upload", *args], input=stdin, capture_output=True,
                          env=_env(state), timeout=timeout)  # fmt: skip


def _spawn(*args: str, state: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "pyfiledrop", "upload", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=_env(state))  # fmt: skip


def _random_file(path: Path, size: int) -> str:
    data = os.urandom(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def _json_lines(out: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


def _state_entries(state: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(state.read_text())["uploads"])
    except (OSError, ValueError, KeyError):
        return {}


@pytest.fixture
def server(make_server: type[ServerProcess], tmp_path: Path) -> ServerProcess:
    return make_server(tmp_path / "s", ["--allow-downloads"]).start()


def test_upload_prints_download_url_and_sha256(server: ServerProcess, tmp_path: Path) -> None:
    source = tmp_path / "report final.bin"
    digest = _random_file(source, 3_000_000)
    result = _upload(str(source), "--url", server.url, state=tmp_path / "state.json")
    assert result.returncode == 0, result.stderr.decode()
    url, sha256, name = result.stdout.decode().strip().split("  ")
    assert sha256 == digest
    assert name == "report final.bin"
    assert url.startswith(f"{server.url}/download/")
    downloaded = httpx.get(url, timeout=30)
    assert downloaded.status_code == 200
    assert hashlib.sha256(downloaded.content).hexdigest() == digest
    assert _state_entries(tmp_path / "state.json") == {}  # finished uploads leave no state behind


def test_parallel_streams_are_joined_by_concatenation(server: ServerProcess, tmp_path: Path) -> None:
    source = tmp_path / "parallel.bin"
    digest = _random_file(source, 9 * 1024 * 1024 + 123)
    result = _upload(str(source), "--url", server.url, "-j", "4", "--json", "--verify", state=tmp_path / "st.json")
    assert result.returncode == 0, result.stderr.decode()
    [record] = _json_lines(result.stdout)
    assert record["sha256"] == digest and record["streams"] == 4 and record["verified"] is True
    assert record["size"] == source.stat().st_size
    assert hashlib.sha256(httpx.get(record["download_url"], timeout=30).content).hexdigest() == digest


def test_several_files_and_an_empty_one(server: ServerProcess, tmp_path: Path) -> None:
    files = [tmp_path / "a.txt", tmp_path / "empty", tmp_path / "c.bin"]
    digests = [_random_file(files[0], 10), _random_file(files[1], 0), _random_file(files[2], 2_000_001)]
    result = _upload(*map(str, files), "--url", server.url, "--json", "-j", "2", state=tmp_path / "st.json")
    assert result.returncode == 0, result.stderr.decode()
    records = _json_lines(result.stdout)
    assert [r["sha256"] for r in records] == digests
    assert [r["name"] for r in records] == ["a.txt", "empty", "c.bin"]


@pytest.mark.slow
@pytest.mark.parametrize("jobs", ["1", "3", "auto"])
def test_resume_after_the_client_is_killed_resends_less(server: ServerProcess, tmp_path: Path, jobs: str) -> None:
    source = tmp_path / "big.bin"
    size = 24 * 1024 * 1024
    digest = _random_file(source, size)
    state = tmp_path / "state.json"
    slow = _spawn(str(source), "--url", server.url, "-j", jobs, "--limit-rate", "6M", "--json", state=state)
    try:
        deadline = time.monotonic() + 30
        received = 0
        while time.monotonic() < deadline and received < 4 * 1024 * 1024:
            time.sleep(0.2)
            assert slow.poll() is None, slow.stderr.read() if slow.stderr else ""
            entries = _state_entries(state)
            if entries:
                [entry] = entries.values()
                received = _server_bytes(server, entry["parts"])
        assert received >= 4 * 1024 * 1024, "the slow upload made no progress"
    finally:
        slow.send_signal(signal.SIGKILL)
        slow.communicate(timeout=10)
    result = _upload(str(source), "--url", server.url, "-j", jobs, "--json", state=state)
    assert result.returncode == 0, result.stderr.decode()
    [record] = _json_lines(result.stdout)
    assert record["sha256"] == digest
    assert record["resumed_from"] >= 4 * 1024 * 1024
    assert record["sent_bytes"] <= size - record["resumed_from"]
    assert b"resuming at" in result.stderr
    assert hashlib.sha256(httpx.get(record["download_url"], timeout=30).content).hexdigest() == digest
    assert _state_entries(state) == {}


def _server_bytes(server: ServerProcess, parts: list[list[Any]]) -> int:
    """Bytes the server holds for these parts (tus parts, or regions of one upload: count each upload once)."""
    total = 0
    for url in {url for url, _start, _length in parts}:
        status = httpx.get(f"{server.url}/api/uploads/{url.rsplit('/', 1)[-1]}", timeout=10)
        total += int(status.json().get("received_bytes", 0)) if status.status_code == 200 else 0
    return total


def test_a_changed_file_does_not_resume_into_old_bytes(server: ServerProcess, tmp_path: Path) -> None:
    source = tmp_path / "f.bin"
    _random_file(source, 1000)
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"uploads": {f"{server.url}|{source}|999|1": {"parts": [["/files/x", 0, 999]]}}}))
    digest = _random_file(source, 1000)
    result = _upload(str(source), "--url", server.url, "--json", state=state)
    assert result.returncode == 0, result.stderr.decode()
    assert _json_lines(result.stdout)[0]["sha256"] == digest


def test_a_forgotten_upload_starts_over(server: ServerProcess, tmp_path: Path) -> None:
    source = tmp_path / "f.bin"
    digest = _random_file(source, 5000)
    st = source.stat()
    state = tmp_path / "state.json"
    key = f"{server.url}|{source}|{st.st_size}|{st.st_mtime_ns}"
    state.write_text(json.dumps({"uploads": {key: {"parts": [["/files/AAAAAAAAAAAAAAAAAAAAAAAA", 0, 5000]]}}}))
    result = _upload(str(source), "--url", server.url, "--json", state=state)
    assert result.returncode == 0, result.stderr.decode()
    assert _json_lines(result.stdout)[0]["sha256"] == digest
    assert b"starting over" in result.stderr


def test_stdin_with_deferred_length(server: ServerProcess, tmp_path: Path) -> None:
    data = os.urandom(17 * 1024 * 1024 + 5)  # more than one 16 MiB PATCH
    result = _upload("-", "--url", server.url, "--name", "dump.sql", "--json", state=tmp_path / "s.json", stdin=data)
    assert result.returncode == 0, result.stderr.decode()
    [record] = _json_lines(result.stdout)
    assert record["sha256"] == hashlib.sha256(data).hexdigest()
    assert record["name"] == "dump.sql" and record["size"] == len(data) and record["verified"] is True
    assert httpx.get(record["download_url"], timeout=30).content == data


@pytest.mark.parametrize("data", [b"", b"x", os.urandom(16 * 1024 * 1024)])
def test_stdin_edge_sizes(server: ServerProcess, tmp_path: Path, data: bytes) -> None:
    result = _upload("-", "--url", server.url, state=tmp_path / "s.json", stdin=data)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().split("  ")[1] == hashlib.sha256(data).hexdigest()


@pytest.mark.slow
def test_retries_through_a_server_restart(make_server: type[ServerProcess], tmp_path: Path) -> None:
    server = make_server(tmp_path / "s", ["--allow-downloads"]).start()
    source = tmp_path / "big.bin"
    digest = _random_file(source, 12 * 1024 * 1024)
    state = tmp_path / "state.json"
    client = _spawn(str(source), "--url", server.url, "--limit-rate", "4M", "--json", state=state)
    try:
        time.sleep(1.0)
        assert client.poll() is None
        server.kill()
        time.sleep(0.5)
        server.start()
        out, err = client.communicate(timeout=90)
    finally:
        if client.poll() is None:
            client.kill()
            client.communicate(timeout=10)
    assert client.returncode == 0, err.decode()
    assert _json_lines(out)[0]["sha256"] == digest
    assert b"retry 1/" in err


def test_server_down_fails_with_a_non_zero_exit(tmp_path: Path) -> None:
    source = tmp_path / "f.bin"
    _random_file(source, 100)
    started = time.monotonic()
    result = _upload(str(source), "--url", f"http://127.0.0.1:{free_port()}", "--retries", "2",
                     state=tmp_path / "s.json", timeout=60)  # fmt: skip
    assert result.returncode == 1
    assert b"connection refused" in result.stderr and b"Traceback" not in result.stderr
    assert result.stdout == b""
    assert time.monotonic() - started < 30


def test_a_missing_file_fails_but_the_others_upload(server: ServerProcess, tmp_path: Path) -> None:
    good = tmp_path / "good"
    digest = _random_file(good, 10)
    result = _upload(str(tmp_path / "missing"), str(good), "--url", server.url, state=tmp_path / "s.json")
    assert result.returncode == 1
    assert digest in result.stdout.decode()
    assert b"missing" in result.stderr and b"Traceback" not in result.stderr


def test_too_large_is_not_retried(make_server: type[ServerProcess], tmp_path: Path) -> None:
    server = make_server(tmp_path / "s", ["--max-size", "1"]).start()
    source = tmp_path / "f.bin"
    _random_file(source, 2 * 1024 * 1024)
    result = _upload(str(source), "--url", server.url, state=tmp_path / "s.json", timeout=30)
    assert result.returncode == 1
    assert b"413" in result.stderr and b"retry" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["f"], "--url is required"),
        (["f", "--url", "ftp://x"], "not an http"),
        (["f", "--url", "http://127.0.0.1:1", "-j", "0"], "--jobs"),
        (["f", "--url", "http://127.0.0.1:1", "--limit-rate", "fast"], "--limit-rate"),
        (["-", "-", "--url", "http://127.0.0.1:1"], "only once"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = _upload(*args, state=tmp_path / "s.json", timeout=30)
    assert result.returncode == 2
    assert message in result.stderr.decode()
    assert b"Traceback" not in result.stderr


@pytest.mark.parametrize("extension", [True, False], ids=["parallel-write", "concatenation"])
def test_parallel_streams_with_and_without_the_parallel_write_extension(
    server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extension: bool
) -> None:
    """With the extension: one upload, its regions written at once; without (another tus server): tus parts
    joined by concatenation. Both give the exact file."""
    import threading as _threading

    from pyfiledrop.client.state import StateStore
    from pyfiledrop.client.tus import Session, TusClient
    from pyfiledrop.client.upload import Options, upload_file

    if not extension:
        monkeypatch.setattr(TusClient, "supports_parallel_write", lambda self: False)
    creations: list[str | None] = []
    original_create = TusClient.create

    def counting_create(self: TusClient, *args: Any, **kwargs: Any) -> str:
        creations.append(kwargs.get("concat"))
        return original_create(self, *args, **kwargs)

    monkeypatch.setattr(TusClient, "create", counting_create)
    source = tmp_path / "pair.bin"
    digest = _random_file(source, 5 * 1024 * 1024 + 3)
    session = Session(server.url, None, 30)
    options = Options(url=server.url, jobs=3, state=StateStore(tmp_path / "state.json"))
    result = upload_file(str(source), options, session, _threading.Event())
    assert result.sha256 == digest and result.streams == 3
    if extension:
        assert creations == [None], "one upload, written in three regions"
    else:
        assert creations[:3] == ["partial"] * 3 and str(creations[3]).startswith("final;")
    assert hashlib.sha256(httpx.get(result.download_url, timeout=30).content).hexdigest() == digest
