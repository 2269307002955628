"""--password: creating uploads needs the password (tus, PUT, Dropzone), via header, Basic auth or a login cookie;
the admin token needs none; wrong guesses are rate-limited with 429 + Retry-After; a hashed password works too."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, ServerProcess

TUS = {"tus-resumable": "1.0.0"}
PASSWORD = "correct horse battery staple"


@pytest.fixture
def server(make_server: type[ServerProcess], tmp_path: Path) -> ServerProcess:
    return make_server(tmp_path / "s", extra_args=["--password", PASSWORD, "--login-rate", "3"]).start()


def _create(url: str, headers: dict[str, str], cookies: httpx.Cookies | None = None) -> httpx.Response:
    return httpx.post(f"{url}/files/", headers={**TUS, "upload-length": "5", **headers}, cookies=cookies)


def test_uploads_need_the_password_and_nothing_is_stored_without_it(server: ServerProcess) -> None:
    refused = _create(server.url, {})
    assert refused.status_code == 401
    assert refused.text.startswith("ERR_PASSWORD_REQUIRED")
    assert httpx.put(f"{server.url}/a.txt", content=b"hello").status_code == 401
    dz = httpx.post(f"{server.url}/upload", files={"file": ("a.txt", b"hello")})
    assert dz.status_code == 401 and dz.json()["error"] == "ERR_PASSWORD_REQUIRED"
    stats = httpx.get(f"{server.url}/api/admin/stats", headers={"x-pyfiledrop-token": ADMIN_TOKEN}).json()
    assert stats["uploads"] == 0


def test_the_password_opens_every_protocol(server: ServerProcess) -> None:
    assert _create(server.url, {"x-pyfiledrop-password": PASSWORD}).status_code == 201
    put = httpx.put(f"{server.url}/b.txt", content=b"hello", auth=("", PASSWORD))  # curl -u :PASSWORD
    assert put.status_code == 201
    assert httpx.get(put.text.strip(), headers={"x-pyfiledrop-token": put.headers["x-pyfiledrop-token"]}).content == (
        b"hello"
    )
    dz = httpx.post(
        f"{server.url}/upload", files={"file": ("c.txt", b"hi")}, headers={"x-pyfiledrop-password": PASSWORD}
    )
    assert dz.status_code == 200 and dz.json()["complete"]
    assert _create(server.url, {"x-pyfiledrop-token": ADMIN_TOKEN}).status_code == 201  # the admin needs none


def test_login_sets_an_httponly_cookie_that_unlocks_this_browser(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url) as browser:
        assert browser.get("/api/config").json()["password_required"] is True
        login = browser.post("/api/login", json={"password": PASSWORD})
        assert login.status_code == 204
        cookie = login.headers["set-cookie"]
        assert "pyfiledrop_pass=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert browser.get("/api/config").json()["password_required"] is False
        created = browser.post("/files/", headers={**TUS, "upload-length": "5"})
        assert created.status_code == 201
    forged = httpx.Cookies({"pyfiledrop_pass": "AAAAAAAAAAAAAAAAAAAAAAAA"})
    assert _create(server.url, {}, forged).status_code == 401


def test_wrong_passwords_are_rate_limited_per_address(server: ServerProcess) -> None:
    for _ in range(3):  # --login-rate 3
        wrong = httpx.post(f"{server.url}/api/login", json={"password": "guess"})
        assert wrong.status_code == 401 and wrong.json()["error"] == "ERR_WRONG_PASSWORD"
    blocked = httpx.post(f"{server.url}/api/login", json={"password": PASSWORD})
    assert blocked.status_code == 429, "the right password too, while the address is blocked"
    assert int(blocked.headers["retry-after"]) >= 1
    assert _create(server.url, {"x-pyfiledrop-password": "guess"}).status_code == 429


def test_bad_login_bodies_are_400(server: ServerProcess) -> None:
    for body in (b"", b"{", b"[]", b'{"password": 5}', b'{"password": ""}'):
        response = httpx.post(f"{server.url}/api/login", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400, body


def test_a_hashed_password_from_the_hash_password_command(make_server: type[ServerProcess], tmp_path: Path) -> None:
    made = subprocess.run([sys.executable, "-m", "pyfiledrop", "hash-password"], input="s3cret\n",
                          capture_output=True, text=True, check=True)  # fmt: skip
    hashed = made.stdout.strip()
    assert hashed.startswith("scrypt:") and "s3cret" not in hashed
    config = tmp_path / "pyfiledrop.toml"
    config.write_text(f'password = "{hashed}"\n')
    server = make_server(tmp_path / "s", extra_args=["--config", str(config)]).start()
    assert _create(server.url, {"x-pyfiledrop-password": "s3cret"}).status_code == 201
    assert _create(server.url, {"x-pyfiledrop-password": hashed}).status_code == 401, "the hash is not the password"
    assert hashlib.sha256(b"s3cret").hexdigest() not in config.read_text()


@pytest.mark.parametrize("value", ["scrypt:nonsense", "scrypt:3:8:1:abc:def"])
def test_a_malformed_password_hash_is_a_start_up_error(value: str, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "pyfiledrop", "-s", str(tmp_path), "--password", value],
                            capture_output=True, text=True, timeout=30)  # fmt: skip
    assert result.returncode == 2
    assert "password" in result.stderr and "Traceback" not in result.stderr


def test_basic_auth_garbage_is_refused_not_crashed(server: ServerProcess) -> None:
    for value in ("Basic !!!", "Basic " + base64.b64encode(b"\xff\xfe").decode(), "Basic"):
        assert _create(server.url, {"authorization": value}).status_code == 401
