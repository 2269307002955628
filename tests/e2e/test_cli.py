"""The CLI: flags, environment, config file, clear errors with exit code 2, banner, clean stop."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
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
        (["--chunk-size", "-5"], "--chunk-size must be a size like 10G, 8M"),
        (["--chunk-size", "0"], "--chunk-size must be more than 0 bytes"),
        (["--page-chunk-size", "0"], "--page-chunk-size must be more than 0 bytes"),
        (["--max-size", "1.5X"], "--max-size must be a size like 10G, 8M, 2TiB or a number of MiB"),
        (["--timeout", "0"], "--timeout must be longer than 0 seconds"),
        (["--timeout", "5 fortnights"], "--timeout must be a duration like 90s, 2m"),
        (["--stale-after", "-1"], "--stale-after must be a duration"),
        (["--min-free", "lots"], "--min-free must be a size"),
        (["--cors-origins", "example.org"], "--cors-origins takes * or origins"),
        (["--log-format", "xml"], "invalid choice"),
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
    assert settings.allow_downloads is True and settings.max_size_bytes == 7 << 20  # a bare number: MiB


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"max_size": "10G"}, {"max_size_bytes": 10 << 30}),
        ({"max_size": "64"}, {"max_size_bytes": 64 << 20}),  # the seed's MiB
        ({"max_size": "500000B"}, {"max_size_bytes": 500_000}),
        ({"chunk_size": "8M"}, {"chunk_size": 8 << 20}),
        ({"chunk_size": "500000"}, {"chunk_size": 500_000}),
        ({"chunk_size": "2MB"}, {"chunk_size": 2_000_000}),
        ({"quota": "2T"}, {"quota_bytes": 2 << 40}),
        ({"owner_quota": "1.5G"}, {"owner_quota_bytes": 3 << 29}),
        ({"min_free": "0"}, {"min_free_bytes": 0}),
        ({"min_free": "10G"}, {"min_free_bytes": 10 << 30}),
        ({"timeout": "90s"}, {"timeout": 90_000}),
        ({"timeout": "2m"}, {"timeout": 120_000}),
        ({"timeout": "5000"}, {"timeout": 5_000}),  # the seed's milliseconds (Dropzone's timeout)
        ({"stale_after": "1d"}, {"stale_after": 86_400}),
        ({"stale_after": "90"}, {"stale_after": 90}),
        ({"expire_after": "2h"}, {"expire_after_seconds": 7200}),
    ],
)
def test_one_size_and_one_duration_syntax(flags: dict[str, str], expected: dict[str, int]) -> None:
    settings = config.load(flags, {})
    assert {name: getattr(settings, name) for name in expected} == expected


@pytest.mark.parametrize(
    ("flags", "environ", "chunk", "page_chunk"),
    [
        ({}, {}, 8 << 20, 32 << 20),  # nothing set: tus clients are told 8 MiB, the page sends 32 MiB per request
        ({"chunk_size": "1M"}, {}, 1 << 20, 1 << 20),  # set to fit a proxy's body limit: the page keeps to it
        ({}, {"PYFILEDROP_CHUNK_SIZE": "8M"}, 8 << 20, 8 << 20),  # given, even when it is the default
        ({"chunk_size": "1M", "page_chunk_size": "16M"}, {}, 1 << 20, 16 << 20),
        ({"page_chunk_size": "4M"}, {}, 8 << 20, 4 << 20),
    ],
)
def test_the_pages_chunk_follows_chunk_size_when_the_operator_sets_it(
    flags: dict[str, str], environ: dict[str, str], chunk: int, page_chunk: int
) -> None:
    settings = config.load(flags, environ)
    assert (settings.chunk_size, settings.page_chunk) == (chunk, page_chunk)


def test_default_min_free_is_1_gib_or_2_percent_of_the_volume(tmp_path: Path) -> None:
    settings = config.load({"storage": str(tmp_path)}, {})
    volume = os.statvfs(tmp_path)
    share = int(volume.f_blocks * volume.f_frsize * 0.02)
    assert settings.min_free_bytes == max(1 << 30, share) > 0
    assert config.load({"storage": str(tmp_path), "min_free": "0"}, {}).min_free_bytes == 0


def test_min_free_refuses_an_upload_that_would_fill_the_disk(make_server: type[ServerProcess], tmp_path: Path) -> None:
    tus = {"tus-resumable": "1.0.0"}
    free = shutil.disk_usage(tmp_path).free
    server = make_server(tmp_path / "s", ["--min-free", str(max(free - (256 << 20), 1))]).start()
    refused = httpx.post(f"{server.url}/files/", headers={**tus, "upload-length": str(512 << 20)})
    assert refused.status_code == 507, refused.text
    assert httpx.post(f"{server.url}/files/", headers={**tus, "upload-length": "100"}).status_code == 201


def test_every_flag_has_help_text() -> None:
    from pyfiledrop.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in commands.choices.items():
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help text"


def test_unknown_config_file_key_is_an_error(tmp_path: Path) -> None:
    file = tmp_path / "bad.toml"
    file.write_text("colour = 'blue'\n")
    result = _run("--config", str(file), "-s", str(tmp_path / "s"))
    assert result.returncode == 2 and "unknown setting 'colour'" in result.stderr


def test_banner_leads_with_addresses_then_admin_link_then_settings(tmp_path: Path) -> None:
    port = free_port()
    args = [sys.executable, "-m", "pyfiledrop", "--host", "127.0.0.1", "-p", str(port), "-s", str(tmp_path / "s"),
            "--chunk-size", "1M", "--max-size", "50", "--timeout", "90s",
            "--admin-token", "banner-admin-token-123"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFILEDROP_")}
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                               start_new_session=True)  # fmt: skip
    try:
        lines: list[str] = []
        while not lines or not lines[-1].startswith("Ctrl+C to stop"):
            lines.append(process.stdout.readline())  # type: ignore[union-attr]
            assert len(lines) < 40 and lines[-1], "".join(lines)
        text = "".join(lines)
        url = f"http://127.0.0.1:{port}/"
        assert text.index(url) < text.index("Admin:") < text.index("Settings:") < text.index("Ctrl+C to stop")
        assert text.count("banner-admin-token-123") == 1 and f"Admin:  {url}?admin=banner-admin-token-123" in text
        assert "up to 50.0 MiB per file" in text and "Chunks      1.0 MiB" in text and "timeout 1m30s" in text
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


def test_banner_lists_every_lan_address_from_the_interfaces(tmp_path: Path) -> None:
    """Not from the host name (127.0.1.1 on Debian): every non-loopback address `ip` shows, IPv6 in brackets."""
    from pyfiledrop import cli, listen

    shown = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True, check=False).stdout
    expected = set()
    for line in shown.splitlines():
        words = line.split()
        family, address = words[2], words[3].split("/")[0]
        if words[1] != "lo" and (family == "inet" or (family == "inet6" and "scope global" in line)):
            expected.add(address)
    assert set(listen.lan_addresses()) == expected
    text = cli.banner(config.load({"storage": str(tmp_path), "port": "4444"}, {}), "t0ken")
    for address in expected:
        assert f"http://{listen.url_host(address)}:4444/" in text
    assert "http://127.0.0.1:4444/" in text and text.count("t0ken") == 1


def test_default_host_listens_on_ipv6_and_ipv4(make_server: type[ServerProcess], tmp_path: Path) -> None:
    if not listen_ipv6():
        pytest.skip("no IPv6 on this machine")
    server = make_server(tmp_path / "s")
    server.launcher = lambda: [sys.executable, "-m", "pyfiledrop"]  # type: ignore[method-assign]
    server.extra_args = ["--host", "::"]
    server.start()
    assert httpx.get(f"http://[::1]:{server.port}/api/config").status_code == 200
    assert httpx.get(f"http://127.0.0.1:{server.port}/api/config").status_code == 200
    server.stop()
    assert config.Settings().host == "::"


def listen_ipv6() -> bool:
    from pyfiledrop import listen

    return listen.ipv6_available()


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


def test_log_time_text_is_right_across_seconds() -> None:
    """The log formatter keeps the time text of the current second: lines must show each record's own time, also
    across a second boundary and back to an earlier second (a record made before another one, logged after it)."""
    from pyfiledrop.logs import TextFormatter

    ours = TextFormatter()
    base = float(int(time.time()))
    for created in (base + 0.001, base + 0.999, base + 1.0, base + 0.5, base + 3600.25, base + 3600.25):
        record = logging.LogRecord("pyfiledrop.x", logging.INFO, __file__, 1, "done %s", ("a",), None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        expected = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created)) + f".{int(record.msecs):03d}"
        assert ours.format(record) == f"{expected} INFO pyfiledrop.x: done a"
