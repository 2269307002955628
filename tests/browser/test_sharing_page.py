"""Passing files on from the page, in a real Chromium: share a file (expiry, password, limit), copy the link, list
and revoke it; share a selection; change a file's expiry within the server's limit; folders keep their paths."""

from __future__ import annotations

import io
import os
import time
import zipfile
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page

from tests.conftest import ServerProcess

pytestmark = pytest.mark.browser


def _open(page: Page, server: ServerProcess) -> None:
    page.goto(server.url)
    page.wait_for_selector("body[data-ready=true]")


def _upload(page: Page, tmp_path: Path, files: dict[str, bytes]) -> None:
    paths = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    page.set_input_files("#file-input", paths)
    page.wait_for_function(f"document.querySelectorAll('#mine-body tr code').length === {len(files)}")


def test_share_a_file_with_a_password_and_limit_then_revoke(make_server: type[ServerProcess], tmp_path: Path,
                                                             page: Page) -> None:  # fmt: skip
    server = make_server(tmp_path / "s", ["--expire-after", "30d"]).start()
    data = os.urandom(90_000)
    _open(page, server)
    _upload(page, tmp_path, {"report.pdf": data})
    page.get_by_role("button", name="Share report.pdf").click()
    dialog = page.locator("#share-dialog")
    assert dialog.is_visible()
    options = page.locator("#share-expiry option").all_text_contents()
    assert "never (while the files are kept)" not in options  # the server keeps files for 30 days at most
    page.select_option("#share-expiry", "86400")
    page.fill("#share-password", "letmein")
    page.fill("#share-max", "2")
    page.click("#share-submit")
    page.wait_for_selector("#share-created:not([hidden])")
    url = page.input_value("#share-url")
    assert "/s/" in url
    assert page.get_by_role("button", name="Copy the share link").is_visible()
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, auth=("", "letmein")).content == data
    page.click("#share-close")
    page.wait_for_selector("#shares-section:not([hidden])")
    page.wait_for_function("document.querySelector('#shares-body tr').textContent.includes('1 of 2')")
    assert "report.pdf" in page.locator("#shares-body tr").first.inner_text()
    page.on("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Revoke the link to report.pdf").click()
    page.wait_for_function("document.querySelector('#shares-body tr td.state').textContent === 'Revoked'")
    assert httpx.get(url, auth=("", "letmein")).status_code == 410


def test_share_a_selection_as_one_link_with_a_zip(make_server: type[ServerProcess], tmp_path: Path,
                                                  page: Page) -> None:  # fmt: skip
    server = make_server(tmp_path / "s").start()
    files = {"a.txt": b"alpha", "b.txt": b"bravo", "c.txt": b"charlie"}
    _open(page, server)
    _upload(page, tmp_path, files)
    assert page.locator("#share-selected").is_disabled()
    page.get_by_label("Select a.txt").check()
    page.get_by_label("Select c.txt").check()
    assert page.locator("#share-selected").inner_text() == "Share selected (2)"
    page.click("#share-selected")
    assert page.locator("#share-title").inner_text() == "Share 2 files"
    page.click("#share-submit")
    page.wait_for_selector("#share-created:not([hidden])")
    url = page.input_value("#share-url")
    listing = page.context.new_page()
    listing.goto(url)
    assert listing.locator("#share-files td.name").all_text_contents() == ["a.txt", "c.txt"]
    archive = zipfile.ZipFile(io.BytesIO(httpx.get(url + "/zip").content))
    assert {n: archive.read(n) for n in archive.namelist()} == {"a.txt": b"alpha", "c.txt": b"charlie"}


def test_an_uploader_picks_an_expiry_within_the_limit(make_server: type[ServerProcess], tmp_path: Path,
                                                      page: Page) -> None:  # fmt: skip
    server = make_server(tmp_path / "s", ["--expire-after", "7d"]).start()
    _open(page, server)
    _upload(page, tmp_path, {"soon.txt": b"soon"})
    select = page.get_by_label("Expiry of soon.txt")
    choices = select.locator("option").all_text_contents()
    assert "in 1 day" in choices and "in 30 days" not in choices and "never" not in choices
    select.select_option(label="in 1 day")
    page.wait_for_function(
        "() => { const s = document.querySelector('#mine-body select'); return s && s.options[0].text !== 'never' "
        "&& !s.options[0].text.includes('in ') }"
    )
    token = page.context.cookies()[0]["value"]
    record = httpx.get(f"{server.url}/api/uploads", headers={"x-pyfiledrop-token": token}).json()["uploads"][0]
    assert 0 < record["expires_at"] - time.time() <= 86400 + 5


def test_a_chosen_folder_keeps_its_paths(make_server: type[ServerProcess], tmp_path: Path, page: Page) -> None:
    server = make_server(tmp_path / "s").start()
    top = tmp_path / "album"
    for sub in ("one", "two"):
        (top / sub).mkdir(parents=True)
        (top / sub / "b.txt").write_bytes(f"b in {sub}".encode())
    _open(page, server)
    page.set_input_files("#folder-input", str(top))
    page.wait_for_function("document.querySelectorAll('#mine-body tr code').length === 2")
    assert sorted(page.locator("#mine-body td.name").all_text_contents()) == ["album/one/b.txt", "album/two/b.txt"]


def test_a_drop_links_page_says_where_the_file_went(make_server: type[ServerProcess], tmp_path: Path,
                                                    page: Page) -> None:  # fmt: skip
    from tests.conftest import ADMIN_TOKEN

    server = make_server(tmp_path / "s").start()
    link = httpx.post(f"{server.url}/api/drops", json={"label": "inbox"},
                      headers={"x-pyfiledrop-token": ADMIN_TOKEN}).json()  # fmt: skip
    page.goto(link["url"])
    page.wait_for_selector("body[data-ready=true]")
    (tmp_path / "scan.pdf").write_bytes(b"%PDF")
    page.set_input_files("#file-input", str(tmp_path / "scan.pdf"))
    page.wait_for_selector("#active-list .upload.done")
    assert page.locator("#active-list .stats").inner_text().startswith("Received — stored for the owner of this drop")
    assert page.locator("#active-list a").count() == 0
