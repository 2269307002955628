"""pyfiledrop's ASGI app (``pyfiledrop.web``) does not need pyfiledrop's own server: it runs under a real uvicorn
(``uvicorn --factory pyfiledrop.web.app:create_app``, settings from PYFILEDROP_*), without the readinto fast path.
One real upload through it, then the download, byte for byte."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, free_port

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def uvicorn_url(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFILEDROP_")}
    env |= {"PYFILEDROP_STORAGE": str(tmp_path / "storage"), "PYFILEDROP_ADMIN_TOKEN": ADMIN_TOKEN}
    log = (tmp_path / "uvicorn.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "pyfiledrop.web.app:create_app",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "uvicorn.log").read_text()
            try:
                if httpx.get(f"{url}/api/config", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(15)
        log.close()


def test_an_upload_and_its_download_under_uvicorn(uvicorn_url: str) -> None:
    data = os.urandom(3_000_000)
    with httpx.Client(base_url=uvicorn_url, timeout=30) as client:
        response = client.put("/under%20uvicorn.bin", content=data, headers={"accept": "application/json"})
        assert response.status_code == 201, response.text
        stored = response.json()
        assert stored["sha256"] == hashlib.sha256(data).hexdigest()
        assert response.headers["server"] == "uvicorn"  # it really was uvicorn that served it
        download = client.get(stored["download_url"], headers={"x-pyfiledrop-token": ADMIN_TOKEN})
        assert download.status_code == 200
        assert hashlib.sha256(download.content).hexdigest() == stored["sha256"]


def test_a_chunked_upload_under_uvicorn(uvicorn_url: str) -> None:
    """A body of unknown length (``curl -T -`` from a pipe): chunked framing is uvicorn's to decode here."""
    data = os.urandom(700_000)
    pieces = (data[i : i + 65536] for i in range(0, len(data), 65536))
    with httpx.Client(base_url=uvicorn_url, timeout=30) as client:
        response = client.put("/piped.bin", content=pieces)
        assert response.status_code == 201, response.text
        download = client.get(response.text.strip(), headers={"x-pyfiledrop-token": ADMIN_TOKEN})
        assert download.content == data
