"""An upload ends with something its sender can use, in every mode (docs/sharing.md): a URL that works for them,
or — through a drop link, where only the host's owner may download — a clear "received" and no dead link."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, ServerProcess

STORED = "received — stored for the owner of this drop"


def _put(url: str, data: bytes, **headers: str) -> httpx.Response:
    response = httpx.put(url, content=data, headers=headers, timeout=30)
    assert response.status_code == 201, response.text
    return response


@pytest.mark.parametrize("extra", [[], ["--password", "sesame"]], ids=["open", "password"])
def test_the_url_curl_prints_downloads_for_anyone_who_has_it(make_server: type[ServerProcess], tmp_path: Path,
                                                              extra: list[str]) -> None:  # fmt: skip
    server = make_server(tmp_path / "s", extra).start()
    data = os.urandom(70_000)
    auth = {"x-pyfiledrop-password": "sesame"} if extra else {}
    response = _put(f"{server.url}/report.bin", data, **auth)
    url = response.text.strip()
    assert response.headers["location"] == url
    assert httpx.get(url).content == data  # a fresh client: no cookie, no token
    upload_id = response.headers["x-upload-id"]
    assert httpx.get(f"{server.url}/download/{upload_id}").status_code == 403  # the bare id is not enough
    assert httpx.get(f"{server.url}/download/{upload_id}?key=AAAAAAAAAAAAAAAAAAAAAAAA").status_code == 403
    other = _put(f"{server.url}/other.bin", b"other", **auth).headers["x-upload-id"]
    key = url.rsplit("key=", 1)[1]
    assert httpx.get(f"{server.url}/download/{other}?key={key}").status_code == 403  # one key opens one file
    owner = {"x-pyfiledrop-token": response.headers["x-pyfiledrop-token"]}
    assert httpx.delete(f"{server.url}/api/uploads/{upload_id}", headers=owner).status_code == 204
    assert httpx.get(url).status_code == 410  # it dies with the upload


def test_with_downloads_open_the_plain_url_is_given(make_server: type[ServerProcess], tmp_path: Path) -> None:
    server = make_server(tmp_path / "s", ["--allow-downloads"]).start()
    response = _put(f"{server.url}/open.txt", b"for everyone")
    url = response.text.strip()
    assert url == f"{server.url}/download/{response.headers['x-upload-id']}"
    assert httpx.get(url).content == b"for everyone"


def test_through_a_drop_link_the_sender_is_told_where_it_went(make_server: type[ServerProcess],
                                                              tmp_path: Path) -> None:  # fmt: skip
    server = make_server(tmp_path / "s").start()
    link = httpx.post(f"{server.url}/api/drops", json={"label": "footage"},
                      headers={"x-pyfiledrop-token": ADMIN_TOKEN}).json()  # fmt: skip
    token = link["url"].rsplit("/", 1)[1]
    response = _put(f"{server.url}/d/{token}/clip.mov", b"frames", accept="text/plain")
    assert response.text.strip() == STORED
    assert "location" not in response.headers and response.headers["x-sha256"] == hashlib.sha256(b"frames").hexdigest()
    as_json = _put(f"{server.url}/d/{token}/clip2.mov", b"frames2", accept="application/json").json()
    assert as_json["download_url"] is None and as_json["message"] == STORED
    # The host's owner (the admin) gets a working link for the same file.
    upload = httpx.get(f"{server.url}/api/uploads/{as_json['id']}", headers={"x-pyfiledrop-token": ADMIN_TOKEN}).json()
    assert httpx.get(upload["download_url"]).content == b"frames2"


def test_pyfiledrop_upload_prints_a_working_url_or_the_drop_notice(make_server: type[ServerProcess],
                                                                   tmp_path: Path) -> None:  # fmt: skip
    server = make_server(tmp_path / "s").start()
    source = tmp_path / "notes.txt"
    source.write_bytes(b"some notes\n" * 100)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFILEDROP_")} | {
        "PYFILEDROP_STATE": str(tmp_path / "state.json")}  # fmt: skip
    run = [sys.executable, "-m", "pyfiledrop", "upload", "-q"]
    done = subprocess.run([*run, "--url", server.url, str(source)], capture_output=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    url = done.stdout.decode().split()[0]
    assert httpx.get(url).content == source.read_bytes()
    link = httpx.post(f"{server.url}/api/drops", json={"label": "inbox"},
                      headers={"x-pyfiledrop-token": ADMIN_TOKEN}).json()  # fmt: skip
    dropped = subprocess.run([*run, "--url", link["url"], str(source)], capture_output=True, env=env, timeout=60)
    assert dropped.returncode == 0, dropped.stderr
    assert dropped.stdout.decode().startswith(STORED + "  ")
    assert "http" not in dropped.stdout.decode()
