"""The uploader's address in the admin listing (``client_address``): recorded when an upload is created, whatever
the protocol (PUT held whole or streamed, tus with or without its first bytes, tus parts joined by a final upload,
Dropzone chunked or in one form, a drop link); the proxy's client only with ``--behind-proxy``; shown to the admin
and to nobody else; never something a client can choose through Upload-Metadata, never echoed back by tus HEAD."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import httpx

from tests.conftest import ADMIN_TOKEN, ServerProcess
from tests.protocols.dropzone_client import DzFile

ADMIN = {"x-pyfiledrop-token": ADMIN_TOKEN}
TUS = {"tus-resumable": "1.0.0"}
FORWARDED = {"x-forwarded-for": "198.51.100.1, 203.0.113.9"}  # the proxy appends the address it saw last
SPOOF = "pyfiledrop.client_address " + base64.b64encode(b"10.9.8.7").decode()


def _tus_metadata(name: str) -> str:
    return f"filename {base64.b64encode(name.encode()).decode()},{SPOOF}"


def _upload_every_way(client: httpx.Client, headers: dict[str, str]) -> set[str]:
    """One upload per way in; returns the names sent."""
    assert client.put("/small.txt", content=b"small", headers=headers).status_code == 201
    big = os.urandom(3 << 20)  # larger than a body the server holds whole: streamed to disk as it comes
    assert client.put("/big.bin", content=big, headers=headers).status_code == 201
    created = client.post("/files/", headers={**headers, **TUS, "upload-length": "4",
                                              "upload-metadata": _tus_metadata("tus.txt")})  # fmt: skip
    assert created.status_code == 201, created.text
    patched = client.patch(created.headers["location"], content=b"tus!",
                           headers={**headers, **TUS, "upload-offset": "0",
                                    "content-type": "application/offset+octet-stream"})  # fmt: skip
    assert patched.status_code == 204
    whole = client.post("/files/", content=b"whole", headers={**headers, **TUS, "upload-length": "5",
                        "upload-metadata": _tus_metadata("tus-whole.txt"),
                        "content-type": "application/offset+octet-stream"})  # fmt: skip
    assert whole.status_code == 201, whole.text
    parts = []
    for piece in (b"first ", b"second"):
        part = client.post("/files/", content=piece, headers={**headers, **TUS, "upload-length": str(len(piece)),
                           "upload-concat": "partial", "content-type": "application/offset+octet-stream"})  # fmt: skip
        assert part.status_code == 201, part.text
        parts.append(part.headers["location"])
    final = client.post("/files/", headers={**headers, **TUS, "upload-concat": "final;" + " ".join(parts),
                                            "upload-metadata": _tus_metadata("joined.txt")})  # fmt: skip
    assert final.status_code == 201, final.text
    chunked = DzFile("dropzone.bin", os.urandom(200_000), 65536)
    for index in range(chunked.chunk_count):
        assert chunked.send(client, index, headers=headers).status_code == 200
    form = client.post("/upload", files={"file": ("form.txt", b"form", "text/plain")}, headers=headers)
    assert form.status_code == 200, form.text
    link = client.post("/api/drops", json={"label": "Inbox"}, headers=ADMIN).json()
    dropped = client.put(f"/d/{link['url'].rsplit('/', 1)[1]}/dropped.txt", content=b"dropped", headers=headers)
    assert dropped.status_code == 201
    return {"small.txt", "big.bin", "tus.txt", "tus-whole.txt", "joined.txt", "dropzone.bin", "form.txt",
            "dropped.txt"}  # fmt: skip


def _addresses(client: httpx.Client, params: dict[str, str]) -> dict[str, object]:
    listed = client.get("/api/uploads", params=params, headers=ADMIN)
    assert listed.status_code == 200, listed.text
    return {item["filename"]: item["client_address"] for item in listed.json()["uploads"] if item["complete"]}


def test_the_admin_sees_the_address_each_upload_came_from(make_server: type[ServerProcess], tmp_path: Path) -> None:
    server = make_server(tmp_path / "s").start()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        owner = {"x-pyfiledrop-token": client.get("/api/session").json()["token"]}
        # Without --behind-proxy, X-Forwarded-For is anyone's to write: ignored.
        names = _upload_every_way(client, {**owner, **FORWARDED})
        for params in ({"all": "1"}, {"all": "1", "limit": "100"}):  # the whole list and the paged one
            assert _addresses(client, params) == dict.fromkeys(names, "127.0.0.1")
        mine = client.get("/api/uploads", headers=owner).json()["uploads"]
        assert mine and all("client_address" not in item and "owner" not in item for item in mine)
        mine_paged = client.get("/api/uploads", params={"limit": "100"}, headers=owner).json()["uploads"]
        assert mine_paged and all("client_address" not in item for item in mine_paged)
        # The owner's own view of one upload through tus HEAD gives back the metadata as sent, nothing added.
        tus_upload = next(item for item in mine if item["filename"] == "tus.txt")
        head = client.head(tus_upload["tus_url"], headers={**owner, **TUS})
        assert head.status_code == 200
        assert "pyfiledrop.client_address" not in head.headers["upload-metadata"]
        assert head.headers["upload-metadata"].startswith("filename ")


def test_behind_a_proxy_the_address_is_the_proxys_client(make_server: type[ServerProcess], tmp_path: Path) -> None:
    server = make_server(tmp_path / "s", ["--behind-proxy"]).start()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        owner = {"x-pyfiledrop-token": client.get("/api/session").json()["token"]}
        names = _upload_every_way(client, {**owner, **FORWARDED})
        client.put("/direct.txt", content=b"no proxy header", headers=owner)
        expected = {**dict.fromkeys(names, "203.0.113.9"), "direct.txt": "127.0.0.1"}
        assert _addresses(client, {"all": "1", "limit": "100"}) == expected
    server.stop()
    server.start()  # recorded with the upload: still there after a restart
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert _addresses(client, {"all": "1"}) == expected
