"""The real tuspy client (PyPI) against the real server: whole uploads with checksums, a refused checksum, and
resuming a half-finished upload from a new process (by its stored URL and by tuspy's URL storage)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from tusclient import client as tus_client
from tusclient.exceptions import TusUploadFailed
from tusclient.uploader import AsyncUploader, Uploader

from tests.conftest import ServerProcess
from tests.interop.conftest import MiB, Source, check_stored

pytestmark = [pytest.mark.interop, pytest.mark.timeout(180)]

SCRIPT = Path(__file__).with_name("tuspy_upload.py")
_HASHES = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "md5": hashlib.md5}


def _id(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def _uploader(algorithm: str, base: type[Uploader] = Uploader) -> type[Uploader]:
    return type(f"{algorithm}Uploader", (base,), {"CHECKSUM_ALGORITHM_PAIR": (algorithm, _HASHES[algorithm])})


def _offset(client: httpx.Client, url: str) -> int:
    response = client.head(url, headers={"Tus-Resumable": "1.0.0"})
    assert response.status_code == 200
    return int(response.headers["upload-offset"])


def _run_tuspy(**options: Any) -> dict[str, Any]:
    """tuspy in a new Python process (see tuspy_upload.py)."""
    options = {key: str(value) if isinstance(value, Path) else value for key, value in options.items()}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), json.dumps(options)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "md5"])
def test_tuspy_uploads_a_file_in_chunks_with_checksums(
    shared_server: ServerProcess, make_source: Callable[..., Source], client: httpx.Client, owner: str, algorithm: str
) -> None:
    source = make_source(20 * MiB + 7, f"tuspy-{algorithm}.bin")
    tus = tus_client.TusClient(f"{shared_server.url}/files/", headers={"X-Pyfiledrop-Token": owner})
    with source.path.open("rb") as stream:  # file_path would leak a file handle per chunk (tuspy 1.1)
        uploader = _uploader(algorithm)(
            file_stream=stream, client=tus, chunk_size=3 * MiB, upload_checksum=True,
            metadata={"filename": source.path.name, "filetype": "application/x-test"},
        )  # fmt: skip
        uploader.upload()
    assert uploader.offset == source.size
    info = check_stored(client, _id(uploader.url), source, owner)
    assert info["filename"] == source.path.name
    assert info["content_type"] == "application/x-test"


def test_tuspy_sees_460_for_a_chunk_whose_checksum_does_not_match(
    shared_server: ServerProcess, make_source: Callable[..., Source], client: httpx.Client, owner: str
) -> None:
    source = make_source(3 * MiB, "corrupt.bin")

    def wrong_sha1(data: bytes) -> Any:
        return hashlib.sha1(data + b"!")

    class LyingUploader(Uploader):
        CHECKSUM_ALGORITHM_PAIR = ("sha1", wrong_sha1)

    tus = tus_client.TusClient(f"{shared_server.url}/files/", headers={"X-Pyfiledrop-Token": owner})
    with source.path.open("rb") as stream:
        uploader = LyingUploader(file_stream=stream, client=tus, chunk_size=MiB, upload_checksum=True)
        with pytest.raises(TusUploadFailed) as failure:
            uploader.upload()
        assert failure.value.status_code == 460
        assert _offset(client, uploader.url) == 0  # nothing of the refused chunk was kept

        honest = _uploader("sha1")(file_stream=stream, client=tus, url=uploader.url, chunk_size=MiB,
                                   upload_checksum=True)  # fmt: skip
        honest.upload()
    check_stored(client, _id(uploader.url), source, owner)


def test_tuspy_resumes_a_half_finished_upload_from_a_new_process_by_its_stored_url(
    shared_server: ServerProcess, make_source: Callable[..., Source], client: httpx.Client, owner: str
) -> None:
    source = make_source(24 * MiB, "half.bin")
    half = source.size // 2
    common = {"endpoint": f"{shared_server.url}/files/", "file": source.path, "chunk_size": 4 * MiB,
              "checksum": "sha1", "headers": {"X-Pyfiledrop-Token": owner}}  # fmt: skip
    first = _run_tuspy(stop_at=half, **common)
    assert first["offset"] == half
    assert _offset(client, first["url"]) == half

    second = _run_tuspy(url=first["url"], **common)  # a new TusClient and uploader, given only the URL
    assert second["url"] == first["url"]
    assert second["start_offset"] == half
    assert second["offset"] == source.size
    assert min(offset for offset, _ in second["patches"]) == half  # nothing before the half was sent again
    resent = sum(length for _, length in second["patches"])
    assert resent == source.size - half
    check_stored(client, _id(first["url"]), source, owner)


def test_tuspy_resumes_from_its_url_storage_in_a_new_process(
    shared_server: ServerProcess, make_source: Callable[..., Source], client: httpx.Client, owner: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    source = make_source(20 * MiB + 3, "stored.bin")
    common = {"endpoint": f"{shared_server.url}/files/", "file": source.path, "chunk_size": 2 * MiB,
              "checksum": "sha256", "headers": {"X-Pyfiledrop-Token": owner},
              "url_storage": tmp_path / "tuspy-urls.json"}  # fmt: skip
    first = _run_tuspy(stop_at=12 * MiB, **common)
    assert first["offset"] == 12 * MiB
    second = _run_tuspy(**common)  # finds the URL under the file's fingerprint
    assert second["url"] == first["url"]
    assert second["start_offset"] == 12 * MiB
    assert second["patches"][0][0] == 12 * MiB
    assert sum(length for _, length in second["patches"]) == source.size - 12 * MiB
    check_stored(client, _id(first["url"]), source, owner)


def test_tuspy_async_uploader_uploads_a_file(
    shared_server: ServerProcess, make_source: Callable[..., Source], client: httpx.Client, owner: str
) -> None:
    source = make_source(8 * MiB, "async.bin")
    tus = tus_client.TusClient(f"{shared_server.url}/files/", headers={"X-Pyfiledrop-Token": owner})
    with source.path.open("rb") as stream:
        uploader = tus.async_uploader(file_stream=stream, chunk_size=MiB, upload_checksum=True)
        assert isinstance(uploader, AsyncUploader)
        asyncio.run(uploader.upload())
    assert uploader.offset == source.size
    check_stored(client, _id(uploader.url), source, owner)


def test_tuspy_resumes_after_the_server_was_killed_and_restarted(
    make_server: type[ServerProcess], make_source: Callable[..., Source], tmp_path: Path
) -> None:
    server = make_server(tmp_path / "storage", ["--allow-downloads"]).start()
    with httpx.Client(base_url=server.url, timeout=60) as client:
        owner = client.get("/api/session").json()["token"]
        client.cookies.clear()
        source = make_source(16 * MiB, "restart.bin")
        common = {"endpoint": f"{server.url}/files/", "file": source.path, "chunk_size": 2 * MiB, "checksum": "md5",
                  "headers": {"X-Pyfiledrop-Token": owner}}  # fmt: skip
        first = _run_tuspy(stop_at=10 * MiB, **common)
        server.kill()  # SIGKILL: no shutdown code runs
        server.start()
        assert _offset(client, first["url"]) == 10 * MiB  # acknowledged chunks survive the crash
        second = _run_tuspy(url=first["url"], **common)
        assert second["start_offset"] == 10 * MiB
        assert sum(length for _, length in second["patches"]) == source.size - 10 * MiB
        check_stored(client, _id(first["url"]), source, owner)
