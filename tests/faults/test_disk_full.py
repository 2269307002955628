"""A small real filesystem fills up mid-upload: 507, nothing corrupt, and the upload resumes once space is freed."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess

TUS = {"tus-resumable": "1.0.0"}
PATCH = {**TUS, "content-type": "application/offset+octet-stream"}


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A small real file system (needs root, which CI and the dev machines have: the test is skipped, saying why,
    only where mounting is impossible)."""
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                             capture_output=True, text=True, check=False)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a {size} tmpfs here (root is needed): {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "small", "24m") as mount:
        yield mount


@pytest.fixture
def disk_64m(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "disk", "64m") as mount:
        yield mount


def test_disk_full_mid_upload_is_507_and_resumes_after_space_is_freed(
    make_server: type[ServerProcess], small_disk: Path
) -> None:
    server = make_server(small_disk / "storage", ["--min-free", "0"]).start()  # the default keeps 1 GiB free
    data = os.urandom(12 * 2**20)
    created = httpx.post(f"{server.url}/files/", headers={**TUS, "upload-length": str(len(data))})
    assert created.status_code == 201
    location = created.headers["location"]
    filler = small_disk / "filler"
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    filler.write_bytes(b"\0" * (free - 5 * 2**20))  # leave room for about 5 MiB of the 12

    full = httpx.patch(location, content=data, headers={**PATCH, "upload-offset": "0"}, timeout=60)
    assert full.status_code == 507
    assert "resume" in full.text
    offset = int(httpx.head(location, headers=TUS).headers["upload-offset"])
    assert offset < len(data)
    assert httpx.get(f"{server.url}/api/config").status_code == 200  # the server is fine

    filler.unlink()
    done = httpx.patch(location, content=data[offset:], headers={**PATCH, "upload-offset": str(offset)}, timeout=60)
    assert done.status_code == 204
    upload_id = location.rsplit("/", 1)[-1]
    stored = next(p for p in server.storage.iterdir() if p.name.startswith(upload_id))
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()


def test_upload_larger_than_the_free_space_is_refused_at_creation(
    make_server: type[ServerProcess], small_disk: Path
) -> None:
    server = make_server(small_disk / "storage", ["--min-free", "0"]).start()
    refused = httpx.post(f"{server.url}/files/", headers={**TUS, "upload-length": str(100 * 2**20)})
    assert refused.status_code == 507
    assert "do not fit" in refused.text


