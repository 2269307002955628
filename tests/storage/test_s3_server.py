"""``pyfiledrop serve --storage s3://BUCKET/PREFIX`` on a loopback port, every protocol, against SeaweedFS."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from pyfiledrop.units import MIB
from tests.conftest import ServerProcess
from tests.protocols.dropzone_client import DzFile
from tests.storage.conftest import all_keys, open_multiparts
from tests.weed import S3Server

TUS = {"tus-resumable": "1.0.0"}
PATCH = {"content-type": "application/offset+octet-stream"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def s3_serve(server: S3Server, folder: Path, bucket: str, *extra: str) -> ServerProcess:
    args = ["--storage", f"s3://{bucket}/drop", "--s3-endpoint", server.endpoint, "--state-dir", str(folder / "state"),
            "--allow-downloads", "--helpers", "0", *extra]  # fmt: skip
    return ServerProcess(folder / "unused", args).start(timeout=60)


@pytest.fixture(scope="module")
def bucket(s3_server: S3Server) -> str:
    return s3_server.new_bucket()


@pytest.fixture(scope="module")
def served(s3_server: S3Server, bucket: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = s3_serve(s3_server, tmp_path_factory.mktemp("s3serve"), bucket)
    yield server
    server.stop()


def blob_keys(s3_server: S3Server, bucket: str) -> list[str]:
    return [key for key in all_keys(s3_server, bucket) if key.startswith("drop/blobs/")]


def download(served: ServerProcess, upload_id: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{served.url}/download/{upload_id}", headers=headers, timeout=60)


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_curl_put_download_and_range(served: ServerProcess, tmp_path: Path) -> None:
    data = os.urandom(11 * MIB + 3)
    (tmp_path / "f.bin").write_bytes(data)
    done = subprocess.run(["curl", "-sS", "-T", str(tmp_path / "f.bin"), "-H", "accept: application/json",
                           f"{served.url}/f.bin"], capture_output=True, timeout=120, check=True)  # fmt: skip
    answer = json.loads(done.stdout)
    assert answer["sha256"] == sha(data)
    assert download(served, answer["id"]).content == data
    ranged = download(served, answer["id"], range="bytes=5242870-5242889")
    assert ranged.status_code == 206 and ranged.content == data[5242870:5242890]


def test_the_same_content_twice_is_one_object(served: ServerProcess, s3_server: S3Server, bucket: str) -> None:
    data = os.urandom(3 * MIB)
    before = set(blob_keys(s3_server, bucket))
    ids = [httpx.put(f"{served.url}/same-{n}.bin", content=data, headers={"accept": "application/json"},
                     timeout=60).json()["id"] for n in range(2)]  # fmt: skip
    assert len(set(blob_keys(s3_server, bucket)) - before) == 1
    assert all(download(served, upload_id).content == data for upload_id in ids)


def test_tus_chunks_that_do_not_match_parts(served: ServerProcess) -> None:
    data = os.urandom(12 * MIB + 1)
    with httpx.Client(base_url=served.url, headers=TUS, timeout=60) as http:
        created = http.post("/files", headers={"upload-length": str(len(data))})
        location = created.headers["location"]
        chunk = 3 * MIB + 11
        for offset in range(0, len(data), chunk):
            patched = http.patch(location, content=data[offset : offset + chunk],
                                 headers={"upload-offset": str(offset), **PATCH})  # fmt: skip
            assert patched.status_code == 204, patched.text
        upload_id = location.rstrip("/").rsplit("/", 1)[-1]
    assert download(served, upload_id).content == data


def test_tus_parallel_parts_and_concatenation(served: ServerProcess, s3_server: S3Server, bucket: str) -> None:
    data = os.urandom(14 * MIB + 5)
    cuts = [0, 6 * MIB, 6 * MIB + 100, 14 * MIB + 5]  # a part under 5 MiB between two larger ones

    def partial(index: int) -> str:
        piece = data[cuts[index] : cuts[index + 1]]
        headers = {**TUS, "upload-length": str(len(piece)), "upload-concat": "partial",
                   "content-type": "application/offset+octet-stream"}  # fmt: skip
        created = httpx.post(f"{served.url}/files", content=piece, headers=headers, timeout=60)
        assert created.status_code == 201, created.text
        return str(created.headers["location"])

    with ThreadPoolExecutor(3) as pool:
        parts = list(pool.map(partial, range(3)))
    final = httpx.post(f"{served.url}/files", headers={**TUS, "upload-concat": "final;" + " ".join(parts)},
                       timeout=120)  # fmt: skip
    assert final.status_code == 201, final.text
    upload_id = final.headers["location"].rstrip("/").rsplit("/", 1)[-1]
    assert sha(download(served, upload_id).content) == sha(data)
    assert not open_multiparts(s3_server, bucket)


def test_dropzone_parallel_chunks(served: ServerProcess) -> None:
    dz = DzFile("dz.bin", os.urandom(9 * MIB + 77), 2 * MIB)
    with httpx.Client(base_url=served.url, timeout=60) as http, ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda index: dz.send(http, index).status_code, range(dz.chunk_count)))
        assert set(statuses) == {200}
        assert http.get(f"/download/{dz.uuid}").content == dz.data


def test_upload_cli_with_four_streams(served: ServerProcess, tmp_path: Path) -> None:
    source = tmp_path / "cli.bin"
    source.write_bytes(data := os.urandom(13 * MIB + 9))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFILEDROP_")} | {
        "PYFILEDROP_STATE": str(tmp_path / "state.json")
    }
    done = subprocess.run([sys.executable, "-m", "pyfiledrop", "upload", str(source), "--url", served.url, "-j", "4",
                           "--json", "--verify"], capture_output=True, env=env, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    record = json.loads(done.stdout.decode().splitlines()[-1])
    assert record["sha256"] == sha(data) and record["verified"] is True


def test_deleting_removes_the_object_and_cancelling_aborts(served: ServerProcess, s3_server: S3Server,
                                                            bucket: str) -> None:  # fmt: skip
    put = httpx.put(f"{served.url}/gone.bin", content=os.urandom(2 * MIB), headers={"accept": "application/json"})
    token = {"x-pyfiledrop-token": put.headers["x-pyfiledrop-token"], **TUS}
    upload_id = put.json()["id"]
    assert f"drop/blobs/{upload_id}" in all_keys(s3_server, bucket)
    assert httpx.delete(f"{served.url}/files/{upload_id}", headers=token).status_code == 204
    assert f"drop/blobs/{upload_id}" not in all_keys(s3_server, bucket)
    created = httpx.post(f"{served.url}/files", headers={**token, "upload-length": str(20 * MIB)})
    location = created.headers["location"]
    httpx.patch(location, content=os.urandom(9 * MIB), headers={**token, "upload-offset": "0", **PATCH})
    cancelled = location.rstrip("/").rsplit("/", 1)[-1]
    assert any(cancelled in key for key in open_multiparts(s3_server, bucket))
    assert httpx.delete(location, headers=token).status_code == 204
    assert not any(cancelled in key for key in open_multiparts(s3_server, bucket))
    assert not any(cancelled in key for key in all_keys(s3_server, bucket))


def test_presigned_downloads_redirect_to_s3(s3_server: S3Server, tmp_path: Path) -> None:
    server = s3_serve(s3_server, tmp_path, s3_server.new_bucket(), "--s3-presign")
    try:
        data = os.urandom(MIB + 1)
        put = httpx.put(f"{server.url}/été report.pdf", content=data, headers={"accept": "application/json"})
        answer = download(server, put.json()["id"])
        assert answer.status_code == 302 and answer.headers["cache-control"] == "no-store"
        location = answer.headers["location"]
        assert location.startswith(s3_server.endpoint) and "X-Amz-Expires=600" in location
        fetched = httpx.get(location, timeout=60)
        assert fetched.status_code == 200 and fetched.content == data
        assert "filename*=UTF-8''%C3%A9t%C3%A9%20report.pdf" in fetched.headers["content-disposition"]
        ranged = httpx.get(location, headers={"range": "bytes=0-9"}, timeout=60)
        assert ranged.status_code == 206 and ranged.content == data[:10]
    finally:
        server.stop()
