"""With --public-url the start-up banner sends people (and the admin) to the public address, not the bound one."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import ADMIN_TOKEN, ServerProcess


def test_the_admin_link_uses_the_public_url(make_server: type[ServerProcess], tmp_path: Path) -> None:
    server = make_server(tmp_path / "s", ["--public-url", "https://files.example.com/drop/"]).start()
    banner = server.log()
    assert f"Admin:  https://files.example.com/drop/?admin={ADMIN_TOKEN}" in banner
    assert "Admin:  http://127.0.0.1" not in banner
    assert "  https://files.example.com/drop/  (public URL)" in banner.split("Open in a browser", 1)[1]
    created = httpx.put(f"{server.url}/a.txt", content=b"a")
    assert created.headers["location"].startswith("https://files.example.com/drop/download/")


def test_an_admin_token_is_url_encoded_in_the_link(make_server: type[ServerProcess], tmp_path: Path) -> None:
    server = make_server(tmp_path / "s", ["--admin-token", "a&b=c d#e"]).start()
    assert f"Admin:  http://127.0.0.1:{server.port}/?admin=a%26b%3Dc%20d%23e" in server.log()