def _free(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def _allocated(path: Path) -> int:
    return path.stat().st_blocks * 512


def _fill_with_one_upload(server: ServerProcess, owner: dict[str, str]) -> tuple[str, str, bytes]:
    """An unfinished 30 MiB upload, created while it fitted, and a finished 36 MiB file sent meanwhile: the 30 MiB
    PATCH then runs into the end of the 64 MiB disk. Returns (the finished file's id, the upload's URL, its data)."""
    data = os.urandom(30 * 2**20)
    created = httpx.post(f"{server.url}/files/", headers={**TUS, **owner, "upload-length": str(len(data))})
    assert created.status_code == 201, created.text
    finished = httpx.put(f"{server.url}/big.bin", content=os.urandom(36 * 2**20),
                         headers={**owner, "accept": "application/json"}, timeout=60)  # fmt: skip
    assert finished.status_code == 201, finished.text
    location = created.headers["location"]
    full = httpx.patch(location, content=data, headers={**PATCH, **owner, "upload-offset": "0"}, timeout=60)
    assert full.status_code == 507, full.text
    return finished.json()["id"], location, data


def test_a_disk_filled_by_uploads_is_freed_through_the_api_and_the_upload_resumes(
    make_server: type[ServerProcess], disk_64m: Path
) -> None:
    """The server alone fills its disk. The bytes it did not record are given back at once (not left allocated in
    the partial file), the database keeps enough room to record a DELETE, deleting frees the space, and the
    interrupted upload resumes from its offset to the right sha256."""
    server = make_server(disk_64m / "storage", ["--min-free", "0"]).start()
    owner = {"x-pyfiledrop-token": httpx.get(f"{server.url}/api/session").json()["token"]}
    finished_id, location, data = _fill_with_one_upload(server, owner)
    offset = int(httpx.head(location, headers=TUS).headers["upload-offset"])
    assert 0 < offset < len(data)
    partial = server.storage / ".partial" / f"{location.rsplit('/', 1)[-1]}.part"
    assert _allocated(partial) <= offset + 4096, "no block beyond the recorded bytes stays allocated"

    # While the disk is full, more bytes are refused at once: what room is left is for recording deletions.
    again = httpx.patch(location, content=data[offset:], headers={**PATCH, **owner, "upload-offset": str(offset)},
                        timeout=60)  # fmt: skip
    assert again.status_code == 507, again.text
    assert int(httpx.head(location, headers=TUS).headers["upload-offset"]) == offset

    free_before = _free(disk_64m)
    deleted = httpx.delete(f"{server.url}/api/uploads/{finished_id}", headers=owner)
    assert deleted.status_code == 204, deleted.text
    assert _free(disk_64m) >= free_before + 30 * 2**20, "the deleted file's space came back"

    done = httpx.patch(location, content=data[offset:], headers={**PATCH, **owner, "upload-offset": str(offset)},
                       timeout=60)  # fmt: skip
    assert done.status_code == 204, done.text
    upload = httpx.get(f"{server.url}/api/uploads/{location.rsplit('/', 1)[-1]}", headers=owner).json()
    assert upload["state"] == "complete"
    assert upload["sha256"] == hashlib.sha256(data).hexdigest()
    stored = httpx.get(upload["download_url"], headers=owner, timeout=60).content
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(data).hexdigest()


def test_the_interrupted_upload_itself_can_be_terminated_on_a_full_disk(
    make_server: type[ServerProcess], disk_64m: Path
) -> None:
    server = make_server(disk_64m / "storage", ["--min-free", "0"]).start()
    owner = {"x-pyfiledrop-token": httpx.get(f"{server.url}/api/session").json()["token"]}
    _, location, _ = _fill_with_one_upload(server, owner)
    free_before = _free(disk_64m)
    terminated = httpx.delete(location, headers=TUS)
    assert terminated.status_code == 204, terminated.text
    assert list((server.storage / ".partial").iterdir()) == []
    assert _free(disk_64m) > free_before
    assert httpx.head(location, headers=TUS).status_code in (404, 410)
    # Space is back: a new upload goes through whole.
    again = httpx.put(f"{server.url}/after.bin", content=b"y" * 2**20, headers=owner)
    assert again.status_code == 201, again.text


def test_a_disk_filled_by_another_program_still_records_a_delete(
    make_server: type[ServerProcess], disk_64m: Path
) -> None:
    """Someone else's file takes the last byte (the server's writes did not): a DELETE is still recorded, thanks
    to the reserve the server keeps beside its database, and the space it frees takes uploads again."""
    server = make_server(disk_64m / "storage", ["--min-free", "0"]).start()
    owner = {"x-pyfiledrop-token": httpx.get(f"{server.url}/api/session").json()["token"]}
    kept = httpx.put(f"{server.url}/kept.bin", content=os.urandom(8 * 2**20),
                     headers={**owner, "accept": "application/json"}, timeout=60).json()["id"]  # fmt: skip
    filler = disk_64m / "filler"
    with filler.open("wb") as handle, contextlib.suppress(OSError):
        while True:  # to the very last block
            handle.write(b"\0" * 2**16)
    assert _free(disk_64m) < 2**16
    refused = httpx.put(f"{server.url}/while-full.bin", content=b"z" * 3 * 2**20, headers=owner, timeout=60)
    assert refused.status_code == 507, refused.text
    deleted = httpx.delete(f"{server.url}/api/uploads/{kept}", headers=owner)
    assert deleted.status_code == 204, deleted.text
    assert httpx.get(f"{server.url}/api/uploads/{kept}", headers=owner).status_code in (404, 410)
    assert _free(disk_64m) >= 7 * 2**20  # the 8 MiB file, less the reserve made again and a few database pages
    after = httpx.put(f"{server.url}/after.bin", content=b"z" * 3 * 2**20, headers=owner, timeout=60)
    assert after.status_code == 201, after.text
