"""The logs of a real server run: an access line per request, events with their context, and no secret anywhere."""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, ServerProcess

TUS = {"tus-resumable": "1.0.0"}
PASSWORD = "hunter2-correct-horse"
FAST_SWEEP = Path(__file__).parent.parent / "faults" / "serve_fast_sweep.py"


def _after_banner(server: ServerProcess) -> str:
    """What the server logged: its output after the start-up banner (which shows the admin link on purpose)."""
    return server.log().split("Ctrl+C to stop.", 1)[-1]


def _exercise(base: str) -> tuple[list[str], dict[str, str]]:
    """Uploads, downloads, drop links, shares, tus, wrong passwords, 413 and 429: the secrets they involved, and
    ids by name."""
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=base, timeout=30) as http:
        owner = http.get("/api/session").json()["token"]
        http.cookies.clear()
        mine = {"x-pyfiledrop-token": owner, "x-pyfiledrop-password": PASSWORD, "accept": "application/json"}
        put = http.put("/report.pdf", content=b"%PDF" * 300, headers=mine)
        assert put.status_code == 201, put.text
        upload_id = put.json()["id"]
        http.get(f"/download/{upload_id}", params={"token": owner})  # a token in the query, as a link might hold
        assert http.get(f"/download/{upload_id}", headers={"x-pyfiledrop-token": owner}).status_code == 200
        share = http.post(f"/api/uploads/{upload_id}/shares", json={}, headers={"x-pyfiledrop-token": owner}).json()
        assert http.get(f"/s/{share['token']}").status_code == 200
        drop = http.post("/api/drops", json={"label": "Wedding photos"}, headers=admin).json()
        assert http.get(f"/d/{drop['token']}").status_code == 200
        through = http.put(f"/d/{drop['token']}/IMG_0001.jpg", content=b"\xff\xd8" * 500)
        assert through.status_code == 201, through.text
        created = http.post("/files/", headers={**TUS, **mine, "upload-length": "10"})
        location = created.headers["location"]
        octets = {**TUS, "upload-offset": "0", "content-type": "application/offset+octet-stream"}
        http.patch(location, content=b"01234", headers=octets)
        assert http.head(location, headers=TUS).headers["upload-offset"] == "5"
        assert http.delete(location, headers=TUS).status_code == 204
        too_big = http.put("/huge.bin", content=b"x" * (2 << 20), headers=mine)
        assert too_big.status_code == 413
        statuses = [http.put("/x.bin", content=b"x", headers={**mine, "x-pyfiledrop-password": "wrong-guess-1"})
                    .status_code for _ in range(3)]  # fmt: skip
        assert statuses[0] == 401 and 429 in statuses
        assert http.delete(f"/api/uploads/{upload_id}", headers={"x-pyfiledrop-token": owner}).status_code == 204
        assert http.delete(f"/api/drops/{drop['id']}", headers=admin).status_code == 204
    secrets = [owner, owner.split(".")[1], drop["token"], share["token"], PASSWORD, ADMIN_TOKEN, "wrong-guess-1"]
    return secrets, {"upload": upload_id, "tus": location.rsplit("/", 1)[-1], "drop": drop["id"]}


