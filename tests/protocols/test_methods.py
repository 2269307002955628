"""A known path asked with the wrong method answers 405 with Allow; PUT under a reserved prefix never stores a file."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN

ADMIN = {"x-pyfiledrop-token": ADMIN_TOKEN}


def _upload_count(client: httpx.Client) -> int:
    return int(client.get("/api/admin/stats", headers=ADMIN).json()["uploads"])


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [("DELETE", "/", "GET, HEAD, PUT"),
     ("POST", "/", "GET, HEAD, PUT"),
     ("POST", "/api/config", "GET, HEAD"),
     ("PUT", "/api/config", "GET, HEAD"),
     ("DELETE", "/api/session", "GET, HEAD, POST"),
     ("GET", "/api/login", "POST"),
     ("PUT", "/api/uploads", "GET, HEAD"),
     ("POST", "/api/uploads/AAAAAAAAAAAAAAAAAAAAAAAA", "GET, HEAD, PATCH, DELETE"),
     ("PUT", "/api/uploads/AAAAAAAAAAAAAAAAAAAAAAAA/shares", "GET, HEAD, POST"),
     ("GET", "/api/shares/abc", "DELETE"),
     ("GET", "/api/admin/verify", "POST"),
     ("PUT", "/api/openapi.json", "GET, HEAD"),
     ("PUT", "/static/app.js", "GET, HEAD"),
     ("POST", "/static/app.js", "GET, HEAD"),
     ("PUT", "/download/AAAAAAAAAAAAAAAAAAAAAAAA", "GET, HEAD"),
     ("PUT", "/s/abcdefghijklmnopqrstuvwxyz", "GET, HEAD, POST"),
     ("PUT", "/upload", "POST"),
     ("GET", "/upload", "POST"),
     ("DELETE", "/favicon.ico", "GET, HEAD"),
     ("DELETE", "/d/sometoken", "GET, HEAD, PUT"),
     ("PUT", "/files/AAAAAAAAAAAAAAAAAAAAAAAA", "OPTIONS, GET, HEAD, PATCH, DELETE"),
     ("PUT", "/files/", "OPTIONS, POST"),
     ("GET", "/files/", "OPTIONS, POST")],
)  # fmt: skip
def test_wrong_method_on_a_known_path_is_405_with_allow(
    client: httpx.Client, method: str, path: str, allow: str
) -> None:
    before = _upload_count(client)
    response = client.request(method, path, content=b"payload" if method in ("PUT", "POST") else None)
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allow
    assert _upload_count(client) == before  # nothing named after the path was stored


@pytest.mark.parametrize("path", ["/api/nothing-here", "/api/uploads/x/y/z", "/static/a/b", "/files/x/y", "/upload/x"])
def test_put_under_a_reserved_prefix_on_an_unknown_path_stores_nothing(client: httpx.Client, path: str) -> None:
    before = _upload_count(client)
    response = client.put(path, content=b"payload")
    assert response.status_code == 404, response.text
    assert _upload_count(client) == before


def test_api_answers_json_errors_for_405(client: httpx.Client) -> None:
    response = client.post("/api/config")
    assert response.json()["error"] == "ERR_METHOD_NOT_ALLOWED"


def test_put_elsewhere_is_still_a_curl_upload(client: httpx.Client) -> None:
    response = client.put("/folder/report.txt", content=b"report", headers={"accept": "application/json"})
    assert response.status_code == 201 and response.json()["filename"] == "report.txt"


def test_head_works_wherever_get_does_and_options_lists_the_methods(client: httpx.Client) -> None:
    head = client.head("/api/config")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(client.get("/api/config").content)
    options = client.options("/api/uploads/AAAAAAAAAAAAAAAAAAAAAAAA")
    assert options.status_code == 204
    assert options.headers["allow"] == "OPTIONS, GET, HEAD, PATCH, DELETE"
    assert client.get("/no/such/path").status_code == 404
