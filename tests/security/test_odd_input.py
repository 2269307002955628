"""A value a client sends is never a server error: odd tokens, ranges, passwords, numbers, hosts and origins answer
4xx (or are ignored), never 500 with a traceback in the log."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess
from tests.security import rawhttp

TUS = {"tus-resumable": "1.0.0", "upload-length": "5"}
NON_ASCII_TOKEN = "tökén€".encode()  # as curl sends it: UTF-8 bytes in the header


@pytest.fixture
def stored(client: httpx.Client) -> tuple[str, bytes]:
    data = os.urandom(1000)
    response = client.put("/odd.bin", content=data, headers={"accept": "application/json"})
    return str(response.json()["id"]), data


@pytest.mark.parametrize(
    "headers",
    [{"x-pyfiledrop-token": NON_ASCII_TOKEN}, {"authorization": b"Bearer " + NON_ASCII_TOKEN},
     {"x-pyfiledrop-token": "tok\xe9n".encode("latin-1")}],
    ids=["header-utf8", "bearer-utf8", "header-latin1"],
)  # fmt: skip
def test_a_non_ascii_token_is_refused_with_401_not_500(
    shared_server: ServerProcess, stored: tuple[str, bytes], headers: dict[str, bytes]
) -> None:
    upload_id, _ = stored
    url = shared_server.url
    answers = {
        "session": httpx.get(f"{url}/api/session", headers=headers),
        "uploads": httpx.get(f"{url}/api/uploads", headers=headers),
        "download": httpx.get(f"{url}/download/{upload_id}", headers=headers),
        "page": httpx.get(f"{url}/", headers=headers),
        "tus creation": httpx.post(f"{url}/files/", headers={**TUS, **headers}),
        "put": httpx.put(f"{url}/x.txt", content=b"hello", headers=headers),
    }
    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(answers, 401)
    assert answers["session"].json()["error"] == "ERR_NOT_AUTHORIZED"
    assert "Traceback" not in shared_server.log()


def test_a_non_ascii_admin_token_sent_as_utf8_is_the_admin(make_server: type[ServerProcess], tmp_path: Path) -> None:
    server = make_server(tmp_path / "s", ["--admin-token", "pässwörd-admin"]).start()  # the later flag wins
    stats = httpx.get(f"{server.url}/api/admin/stats", headers={"x-pyfiledrop-token": "pässwörd-admin".encode()})
    assert stats.status_code == 200


@pytest.mark.parametrize(
    ("value", "status"),
    [("bytes=" + "9" * 5000 + "-", 416), ("bytes=0-" + "9" * 5000, 206), ("bytes=-" + "9" * 5000, 206),
     ("bytes=" + "0" * 5000 + "1-", 206), ("bytes=\u0661-2", 200)],
    ids=["huge-first", "huge-last", "huge-suffix", "zeros", "arabic-digit"],
)  # fmt: skip
def test_ranges_with_thousands_of_digits_are_416_or_served(
    client: httpx.Client, stored: tuple[str, bytes], value: str, status: int
) -> None:
    upload_id, data = stored
    response = client.get(f"/download/{upload_id}", headers={"range": value.encode("utf-8")})
    assert response.status_code == status
    if status == 206:
        start = 1 if value.startswith("bytes=" + "0" * 5000) else 0
        assert response.content == data[start:]
    if status == 416:
        assert response.headers["content-range"] == f"bytes */{len(data)}"


def test_a_non_ascii_password_is_accepted_as_utf8_in_the_header(
    make_server: type[ServerProcess], tmp_path: Path
) -> None:
    password = "pässwörd €"
    server = make_server(tmp_path / "s", ["--password", password]).start()
    create = {**TUS, "x-pyfiledrop-password": password.encode()}  # curl -H 'X-Pyfiledrop-Password: pässwörd €'
    assert httpx.post(f"{server.url}/files/", headers=create).status_code == 201
    basic = base64.b64encode(f":{password}".encode()).decode()
    assert httpx.post(f"{server.url}/files/", headers={**TUS, "authorization": f"Basic {basic}"}).status_code == 201
    assert httpx.post(f"{server.url}/api/login", json={"password": password}).status_code == 204
    wrong = httpx.post(f"{server.url}/files/", headers={**TUS, "x-pyfiledrop-password": "pässwörd".encode()})
    assert wrong.status_code == 401


@pytest.mark.parametrize("number", ["1" + "0" * 400, "1e400", "-1e400"])
def test_absurd_json_numbers_are_400(client: httpx.Client, owner: str, number: str) -> None:
    token = {"x-pyfiledrop-token": owner, "content-type": "application/json"}
    mine = client.put("/n.txt", content=b"x", headers={**token, "accept": "application/json"}).json()["id"]
    for field in ("expires_in", "expires_at"):
        response = client.patch(f"/api/uploads/{mine}", content=f'{{"{field}": {number}}}', headers=token)
        assert response.status_code == 400, (field, response.text)
    share = client.post(f"/api/uploads/{mine}/shares", content=f'{{"expires_in": {number}}}', headers=token)
    assert share.status_code == 400
    assert client.get(f"/api/uploads/{mine}", headers=token).json()["expires_at"] is None


def test_a_host_that_is_no_host_never_reaches_a_location_header(shared_server: ServerProcess) -> None:
    answer = rawhttp.exchange(
        shared_server.port,
        b'PUT /h.txt HTTP/1.1\r\nHost: evil"<script>\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi',
    )
    assert answer.status in (201, 400)  # 400: the HTTP server may refuse such a Host itself (RFC 9112 §3.2)
    for location in answer.header_lines(b"location"):
        assert location.startswith(b"http://localhost/download/")
    assert b"<script>" not in answer.raw


def test_only_an_origin_is_echoed_in_cors_headers(client: httpx.Client) -> None:
    good = client.options("/files/", headers={"origin": "https://app.example"})
    assert good.headers["access-control-allow-origin"] == "https://app.example"
    junk = client.options("/files/", headers={"origin": "https://app.example <script>"})
    assert "access-control-allow-origin" not in junk.headers
