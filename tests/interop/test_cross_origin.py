"""Pages on another origin, in real Chromium: Dropzone 5.7.6 posting to POST /upload (with its X-Requested-With
preflight), tus-js-client's browser build creating and patching on /files/, and Uppy (its ready-made browser
bundle, Core with the Tus plugin) uploading to /files/.

The pages come from a small web server on http://127.0.0.1:<other port> while the upload server is
http://127.0.0.1:<port>: another origin, both on this machine (so Chromium's local-network rule lets them
talk). With the default ``--cors-origins *`` both work; with a list, a page from an origin on it works and one
from elsewhere does not (its preflight gets no Access-Control-Allow-Origin and its upload never happens).
"""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, sync_playwright

from tests.conftest import ADMIN_TOKEN, ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.interop]

MODULES = Path(__file__).parent / "js" / "node_modules"
DROPZONE = MODULES / "dropzone" / "dist" / "min" / "dropzone.min.js"
TUS = MODULES / "tus-js-client" / "dist" / "tus.min.js"
UPPY = MODULES / "uppy" / "dist" / "uppy.min.js"
SCRIPTS = {"dropzone.min.js": DROPZONE, "tus.min.js": TUS, "uppy.min.js": UPPY}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip

DROPZONE_PAGE = """<!doctype html><html><head><meta charset="utf-8"><script src="/dropzone.min.js"></script></head>
<body><form class="dropzone" id="dropper"></form><script>
window.finished = [];
Dropzone.options.dropper = {
  url: "SERVER/upload", paramName: "file", chunking: true, forceChunking: true, chunkSize: 65536,
  parallelChunkUploads: true, retryChunks: false, timeout: 60000,
  init: function () {
    this.on("complete", function (file) {
      window.finished.push({uuid: file.upload.uuid, name: file.name, status: file.status});
    });
  }
};
</script></body></html>"""

TUS_PAGE = """<!doctype html><html><head><meta charset="utf-8"><script src="/tus.min.js"></script></head>
<body><script>
window.send = (text, name) => new Promise((resolve) => {
  const upload = new tus.Upload(new Blob([text]), {
    endpoint: "SERVER/files/", chunkSize: 4096, retryDelays: [], metadata: {filename: name},
    onError: (error) => resolve({error: String(error)}),
    onSuccess: () => resolve({url: upload.url}),
  });
  upload.start();
});
</script></body></html>"""

# Uppy as a page elsewhere would use it: Core plus the Tus plugin; parallel uploads make tus-js-client send the
# file as several partial uploads joined by a final concatenation request (more cross-origin requests and headers).
UPPY_PAGE = """<!doctype html><html><head><meta charset="utf-8"><script src="/uppy.min.js"></script></head>
<body><script>
window.send = async (text, name, parallel) => {
  const uppy = new Uppy.Uppy({autoProceed: false});
  uppy.use(Uppy.Tus, {endpoint: "SERVER/files/", chunkSize: 65536, retryDelays: [], parallelUploads: parallel});
  uppy.addFile({name: name, type: "application/octet-stream", data: new Blob([text])});
  const result = await uppy.upload();
  const done = result.successful.map((file) => file.uploadURL || file.response.uploadURL);
  return {done: done, failed: result.failed.map((file) => String(file.error))};
};
</script></body></html>"""


@pytest.fixture
def page() -> Iterator[Page]:
    if not all(script.is_file() for script in SCRIPTS.values()):
        pytest.fail("run `npm ci` in tests/interop/js (scripts/test does) to get dropzone, tus-js-client and uppy")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


class _Pages:
    """A real web server for the test pages on 127.0.0.1 (another port: another origin). Served for real, not
    through Playwright routing: Chromium lets only a page that itself came from the loopback address space call
    a loopback server (Local Network Access)."""

    def __init__(self) -> None:
        self.html = ""
        pages = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.rsplit("/", 1)[-1]
                if name == "page.html":
                    body, kind = pages.html.encode(), "text/html"
                elif name in SCRIPTS:
                    body, kind = SCRIPTS[name].read_bytes(), "text/javascript"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def show(self, page: Page, html: str, server: ServerProcess) -> None:
        self.html = html.replace("SERVER", server.url)
        page.goto(f"{self.origin}/page.html")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def pages() -> Iterator[Callable[[], _Pages]]:
    made: list[_Pages] = []

    def make() -> _Pages:
        made.append(_Pages())
        return made[-1]

    yield make
    for each in made:
        each.close()


def _dropzone_upload(page: Page, tmp_path: Path, data: bytes) -> dict[str, str]:
    (tmp_path / "clip.bin").write_bytes(data)
    page.set_input_files("input.dz-hidden-input", [str(tmp_path / "clip.bin")])
    page.wait_for_function("window.finished.length >= 1", timeout=60_000)
    finished: dict[str, str] = page.evaluate("window.finished[0]")
    return finished


