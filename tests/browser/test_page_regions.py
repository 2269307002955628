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


def test_chunks_go_lowest_first_so_the_servers_hashed_prefix_grows_while_they_arrive(
    make_server: type[ServerProcess], tmp_path: Path, page: Page
) -> None:
    # 4 requests at a time, each the lowest chunk not yet sent: the PATCHes leave in offset order, so the received
    # prefix (and the sha256 along it) grows during the upload rather than when the last quarter's region ends.
    server = make_server(tmp_path / "s", ["--chunk-size", str(MiB)]).start()
    data = os.urandom(20 * MiB - 999)
    (tmp_path / "ordered.bin").write_bytes(data)
    offsets: list[int] = []
    page.on("request", lambda r: offsets.append(int(r.headers["upload-offset"])) if r.method == "PATCH" else None)
    _open(page, server)
    page.set_input_files("#file-input", str(tmp_path / "ordered.bin"))
    page.wait_for_selector("#active-list .upload.done", timeout=60_000)
    assert offsets == [i * MiB for i in range(20)]
    stored = [p for p in server.storage.iterdir() if p.name.endswith("_ordered.bin")]
    assert len(stored) == 1 and stored[0].read_bytes() == data


def test_by_default_the_page_sends_32_mib_chunks_while_tus_clients_are_told_8(
    make_server: type[ServerProcess], tmp_path: Path, page: Page
) -> None:
    # Fewer, larger requests: each one cost the server and Chromium CPU (docs/browser-uploads.md). chunk_size, what
    # other clients are told, stays 8 MiB.
    server = make_server(tmp_path / "s").start()
    data = os.urandom(70 * MiB + 4321)
    (tmp_path / "big-chunks.bin").write_bytes(data)
    offsets: list[int] = []
    page.on("request", lambda r: offsets.append(int(r.headers["upload-offset"])) if r.method == "PATCH" else None)
    _open(page, server)
    advertised = page.evaluate("fetch('/api/config').then((r) => r.json())")
    assert (advertised["chunk_size"], advertised["page_chunk_size"]) == (8 * MiB, 32 * MiB)
    page.set_input_files("#file-input", str(tmp_path / "big-chunks.bin"))
    page.wait_for_selector("#active-list .upload.done", timeout=60_000)
    assert sorted(offsets) == [0, 32 * MiB, 64 * MiB]  # three requests for 70 MiB (nine with 8 MiB chunks)
    stored = [p for p in server.storage.iterdir() if p.name.endswith("_big-chunks.bin")]
    assert len(stored) == 1 and stored[0].read_bytes() == data


def test_what_is_left_is_the_complement_of_what_the_server_has(shared_server: ServerProcess, page: Page) -> None:
    _open(page, shared_server)
    result = page.evaluate(
        """async () => {
            const { Missing, uncovered } = await import("/static/regions.js");
            const missing = Missing.of([[0, 10], [20, 30]], 50);
            const first = missing.take(4), second = missing.take(8);
            missing.giveBack([12, 14]);
            return { first, second, left: missing.ranges, bytes: missing.bytes,
                     cut: uncovered([[0, 5], [8, 9], [12, 40]], 4, 14), none: Missing.of([[0, 50]], 50).take(8) };
        }"""
    )
    assert result["first"] == [10, 14] and result["second"] == [14, 20]  # never past a range's end
    assert result["left"] == [[12, 14], [30, 50]] and result["bytes"] == 22  # given back in its place
    assert result["cut"] == [[5, 8], [9, 12]]  # what a cut-off request did not leave on the server
    assert result["none"] is None


def test_a_refused_chunk_and_a_lost_one_are_sent_again_and_only_they(
    make_server: type[ServerProcess], tmp_path: Path, page: Page
) -> None:
    chunk = 256 * 1024
    server = make_server(tmp_path / "s", ["--chunk-size", str(chunk)]).start()
    data = os.urandom(12 * chunk - 77)
    (tmp_path / "retried.bin").write_bytes(data)
    offsets: list[int] = []

    def flaky(route: Route, request: Request) -> None:
        if request.method == "PATCH":
            offset = int(request.headers["upload-offset"])
            offsets.append(offset)
            if offset == 4 * chunk and offsets.count(offset) == 1:
                route.fulfill(status=503, body="busy")  # the server refuses once: wait, then that chunk again
                return
            if offset == 8 * chunk and offsets.count(offset) == 1:
                route.abort()  # the connection is lost once
                return
        route.continue_()

    page.route("**/files/**", flaky)
    _open(page, server)
    page.set_input_files("#file-input", str(tmp_path / "retried.bin"))
    page.wait_for_selector("#active-list .upload.done", timeout=60_000)
    stored = [p for p in server.storage.iterdir() if p.name.endswith("_retried.bin")]
    assert len(stored) == 1 and stored[0].read_bytes() == data
    assert sorted(offsets) == sorted([i * chunk for i in range(12)] + [4 * chunk, 8 * chunk])
