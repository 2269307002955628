"""--expire-after: from ``expires_at`` on every read answers 410 at once; the sweep (once a minute) only frees bytes."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.conftest import ServerProcess

TUS = {"tus-resumable": "1.0.0"}


def test_every_read_of_an_expired_upload_is_gone_at_once(make_server: type[ServerProcess], tmp_path: Path) -> None:
    server = make_server(tmp_path / "s", ["--expire-after", "6", "--allow-downloads"]).start()
    put = httpx.put(f"{server.url}/soon.txt", content=b"short-lived", headers={"accept": "application/json"})
    upload_id, token = put.json()["id"], {"x-pyfiledrop-token": put.headers["x-pyfiledrop-token"]}
    expires_at = put.json()["expires_at"]
    share = httpx.post(f"{server.url}/api/uploads/{upload_id}/shares", json={}, headers=token).json()
    with httpx.Client(base_url=server.url, headers=token) as http:
        reads = {
            "download": lambda: http.get(f"/download/{upload_id}"),
            "tus download": lambda: http.get(f"/files/{upload_id}"),
            "share link": lambda: http.get(f"/s/{share['token']}"),
            "api status": lambda: http.get(f"/api/uploads/{upload_id}"),
            "tus head": lambda: http.head(f"/files/{upload_id}", headers=TUS),
            "shares list": lambda: http.get(f"/api/uploads/{upload_id}/shares"),
        }
        assert {name: read().status_code for name, read in reads.items()} == {
            "download": 200, "tus download": 200, "share link": 200, "api status": 200, "tus head": 200,
            "shares list": 200,
        }  # fmt: skip
        assert [u["id"] for u in http.get("/api/uploads").json()["uploads"]] == [upload_id]
        time.sleep(max(0.0, expires_at - time.time()) + 0.05)
        statuses = {name: read().status_code for name, read in reads.items()}
        assert statuses == dict.fromkeys(reads, 410), statuses
        assert http.get("/api/uploads").json()["uploads"] == []
    # Not swept yet (the sweep runs once a minute): the file is still on disk, only no read sees it.
    assert any(p.name.startswith(upload_id) for p in (tmp_path / "s").iterdir())
