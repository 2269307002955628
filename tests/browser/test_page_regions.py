"""The page's fast path in a real Chromium: a big file goes as parallel regions of one upload, each chunk the File's
slice sent unread (no per-chunk checksum), the server's sha256 is the file's, a reload resumes, and a worker that
has sent its region takes over half of what another has left."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, Request, Route

from tests.conftest import ServerProcess

pytestmark = pytest.mark.browser

MiB = 1 << 20


def _open(page: Page, server: ServerProcess) -> None:
    page.goto(f"{server.url}/")
    page.wait_for_selector("body[data-ready=true]")


def test_a_big_file_goes_in_regions_unhashed_resumes_after_a_reload_and_has_its_sha256(
    make_server: type[ServerProcess], tmp_path: Path, page: Page
) -> None:
    server = make_server(tmp_path / "s", ["--chunk-size", str(2 * MiB), "--allow-downloads"]).start()
    data = os.urandom(40 * MiB + 12345)  # 21 chunks: 4 regions, the last one short
    source = tmp_path / "regions40.bin"
    source.write_bytes(data)
    patches: list[dict[str, str]] = []
    sent: list[int] = []

    def slow(route: Route, request: Request) -> None:
        if request.method == "PATCH":
            patches.append(request.headers)
            sent.append(len(request.post_data_buffer or b""))
            time.sleep(0.1)  # so that the reload lands half-way
        route.continue_()

    page.route("**/files/**", slow)
    _open(page, server)
    page.set_input_files("#file-input", str(source))
    page.wait_for_function("document.getElementById('overall-bar').value > 0.35")
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    assert "regions40.bin" in page.locator("#resume-list").inner_text()
    page.set_input_files("#file-input", str(source))
    page.wait_for_function("document.querySelectorAll('#mine-body tr code').length === 1", timeout=90_000)

    shown = page.locator("#mine-body code").first.get_attribute("title")
    assert shown == hashlib.sha256(data).hexdigest()
    stored = [p for p in server.storage.iterdir() if p.name.endswith("_regions40.bin")]
    assert len(stored) == 1 and stored[0].read_bytes() == data
    assert all(headers.get("x-pyfiledrop-parallel-write") == "1" for headers in patches)
    assert not any("upload-checksum" in headers for headers in patches)  # the slice is sent as it is, unread
    assert len({headers["upload-offset"] for headers in patches}) >= 4  # the regions went in parallel
    assert sum(sent) - len(data) <= 4 * 2 * MiB  # at most the chunks in flight at the reload were sent again


def test_a_worker_done_with_its_region_takes_the_back_half_of_the_largest_left(
    shared_server: ServerProcess, page: Page
) -> None:
    _open(page, shared_server)
    result = page.evaluate(
        """async () => {
            const { TusUpload } = await import("/static/uploader.js");
            const MiB = 1 << 20;
            const file = new File([new Uint8Array(64 * MiB)], "steal.bin");
            const upload = new TusUpload(file, { chunk_size: 2 * MiB }, { scope: "test-steal" });
            upload.regions = true;
            upload.url = "http://127.0.0.1/files/x";
            // Region 0 is done; region 1 has 2 MiB sent and a request in flight up to 20 MiB; region 2 has 8 MiB left.
            upload.parts = [
                { start: 0, end: 16 * MiB, offset: 16 * MiB, url: upload.url },
                { start: 16 * MiB, end: 48 * MiB, offset: 2 * MiB, url: upload.url },
                { start: 48 * MiB, end: 64 * MiB, offset: 8 * MiB, url: upload.url },
            ];
            const taken = upload.steal();
            const saved = JSON.parse(localStorage.getItem(upload.key));
            localStorage.removeItem(upload.key);
            // With one chunk left beyond the request in flight, that chunk is taken; with none, nothing is.
            const small = new TusUpload(file, { chunk_size: 2 * MiB }, { scope: "test-steal" });
            small.regions = true;
            small.url = upload.url;
            small.parts = [{ start: 0, end: 4 * MiB, offset: 0, url: upload.url }];
            const last = small.steal();
            const none = small.steal();
            localStorage.removeItem(small.key);
            return { taken, parts: upload.parts, saved: saved.regions, last, none, smallParts: small.parts };
        }"""
    )
    mib = 1 << 20
    # Region 1 has [20, 48) MiB beyond its request in flight: the back half from 34 MiB (chunk-aligned) is taken.
    assert result["taken"] == {"start": 34 * mib, "end": 48 * mib, "offset": 0, "url": "http://127.0.0.1/files/x"}
    assert [(p["start"], p["end"]) for p in result["parts"]] == [
        (0, 16 * mib), (16 * mib, 34 * mib), (48 * mib, 64 * mib), (34 * mib, 48 * mib),
    ]  # fmt: skip
    assert result["saved"] == [[p["start"], p["end"]] for p in result["parts"]]  # a reload resumes the new split
    assert (result["last"]["start"], result["last"]["end"]) == (2 * mib, 4 * mib)
    assert result["none"] is None
    assert [(p["start"], p["end"]) for p in result["smallParts"]] == [(0, 2 * mib), (2 * mib, 4 * mib)]