def test_access_log_and_events_name_everything_and_no_secret(make_server: type[ServerProcess], tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    flags = ["--password", PASSWORD, "--max-size", "1", "--login-rate", "2", "--access-log", str(access)]
    server = make_server(tmp_path / "s", flags).start()
    secrets, ids = _exercise(server.url)
    server.stop()
    lines = access.read_text().splitlines()
    events = _after_banner(server)
    for secret in secrets:
        assert secret not in access.read_text(), secret
        assert secret not in events, secret
    requests = [line.split('"')[1] for line in lines]
    assert f"GET /download/{ids['upload']}?token=[redacted]" in requests
    assert "GET /d/[redacted]" in requests and "PUT /d/[redacted]/IMG_0001.jpg" in requests
    assert "GET /s/[redacted]" in requests
    put_line = next(line for line in lines if '"PUT /report.pdf"' in line)
    time_text, client, _, status, sent, received, duration = put_line.replace('"PUT /report.pdf"', "X").split(" ")[1:]
    assert client == "127.0.0.1" and status == "201" and int(sent) > 0 and received == "1200"
    assert duration.endswith("ms") and float(duration[:-2]) >= 0 and time_text.count(":") == 2
    assert any('"PUT /huge.bin" 413' in line for line in lines)
    assert any('"PUT /x.bin" 429' in line for line in lines)
    for expected in (
        f"upload completed id={ids['upload']} name=report.pdf size=1200 owner=",
        'name=IMG_0001.jpg size=1000 drop="Wedding photos" protocol=put',
        f"upload created id={ids['tus']}",
        f"upload resumed id={ids['tus']}",
        f"upload cancelled id={ids['tus']}",
        f"upload deleted id={ids['upload']}",
        f'drop created id={ids["drop"]} label="Wedding photos"',
        f'drop revoked id={ids["drop"]} label="Wedding photos"',
        "WARNING pyfiledrop.events: password wrong client=127.0.0.1",
        "WARNING pyfiledrop.events: request too large client=127.0.0.1 method=PUT path=/huge.bin status=413",
        "WARNING pyfiledrop.events: request rate limited client=127.0.0.1 method=PUT path=/x.bin status=429",
    ):
        assert expected in events, expected
    completed = next(line for line in events.splitlines() if f"upload completed id={ids['upload']}" in line)
    assert "protocol=put" in completed and "duration_s=" in completed and "speed=" in completed


def test_json_format_and_the_access_log_on_standard_error(make_server: type[ServerProcess], tmp_path: Path) -> None:
    server = make_server(tmp_path / "s", ["--log-format", "json", "--access-log", "-"]).start()
    put = httpx.put(f"{server.url}/notes.txt", content=b"hello", headers={"x-forwarded-for": "203.0.113.9"})
    assert put.status_code == 201
    server.stop()
    records = [json.loads(line) for line in _after_banner(server).splitlines() if line.startswith("{")]
    access = next(r for r in records if r.get("log") == "access" and r["path"] == "/notes.txt")
    assert access["client"] == "127.0.0.1"  # X-Forwarded-For counts only with --behind-proxy
    assert (access["method"], access["status"], access["request_bytes"]) == ("PUT", 201, 5)
    assert access["bytes"] > 0 and access["duration_ms"] >= 0 and access["time"][10] == "T"
    done = next(r for r in records if r.get("event") == "upload.completed")
    assert (done["name"], done["size"], done["protocol"], done["level"]) == ("notes.txt", 5, "put", "info")
    lines = [line for line in _after_banner(server).splitlines() if line.strip() and not line.startswith("pyfile")]
    assert all(line.startswith("{") for line in lines), lines


def test_behind_proxy_logs_the_proxys_client(make_server: type[ServerProcess], tmp_path: Path) -> None:
    access = tmp_path / "a.log"
    server = make_server(tmp_path / "s", ["--behind-proxy", "--access-log", str(access)]).start()
    httpx.get(f"{server.url}/api/config", headers={"x-forwarded-for": "198.51.100.1, 203.0.113.9"})
    server.stop()
    assert '203.0.113.9 "GET /api/config" 200' in access.read_text()


def test_access_log_off_and_log_level_warning(make_server: type[ServerProcess], tmp_path: Path) -> None:
    server = make_server(tmp_path / "s", ["--access-log", "off", "--log-level", "warning", "--max-size", "1"]).start()
    assert httpx.put(f"{server.url}/a.txt", content=b"a").status_code == 201
    assert httpx.put(f"{server.url}/b.bin", content=b"b" * (2 << 20)).status_code == 413
    server.stop()
    logged = _after_banner(server)
    assert '"PUT /a.txt"' not in logged and "upload completed" not in logged  # info is below warning
    assert "request too large" in logged  # a refusal is a warning


def test_an_unwritable_access_log_stops_the_start(tmp_path: Path) -> None:
    import subprocess

    result = subprocess.run([sys.executable, "-m", "pyfiledrop", "-s", str(tmp_path / "s"), "--access-log",
                             str(tmp_path / "no" / "such" / "dir" / "a.log")], capture_output=True, text=True,
                            timeout=30)  # fmt: skip
    assert result.returncode == 2 and "--access-log file" in result.stderr


def test_put_whose_client_left_leaves_nothing_and_is_logged_abandoned(
    make_server: type[ServerProcess], tmp_path: Path
) -> None:
    """A curl -T cut off mid-body: nobody was told its id, so its record and bytes go at once (not at --stale-after)."""
    server = make_server(tmp_path / "s", ["--stale-after", "1h"]).start()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"PUT /cut-off.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 4194304\r\n\r\n" + b"z" * (1 << 20))
        time.sleep(0.5)
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        listed = httpx.get(f"{server.url}/api/uploads", params={"all": "1"}, headers=admin).json()["uploads"]
        if not any(u["filename"] == "cut-off.bin" for u in listed):
            break
        time.sleep(0.25)
    else:
        pytest.fail("the cut-off PUT was kept")
    assert not [p for p in (tmp_path / "s" / ".partial").iterdir() if p.suffix == ".part"]
    server.stop()
    assert "upload abandoned id=" in _after_banner(server)
    assert "name=cut-off.bin size=4194304" in _after_banner(server)
