"""The web page in a real Chromium against a real server: uploads, resume after reload, pause, delete, XSS, offline."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Request, Route

from tests.conftest import ADMIN_TOKEN, ServerProcess

pytestmark = pytest.mark.browser


def _stored(server: ServerProcess, name: str) -> bytes:
    matches = [p for p in server.storage.iterdir() if p.name.endswith("_" + name)]
    assert len(matches) == 1, [p.name for p in server.storage.iterdir()]
    return matches[0].read_bytes()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _open(page: Page, server: ServerProcess, query: str = "") -> None:
    page.goto(f"{server.url}/{query}")
    page.wait_for_selector("body[data-ready=true]")


def _mine_names(page: Page) -> list[str]:
    return page.locator("#mine-body td.name").all_text_contents()


def test_two_files_by_input_and_one_by_drop_arrive_byte_identical(
    make_server: type[ServerProcess], tmp_path: Path, page: Page, artifacts: Path
) -> None:
    server = make_server(tmp_path / "s", ["--chunk-size", "262144", "--allow-downloads"]).start()
    first, second, dropped = os.urandom(1_500_000), os.urandom(700_000), os.urandom(300_000)
    (tmp_path / "first.bin").write_bytes(first)
    (tmp_path / "second video.mp4").write_bytes(second)
    _open(page, server)
    page.set_input_files("#file-input", [str(tmp_path / "first.bin"), str(tmp_path / "second video.mp4")])
    page.evaluate(
        """(bytes) => {
            const data = new DataTransfer();
            data.items.add(new File([new Uint8Array(bytes)], "dropped.dat", {type: "application/octet-stream"}));
            document.body.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
        }""",
        list(dropped),
    )
    page.wait_for_function("document.querySelectorAll('#mine-body tr code').length === 3")  # all three complete
    assert sorted(_mine_names(page)) == ["dropped.dat", "first.bin", "second video.mp4"]
    assert _stored(server, "first.bin") == first
    assert _stored(server, "second video.mp4") == second
    assert _stored(server, "dropped.dat") == dropped
    assert page.locator("#mine-body code").first.get_attribute("title") in {_sha(first), _sha(second), _sha(dropped)}
    page.screenshot(path=str(artifacts / "page-light.png"), full_page=True)


def test_dark_mode_screenshot(shared_server: ServerProcess, browser: Browser, artifacts: Path) -> None:
    context = browser.new_context(color_scheme="dark", viewport={"width": 420, "height": 800}, bypass_csp=True)
    page = context.new_page()
    _open(page, shared_server)
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(17, 19, 24)"
    page.screenshot(path=str(artifacts / "page-dark-mobile.png"), full_page=True)
    context.close()


def _slow_patches(page: Page, delay: float, sent: list[int]) -> None:
    def handle(route: Route, request: Request) -> None:
        if request.method == "PATCH":
            sent.append(len(request.post_data_buffer or b""))
            time.sleep(delay)
        route.continue_()

    page.route("**/files/**", handle)


def test_reload_half_way_resumes_with_less_than_10_percent_resent(
    make_server: type[ServerProcess], tmp_path: Path, page: Page
) -> None:
    # 4 parts each have a 1 MiB PATCH in flight when the page reloads: at worst 4 MiB resent, 6 % of 64 MiB.
    server = make_server(tmp_path / "s", ["--chunk-size", "1048576"]).start()
    data = os.urandom(64 * 2**20)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    sent: list[int] = []
    _slow_patches(page, 0.15, sent)
    _open(page, server)
    page.set_input_files("#file-input", str(source))
    page.wait_for_function("document.getElementById('overall-bar').value > 0.45")
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    assert "big.bin" in page.locator("#resume-list").inner_text()  # the page knows there is something to resume
    page.set_input_files("#file-input", str(source))
    page.wait_for_function("document.querySelectorAll('#mine-body tr code').length === 1", timeout=90_000)  # complete
    resent = sum(sent) - len(data)
    assert resent < 0.10 * len(data), f"resent {resent} bytes"
    assert _stored(server, "big.bin") == data


def test_pause_and_resume(make_server: type[ServerProcess], tmp_path: Path, page: Page) -> None:
    server = make_server(tmp_path / "s", ["--chunk-size", "524288"]).start()
    data = os.urandom(12 * 2**20)
    (tmp_path / "p.bin").write_bytes(data)
    sent: list[int] = []
    _slow_patches(page, 0.1, sent)
    _open(page, server)
    page.set_input_files("#file-input", str(tmp_path / "p.bin"))
    page.wait_for_function("document.getElementById('overall-bar').value > 0.2")
    page.click("#active-list .pause")
    page.wait_for_selector("#active-list .upload.paused")
    paused_at = len(sent)
    time.sleep(1.0)
    assert len(sent) <= paused_at + 4  # at most the requests already in flight finish
    assert "Paused" in page.locator("#active-list .stats").inner_text()
    page.click("#active-list .resume")
    page.wait_for_selector("#active-list .upload.done", timeout=60_000)
    assert _stored(server, "p.bin") == data


def test_delete_removes_the_file(make_server: type[ServerProcess], tmp_path: Path, page: Page) -> None:
    server = make_server(tmp_path / "s").start()
    (tmp_path / "gone.txt").write_bytes(b"delete me")
    _open(page, server)
    page.set_input_files("#file-input", str(tmp_path / "gone.txt"))
    page.wait_for_function("document.querySelectorAll('#mine-body tr').length === 1")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#mine-body button.danger")
    page.wait_for_function("document.querySelectorAll('#mine-body tr').length === 0")
    assert not any(p.name.endswith("_gone.txt") for p in server.storage.iterdir())


def test_markup_in_a_file_name_is_shown_as_text(make_server: type[ServerProcess], tmp_path: Path, page: Page) -> None:
    server = make_server(tmp_path / "s").start()
    name = "<img src=x onerror=alert(1)>.txt"
    (tmp_path / name).write_bytes(b"hello")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    _open(page, server)
    page.set_input_files("#file-input", str(tmp_path / name))
    page.wait_for_function("document.querySelectorAll('#mine-body tr').length === 1")
    assert _mine_names(page) == [name]
    assert page.locator("img[src=x]").count() == 0
    time.sleep(0.3)
    assert dialogs == []


def test_page_works_with_all_outside_network_blocked(shared_server: ServerProcess, page: Page) -> None:
    outside: list[str] = []

    def block(route: Route, request: Request) -> None:
        if request.url.startswith(shared_server.url):
            route.continue_()
        else:
            outside.append(request.url)
            route.abort()

    page.route("**/*", block)
    _open(page, shared_server)
    assert page.locator("h1").inner_text().strip() == "pyfiledrop"
    assert page.evaluate("getComputedStyle(document.querySelector('.button.primary')).borderRadius") == "8px"
    assert outside == []


def test_csp_forbids_inline_script(shared_server: ServerProcess, page: Page) -> None:
    response = page.goto(f"{shared_server.url}/")
    assert response is not None
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


def test_server_flags_reach_the_page(make_server: type[ServerProcess], tmp_path: Path, page: Page) -> None:
    server = make_server(
        tmp_path / "s", ["--max-size", "1", "--chunk-size", "262144", "--disable-parallel-chunks"]
    ).start()
    creations: list[dict[str, str]] = []
    page.on("request", lambda r: creations.append(r.headers) if r.method == "POST" and "/files/" in r.url else None)
    _open(page, server)
    assert "Up to 1.0 MiB per file" in page.locator("#limits").inner_text()
    (tmp_path / "toolarge.bin").write_bytes(os.urandom(2 * 2**20))
    page.set_input_files("#file-input", str(tmp_path / "toolarge.bin"))
    assert "the limit is 1.0 MiB" in page.locator("#banner").inner_text()
    (tmp_path / "fits.bin").write_bytes(os.urandom(900_000))
    page.set_input_files("#file-input", str(tmp_path / "fits.bin"))
    page.wait_for_function("document.querySelectorAll('#mine-body tr').length === 1")
    assert len(creations) == 1 and "upload-concat" not in creations[0]  # one stream, as the flag asks


def test_admin_view_shows_everyone_and_disk_usage(shared_server: ServerProcess, page: Page) -> None:
    _open(page, shared_server, f"?admin={ADMIN_TOKEN}")
    page.wait_for_selector("#admin-section:not([hidden])")
    assert "free of" in page.locator("#admin-stats").inner_text()
    assert "keep awake auto: " in page.locator("#admin-stats").inner_text()  # held or not: other tests upload
    assert "admin=" not in page.url


def test_parallel_parts_go_into_one_upload_without_concatenation(
    make_server: type[ServerProcess], tmp_path: Path, page: Page
) -> None:
    # 12 chunks of one upload, 4 in flight at a time, with the parallel-write extension (handed out lowest first).
    server = make_server(tmp_path / "s", ["--chunk-size", "262144"]).start()
    data = os.urandom(12 * 262144 - 1000)
    (tmp_path / "regions.bin").write_bytes(data)
    requests: list[Request] = []
    page.on("request", lambda r: requests.append(r) if r.url.startswith(server.url) else None)
    _open(page, server)
    assert page.evaluate("fetch('/api/config').then(r => r.json()).then(c => c.parallel_write)") is True
    page.set_input_files("#file-input", str(tmp_path / "regions.bin"))
    page.wait_for_selector("#active-list .upload.done")
    assert _stored(server, "regions.bin") == data
    assert [r for r in requests if "upload-concat" in r.headers] == []
    creations = [r for r in requests if r.method == "POST" and "/files/" in r.url]
    assert len(creations) == 1 and creations[0].headers["upload-length"] == str(len(data))
    patches = [r for r in requests if r.method == "PATCH"]
    assert len(patches) == 12 and all(r.headers.get("x-pyfiledrop-parallel-write") == "1" for r in patches)
    assert len({r.url for r in patches}) == 1  # all into the one upload
    offsets = sorted(int(r.headers["upload-offset"]) for r in patches)
    assert offsets == [i * 262144 for i in range(12)]  # every chunk once


def test_a_record_saved_by_the_concatenating_uploader_still_resumes_that_way(
    make_server: type[ServerProcess], tmp_path: Path, page: Page
) -> None:
    # What the page before parallel writes left in localStorage: 4 partial uploads, each with its first chunk.
    server = make_server(tmp_path / "s", ["--chunk-size", "262144"]).start()
    size = 12 * 262144 - 1000
    data = bytes((i * 31 + (i >> 8)) & 255 for i in range(size))
    requests: list[Request] = []
    page.on("request", lambda r: requests.append(r) if r.url.startswith(server.url) else None)
    _open(page, server)
    page.evaluate(
        """async (size) => {
            const chunk = 262144, per = 3 * chunk, tus = {"Tus-Resumable": "1.0.0"};
            const bytes = new Uint8Array(size).map((_, i) => (i * 31 + (i >> 8)) & 255);
            const parts = [];
            for (let start = 0; start < size; start += per) {
                const end = Math.min(start + per, size);
                const made = await fetch("/files/", {method: "POST",
                    headers: {...tus, "Upload-Length": String(end - start), "Upload-Concat": "partial"}});
                const url = new URL(made.headers.get("Location"), location.href).href;
                await fetch(url, {method: "PATCH", body: bytes.slice(start, start + chunk),
                    headers: {...tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}});
                parts.push({start, end, url});
            }
            const key = `pyfiledrop:upload:${location.origin}:old.bin:${size}:1700000000000`;
            localStorage.setItem(key, JSON.stringify({name: "old.bin", size, parts, savedAt: Date.now()}));
            const data = new DataTransfer();
            data.items.add(new File([bytes], "old.bin", {type: "text/plain", lastModified: 1700000000000}));
            document.body.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
        }""",
        size,
    )
    page.wait_for_selector("#active-list .upload.done")
    assert _stored(server, "old.bin") == data
    concat = [r.headers.get("upload-concat", "") for r in requests if r.method == "POST" and "/files/" in r.url]
    assert concat[:4] == ["partial"] * 4 and len(concat) == 5 and concat[4].startswith("final;")
    patches = [r for r in requests if r.method == "PATCH"]
    assert len(patches) == 4 + 8 and not any("x-pyfiledrop-parallel-write" in r.headers for r in patches)
