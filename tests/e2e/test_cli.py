"""The CLI: flags, environment, config file, clear errors with exit code 2, banner, clean stop."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pyfiledrop import config
from tests.conftest import ServerProcess, free_port


def _run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PYFILEDROP_")}
    return subprocess.run([sys.executable, "-m", "pyfiledrop", *args], capture_output=True, text=True, timeout=30,
                          env={**base, **(env or {})}, cwd=cwd)  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "abc"], "--port must be an integer"),
        (["--port", "0"], "--port must be a positive integer"),
        (["--chunk-size", "-5"], "--chunk-size must be a positive integer"),
        (["--max-size", "1.5"], "--max-size must be an integer"),
        (["--timeout", "0"], "--timeout must be a positive integer"),
        (["--durability", "maybe"], "invalid choice"),
        (["--no-such-flag"], "unrecognized arguments"),
    ],
)
def test_invalid_values_print_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = _run("serve", "-s", str(tmp_path / "s"), *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_unwritable_storage_folder_exits_2(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = _run("-s", str(blocker / "storage"))
    assert result.returncode == 2 and "not writable" in result.stderr and "Traceback" not in result.stderr


def test_port_in_use_exits_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run("--host", "127.0.0.1", "-p", str(port), "-s", str(tmp_path / "s"))
    assert result.returncode == 2 and "already in use" in result.stderr


def test_environment_variables_set_flags(tmp_path: Path) -> None:
    result = _run("-s", str(tmp_path / "s"), env={"PYFILEDROP_PORT": "nope"})
    assert result.returncode == 2 and "--port must be an integer" in result.stderr


def test_precedence_is_flag_then_environment_then_file(tmp_path: Path) -> None:
    file = tmp_path / "pyfiledrop.toml"
    file.write_text("port = 1111\nchunk-size = 2048\nallow_downloads = true\nmax_size = 7\n")
    settings = config.load({"config": str(file), "port": "3333"}, {"PYFILEDROP_CHUNK_SIZE": "4096"})
    assert settings.port == 3333 and settings.chunk_size == 4096
    assert settings.allow_downloads is True and settings.max_size == 7


def test_unknown_config_file_key_is_an_error(tmp_path: Path) -> None:
    file = tmp_path / "bad.toml"
    file.write_text("colour = 'blue'\n")
    result = _run("--config", str(file), "-s", str(tmp_path / "s"))
    assert result.returncode == 2 and "unknown setting 'colour'" in result.stderr


def test_banner_prints_settings_urls_and_admin_token(tmp_path: Path) -> None:
    port = free_port()
    args = [sys.executable, "-m", "pyfiledrop", "--host", "127.0.0.1", "-p", str(port), "-s", str(tmp_path / "s"),
            "--chunk-size", "1048576", "--max-size", "50"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFILEDROP_")}
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                               start_new_session=True)  # fmt: skip
    try:
        lines: list[str] = []
        while not lines or not lines[-1].startswith("Admin token:"):
            lines.append(process.stdout.readline())  # type: ignore[union-attr]
            assert len(lines) < 40 and lines[-1], "".join(lines)
        text = "".join(lines)
        assert "Chunk size:       1024 KiB" in text and "Max file size:    50 MiB" in text
        assert f"http://127.0.0.1:{port}/" in text and "Admin token:" in text
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/config", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(20) == 0  # Ctrl+C is a clean stop
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        process.stdout.close()  # type: ignore[union-attr]


def test_ctrl_c_keeps_unfinished_uploads_resumable(make_server: type[ServerProcess], tmp_path: Path) -> None:
    server = make_server(tmp_path / "s").start()
    tus = {"tus-resumable": "1.0.0"}
    created = httpx.post(f"{server.url}/files/", headers={**tus, "upload-length": "20"})
    location = created.headers["location"]
    httpx.patch(location, content=b"0123456789",
                headers={**tus, "upload-offset": "0", "content-type": "application/offset+octet-stream"})  # fmt: skip
    server.stop()
    server.start()
    assert httpx.head(location, headers=tus).headers["upload-offset"] == "10"
    resume = {**tus, "upload-offset": "10", "content-type": "application/offset+octet-stream"}
    done = httpx.patch(location, content=b"abcdefghij", headers=resume)
    assert done.status_code == 204 and done.headers["upload-offset"] == "20"


def test_verify_command_reports_changed_files(make_server: type[ServerProcess], tmp_path: Path) -> None:
    server = make_server(tmp_path / "s").start()
    ids = [httpx.put(f"{server.url}/{n}.bin", content=os.urandom(4096), headers={"accept": "application/json"})
           .json()["id"] for n in ("good", "bad")]  # fmt: skip
    server.stop()
    assert _run("verify", "-s", str(server.storage)).returncode == 0
    bad = next(p for p in server.storage.iterdir() if p.name.startswith(ids[1]))
    bad.write_bytes(b"tampered")
    result = _run("verify", "-s", str(server.storage))
    assert result.returncode == 1
    assert f"CHANGED {bad.name}" in result.stdout and "1 file(s) changed or missing" in result.stdout


def test_log_lines_read_as_the_standard_formatter_writes_them() -> None:
    """The log formatter keeps the time text of the current second: lines must not differ from logging's own, also
    across a second boundary and back to an earlier second (a record made before another one, logged after it)."""
    from pyfiledrop.cli import _LineFormatter

    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    ours, standard = _LineFormatter(fmt), logging.Formatter(fmt)
    base = float(int(time.time()))
    for created in (base + 0.001, base + 0.999, base + 1.0, base + 0.5, base + 3600.25, base + 3600.25):
        record = logging.LogRecord("pyfiledrop.x", logging.INFO, __file__, 1, "done %s", ("a",), None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        assert ours.format(record) == standard.format(record)
