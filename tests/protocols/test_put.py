"""`curl -T` style one-request uploads."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess


def test_put_to_root_with_curl_answers_the_download_url(shared_server: ServerProcess, tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.fail("curl is needed for this test (apt-get install curl)")
    source = tmp_path / "big.iso"
    source.write_bytes(os.urandom(3_000_000))
    out = subprocess.run(["curl", "-sS", "-f", "-T", str(source), f"{shared_server.url}/"],
                         capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
    url = out.stdout.strip()
    assert url.startswith(f"{shared_server.url}/download/")
    downloaded = httpx.get(url)
    assert downloaded.content == source.read_bytes()
    assert "big.iso" in downloaded.headers["content-disposition"]


def test_put_to_a_name_streams_and_reports_sha256(client: httpx.Client) -> None:
    data = os.urandom(500_000)
    response = client.put("/report%20final.pdf", content=data, headers={"accept": "application/json"})
    assert response.status_code == 201
    body = response.json()
    assert body["filename"] == "report final.pdf"
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert response.headers["x-pyfiledrop-token"]


def test_put_with_chunked_transfer_encoding(client: httpx.Client) -> None:
    data = os.urandom(300_000)

    def gen():  # type: ignore[no-untyped-def]
        for i in range(0, len(data), 65536):
            yield data[i : i + 65536]

    response = client.put("/stream.bin", content=gen())
    assert response.status_code == 201
    assert client.get(response.text.strip()).content == data


def test_put_over_max_size_is_413_before_storing(shared_server: ServerProcess) -> None:
    before = set(shared_server.storage.iterdir())
    with socket.create_connection(("127.0.0.1", shared_server.port), timeout=10) as sock:
        sock.sendall(f"PUT /huge.bin HTTP/1.1\r\nHost: x\r\nContent-Length: {65 * 2**20}\r\n"
                     "Expect: 100-continue\r\n\r\n".encode())  # fmt: skip
        answer = sock.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 413"), answer
    assert "limit" in answer
    assert set(shared_server.storage.iterdir()) == before


def test_put_name_with_traversal_is_stored_safely(client: httpx.Client, shared_server: ServerProcess) -> None:
    response = client.put("/..%2F..%2Fevil.sh", content=b"#!/bin/sh\n", headers={"accept": "application/json"})
    assert response.status_code == 201
    body = response.json()
    assert body["filename"] == "evil.sh"
    assert (shared_server.storage / f"{body['id']}_evil.sh").exists()
    assert not (shared_server.storage.parent / "evil.sh").exists()
