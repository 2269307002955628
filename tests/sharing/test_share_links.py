"""Share links beyond the basics: a password, a download limit that previews and HEADs do not spend, several files
behind one link with a page and a streamed, Range-resumable zip."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess


@pytest.fixture
def server(make_server: type[ServerProcess], tmp_path: Path) -> ServerProcess:
    return make_server(tmp_path / "s").start()  # downloads off: only owners and share links


def _owner(server: ServerProcess) -> dict[str, str]:
    return {"x-pyfiledrop-token": httpx.get(f"{server.url}/api/session").json()["token"]}


def _upload(server: ServerProcess, owner: dict[str, str], name: str, data: bytes) -> str:
    response = httpx.put(f"{server.url}/{name}", content=data, headers={**owner, "accept": "application/json"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _share(server: ServerProcess, owner: dict[str, str], upload_id: str, **options: Any) -> dict[str, Any]:
    response = httpx.post(f"{server.url}/api/uploads/{upload_id}/shares", json=options, headers=owner)
    assert response.status_code == 201, response.text
    return response.json()


def test_a_download_limit_is_not_spent_by_head_previews_or_resumes(server: ServerProcess) -> None:
    owner = _owner(server)
    data = os.urandom(200_000)
    share = _share(server, owner, _upload(server, owner, "limited.bin", data), max_downloads=1)
    url = share["url"]
    assert httpx.head(url).status_code == 200
    bot = httpx.get(url, headers={"user-agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"})
    assert bot.status_code == 200 and bot.headers["content-type"].startswith("text/html")
    assert b"limited.bin" in bot.content and data[:64] not in bot.content
    first = httpx.get(url, headers={"range": "bytes=0-99999"})
    assert first.status_code == 206 and first.content == data[:100_000]
    rest = httpx.get(url, headers={"range": "bytes=100000-"})  # the same download, going on
    assert rest.status_code == 206 and first.content + rest.content == data
    assert httpx.get(url).status_code == 410  # a second download from the start: the one allowed was spent
    listed = httpx.get(f"{server.url}/api/shares", headers=owner).json()["shares"]
    assert listed[0]["downloads"] == 1 and listed[0]["max_downloads"] == 1 and not listed[0]["active"]


def test_a_password_protects_the_link_for_scripts_and_browsers(server: ServerProcess) -> None:
    owner = _owner(server)
    share = _share(server, owner, _upload(server, owner, "secret.txt", b"the secret"), password="open sesame")
    url = share["url"]
    assert share["password_required"] is True
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, auth=("", "wrong")).status_code == 401
    assert httpx.get(url, auth=("", "open sesame")).content == b"the secret"
    with httpx.Client(headers={"accept": "text/html"}) as browser:
        form = browser.get(url)
        assert form.status_code == 401 and b'name="password"' in form.content and b"secret.txt" not in form.content
        assert b"Wrong password" in browser.post(url, data={"password": "nope"}).content
        unlocked = browser.post(url, data={"password": "open sesame"}, follow_redirects=True)
        assert unlocked.status_code == 200 and unlocked.content == b"the secret"


def test_several_files_behind_one_link_page_and_zip(server: ServerProcess) -> None:
    owner = _owner(server)
    files = {"a.txt": b"first file\n", "b.bin": os.urandom(300_000), "empty.txt": b""}
    ids = [_upload(server, owner, name, data) for name, data in files.items()]
    response = httpx.post(f"{server.url}/api/shares", json={"upload_ids": ids, "label": "holiday"}, headers=owner)
    assert response.status_code == 201, response.text
    url = response.json()["url"]
    page = httpx.get(url, headers={"accept": "text/html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for name, data in files.items():
        assert name.encode() in page.content and hashlib.sha256(data).hexdigest().encode() in page.content
    listing = httpx.get(url, headers={"accept": "application/json"}).json()
    assert [f["name"] for f in listing["files"]] == list(files)
    assert httpx.get(listing["files"][1]["url"]).content == files["b.bin"]
    whole = httpx.get(listing["zip_url"])
    assert whole.status_code == 200
    assert int(whole.headers["content-length"]) == listing["zip_size"] == len(whole.content)
    assert "holiday.zip" in whole.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(whole.content))
    assert archive.testzip() is None
    assert {name: archive.read(name) for name in archive.namelist()} == files


def test_the_zip_resumes_from_any_byte(server: ServerProcess, tmp_path: Path) -> None:
    owner = _owner(server)
    files = {"one.bin": os.urandom(150_000), "two.bin": os.urandom(90_000)}
    ids = [_upload(server, owner, name, data) for name, data in files.items()]
    url = httpx.post(f"{server.url}/api/shares", json={"upload_ids": ids}, headers=owner).json()["url"] + "/zip"
    head = httpx.head(url)
    length, etag = int(head.headers["content-length"]), head.headers["etag"]
    # Resumed before any full download: the server reads the CRCs it needs from the files first.
    for start in (1, 30, 150_050, length - 30):
        part = httpx.get(url, headers={"range": f"bytes={start}-", "if-range": etag})
        assert part.status_code == 206 and part.headers["content-range"] == f"bytes {start}-{length - 1}/{length}"
        whole = httpx.get(url).content
        assert part.content == whole[start:]
    assert zipfile.ZipFile(io.BytesIO(whole)).read("two.bin") == files["two.bin"]


def test_a_selection_only_of_ones_own_finished_files(server: ServerProcess) -> None:
    owner, stranger = _owner(server), _owner(server)
    mine = _upload(server, owner, "mine.txt", b"mine")
    theirs = _upload(server, stranger, "theirs.txt", b"theirs")
    refused = httpx.post(f"{server.url}/api/shares", json={"upload_ids": [mine, theirs]}, headers=owner)
    assert refused.status_code == 403
    assert httpx.post(f"{server.url}/api/shares", json={"upload_ids": []}, headers=owner).status_code == 400
    bad = httpx.post(f"{server.url}/api/uploads/{mine}/shares", json={"max_downloads": 0}, headers=owner)
    assert bad.status_code == 400


def test_revoking_a_selection_closes_page_files_and_zip(server: ServerProcess) -> None:
    owner = _owner(server)
    ids = [_upload(server, owner, f"f{i}.txt", b"x" * i) for i in range(1, 3)]
    share = httpx.post(f"{server.url}/api/shares", json={"upload_ids": ids}, headers=owner).json()
    assert httpx.delete(f"{server.url}/api/shares/{share['id']}", headers=owner).status_code == 204
    for tail in ("", "/1", "/zip"):
        assert httpx.get(share["url"] + tail).status_code == 410
