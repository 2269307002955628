"""The seed's Dropzone page (Dropzone 5.7.6 from npm, configured as the original script did) works unchanged.

The page is served on the server's own origin through Playwright routing, with dropzone.min.js from
node_modules instead of the CDN; its uploads go to the real server's POST /upload.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Route, sync_playwright

from tests.conftest import ServerProcess

DROPZONE = Path(__file__).parent / "js" / "node_modules" / "dropzone" / "dist" / "min"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip

SEED_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="UTF-8">
<link rel="stylesheet" href="https://cdn.example/dropzone/5.7.6/min/dropzone.min.css"/>
<script src="https://cdn.example/dropzone/5.7.6/min/dropzone.min.js"></script>
<title>pyfiledrop</title></head>
<body>
<form method="POST" action="/upload" class="dropzone dz-clickable" id="dropper" enctype="multipart/form-data"></form>
<div id="uploaded"></div>
<script>
window.finished = [];
Dropzone.options.dropper = {
    paramName: 'file', chunking: true, forceChunking: true, url: '/upload', retryChunks: true,
    parallelChunkUploads: true, timeout: 120000, maxFilesize: 100000, chunkSize: 262144,
    init: function () {
        this.on("complete", function (file) {
            window.finished.push({uuid: file.upload.uuid, name: file.upload.filename, status: file.status});
        });
    }
};
</script></body></html>"""


@pytest.fixture
def browser_page() -> Iterator[object]:
    if not (DROPZONE / "dropzone.min.js").is_file():
        pytest.fail("run `npm ci` in tests/interop/js (scripts/test does) to get dropzone 5.7.6")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_seed_dropzone_page_uploads_chunked_in_parallel(
    make_server: type[ServerProcess], tmp_path: Path, browser_page: object
) -> None:
    server = make_server(tmp_path / "s", ["--allow-downloads"]).start()
    page = browser_page
    files = {name: os.urandom(size) for name, size in (("clip one.mp4", 3_000_000), ("notes.txt", 70_000))}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)

    def seed_page(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html", body=SEED_PAGE)

    def cdn(route: Route) -> None:
        name = route.request.url.rsplit("/", 1)[-1]
        content_type = "text/css" if name.endswith(".css") else "application/javascript"
        route.fulfill(status=200, content_type=content_type, body=(DROPZONE / name).read_bytes())

    page.route(f"{server.url}/seed.html", seed_page)  # type: ignore[attr-defined]
    page.route("https://cdn.example/**", cdn)  # type: ignore[attr-defined]
    page.goto(f"{server.url}/seed.html")  # type: ignore[attr-defined]
    page.set_input_files("input.dz-hidden-input", [str(tmp_path / name) for name in files])  # type: ignore[attr-defined]
    page.wait_for_function("window.finished.length === 2", timeout=60_000)  # type: ignore[attr-defined]
    finished = page.evaluate("window.finished")  # type: ignore[attr-defined]
    assert all(f["status"] == "success" for f in finished), finished
    for item in finished:
        downloaded = httpx.get(f"{server.url}/download/{item['uuid']}")  # the seed page's own link form
        assert downloaded.status_code == 200
        assert hashlib.sha256(downloaded.content).hexdigest() == hashlib.sha256(files[item["name"]]).hexdigest()
