"""Finished uploads are readable in {storage}/files/ under their own names and folders: paths kept, never
flattened, drop-link uploads in a folder named after the link's label, deduplicated uploads each with their name,
and no file left under the name of a deleted upload."""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, ServerProcess

TUS = {"tus-resumable": "1.0.0"}


@pytest.fixture
def server(make_server: type[ServerProcess], tmp_path: Path) -> ServerProcess:
    return make_server(tmp_path / "s").start()


def _eventually(check: object, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the named tree did not catch up"
        time.sleep(0.02)


def _tus(server: ServerProcess, name: str, data: bytes, headers: dict[str, str]) -> str:
    metadata = f"filename {base64.b64encode(name.encode()).decode()}"
    created = httpx.post(f"{server.url}/files/", headers={**TUS, **headers, "upload-length": str(len(data)),
                                                          "upload-metadata": metadata})  # fmt: skip
    assert created.status_code == 201, created.text
    patch = {**TUS, **headers, "upload-offset": "0", "content-type": "application/offset+octet-stream"}
    assert httpx.patch(created.headers["location"], content=data, headers=patch).status_code == 204
    return created.headers["location"].rsplit("/", 1)[1]


def _owner(server: ServerProcess) -> dict[str, str]:
    return {"x-pyfiledrop-token": httpx.get(f"{server.url}/api/session").json()["token"]}


def test_folders_keep_their_paths_on_disk(server: ServerProcess) -> None:
    owner = _owner(server)
    _tus(server, "album/one/b.txt", b"b of one", owner)
    _tus(server, "album/two/b.txt", b"b of two", owner)
    _tus(server, "../../evil/CON/a\x01b.txt", b"tamed", owner)
    tree = server.storage / "files"
    _eventually(lambda: (tree / "album/two/b.txt").exists() and (tree / "evil/_CON/ab.txt").exists())
    assert (tree / "album/one/b.txt").read_bytes() == b"b of one"
    assert (tree / "album/two/b.txt").read_bytes() == b"b of two"
    assert (tree / "evil/_CON/ab.txt").read_bytes() == b"tamed"
    assert not (server.storage.parent / "evil").exists()
    names = httpx.get(f"{server.url}/api/uploads", headers=owner).json()["uploads"]
    assert sorted(u["filename"] for u in names) == ["album/one/b.txt", "album/two/b.txt", "evil/_CON/ab.txt"]


def test_deduplicated_uploads_each_have_their_name_and_deleting_leaves_none_behind(server: ServerProcess) -> None:
    owner = _owner(server)
    data = os.urandom(40_000)
    first = httpx.put(f"{server.url}/same.bin", content=data, headers=owner).headers["x-upload-id"]
    second = httpx.put(f"{server.url}/same.bin", content=data, headers=owner).headers["x-upload-id"]
    third = httpx.put(f"{server.url}/other name.bin", content=data, headers=owner).headers["x-upload-id"]
    tree = server.storage / "files"
    _eventually(lambda: (tree / "other name.bin").exists() and (tree / "same (2).bin").exists())
    inodes = {(tree / n).stat().st_ino for n in ("same.bin", "same (2).bin", "other name.bin")}
    assert len(inodes) == 1  # one stored copy, three names
    assert httpx.delete(f"{server.url}/api/uploads/{first}", headers=owner).status_code == 204
    everything = [p for p in server.storage.rglob("*") if p.is_file()]
    assert not any(first in p.name for p in everything), everything  # not even the stored copy bears its name
    assert not (tree / "same.bin").exists() and (tree / "same (2).bin").read_bytes() == data
    token = owner["x-pyfiledrop-token"]
    for upload_id in (second, third):
        response = httpx.get(f"{server.url}/download/{upload_id}", headers={"x-pyfiledrop-token": token})
        assert response.content == data
    for upload_id in (second, third):
        assert httpx.delete(f"{server.url}/api/uploads/{upload_id}", headers=owner).status_code == 204
    assert [p for p in server.storage.rglob("*") if p.is_file() and ".sqlite" not in p.name
            and not p.name.startswith(".")] == []  # fmt: skip


def test_drop_link_uploads_land_in_a_folder_named_after_the_label(server: ServerProcess) -> None:
    link = httpx.post(f"{server.url}/api/drops", json={"label": "Footage: day 1"},
                      headers={"x-pyfiledrop-token": ADMIN_TOKEN}).json()  # fmt: skip
    token = link["url"].rsplit("/", 1)[1]
    _tus(server, "cam/a.mov", b"frames", {"x-pyfiledrop-drop": token})
    httpx.put(f"{server.url}/d/{token}/b.mov", content=b"more frames")
    folder = server.storage / "files" / "Footage_ day 1"
    _eventually(lambda: (folder / "cam/a.mov").exists() and (folder / "b.mov").exists())
    assert (folder / "b.mov").read_bytes() == b"more frames"


def test_the_tree_is_rebuilt_at_start_up(make_server: type[ServerProcess], tmp_path: Path) -> None:
    server = make_server(tmp_path / "s").start()
    owner = _owner(server)
    httpx.put(f"{server.url}/kept.txt", content=b"kept", headers=owner)
    tree = server.storage / "files"
    _eventually(lambda: (tree / "kept.txt").exists())
    server.kill()
    (tree / "kept.txt").unlink()
    (tree / "stray.txt").write_bytes(b"not ours")  # a person's own file in the tree is left alone
    server.start()
    _eventually(lambda: (tree / "kept.txt").exists())
    assert (tree / "kept.txt").read_bytes() == b"kept" and (tree / "stray.txt").exists()
