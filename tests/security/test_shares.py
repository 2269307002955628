"""Share links: per file, work with downloads off, revocable, optional expiry; tokens cannot be guessed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess


@pytest.fixture
def server(make_server: type[ServerProcess], tmp_path: Path) -> ServerProcess:
    return make_server(tmp_path / "s").start()  # downloads NOT allowed: only owners and share links


def _upload(server: ServerProcess, data: bytes) -> tuple[str, dict[str, str]]:
    response = httpx.put(f"{server.url}/shared.bin", content=data, headers={"accept": "application/json"})
    return response.json()["id"], {"x-pyfiledrop-token": response.headers["x-pyfiledrop-token"]}


def test_share_link_downloads_without_a_token_until_revoked(server: ServerProcess) -> None:
    data = os.urandom(50_000)
    upload_id, owner = _upload(server, data)
    assert httpx.get(f"{server.url}/download/{upload_id}").status_code == 403
    share = httpx.post(f"{server.url}/api/uploads/{upload_id}/shares", json={}, headers=owner).json()
    assert share["url"].startswith(f"{server.url}/s/")
    assert httpx.get(share["url"]).content == data
    assert httpx.get(share["url"], headers={"range": "bytes=0-9"}).content == data[:10]
    listed = httpx.get(f"{server.url}/api/uploads/{upload_id}/shares", headers=owner).json()["shares"]
    assert [s["id"] for s in listed] == [share["id"]] and "token" not in listed[0]
    assert httpx.delete(f"{server.url}/api/shares/{share['id']}", headers=owner).status_code == 204
    assert httpx.get(share["url"]).status_code == 410


def test_expired_share_link_is_gone(server: ServerProcess) -> None:
    upload_id, owner = _upload(server, b"soon gone")
    share = httpx.post(f"{server.url}/api/uploads/{upload_id}/shares", json={"expires_in": 1}, headers=owner).json()
    assert httpx.get(share["url"]).status_code == 200
    time.sleep(1.2)
    assert httpx.get(share["url"]).status_code == 410


def test_only_the_owner_makes_or_revokes_shares(server: ServerProcess) -> None:
    upload_id, owner = _upload(server, b"mine")
    stranger = {"x-pyfiledrop-token": httpx.get(f"{server.url}/api/session").json()["token"]}
    assert httpx.post(f"{server.url}/api/uploads/{upload_id}/shares", json={}, headers=stranger).status_code == 403
    assert httpx.post(f"{server.url}/api/uploads/{upload_id}/shares", json={}).status_code == 401
    share = httpx.post(f"{server.url}/api/uploads/{upload_id}/shares", json={}, headers=owner).json()
    assert httpx.delete(f"{server.url}/api/shares/{share['id']}", headers=stranger).status_code == 403
    assert httpx.get(share["url"]).status_code == 200


@pytest.mark.parametrize("token", ["A" * 32, "short", "..%2F..%2Fetc%2Fpasswd", "x" * 200])
def test_guessed_or_malformed_share_tokens_are_refused(server: ServerProcess, token: str) -> None:
    assert httpx.get(f"{server.url}/s/{token}").status_code in (400, 404)


def test_bad_expiry_is_400(server: ServerProcess) -> None:
    upload_id, owner = _upload(server, b"x")
    response = httpx.post(f"{server.url}/api/uploads/{upload_id}/shares", json={"expires_in": -3}, headers=owner)
    assert response.status_code == 400
