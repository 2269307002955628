"""Every request header the app reads, with bytes outside ASCII, malformed syntax or absurd numbers, on every kind of
route: never a 5xx, never a traceback in the log (a client's value is a client's error)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ServerProcess

HEADERS = [
    "authorization", "x-pyfiledrop-token", "x-pyfiledrop-drop", "x-pyfiledrop-password", "cookie", "origin",
    "referer", "host", "x-forwarded-host", "x-forwarded-proto", "x-forwarded-for", "range", "if-range", "if-match",
    "if-none-match", "content-type", "upload-length", "upload-offset", "upload-metadata", "upload-concat",
    "upload-checksum", "upload-defer-length", "tus-resumable", "x-http-method-override", "accept", "x-filename",
    "sec-fetch-site", "access-control-request-method", "x-pyfiledrop-parallel-write",
]  # fmt: skip
VALUES = [
    "€ü".encode(), b"Bearer \xe9", b"Basic \xe9\xe9", b"Basic Ol/p", b"pyfiledrop_token=\xe9; pyfiledrop_pass=\xff",
    b"null", b"http://[::1", b"bytes=\xe9-", b'W/"\xe9"', b"filename \xe9\xe9,filetype dGV4dC9odG1s",
    b"final;/files/\xe9", b"9" * 5000,
]  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    started = ServerProcess(tmp_path_factory.mktemp("hostile") / "s", ["--allow-downloads", "--password", "pw"])
    yield started.start()
    started.stop()


@pytest.fixture(scope="module")
def routes(server: ServerProcess) -> list[tuple[str, str]]:
    made = httpx.put(f"{server.url}/x.txt", content=b"abc",
                     headers={"accept": "application/json", "x-pyfiledrop-password": "pw"})  # fmt: skip
    upload_id = made.json()["id"]
    return [("GET", "/"), ("GET", f"/download/{upload_id}"), ("GET", f"/files/{upload_id}"),
            ("HEAD", f"/files/{upload_id}"), ("POST", "/files/"), ("PATCH", f"/files/{upload_id}"),
            ("GET", "/api/session"), ("GET", "/api/config"), ("GET", f"/api/uploads/{upload_id}"),
            ("PATCH", f"/api/uploads/{upload_id}"), ("PUT", "/y.txt"), ("POST", "/upload"),
            ("GET", "/api/drops/current"), ("POST", "/api/login"), ("OPTIONS", "/files/")]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("header", HEADERS)
def test_no_header_value_makes_a_server_error(
    server: ServerProcess, routes: list[tuple[str, str]], header: str
) -> None:
    failures = []
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for value in VALUES:
            for method, path in routes:
                sent = {"tus-resumable": b"1.0.0", header: value}
                body = b"x" if method in ("PUT", "POST", "PATCH") else None
                response = client.request(method, path, headers=sent, content=body)
                client.cookies.clear()
                if response.status_code >= 500:
                    failures.append((value[:20], method, path, response.status_code, response.text[:80]))
    assert failures == []
    assert "Traceback" not in server.log()


def test_a_utf8_x_filename_is_the_name(shared_server: ServerProcess) -> None:
    made = httpx.put(f"{shared_server.url}/", content=b"abc",
                     headers={"x-filename": "résumé €.txt".encode(), "accept": "application/json"})  # fmt: skip
    assert made.json()["filename"] == "résumé €.txt"
