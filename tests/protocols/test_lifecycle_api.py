"""Expiry, quotas and dedup through the HTTP API of a real server."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx

from tests.conftest import ADMIN_TOKEN, ServerProcess

TUS = {"tus-resumable": "1.0.0"}


def test_expiry_is_shown_and_owner_can_shorten_but_not_exceed_it(
    make_server: type[ServerProcess], tmp_path: Path
) -> None:
    server = make_server(tmp_path / "s", ["--expire-after", "2h"]).start()
    with httpx.Client(base_url=server.url) as c:
        response = c.put("/e.txt", content=b"x", headers={"accept": "application/json"})
        body, token = response.json(), response.headers["x-pyfiledrop-token"]
        c.cookies.clear()
        assert 7100 < body["expires_at"] - time.time() <= 7200
        mine = {"x-pyfiledrop-token": token}
        shorter = c.patch(f"/api/uploads/{body['id']}", json={"expires_in": 600}, headers=mine)
        assert shorter.status_code == 200 and shorter.json()["expires_at"] - time.time() <= 600
        assert c.patch(f"/api/uploads/{body['id']}", json={"expires_in": 10**6}, headers=mine).status_code == 403
        assert c.patch(f"/api/uploads/{body['id']}", json={"expires_at": None}, headers=mine).status_code == 403
        admin = c.patch(f"/api/uploads/{body['id']}", json={"expires_at": None},
                        headers={"x-pyfiledrop-token": ADMIN_TOKEN})  # fmt: skip
        assert admin.status_code == 200 and admin.json()["expires_at"] is None
        assert c.patch(f"/api/uploads/{body['id']}", json={"expires_in": -1}, headers=mine).status_code == 400


def test_quota_refuses_tus_creation_with_a_clear_507(make_server: type[ServerProcess], tmp_path: Path) -> None:
    server = make_server(tmp_path / "s", ["--quota", "1MiB"]).start()
    with httpx.Client(base_url=server.url) as c:
        assert c.put("/a.bin", content=os.urandom(600_000)).status_code == 201
        refused = c.post("/files/", headers={**TUS, "upload-length": "600000"})
        assert refused.status_code == 507
        assert "quota reached" in refused.text
        assert c.post("/files/", headers={**TUS, "upload-length": "400000"}).status_code == 201


def test_second_identical_upload_costs_no_space(make_server: type[ServerProcess], tmp_path: Path) -> None:
    server = make_server(tmp_path / "s").start()
    data = os.urandom(300_000)
    with httpx.Client(base_url=server.url) as c:
        first = c.put("/one.bin", content=data, headers={"accept": "application/json"}).json()
        second = c.put("/two.bin", content=data, headers={"accept": "application/json"}).json()
        assert first["sha256"] == second["sha256"] and first["id"] != second["id"]
        files = [p for p in server.storage.iterdir() if p.is_file() and not p.name.startswith(".")]
        assert len(files) == 1
        assert c.get(second["download_url"]).content == data
        assert "two.bin" in c.get(second["download_url"]).headers["content-disposition"]
