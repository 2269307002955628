"""The page's access modes in a real Chromium against a real server: --password (unlock first), drop links
(/d/TOKEN: upload only, nothing else shown) and the admin's "Drop links" panel."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Request, expect

from tests.conftest import ADMIN_TOKEN, ServerProcess

pytestmark = pytest.mark.browser

ADMIN = {"X-Pyfiledrop-Token": ADMIN_TOKEN}


def _stored(server: ServerProcess, name: str) -> bytes:
    matches = [p for p in server.storage.iterdir() if p.name.endswith("_" + name)]
    assert len(matches) == 1, [p.name for p in server.storage.iterdir()]
    return matches[0].read_bytes()


def _open(page: Page, server: ServerProcess, path: str = "/") -> None:
    page.goto(f"{server.url}{path}")
    page.wait_for_selector("body[data-ready=true]")


def _make_drop(server: ServerProcess, **fields: Any) -> dict[str, Any]:
    body = {"label": "Footage", "password": None, "max_files": None, "max_bytes": None, "expires_in": None, **fields}
    response = httpx.post(f"{server.url}/api/drops", json=body, headers=ADMIN, timeout=10)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _write(tmp_path: Path, name: str, size: int) -> tuple[Path, bytes]:
    data = os.urandom(size)
    path = tmp_path / name
    path.write_bytes(data)
    return path, data


def _tus_creations(page: Page) -> list[Request]:
    creations: list[Request] = []
    page.on("request", lambda r: creations.append(r) if r.method == "POST" and "/files/" in r.url else None)
    return creations


# -- password mode ---------------------------------------------------------------------------------------------------


def test_open_server_shows_no_password_form(shared_server: ServerProcess, page: Page) -> None:
    _open(page, shared_server)
    expect(page.locator("#unlock-section")).to_be_hidden()
    expect(page.locator("#file-input")).to_be_enabled()
    expect(page.locator("#mine-section")).to_be_visible()


def test_password_mode_wrong_then_right_password_then_upload(
    make_server: type[ServerProcess], tmp_path: Path, page: Page
) -> None:
    server = make_server(tmp_path / "s", ["--password", "SECRET", "--chunk-size", "262144"]).start()
    creations = _tus_creations(page)
    _open(page, server)
    expect(page.locator("#unlock-section")).to_be_visible()
    expect(page.locator("#unlock-section label")).to_have_text("Password")
    expect(page.locator("#unlock-password")).to_have_attribute("type", "password")
    expect(page.locator("#file-input")).to_be_disabled()
    expect(page.locator("#folder-input")).to_be_disabled()

    source, data = _write(tmp_path, "locked.bin", 1_000_000)
    page.evaluate(
        """() => {
            const data = new DataTransfer();
            data.items.add(new File(["x"], "sneaky.txt"));
            document.body.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
        }"""
    )
    expect(page.locator("#banner")).to_contain_text("Unlock")
    assert creations == []  # a locked page sends nothing

    page.fill("#unlock-password", "wrong")
    page.click("#unlock-button")
    expect(page.locator("#unlock-error")).to_have_text("Wrong password")
    expect(page.locator("#file-input")).to_be_disabled()

    page.fill("#unlock-password", "SECRET")
    page.press("#unlock-password", "Enter")  # the keyboard is enough
    expect(page.locator("#unlock-section")).to_be_hidden()
    expect(page.locator("#file-input")).to_be_enabled()
    assert page.evaluate("fetch('/api/config').then(r => r.json()).then(c => c.password_required)") is False

    page.set_input_files("#file-input", str(source))
    page.wait_for_function("document.querySelectorAll('#mine-body tr').length === 1")
    assert _stored(server, "locked.bin") == data
    assert len(creations) == 1  # one upload written as parallel regions (parallel_write): it passed the gate


def test_password_mode_lets_the_admin_page_upload_without_it(
    make_server: type[ServerProcess], tmp_path: Path, page: Page
) -> None:
    server = make_server(tmp_path / "s", ["--password", "SECRET"]).start()
    _open(page, server, f"/?admin={ADMIN_TOKEN}")
    expect(page.locator("#admin-section")).to_be_visible()
    expect(page.locator("#unlock-section")).to_be_hidden()
    source, data = _write(tmp_path, "by admin.txt", 2_000)
    page.set_input_files("#file-input", str(source))
    page.wait_for_function("document.querySelectorAll('#mine-body tr').length === 1")  # still listed as this browser's
    assert _stored(server, "by admin.txt") == data


def test_password_mode_too_many_attempts(make_server: type[ServerProcess], tmp_path: Path, page: Page) -> None:
    server = make_server(tmp_path / "s", ["--password", "SECRET", "--login-rate", "2"]).start()
    _open(page, server)
    for _ in range(2):
        page.fill("#unlock-password", "wrong")
        page.click("#unlock-button")
        expect(page.locator("#unlock-error")).to_be_visible()  # hidden below: visible again means a new answer
        expect(page.locator("#unlock-error")).to_have_text("Wrong password")
        page.evaluate("document.getElementById('unlock-error').hidden = true")
    page.fill("#unlock-password", "SECRET")  # even the right one waits out the block
    page.click("#unlock-button")
    expect(page.locator("#unlock-error")).to_have_text(re.compile(r"^Too many attempts — try again in \d+ s$"))
    expect(page.locator("#file-input")).to_be_disabled()


def test_password_asked_again_when_an_upload_is_refused(
    make_server: type[ServerProcess], tmp_path: Path, page: Page
) -> None:
    server = make_server(tmp_path / "s", ["--password", "SECRET"]).start()
    _open(page, server)
    page.fill("#unlock-password", "SECRET")
    page.click("#unlock-button")
    expect(page.locator("#file-input")).to_be_enabled()
    page.context.clear_cookies(name="pyfiledrop_pass")  # as if the password changed or the cookie expired
    source, data = _write(tmp_path, "again.txt", 5_000)
    page.set_input_files("#file-input", str(source))
    expect(page.locator("#unlock-section")).to_be_visible()
    expect(page.locator("#active-list .upload.failed")).to_have_count(1)
    expect(page.locator("#file-input")).to_be_disabled()
    page.fill("#unlock-password", "SECRET")
    page.click("#unlock-button")
    page.wait_for_function("document.querySelectorAll('#mine-body tr').length === 1")  # it went on by itself
    assert _stored(server, "again.txt") == data


# -- drop mode -------------------------------------------------------------------------------------------------------


def test_drop_link_page_uploads_and_shows_nothing_else(
    make_server: type[ServerProcess], tmp_path: Path, page: Page, artifacts: Path
) -> None:
    server = make_server(tmp_path / "s", ["--chunk-size", "262144"]).start()
    label = '<img src=x onerror=alert(1)> Footage & "B-roll"'
    link = _make_drop(server, label=label, max_files=3, max_bytes=2 * 2**30, expires_in=7 * 86400)
    token = link["token"]
    sent: list[Request] = []
    page.on("request", lambda r: sent.append(r) if r.url.startswith(server.url) else None)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    _open(page, server, f"/d/{token}")
    expect(page.locator("#drop-title")).to_have_text(f"Upload to: {label}")
    assert page.locator("img[src=x]").count() == 0
    expect(page.locator("#drop-limits")).to_contain_text("Up to 3 files, 2.0 GiB in all, until ")
    expect(page.locator("#drop-used")).to_contain_text("0 files")
    for hidden in ["#mine-section", "#mine-title", "#forget", "#admin-section", "#drops-section", "#unlock-section"]:
        expect(page.locator(hidden)).to_be_hidden()
    expect(page.locator("#file-input")).to_be_enabled()

    source, data = _write(tmp_path, "clip one.mov", 1_200_000)  # several parts, then the final upload
    page.set_input_files("#file-input", str(source))
    page.wait_for_selector("#active-list .upload.done")
    assert _stored(server, "clip one.mov") == data
    expect(page.locator("#drop-used")).to_contain_text("1 file, 1.1 MiB")
    expect(page.locator("#drop-used")).to_contain_text("2 files left")
    page.screenshot(path=str(artifacts / "drop-page.png"), full_page=True)

    server_requests = [r for r in sent if "/files/" in r.url or "/api/" in r.url]
    assert {r.method for r in server_requests} >= {"POST", "PATCH", "GET"}
    assert all(r.headers.get("x-pyfiledrop-drop") == token for r in server_requests)
    paths = {httpx.URL(r.url).path for r in server_requests if "/api/" in r.url}
    assert paths <= {"/api/config", "/api/drops/current"}, paths  # no session, no lists of anything
    assert dialogs == []
    uploads = httpx.get(f"{server.url}/api/uploads?all=1", headers=ADMIN).json()["uploads"]
    assert [u["owner"] for u in uploads] == [f"drop-{link['id']}"]  # owned by the link, seen by the admin


def test_drop_link_with_one_file_refuses_the_second(
    make_server: type[ServerProcess], tmp_path: Path, page: Page
) -> None:
    server = make_server(tmp_path / "s").start()
    link = _make_drop(server, label="Just one", max_files=1)
    _open(page, server, f"/d/{link['token']}")
    first, data = _write(tmp_path, "first.txt", 3_000)
    page.set_input_files("#file-input", str(first))
    page.wait_for_selector("#active-list .upload.done")
    assert _stored(server, "first.txt") == data
    second, _ = _write(tmp_path, "second.txt", 3_000)
    page.set_input_files("#file-input", str(second))
    failed = page.locator("#active-list .upload.failed")
    expect(failed).to_have_count(1)
    expect(failed.locator(".name")).to_have_text("second.txt")
    expect(failed.locator(".stats")).to_have_text(re.compile(r"^Quota reached: this drop link takes at most 1 file"))
    expect(page.locator("#drop-used")).to_contain_text("0 files left")
    assert not any(p.name.endswith("_second.txt") for p in server.storage.iterdir())


@pytest.mark.parametrize("case", ["revoked", "expired", "unknown"])
def test_closed_drop_link_says_why_and_offers_no_drop_zone(
    make_server: type[ServerProcess], tmp_path: Path, page: Page, case: str
) -> None:
    server = make_server(tmp_path / "s").start()
    token, expected = "no-such-token-123", "does not exist"
    if case == "revoked":
        link = _make_drop(server, label="Old")
        assert httpx.delete(f"{server.url}/api/drops/{link['id']}", headers=ADMIN).status_code == 204
        token, expected = link["token"], "was revoked"
    elif case == "expired":
        link = _make_drop(server, label="Brief", expires_in=0.5)
        time.sleep(1.0)
        token, expected = link["token"], "has expired"
    _open(page, server, f"/d/{token}")
    expect(page.locator("#drop-closed")).to_be_visible()
    expect(page.locator("#drop-closed-detail")).to_contain_text(expected)
    expect(page.locator("#drop")).to_be_hidden()
    expect(page.locator("#mine-section")).to_be_hidden()
    expect(page.locator("#file-input")).to_be_disabled()


def test_drop_link_with_a_password_asks_for_it(make_server: type[ServerProcess], tmp_path: Path, page: Page) -> None:
    server = make_server(tmp_path / "s").start()
    link = _make_drop(server, label="Private", password="pw-42")
    creations = _tus_creations(page)
    _open(page, server, f"/d/{link['token']}")
    expect(page.locator("#drop-title")).to_have_text("Upload to: Private")
    expect(page.locator("#unlock-section")).to_be_visible()
    expect(page.locator("#unlock-title")).to_have_text("This drop link needs its password")
    expect(page.locator("#file-input")).to_be_disabled()

    page.fill("#unlock-password", "not it")
    page.click("#unlock-button")  # checked at once (POST /api/drops/current), before any file is chosen
    expect(page.locator("#unlock-error")).to_have_text("Wrong password")
    expect(page.locator("#unlock-section")).to_be_visible()
    expect(page.locator("#file-input")).to_be_disabled()

    page.fill("#unlock-password", "pw-42")
    page.press("#unlock-password", "Enter")
    expect(page.locator("#unlock-section")).to_be_hidden()
    source, data = _write(tmp_path, "private.txt", 4_000)
    page.set_input_files("#file-input", str(source))
    page.wait_for_selector("#active-list .upload.done")
    assert _stored(server, "private.txt") == data
    assert [r.headers.get("x-pyfiledrop-password") for r in creations] == ["pw-42"]
    stored = page.evaluate("JSON.stringify([{...localStorage}, {...sessionStorage}, document.cookie])")
    assert "pw-42" not in stored  # kept in memory only


# -- admin: the drop links panel ---------------------------------------------------------------------------------------


def test_admin_creates_and_revokes_a_drop_link(
    make_server: type[ServerProcess], tmp_path: Path, page: Page, artifacts: Path
) -> None:
    server = make_server(tmp_path / "s").start()
    _make_drop(server, label="Earlier link", max_files=5)
    _open(page, server, f"/?admin={ADMIN_TOKEN}")
    expect(page.locator("#drops-section")).to_be_visible()
    expect(page.locator("#drops-body tr")).to_have_count(1)

    page.fill("#newdrop-label", "Wedding <footage>")
    page.fill("#newdrop-password", "s3cret")
    page.fill("#newdrop-max-files", "3")
    page.fill("#newdrop-max-size", "2")
    page.select_option("#newdrop-max-unit", "GiB")
    page.select_option("#newdrop-expiry", "2592000")
    page.click("#newdrop-submit")
    expect(page.locator("#newdrop-created")).to_be_visible()
    url = page.locator("#newdrop-url").input_value()
    assert re.fullmatch(rf"{re.escape(server.url)}/d/[A-Za-z0-9_-]+", url), url
    expect(page.locator("#newdrop-created-label")).to_have_text("Wedding <footage>")
    expect(page.locator("#newdrop-label")).to_have_value("")  # the form is cleared for the next one
    rows = page.locator("#drops-body tr")
    expect(rows).to_have_count(2)
    new_row = rows.filter(has_text="Wedding <footage>")
    expect(new_row.locator("td.state")).to_have_text("Active")
    expect(new_row).to_contain_text("3 files, 2.0 GiB, password")
    page.screenshot(path=str(artifacts / "admin-drop-links.png"), full_page=True)

    token = url.rsplit("/", 1)[1]
    current = httpx.get(f"{server.url}/api/drops/current", headers={"X-Pyfiledrop-Drop": token}).json()
    assert current["label"] == "Wedding <footage>"
    assert (current["max_files"], current["max_bytes"], current["password_required"]) == (3, 2 * 2**30, True)
    assert 29 * 86400 < current["expires_at"] - time.time() <= 30 * 86400

    page.once("dialog", lambda dialog: dialog.accept())
    new_row.get_by_role("button", name="Revoke Wedding <footage>").click()
    expect(new_row.locator("td.state")).to_have_text("Revoked")
    expect(new_row.get_by_role("button")).to_have_count(0)
    assert httpx.get(f"{server.url}/api/drops/current", headers={"X-Pyfiledrop-Drop": token}).status_code == 410

    page.once("dialog", lambda dialog: dialog.dismiss())  # a dismissed confirm revokes nothing
    old_row = rows.filter(has_text="Earlier link")
    old_row.get_by_role("button", name="Revoke Earlier link").click()
    expect(old_row.locator("td.state")).to_have_text("Active")


def test_drop_links_panel_is_for_the_admin_only(shared_server: ServerProcess, page: Page) -> None:
    _open(page, shared_server)
    expect(page.locator("#drops-section")).to_be_hidden()
    _open(page, shared_server, "/?admin=not-the-token")
    expect(page.locator("#drops-section")).to_be_hidden()
