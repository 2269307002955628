"""A small real filesystem fills up mid-upload: 507, nothing corrupt, and the upload resumes once space is freed."""

from __future__ import annotations

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


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MiB tmpfs (needs root, which CI and the dev machines have)."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


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
    server = make_server(small_disk / "storage").start()
    refused = httpx.post(f"{server.url}/files/", headers={**TUS, "upload-length": str(100 * 2**20)})
    assert refused.status_code == 507
    assert "do not fit" in refused.text
