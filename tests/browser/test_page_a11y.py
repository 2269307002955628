"""The page for everyone: a live region announcing starts, completions and failures, progress bars named after
their file, a header without chunk sizes, phones without "drop anywhere" or a folder button, column labels on
narrow screens, an overall progress that does not wrap, and a resumed file followed live in "My uploads"."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Request, Route

from tests.conftest import ServerProcess

pytestmark = pytest.mark.browser

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.0 Mobile/15E148 Safari/604.1")  # fmt: skip


def _open(page: Page, server: ServerProcess) -> None:
    page.goto(server.url)
    page.wait_for_selector("body[data-ready=true]")


def test_announcements_names_and_header(make_server: type[ServerProcess], tmp_path: Path, page: Page) -> None:
    server = make_server(tmp_path / "s", ["--max-size", "1"]).start()
    _open(page, server)
    assert "chunk" not in page.locator("#limits").inner_text().lower()
    (tmp_path / "hello.txt").write_bytes(b"hello")
    page.set_input_files("#file-input", str(tmp_path / "hello.txt"))
    page.wait_for_function("document.getElementById('announcer').textContent === 'hello.txt uploaded, sha256 checked'")
    assert page.get_by_role("progressbar", name="Progress of hello.txt").count() == 1
    assert page.locator("#announcer").get_attribute("aria-live") == "polite"
    page.route("**/files/**", lambda route, request: route.abort())  # the server is gone
    (tmp_path / "second.txt").write_bytes(b"second")
    page.set_input_files("#file-input", str(tmp_path / "second.txt"))
    page.wait_for_function("document.getElementById('announcer').textContent.startsWith('Server unreachable')")


def test_a_phone_gets_no_drop_text_no_folder_button_and_labelled_cells(
    make_server: type[ServerProcess], tmp_path: Path, browser: Browser
) -> None:
    server = make_server(tmp_path / "s").start()
    context = browser.new_context(user_agent=IPHONE, viewport={"width": 375, "height": 740}, is_mobile=True,
                                  has_touch=True, bypass_csp=True)  # fmt: skip
    page = context.new_page()
    _open(page, server)
    assert page.locator("#drop-title").inner_text() == "Choose files to upload"
    assert page.locator("label[for=folder-input]").is_hidden()
    (tmp_path / "photo.jpg").write_bytes(os.urandom(5000))
    page.set_input_files("#file-input", str(tmp_path / "photo.jpg"))
    page.wait_for_function("document.querySelectorAll('#mine-body tr code').length === 1")
    before = page.evaluate(
        "getComputedStyle(document.querySelector('#mine-body td[data-label=Size]'), '::before').content"
    )
    assert before == '"Size: "'
    overall = page.locator(".overall")
    bar, text = overall.locator("progress").bounding_box(), overall.locator("span").bounding_box()
    assert (
        bar is not None
        and text is not None
        and abs(bar["y"] + bar["height"] / 2 - (text["y"] + text["height"] / 2)) < 12
    )
    context.close()


def test_a_resumed_file_leaves_unfinished_and_shows_live_in_my_uploads(
    make_server: type[ServerProcess], tmp_path: Path, page: Page
) -> None:
    server = make_server(tmp_path / "s", ["--chunk-size", "524288"]).start()
    source = tmp_path / "movie.bin"
    source.write_bytes(os.urandom(8 * 2**20))

    def slow(route: Route, request: Request) -> None:
        if request.method == "PATCH":
            time.sleep(0.12)
        route.continue_()

    page.route("**/files/**", slow)
    _open(page, server)
    page.set_input_files("#file-input", str(source))
    page.wait_for_function("document.getElementById('overall-bar').value > 0.3")
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    assert "movie.bin" in page.locator("#resume-list").inner_text()
    page.set_input_files("#file-input", str(source))
    page.wait_for_selector("#resume-section", state="hidden")
    page.wait_for_function(
        "[...document.querySelectorAll('#mine-body td')].some((td) => td.textContent.includes('received ·'))"
    )
    page.wait_for_function("document.querySelectorAll('#mine-body tr code').length === 1", timeout=60_000)


def test_admin_view_searches_pages_downloads_and_deletes_in_bulk(
    make_server: type[ServerProcess], tmp_path: Path, page: Page
) -> None:
    import httpx

    from tests.conftest import ADMIN_TOKEN

    server = make_server(tmp_path / "s").start()
    owner = {"x-pyfiledrop-token": httpx.get(f"{server.url}/api/session").json()["token"]}
    for number in range(60):
        httpx.put(f"{server.url}/report-{number:02d}.txt", content=f"report {number}".encode(), headers=owner)
    httpx.put(f"{server.url}/holiday.jpg", content=b"jpeg", headers=owner)
    page.goto(f"{server.url}/?admin={ADMIN_TOKEN}")
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_selector("#admin-section:not([hidden])")
    assert page.locator("#admin-body tr").count() == 50
    assert page.locator("#admin-page").inner_text() == "1–50 of 61"
    page.click("#admin-next")
    page.wait_for_function("document.getElementById('admin-page').textContent === '51–61 of 61'")
    page.fill("#admin-search", "holiday")
    page.wait_for_function("document.querySelectorAll('#admin-body tr').length === 1")
    assert page.locator("#admin-body td.client").inner_text() == "127.0.0.1"  # the address it came from
    link = page.get_by_role("link", name="Download holiday.jpg")
    assert httpx.get(str(link.get_attribute("href"))).content == b"jpeg"
    page.fill("#admin-search", "report-0")
    page.wait_for_function("document.querySelectorAll('#admin-body tr').length === 10")
    page.get_by_label("Select report-01.txt").check()
    page.get_by_label("Select report-02.txt").check()
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#admin-delete")
    page.wait_for_function("document.querySelectorAll('#admin-body tr').length === 8")
    assert page.locator("#admin-page").inner_text() == "1–8 of 8"
