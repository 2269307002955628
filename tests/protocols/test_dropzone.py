"""POST /upload, the seed's Dropzone chunk protocol, against a real server."""

from __future__ import annotations

import hashlib
import os
import random
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import ServerProcess
from tests.protocols.dropzone_client import DzFile

CHUNK = 256 * 1024


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_dropzone_chunks_in_order_build_the_file(client: httpx.Client) -> None:
    dz = DzFile("movie.mp4", os.urandom(5 * CHUNK + 123), CHUNK)
    for index in range(dz.chunk_count):
        response = dz.send(client, index)
        assert response.status_code == 200, response.text
    body = response.json()
    assert body["complete"] is True
    assert body["sha256"] == _sha(dz.data)
    assert body["download_url"].endswith(f"/download/{body['id']}")
    assert client.get(f"/download/{dz.uuid}").content == dz.data  # the seed's page links by dzuuid
    assert client.get(f"/download/{body['id']}").content == dz.data


def test_dropzone_shuffled_parallel_and_duplicated_chunks(shared_server: ServerProcess) -> None:
    dz = DzFile("shuffled.bin", os.urandom(24 * CHUNK + 7), CHUNK)
    order = list(range(dz.chunk_count)) * 2  # every chunk twice
    random.Random(3).shuffle(order)
    with httpx.Client(base_url=shared_server.url, timeout=30) as c, ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda i: dz.send(c, i).status_code, order))
        assert statuses == [200] * len(order)
        status = c.get(f"/download/{dz.uuid}")
    assert status.status_code == 200
    assert _sha(status.content) == _sha(dz.data)


def test_dropzone_duplicate_chunk_is_idempotent(client: httpx.Client) -> None:
    dz = DzFile("dup.bin", os.urandom(3 * CHUNK), CHUNK)
    first = dz.send(client, 0).json()
    again = dz.send(client, 0).json()
    assert first["received_bytes"] == again["received_bytes"] == CHUNK
    for index in (1, 2, 2):
        last = dz.send(client, index)
    assert last.status_code == 200 and last.json()["sha256"] == _sha(dz.data)


def test_dropzone_unchunked_single_post(client: httpx.Client) -> None:
    data = os.urandom(100_000)
    response = client.post("/upload", files={"file": ("single.txt", data, "text/plain")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["complete"] and body["sha256"] == _sha(data) and body["filename"] == "single.txt"
    assert client.get(f"/download/{body['id']}").content == data


def test_dropzone_last_chunk_answers_with_id_and_download_url(client: httpx.Client) -> None:
    dz = DzFile("a.bin", os.urandom(2 * CHUNK), CHUNK)
    partial = dz.send(client, 0).json()
    assert partial["complete"] is False and partial["download_url"] is None
    done = dz.send(client, 1).json()
    assert done["complete"] is True and done["id"] == partial["id"] and done["download_url"]


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"dzchunkindex": "x"}, 400),
        ({"dzchunkbyteoffset": "1"}, 400),
        ({"dzchunkindex": "9"}, 400),
        ({"dztotalchunkcount": "7"}, 400),
        ({"dzuuid": "../../etc"}, 400),
        ({"dzuuid": "a/b/c/d/e/f/g/h"}, 400),
        ({"dztotalfilesize": str(65 * 2**20)}, 413),
        ({"dztotalfilesize": "-5"}, 400),
    ],
)
def test_dropzone_bad_fields_are_refused(client: httpx.Client, change: dict[str, str], status: int) -> None:
    dz = DzFile("bad.bin", os.urandom(2 * CHUNK), CHUNK)
    fields, files = dz.form(0)
    response = client.post("/upload", data={**fields, **change}, files=files)
    assert response.status_code == status, response.text
    assert response.json()["error"] and response.json()["detail"]


def test_dropzone_missing_field_names_it(client: httpx.Client) -> None:
    dz = DzFile("bad.bin", os.urandom(2 * CHUNK), CHUNK)
    fields, files = dz.form(0)
    del fields["dztotalchunkcount"]
    response = client.post("/upload", data=fields, files=files)
    assert response.status_code == 400
    assert "dztotalchunkcount" in response.json()["detail"]


def test_dropzone_without_file_part_is_400(client: httpx.Client) -> None:
    response = client.post("/upload", data={"dzuuid": "x" * 36}, files={"other": ("x", b"1")})
    assert response.status_code == 400
    assert "file" in response.json()["detail"]


def test_dropzone_short_chunk_is_not_recorded(client: httpx.Client) -> None:
    dz = DzFile("short.bin", os.urandom(2 * CHUNK), CHUNK)
    fields, _ = dz.form(0)
    response = client.post("/upload", data=fields, files={"file": ("short.bin", b"abc", "application/octet-stream")})
    assert response.status_code == 400
    good = dz.send(client, 0).json()
    assert good["received_bytes"] == CHUNK


def test_dropzone_not_multipart_is_400(client: httpx.Client) -> None:
    response = client.post("/upload", content=b"hello", headers={"content-type": "text/plain"})
    assert response.status_code == 400
