"""Downloads: exact id only, Range, HEAD, RFC 6266 names, ETag, never a partial file."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess


@pytest.fixture
def stored(client: httpx.Client) -> tuple[str, bytes]:
    data = os.urandom(200_000)
    response = client.put("/naïve résumé.txt", content=data, headers={"accept": "application/json"})
    return str(response.json()["id"]), data


def test_download_sends_name_type_etag_and_bytes(client: httpx.Client, stored: tuple[str, bytes]) -> None:
    upload_id, data = stored
    response = client.get(f"/download/{upload_id}")
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert response.headers["content-type"].startswith("text/plain")
    assert "filename*=UTF-8''na%C3%AFve%20r%C3%A9sum%C3%A9.txt" in response.headers["content-disposition"]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_files_url_downloads_too(client: httpx.Client, stored: tuple[str, bytes]) -> None:
    upload_id, data = stored
    assert client.get(f"/files/{upload_id}").content == data


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-99", 0, 100), ("bytes=1000-", 1000, 200_000), ("bytes=-500", 199_500, 200_000),
     ("bytes=199999-300000", 199_999, 200_000)],
)  # fmt: skip
def test_range_requests(client: httpx.Client, stored: tuple[str, bytes], header: str, start: int, end: int) -> None:
    upload_id, data = stored
    response = client.get(f"/download/{upload_id}", headers={"range": header})
    assert response.status_code == 206
    assert response.content == data[start:end]
    assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{len(data)}"


def test_unsatisfiable_range_is_416(client: httpx.Client, stored: tuple[str, bytes]) -> None:
    upload_id, data = stored
    response = client.get(f"/download/{upload_id}", headers={"range": "bytes=300000-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(data)}"


def test_head_has_headers_and_no_body(client: httpx.Client, stored: tuple[str, bytes]) -> None:
    upload_id, data = stored
    response = client.head(f"/download/{upload_id}")
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(data))
    assert response.content == b""


def test_if_none_match_is_304(client: httpx.Client, stored: tuple[str, bytes]) -> None:
    upload_id, _ = stored
    etag = client.head(f"/download/{upload_id}").headers["etag"]
    assert client.get(f"/download/{upload_id}", headers={"if-none-match": etag}).status_code == 304


def test_prefix_of_an_id_does_not_download(client: httpx.Client, stored: tuple[str, bytes]) -> None:
    upload_id, _ = stored
    assert client.get(f"/download/{upload_id[:10]}").status_code in (400, 404)
    assert client.get(f"/download/{upload_id[:-1]}").status_code in (400, 404)


@pytest.mark.parametrize("bad", ["..%2F..%2Fetc%2Fpasswd", "%00", "a" * 300, ".pyfiledrop.sqlite3"])
def test_malformed_ids_are_rejected(client: httpx.Client, bad: str) -> None:
    assert client.get(f"/download/{bad}").status_code in (400, 404)


def test_unknown_id_is_404(client: httpx.Client) -> None:
    assert client.get("/download/AAAAAAAAAAAAAAAAAAAAAAAA").status_code == 404


def test_unfinished_upload_is_never_served(client: httpx.Client) -> None:
    created = client.post("/files/", headers={"tus-resumable": "1.0.0", "upload-length": "1000"})
    upload_id = created.headers["location"].rsplit("/", 1)[-1]
    client.patch(
        f"/files/{upload_id}",
        content=b"x" * 10,
        headers={"tus-resumable": "1.0.0", "upload-offset": "0", "content-type": "application/offset+octet-stream"},
    )
    response = client.get(f"/download/{upload_id}")
    assert response.status_code == 409
    assert "not complete" in response.text


def test_downloads_need_the_owner_token_unless_allowed(make_server: type[ServerProcess], tmp_path: Path) -> None:
    server = make_server(tmp_path / "s").start()  # no --allow-downloads
    with httpx.Client(base_url=server.url) as c:
        response = c.put("/secret.txt", content=b"top secret", headers={"accept": "application/json"})
        token, upload_id = response.headers["x-pyfiledrop-token"], response.json()["id"]
        c.cookies.clear()
        assert c.get(f"/download/{upload_id}").status_code == 403
        assert c.get(f"/download/{upload_id}", headers={"x-pyfiledrop-token": token}).content == b"top secret"
        other = c.get("/api/session").json()["token"]
        c.cookies.clear()
        assert c.get(f"/download/{upload_id}", headers={"x-pyfiledrop-token": other}).status_code == 403


def test_file_removed_from_disk_is_reported_not_sent_short(client: httpx.Client, shared_server: ServerProcess) -> None:
    response = client.put("/vanish.bin", content=b"y" * 1000, headers={"accept": "application/json"})
    upload_id = response.json()["id"]
    (shared_server.storage / f"{upload_id}_vanish.bin").unlink()
    assert client.get(f"/download/{upload_id}").status_code == 410
