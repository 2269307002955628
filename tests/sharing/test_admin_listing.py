"""The admin's list over the API: server-side paging, search (name, owner, drop link label), sort, the drop link's
label on each record, a working download URL, and deleting several uploads at once."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, ServerProcess

ADMIN = {"x-pyfiledrop-token": ADMIN_TOKEN}


@pytest.fixture
def server(make_server: type[ServerProcess], tmp_path: Path) -> ServerProcess:
    return make_server(tmp_path / "s").start()


def test_paging_search_sort_and_labels(server: ServerProcess) -> None:
    owner = {"x-pyfiledrop-token": httpx.get(f"{server.url}/api/session").json()["token"]}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for number in range(25):
            client.put(f"/file-{number:02d}.txt", content=b"x" * (number + 1), headers=owner)
        link = client.post("/api/drops", json={"label": "Wedding photos"}, headers=ADMIN).json()
        client.put(f"/d/{link['url'].rsplit('/', 1)[1]}/portrait.jpg", content=b"jpeg")
        first = client.get("/api/uploads", params={"all": 1, "limit": 10, "sort": "name", "order": "asc"},
                           headers=ADMIN).json()  # fmt: skip
        assert first["total"] == 26 and len(first["uploads"]) == 10
        assert [u["filename"] for u in first["uploads"]][:2] == ["file-00.txt", "file-01.txt"]
        last = client.get("/api/uploads", params={"all": 1, "limit": 10, "offset": 20, "sort": "name"},
                          headers=ADMIN).json()  # fmt: skip
        assert [u["filename"] for u in last["uploads"]][-1] == "file-00.txt" and len(last["uploads"]) == 6
        by_size = client.get("/api/uploads", params={"all": 1, "limit": 1, "sort": "size"}, headers=ADMIN).json()
        assert by_size["uploads"][0]["filename"] == "file-24.txt"
        wedding = client.get("/api/uploads", params={"all": 1, "q": "wedding"}, headers=ADMIN).json()
        assert [u["filename"] for u in wedding["uploads"]] == ["portrait.jpg"]
        assert wedding["uploads"][0]["drop_label"] == "Wedding photos"
        assert httpx.get(wedding["uploads"][0]["download_url"]).content == b"jpeg"
        literal = client.get("/api/uploads", params={"all": 1, "q": "%"}, headers=ADMIN).json()
        assert literal["total"] == 0  # a LIKE wildcard is searched for as a character
        mine = client.get("/api/uploads", params={"limit": 5}, headers=owner).json()
        assert mine["total"] == 25  # an owner pages through their own only
        assert client.get("/api/uploads", params={"limit": 0}, headers=owner).status_code == 400
        assert client.get("/api/uploads", params={"sort": "owner; DROP"}, headers=owner).status_code == 400


def test_deleting_several_at_once(server: ServerProcess) -> None:
    owner = {"x-pyfiledrop-token": httpx.get(f"{server.url}/api/session").json()["token"]}
    stranger = {"x-pyfiledrop-token": httpx.get(f"{server.url}/api/session").json()["token"]}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        ids = [client.put(f"/d{n}.txt", content=b"d", headers=owner).headers["x-upload-id"] for n in range(3)]
        refused = client.post("/api/uploads/delete", json={"ids": ids[:1]}, headers=stranger).json()
        assert refused["deleted"] == [] and len(refused["failed"]) == 1
        done = client.post("/api/uploads/delete", json={"ids": [*ids, "A" * 24]}, headers=ADMIN).json()
        assert done["deleted"] == ids and len(done["failed"]) == 1
        assert client.get("/api/uploads", headers=owner).json()["uploads"] == []
        assert client.post("/api/uploads/delete", json={"ids": []}, headers=ADMIN).status_code == 400
