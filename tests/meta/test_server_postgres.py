"""End to end on PostgreSQL: real ``pyfiledrop serve --database postgresql://…`` processes on loopback ports, one
database. A tus upload and its download, a share link, and a drop link whose file limit holds when its uploads
arrive at two replicas at once; an owner token made by one replica is good at the other (the shared key)."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg

from tests.conftest import ADMIN_TOKEN, ServerProcess

TUS = {"tus-resumable": "1.0.0"}
ADMIN = {"x-pyfiledrop-token": ADMIN_TOKEN}


def test_tus_share_and_drop_link_on_postgresql(make_server: type[ServerProcess], tmp_path: Path,
                                               postgres_url: str) -> None:  # fmt: skip
    first = make_server(tmp_path / "a", ["--database", postgres_url, "--allow-downloads"]).start()
    second = make_server(tmp_path / "b", ["--database", postgres_url, "--allow-downloads"]).start()
    data = os.urandom(3 * 1024 * 1024 + 17)
    with httpx.Client(base_url=first.url, timeout=30) as client:
        owner = {"x-pyfiledrop-token": client.get("/api/session").json()["token"]}
        created = client.post("/files/", headers={**TUS, **owner, "upload-length": str(len(data)),
                                                  "upload-metadata": "filename ZmlsbS5iaW4="})  # fmt: skip
        assert created.status_code == 201, created.text
        upload_id = created.headers["location"].rsplit("/", 1)[-1]
        for offset in range(0, len(data), 1024 * 1024):
            patched = client.patch(f"/files/{upload_id}", content=data[offset : offset + 1024 * 1024],
                                   headers={**TUS, **owner, "upload-offset": str(offset),
                                            "content-type": "application/offset+octet-stream"})  # fmt: skip
            assert patched.status_code == 204, patched.text
        status = client.get(f"/api/uploads/{upload_id}", headers=owner).json()
        assert status["complete"] and status["sha256"] == hashlib.sha256(data).hexdigest()
        assert client.get(f"/download/{upload_id}").content == data
        share = client.post(f"/api/uploads/{upload_id}/shares", json={}, headers=owner).json()
        assert httpx.get(share["url"], timeout=30).content == data
    # The other replica knows the owner (one signing key) and the record (one database).
    mine = httpx.get(f"{second.url}/api/uploads", headers=owner, timeout=30).json()["uploads"]
    assert [u["id"] for u in mine] == [upload_id]

    link = httpx.post(f"{first.url}/api/drops", json={"label": "three", "max_files": 3}, headers=ADMIN).json()
    token = link["url"].rsplit("/", 1)[1]

    def put(number: int) -> int:
        server = (first, second)[number % 2]
        return httpx.put(f"{server.url}/d/{token}/f{number}.bin", content=b"x" * 1000, timeout=30).status_code

    with ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(put, range(12)))
    assert sorted(statuses) == [201] * 3 + [507] * 9, statuses  # the link is full: ERR_QUOTA_EXCEEDED
    with psycopg.connect(postgres_url) as connection:
        owned = connection.execute("SELECT COUNT(*) FROM uploads WHERE owner = %s AND state != 'terminated'",
                                   (f"drop-{link['id']}",)).fetchone()  # fmt: skip
    assert owned == (3,)


def test_a_replica_with_other_limits_warns(make_server: type[ServerProcess], tmp_path: Path, postgres_url: str) -> None:
    make_server(tmp_path / "a", ["--database", postgres_url, "--max-size", "100"]).start()
    other = make_server(tmp_path / "b", ["--database", postgres_url, "--max-size", "200"]).start()
    warning = next((line for line in other.log().splitlines() if "max-size" in line), "")
    assert "WARNING" in warning.upper() and str(200 * 1024 * 1024) in warning and str(100 * 1024 * 1024) in warning
