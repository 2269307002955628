"""A final upload large enough to be joined in the background (engine/concat.py): what its HEAD, download, Range,
zip share, named tree, deduplication, expiry and delete do, and a kill during the join."""

from __future__ import annotations

import hashlib
import io
import random
import time
import zipfile
from pathlib import Path

import httpx

from pyfiledrop.engine.concat import INLINE_BYTES
from tests.conftest import ServerProcess
from tests.protocols.test_tus_httptest import (
    OWNER_HEADER,
    create,
    head,
    metadata_header,
    patch,
    request,
    upload_id,
)

MiB = 1 << 20
# Above the size joined before the answer, with uneven parts as tus-js-client cuts them (size // parts, the rest last).
PIECES = (12 * MiB + 1, 12 * MiB + 1, 12 * MiB + 1, 12 * MiB + 4099)


def _pieces(seed: int, sizes: tuple[int, ...] = PIECES) -> list[bytes]:
    """Random parts; the last one ``seed`` bytes longer, so each test's file has a size of its own on the shared
    server (the storage checks find files by size)."""
    rng = random.Random(seed)
    return [rng.randbytes(size + (seed if index == len(sizes) - 1 else 0)) for index, size in enumerate(sizes)]


def _join(client: httpx.Client, owner: str, pieces: list[bytes], name: str) -> httpx.Response:
    parts = [create(client, owner, len(piece), concat="partial") for piece in pieces]
    for path, piece in zip(parts, pieces, strict=True):
        assert patch(client, path, 0, piece, {OWNER_HEADER: owner}).status_code == 204
    headers = {"Upload-Concat": "final;" + " ".join(parts), "Upload-Metadata": metadata_header(filename=name),
               OWNER_HEADER: owner}  # fmt: skip
    response = request(client, "POST", "/files/", headers)
    assert response.status_code == 201, response.text
    if "upload-offset" in response.headers:  # joined within the answer's budget: then it is complete
        assert response.headers["upload-offset"] == str(sum(map(len, pieces)))
    return response


def _stored(storage: Path, size: int) -> list[Path]:
    """Distinct stored files of this size (the named tree's hard links counted once)."""
    found = {(p.stat().st_ino): p for p in storage.rglob("*") if p.is_file() and p.stat().st_size == size}
    return list(found.values())


def test_a_large_final_upload_is_read_like_any_file_once_its_head_says_complete(
    client: httpx.Client, owner: str, shared_server: ServerProcess
) -> None:
    assert sum(PIECES) > INLINE_BYTES  # this final upload is answered before its join ends
    pieces = _pieces(1)
    expected = b"".join(pieces)
    response = _join(client, owner, pieces, "joined-large.bin")
    final = httpx.URL(response.headers["location"]).path
    found = head(client, final)  # waits for the join: Upload-Offset only once joined and hashed
    assert found.headers["upload-offset"] == found.headers["upload-length"] == str(len(expected))
    for part in found.headers["upload-concat"].removeprefix("final;").split():
        assert head(client, part).status_code == 410  # used up
    info = client.get(f"/api/uploads/{upload_id(final)}", headers={OWNER_HEADER: owner}).json()
    assert info["sha256"] == hashlib.sha256(expected).hexdigest()
    whole = client.get(f"/download/{upload_id(final)}")
    assert whole.status_code == 200
    assert whole.content == expected
    boundary = len(pieces[0])  # a range across the first part's end
    ranged = client.get(f"/download/{upload_id(final)}", headers={"Range": f"bytes={boundary - 10}-{boundary + 9}"})
    assert ranged.status_code == 206
    assert ranged.content == expected[boundary - 10 : boundary + 10]
    # One regular file on disk, and its name in the named tree is a hard link to it: what sendfile and video jobs use.
    (stored,) = _stored(shared_server.storage, len(expected))
    assert (shared_server.storage / "files" / "joined-large.bin").samefile(stored)
    share = client.post("/api/shares", json={"upload_ids": [upload_id(final)]}, headers={OWNER_HEADER: owner}).json()
    archive = zipfile.ZipFile(io.BytesIO(httpx.get(share["url"] + "/zip", timeout=30).content))
    assert archive.read("joined-large.bin") == expected


def test_the_same_bytes_joined_twice_are_stored_once_until_both_are_deleted(
    client: httpx.Client, owner: str, shared_server: ServerProcess
) -> None:
    pieces = _pieces(2)
    expected = b"".join(pieces)
    first = httpx.URL(_join(client, owner, pieces, "twice-a.bin").headers["location"]).path
    cut = (len(expected) // 3, 2 * len(expected) // 3)  # other part boundaries, the same bytes
    second_pieces = [expected[: cut[0]], expected[cut[0] : cut[1]], expected[cut[1] :]]
    second = httpx.URL(_join(client, owner, second_pieces, "twice-b.bin").headers["location"]).path
    for path in (first, second):
        assert head(client, path).headers["upload-offset"] == str(len(expected))
    assert len(_stored(shared_server.storage, len(expected))) == 1  # deduplicated
    admin = {OWNER_HEADER: owner}
    assert request(client, "DELETE", first, admin).status_code == 204
    assert client.get(f"/download/{upload_id(second)}").content == expected
    assert request(client, "DELETE", second, admin).status_code == 204
    assert _stored(shared_server.storage, len(expected)) == []


def test_an_expired_final_upload_is_gone(client: httpx.Client, owner: str) -> None:
    pieces = _pieces(3)
    final = httpx.URL(_join(client, owner, pieces, "expiring.bin").headers["location"]).path
    headers = {OWNER_HEADER: owner}
    response = client.patch(f"/api/uploads/{upload_id(final)}", json={"expires_in": 1}, headers=headers)
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + 10
    while client.get(f"/download/{upload_id(final)}").status_code != 410:
        assert time.monotonic() < deadline, "the expired upload is still served"
        time.sleep(0.2)
    assert head(client, final).status_code == 410


def test_a_kill_during_the_join_is_joined_again_at_the_next_start(
    make_server: type[ServerProcess], tmp_path: Path
) -> None:
    server = make_server(tmp_path / "s").start()
    pieces = _pieces(4, (32 * MiB, 32 * MiB, 32 * MiB, 32 * MiB + 7))
    expected = b"".join(pieces)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        owner = client.get("/api/session").json()["token"]
        client.cookies.clear()
        response = _join(client, owner, pieces, "killed.bin")
        server.kill()  # most likely while the join reads and writes (128 MiB); if it was done, nothing to redo
        final = httpx.URL(response.headers["location"]).path
    server.start()
    with httpx.Client(base_url=server.url, timeout=60) as client:
        found = head(client, final)
        assert found.headers["upload-offset"] == str(len(expected)), found.headers
        info = client.get(f"/api/uploads/{upload_id(final)}", headers={OWNER_HEADER: owner}).json()
        assert info["sha256"] == hashlib.sha256(expected).hexdigest()
        downloaded = client.get(f"/download/{upload_id(final)}", headers={OWNER_HEADER: owner})
        assert downloaded.status_code == 200
        assert hashlib.sha256(downloaded.content).hexdigest() == info["sha256"]
        for part in found.headers["upload-concat"].removeprefix("final;").split():
            assert head(client, part).status_code == 410
    assert not list((server.storage / ".partial").glob("*.part"))  # no part left behind
