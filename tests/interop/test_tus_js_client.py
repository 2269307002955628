"""The real tus-js-client (npm, pinned in js/package-lock.json) under Node, against the real server.

Each upload runs in its own Node process (js/upload.mjs). Resume tests crash the first process with SIGKILL
(no abort request, no cleanup) and finish the upload from a new process.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, ServerProcess
from tests.interop.conftest import MiB, Source, TusJsClient, check_stored

pytestmark = [pytest.mark.interop, pytest.mark.timeout(180)]


def _id(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def _offset(client: httpx.Client, url: str) -> int:
    response = client.head(url, headers={"Tus-Resumable": "1.0.0"})
    assert response.status_code == 200, response.status_code
    return int(response.headers["upload-offset"])


def _offset_after_disconnect(client: httpx.Client, url: str, at_least: int) -> int:
    """The server records a cut-off PATCH when it notices the connection is gone: a moment after the kill."""
    deadline = time.monotonic() + 10
    while (kept := _offset(client, url)) <= at_least and time.monotonic() < deadline:
        time.sleep(0.05)
    return kept


def test_tus_js_client_uploads_a_file_in_a_single_stream(
    shared_server: ServerProcess, tus_js: TusJsClient, make_source: Callable[..., Source], client: httpx.Client,
    owner: str,
) -> None:  # fmt: skip
    source = make_source(24 * MiB, "single.bin")
    run = tus_js.run(endpoint=f"{shared_server.url}/files/", file=source.path, headers={"X-Pyfiledrop-Token": owner})
    assert run.returncode == 0, run.events
    done = run.last("success")
    assert done["acceptedBytes"] == source.size
    assert done["chunks"] == 1  # no chunkSize: the whole file in one PATCH
    info = check_stored(client, _id(done["url"]), source, owner)
    assert info["filename"] == "single.bin"
    assert info["protocol"] == "tus"


@pytest.mark.parametrize("who", ["anonymous", "owner"])
def test_tus_js_client_parallel_uploads_4_are_joined_into_one_file(
    shared_server: ServerProcess, tus_js: TusJsClient, make_source: Callable[..., Source], client: httpx.Client,
    owner: str, who: str,
) -> None:  # fmt: skip
    """parallelUploads: 4 → four partial uploads, then a final upload (concatenation) naming them in order."""
    source = make_source(32 * MiB + 12345, "parallel.bin")  # not a multiple of 4: uneven parts
    headers = {"X-Pyfiledrop-Token": owner} if who == "owner" else {}
    run = tus_js.run(endpoint=f"{shared_server.url}/files/", file=source.path, parallelUploads=4, headers=headers)
    assert run.returncode == 0, run.events
    final_url = run.last("success")["url"]
    found = client.head(final_url, headers={"Tus-Resumable": "1.0.0"})
    assert found.headers["upload-offset"] == found.headers["upload-length"] == str(source.size)
    parts = found.headers["upload-concat"].removeprefix("final;").split()
    assert len(parts) == 4
    for part in parts:  # used up by the final upload
        assert client.head(f"{shared_server.url}{part}", headers={"Tus-Resumable": "1.0.0"}).status_code == 410
    info = check_stored(client, _id(final_url), source, owner if who == "owner" else ADMIN_TOKEN)
    assert info["filename"] == "parallel.bin"
    if who == "owner":
        listed = client.get("/api/uploads", headers={"X-Pyfiledrop-Token": owner}).json()["uploads"]
        assert [u["id"] for u in listed] == [_id(final_url)]


def test_tus_js_client_resumes_from_its_url_storage_after_a_crash(
    shared_server: ServerProcess, tus_js: TusJsClient, make_source: Callable[..., Source], client: httpx.Client,
    owner: str, tmp_path: object,
) -> None:  # fmt: skip
    """Process 1 sends 2 MiB chunks and is SIGKILLed once the server acknowledged more than half. Process 2 finds
    the upload under the file's fingerprint in the same FileUrlStorage and sends only what is missing."""
    source = make_source(30 * MiB, "crash.bin")
    storage = source.path.with_name("tus-urls.json")
    common = {
        "endpoint": f"{shared_server.url}/files/", "file": source.path, "urlStorage": storage,
        "chunkSize": 2 * MiB, "headers": {"X-Pyfiledrop-Token": owner},
    }  # fmt: skip
    first = tus_js.run(killAfterAccepted=0.5, **common)
    assert first.returncode == -signal.SIGKILL, first.events
    url = first.last("killing")["url"]
    kept = _offset(client, url)
    assert kept > source.size // 2

    second = tus_js.run(resumePrevious=True, **common)
    assert second.returncode == 0, (second.events, second.stderr)
    assert second.last("previous")["url"] == url
    done = second.last("success")
    assert done["url"] == url  # the same upload, not a new one
    assert done["startOffset"] == kept
    assert done["acceptedBytes"] == source.size - kept
    assert done["acceptedBytes"] < kept  # fewer bytes resent than the half already there
    check_stored(client, _id(url), source, owner)


def test_tus_js_client_resumes_an_upload_cut_off_mid_request_from_its_url(
    shared_server: ServerProcess, tus_js: TusJsClient, make_source: Callable[..., Source], client: httpx.Client,
    owner: str,
) -> None:  # fmt: skip
    """Process 1 streams the file in one PATCH and is SIGKILLed after 60 % of the body went out: the server keeps
    what arrived. Process 2 is given only the upload URL (``uploadUrl``), asks HEAD, and sends the rest."""
    source = make_source(40 * MiB, "cut.bin")
    common = {"endpoint": f"{shared_server.url}/files/", "file": source.path, "headers": {"X-Pyfiledrop-Token": owner}}
    first = tus_js.run(killAfterSent=0.6, **common)
    assert first.returncode == -signal.SIGKILL, first.events
    killing = first.last("killing")
    sent = int(0.6 * source.size)
    assert killing["bytesSent"] == sent
    url = first.last("url")["url"]
    kept = _offset_after_disconnect(client, url, source.size // 2)
    assert source.size // 2 < kept <= sent, "the server should keep the bytes of a PATCH cut off by a crash"

    second = tus_js.run(uploadUrl=url, **common)
    assert second.returncode == 0, (second.events, second.stderr)
    done = second.last("success")
    assert done["url"] == url
    assert done["startOffset"] == kept
    assert done["acceptedBytes"] == source.size - kept < kept
    check_stored(client, _id(url), source, owner)
