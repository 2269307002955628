"""``--create-rate`` counts every way to create an upload (tus POST, PUT, X-HTTP-Method-Override, a Dropzone form or
first chunk, a drop link), and only creations: the later chunks of a Dropzone file are not creations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, ServerProcess
from tests.protocols.dropzone_client import DzFile

ADMIN = {"x-pyfiledrop-token": ADMIN_TOKEN}
TUS = {"tus-resumable": "1.0.0", "upload-length": "10"}
RATE = 3

Create = Callable[[httpx.Client, int], httpx.Response]


def _uploads(server: ServerProcess) -> int:
    return int(httpx.get(f"{server.url}/api/admin/stats", headers=ADMIN).json()["uploads"])


def _tus_post(client: httpx.Client, n: int) -> httpx.Response:
    return client.post("/files/", headers=TUS)


def _put(client: httpx.Client, n: int) -> httpx.Response:
    return client.put(f"/put-{n}.bin", content=b"x" * 10)


def _override_put(client: httpx.Client, n: int) -> httpx.Response:
    return client.post(f"/override-{n}.bin", content=b"x" * 10, headers={"x-http-method-override": "PUT"})


def _dropzone_whole(client: httpx.Client, n: int) -> httpx.Response:
    return client.post("/upload", files={"file": (f"form-{n}.bin", b"x" * 10, "application/octet-stream")})


def _dropzone_first_chunk(client: httpx.Client, n: int) -> httpx.Response:
    return DzFile(f"dz-{n}.bin", b"x" * 10, chunk_size=4).send(client, 0)


CREATORS: dict[str, Create] = {
    "tus-post": _tus_post,
    "put": _put,
    "post-with-method-override-put": _override_put,
    "dropzone-whole-form": _dropzone_whole,
    "dropzone-first-chunk": _dropzone_first_chunk,
}


@pytest.fixture
def server(make_server: type[ServerProcess], tmp_path: Path) -> ServerProcess:
    return make_server(tmp_path / "s", ["--create-rate", str(RATE)]).start()


@pytest.mark.parametrize("create", CREATORS.values(), ids=CREATORS.keys())
def test_each_way_of_creating_is_counted_and_the_refused_one_creates_nothing(
    server: ServerProcess, create: Create
) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        answers = [create(client, n) for n in range(RATE + 1)]
    assert [a.status_code for a in answers[:RATE]] == [answers[0].status_code] * RATE
    assert answers[0].status_code in (200, 201), answers[0].text
    refused = answers[RATE]
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["retry-after"]) >= 1
    assert _uploads(server) == RATE


def test_all_ways_share_one_budget_per_address(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert _override_put(client, 0).status_code == 201
        assert _dropzone_first_chunk(client, 1).status_code == 200
        assert _tus_post(client, 2).status_code == 201
        assert _put(client, 3).status_code == 429
        assert _dropzone_whole(client, 4).status_code == 429
    assert _uploads(server) == RATE


def test_a_drop_link_creation_is_counted(server: ServerProcess) -> None:
    drop = httpx.post(f"{server.url}/api/drops", json={"label": "rate"}, headers=ADMIN).json()
    statuses = [httpx.put(f"{server.url}/d/{drop['token']}/f{n}.bin", content=b"abc").status_code
                for n in range(RATE + 1)]  # fmt: skip
    assert statuses == [201] * RATE + [429]
    assert _uploads(server) == RATE


def test_the_later_chunks_of_a_dropzone_file_are_not_creations(server: ServerProcess) -> None:
    """Three files of five chunks each: fifteen requests, three creations, all within a budget of three."""
    files = [DzFile(f"big-{n}.bin", bytes([n]) * 20, chunk_size=4) for n in range(RATE)]
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for dz in files:
            for index in range(dz.chunk_count):
                response = dz.send(client, index)
                assert response.status_code == 200, response.text
        assert _dropzone_first_chunk(client, 99).status_code == 429
        listed = client.get("/api/uploads", params={"all": "1"}, headers=ADMIN).json()["uploads"]
    assert sorted(u["filename"] for u in listed) == [f"big-{n}.bin" for n in range(RATE)]
    assert all(u["state"] == "complete" for u in listed)
