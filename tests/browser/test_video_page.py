"""Trim and Rotate in a real Chromium: a video uploaded through the page, edited inline, the new files listed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ServerProcess
from tests.video.helpers import of_type, packets
from tests.video.samples import Recipe, make

pytestmark = pytest.mark.browser


def _row(page: Page, name: str) -> object:
    return page.locator("#mine-body tr", has=page.locator("td.name", has_text=name))


def test_trim_and_rotate_from_my_uploads(
    make_server: type[ServerProcess], tmp_path: Path, page: Page, artifacts: Path
) -> None:
    clip = make(tmp_path / "holiday.mp4", Recipe("mp4", "libx264", "aac"))
    server = make_server(tmp_path / "s", ["--allow-downloads"]).start()
    page.goto(server.url)
    page.wait_for_selector("body[data-ready=true]")
    page.set_input_files("#file-input", str(clip))
    row = page.locator("#mine-body tr[data-id]", has=page.locator("td.name", has_text="holiday.mp4"))
    expect(row.locator("code")).to_be_visible()  # complete, sha256 shown

    # Trim, with the keyboard: typed times, the snapped start shown before confirming.
    row.get_by_role("button", name="Trim holiday.mp4").focus()
    page.keyboard.press("Enter")
    editor = page.locator("tr.video-editor")
    start = editor.locator("input[data-role=start]")
    expect(start).to_be_focused()
    expect(editor.locator(".timeline .keyframe")).to_have_count(5)  # a keyframe every 2 s of 10
    start.fill("0:03.1")
    editor.locator("input[data-role=end]").fill("7.5")
    note = editor.locator("[data-role=snap-note]")
    expect(note).to_contain_text("start at 00:02.000")
    editor.locator("select[data-role=snap]").select_option("after")
    expect(note).to_contain_text("start at 00:04.000")
    editor.locator("select[data-role=snap]").select_option("before")
    expect(note).to_contain_text("start at 00:02.000")
    assert editor.locator("video").evaluate("v => v.src").endswith(f"/download/{row.get_attribute('data-id')}")
    page.screenshot(path=str(artifacts / "video-trim.png"), full_page=True)
    editor.locator("button[data-confirm=trim]").click()
    expect(editor.locator(".job-status")).to_contain_text("Done", timeout=30_000)
    trimmed = page.locator("#mine-body td.name", has_text="holiday (trim 2-7.5s).mp4")
    expect(trimmed).to_be_visible()

    # Rotate: arrow keys pick 90°, the preview turns, the job makes a third file.
    page.keyboard.press("Escape")
    row.get_by_role("button", name="Rotate holiday.mp4").click()
    editor = page.locator("tr.video-editor")
    current = editor.get_by_role("radio", name="0°", exact=True)
    expect(current).to_have_attribute("aria-checked", "true")
    current.focus()
    page.keyboard.press("ArrowRight")
    expect(editor.get_by_role("radio", name="90°", exact=True)).to_have_attribute("aria-checked", "true")
    expect(editor.locator("video")).to_have_attribute("data-turn", "90")
    assert "rotate(90deg)" in editor.locator("video").evaluate("v => v.style.transform")
    page.screenshot(path=str(artifacts / "video-rotate.png"), full_page=True)
    editor.locator("button[data-confirm=rotate]").click()
    expect(editor.locator(".job-status")).to_contain_text("Done", timeout=30_000)
    expect(page.locator("#mine-body td.name", has_text="holiday (rotate 90).mp4")).to_be_visible()

    # The files the page made are what the API says: a real cut and a real rotation of the upload.
    token = page.evaluate("fetch('/api/session').then(r => r.json())")["owner"]
    assert token
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    with httpx.Client(base_url=server.url, cookies=cookies, timeout=30) as client:
        listed = {u["filename"]: u for u in client.get("/api/uploads").json()["uploads"]}
        cut = listed["holiday (trim 2-7.5s).mp4"]
        data = client.get(f"/download/{cut['id']}").content
        assert hashlib.sha256(data).hexdigest() == cut["sha256"]
        (tmp_path / "cut.mp4").write_bytes(data)
        expected = [s.sha256 for s in of_type(packets(clip), "video") if 2.0 <= s.pts < 7.5]
        assert [s.sha256 for s in of_type(packets(tmp_path / "cut.mp4"), "video")] == expected
        turned = listed["holiday (rotate 90).mp4"]
        assert client.get(f"/api/uploads/{turned['id']}/video").json()["rotation"] == 90


def test_a_non_video_named_like_one_says_why_it_cannot_be_edited(
    make_server: type[ServerProcess], tmp_path: Path, page: Page
) -> None:
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"not a video" * 1000)
    server = make_server(tmp_path / "s").start()
    page.goto(server.url)
    page.wait_for_selector("body[data-ready=true]")
    page.set_input_files("#file-input", str(fake))
    row = page.locator("#mine-body tr[data-id]", has=page.locator("td.name", has_text="fake.mp4"))
    expect(row.locator("code")).to_be_visible()
    row.get_by_role("button", name="Trim fake.mp4").click()
    expect(page.locator("tr.video-editor .error-text")).to_contain_text("not a video")