def _stored(server: ServerProcess, uuid: str) -> bytes | None:
    answer = httpx.get(f"{server.url}/download/{uuid}", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    return answer.content if answer.status_code == 200 else None


def test_dropzone_and_tus_pages_on_another_origin_upload_by_default(
    make_server: type[ServerProcess], tmp_path: Path, page: Page, pages: Callable[[], _Pages]
) -> None:
    server = make_server(tmp_path / "s").start()
    elsewhere = pages()
    data = os.urandom(200_000)
    elsewhere.show(page, DROPZONE_PAGE, server)
    finished = _dropzone_upload(page, tmp_path, data)
    assert finished["status"] == "success", finished
    stored = _stored(server, finished["uuid"])
    assert stored is not None and hashlib.sha256(stored).digest() == hashlib.sha256(data).digest()
    elsewhere.show(page, TUS_PAGE, server)
    result = page.evaluate("window.send('x'.repeat(10000), 'from-elsewhere.txt')")
    assert "url" in result, result
    assert _stored(server, result["url"].rsplit("/", 1)[-1]) == b"x" * 10000


def test_a_restricted_server_takes_uploads_only_from_the_origins_listed(
    make_server: type[ServerProcess], tmp_path: Path, page: Page, pages: Callable[[], _Pages]
) -> None:
    allowed, other = pages(), pages()
    server = make_server(tmp_path / "s", ["--cors-origins", allowed.origin]).start()
    other.show(page, DROPZONE_PAGE, server)
    refused = _dropzone_upload(page, tmp_path, os.urandom(5000))
    assert refused["status"] == "error", refused
    other.show(page, TUS_PAGE, server)
    assert "error" in page.evaluate("window.send('y', 'refused.txt')")
    listed = httpx.get(f"{server.url}/api/uploads", params={"all": "1"},
                       headers={"authorization": f"Bearer {ADMIN_TOKEN}"}).json()["uploads"]  # fmt: skip
    assert listed == []  # nothing was created from the other origin
    allowed.show(page, TUS_PAGE, server)
    assert "url" in page.evaluate("window.send('z', 'allowed.txt')")
    allowed.show(page, DROPZONE_PAGE, server)
    assert _dropzone_upload(page, tmp_path, os.urandom(5000))["status"] == "success"


def _admin_listing(server: ServerProcess) -> list[dict[str, object]]:
    answer = httpx.get(f"{server.url}/api/uploads", params={"all": "1"},
                       headers={"authorization": f"Bearer {ADMIN_TOKEN}"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    uploads: list[dict[str, object]] = answer.json()["uploads"]
    return uploads


@pytest.mark.parametrize("parallel", [1, 4])
def test_uppy_with_tus_on_another_origin_uploads_by_default(
    make_server: type[ServerProcess], tmp_path: Path, page: Page, pages: Callable[[], _Pages], parallel: int
) -> None:
    server = make_server(tmp_path / "s").start()
    pages().show(page, UPPY_PAGE, server)
    text = "".join(f"line {number} from uppy\n" for number in range(20_000))  # ~0.4 MB: several 64 KiB chunks
    result = page.evaluate("([text, parallel]) => window.send(text, 'uppy.txt', parallel)", [text, parallel])
    assert result["failed"] == [] and len(result["done"]) == 1, result
    upload_id = result["done"][0].rsplit("/", 1)[-1]
    listed = {item["id"]: item for item in _admin_listing(server)}
    assert listed[upload_id]["complete"] is True and listed[upload_id]["filename"] == "uppy.txt"
    assert listed[upload_id]["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert _stored(server, upload_id) == text.encode()
    head = httpx.head(result["done"][0], headers={"tus-resumable": "1.0.0", "authorization": f"Bearer {ADMIN_TOKEN}"})
    assert head.status_code == 200
    assert head.headers.get("upload-concat", "").startswith("final;") == (parallel > 1)  # parts joined when parallel


def test_uppy_on_an_origin_not_listed_is_refused(
    make_server: type[ServerProcess], tmp_path: Path, page: Page, pages: Callable[[], _Pages]
) -> None:
    allowed, other = pages(), pages()
    server = make_server(tmp_path / "s", ["--cors-origins", allowed.origin]).start()
    other.show(page, UPPY_PAGE, server)
    result = page.evaluate("window.send('refused', 'refused.txt', 1)")
    assert result["done"] == [] and len(result["failed"]) == 1, result
    assert _admin_listing(server) == []  # the refused preflight kept the creation from ever being sent
    allowed.show(page, UPPY_PAGE, server)
    result = page.evaluate("window.send('welcome', 'allowed.txt', 1)")
    assert result["failed"] == [] and len(result["done"]) == 1, result
    assert [item["filename"] for item in _admin_listing(server)] == ["allowed.txt"]
