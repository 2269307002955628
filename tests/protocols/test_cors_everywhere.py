"""--cors-origins applies alike to tus, Dropzone's POST /upload, PUT and the API: preflights, answers, refusals."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess

ORIGIN = "https://app.example"
TUS = {"tus-resumable": "1.0.0"}


def _preflight(url: str, method: str, headers: str) -> httpx.Response:
    return httpx.options(url, headers={"origin": ORIGIN, "access-control-request-method": method,
                                       "access-control-request-headers": headers})  # fmt: skip


@pytest.mark.parametrize(
    ("path", "method", "headers"),
    [
        ("/files/", "POST", "tus-resumable,upload-length"),
        ("/upload", "POST", "x-requested-with,cache-control"),  # what Dropzone 5 sends
        ("/api/uploads", "GET", "x-pyfiledrop-token"),
        ("/api/uploads/AAAAAAAAAAAAAAAAAAAAAAAA", "DELETE", "x-pyfiledrop-token"),
        ("/notes.txt", "PUT", "content-type,x-pyfiledrop-password"),
    ],
)
def test_every_upload_way_and_the_api_answer_a_preflight(
    shared_server: ServerProcess, path: str, method: str, headers: str
) -> None:
    answer = _preflight(shared_server.url + path, method, headers)
    assert answer.status_code == (200 if path == "/files/" else 204)  # tus OPTIONS: 200, as the tus suite wants
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    assert method in answer.headers["access-control-allow-methods"]
    allowed = {h.strip().lower() for h in answer.headers["access-control-allow-headers"].split(",")}
    assert set(headers.split(",")) <= allowed
    assert "access-control-allow-credentials" not in answer.headers  # no cookie ever rides along


def test_answers_to_another_origin_carry_cors_headers_on_every_way(shared_server: ServerProcess) -> None:
    base, origin = shared_server.url, {"origin": ORIGIN}
    answers = [
        httpx.post(f"{base}/upload", files={"file": ("a.txt", b"abc")}, headers=origin),
        httpx.put(f"{base}/b.txt", content=b"abc", headers=origin),
        httpx.get(f"{base}/api/config", headers=origin),
        httpx.post(f"{base}/files/", headers={**origin, **TUS, "upload-length": "3"}),
        httpx.get(f"{base}/api/uploads", headers=origin),  # an error (401) the page must be able to read too
    ]
    for answer in answers:
        assert answer.headers.get("access-control-allow-origin") == ORIGIN, (answer.request.url, answer.status_code)
        assert "x-upload-id" in answer.headers["access-control-expose-headers"].lower()
    assert [a.status_code for a in answers] == [200, 201, 200, 201, 401]


def test_a_list_of_origins_restricts_every_way_alike(make_server: type[ServerProcess], tmp_path: Path) -> None:
    server = make_server(tmp_path / "s", ["--cors-origins", f"{ORIGIN},http://localhost:8080"]).start()
    base, stranger = server.url, {"origin": "https://evil.example"}
    refused = [
        httpx.post(f"{base}/upload", files={"file": ("a.txt", b"abc")}, headers=stranger),
        httpx.put(f"{base}/b.txt", content=b"abc", headers=stranger),
        httpx.post(f"{base}/files/", headers={**stranger, **TUS, "upload-length": "3"}),
        httpx.post(f"{base}/api/session", headers=stranger),
    ]
    assert [a.status_code for a in refused] == [403, 403, 403, 403]
    assert all("access-control-allow-origin" not in a.headers for a in refused)
    assert "--cors-origins" in refused[0].text
    preflight = httpx.options(f"{base}/upload", headers={**stranger, "access-control-request-method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers
    listed = httpx.put(f"{base}/c.txt", content=b"abc", headers={"origin": "http://localhost:8080"})
    assert listed.status_code == 201 and listed.headers["access-control-allow-origin"] == "http://localhost:8080"
    own = httpx.put(f"{base}/d.txt", content=b"abc", headers={"origin": base})  # the server's own page
    assert own.status_code == 201
    assert httpx.put(f"{base}/e.txt", content=b"abc").status_code == 201  # curl: no Origin, no CORS
    read = httpx.get(f"{base}/api/config", headers=stranger)
    assert read.status_code == 200 and "access-control-allow-origin" not in read.headers  # the page cannot read it
