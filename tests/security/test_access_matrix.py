"""Every endpoint that shows or changes someone's uploads, tried with each credential that must not open it: none,
another owner's token, a drop link's token, a revoked share link's token, a forged token. Then path traversal and
id guessing on every route that takes an id. All refused, none with a 5xx, and the target upload is untouched."""

from __future__ import annotations

import hashlib
import os
import secrets

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, ServerProcess

ADMIN = {"x-pyfiledrop-token": ADMIN_TOKEN}
TUS = {"tus-resumable": "1.0.0"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A server (downloads not allowed) with Alice's finished file and the credentials of everyone else."""
    server = ServerProcess(tmp_path_factory.mktemp("matrix") / "s").start()
    url = server.url
    data = os.urandom(20_000)
    put = httpx.put(f"{url}/alice.bin", content=data, headers={"accept": "application/json"})
    alice = {"x-pyfiledrop-token": put.headers["x-pyfiledrop-token"]}
    upload_id = put.json()["id"]
    share = httpx.post(f"{url}/api/uploads/{upload_id}/shares", json={}, headers=alice).json()
    assert httpx.delete(f"{url}/api/shares/{share['id']}", headers=alice).status_code == 204
    drop = httpx.post(f"{url}/api/drops", json={"label": "x"}, headers=ADMIN).json()
    mallory = httpx.get(f"{url}/api/session").json()["token"]
    yield {
        "url": url, "id": upload_id, "sha256": hashlib.sha256(data).hexdigest(), "alice": alice["x-pyfiledrop-token"],
        "mallory": mallory, "drop": drop["token"], "drop_id": drop["id"], "share": share["token"],
        "share_id": share["id"],
    }  # fmt: skip
    server.stop()


CREDENTIALS = {
    "no token": {},
    "another owner": {"x-pyfiledrop-token": "{mallory}"},
    "a drop link": {"x-pyfiledrop-drop": "{drop}"},
    "a revoked share link as token": {"authorization": "Bearer {share}"},
    "a forged token": {"x-pyfiledrop-token": "aaaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbb"},
    "the admin token with a typo": {"x-pyfiledrop-token": ADMIN_TOKEN + "x"},
}
# What only Alice (or the admin) may do with her finished upload.
PROTECTED = [
    ("GET", "/api/uploads"),
    ("GET", "/api/uploads/{id}"),
    ("PATCH", "/api/uploads/{id}"),
    ("DELETE", "/api/uploads/{id}"),
    ("GET", "/download/{id}"),
    ("HEAD", "/download/{id}"),
    ("GET", "/files/{id}"),
    ("DELETE", "/files/{id}"),
    ("POST", "/api/uploads/{id}/shares"),
    ("GET", "/api/uploads/{id}/shares"),
    ("DELETE", "/api/shares/{share_id}"),
    ("GET", "/s/{share}"),
    ("GET", "/api/admin/stats"),
    ("POST", "/api/admin/verify"),
    ("GET", "/api/drops"),
    ("POST", "/api/drops"),
    ("DELETE", "/api/drops/{drop_id}"),
]


def _send(world: dict[str, str], method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    filled = {k: v.format(**world) for k, v in headers.items()}
    body = b'{"expires_in": 60}' if method in ("PATCH", "POST") else None
    if path.startswith("/files/"):
        filled.update(TUS)
    return httpx.request(method, world["url"] + path.format(**world), headers=filled, content=body, timeout=30)


@pytest.mark.parametrize("who", list(CREDENTIALS))
@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_no_one_but_the_owner_or_admin_gets_in(world: dict[str, str], who: str, method: str, path: str) -> None:
    response = _send(world, method, path, CREDENTIALS[who])
    expected = {401, 403, 410} if path.startswith("/s/") or "share_id" in path else {401, 403}
    if path == "/api/uploads" and who in ("another owner",):
        assert response.status_code == 200 and response.json()["uploads"] == []  # their own list: empty
        return
    assert response.status_code in expected, (who, method, path, response.status_code, response.text[:200])


def test_after_all_that_alices_file_is_whole_and_hers(world: dict[str, str]) -> None:
    alice = {"x-pyfiledrop-token": world["alice"]}
    got = httpx.get(f"{world['url']}/download/{world['id']}", headers=alice)
    assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == world["sha256"]
    listed = httpx.get(f"{world['url']}/api/uploads", headers=alice).json()["uploads"]
    assert [u["id"] for u in listed] == [world["id"]] and listed[0]["expires_at"] is None


TRAVERSAL = [
    "../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "....//....//etc/passwd",
    "..\\..\\windows\\win.ini", "%00", "a%00b", "%c0%ae%c0%ae/etc/passwd", ".pyfiledrop.sqlite3",
    ".pyfiledrop.secret", ".partial", "storage/../../x",
]  # fmt: skip


@pytest.mark.parametrize("route", ["/download/", "/files/", "/api/uploads/", "/s/", "/static/", "/d/"])
@pytest.mark.parametrize("attempt", TRAVERSAL)
def test_path_traversal_never_reaches_a_file(world: dict[str, str], route: str, attempt: str) -> None:
    headers = {**TUS, "x-pyfiledrop-token": ADMIN_TOKEN}  # even the admin
    response = httpx.get(world["url"] + route + attempt, headers=headers)
    if route == "/d/" and response.status_code == 200:  # the page, in drop mode: HTML only, no file
        assert response.headers["content-type"].startswith("text/html")
        return
    assert 400 <= response.status_code < 500, (route, attempt, response.status_code)
    assert b"SQLite format" not in response.content and b"root:" not in response.content


def test_guessing_ids_finds_nothing(world: dict[str, str]) -> None:
    """Ids have 144 random bits; near misses (one character changed, a prefix) are never a match."""
    url, real = world["url"], world["id"]
    guesses = [secrets.token_urlsafe(18) for _ in range(100)] + [real[:-1], real[:12], real + "A"]
    guesses += [real[:i] + ("A" if real[i] != "A" else "B") + real[i + 1 :] for i in range(len(real))]
    for guess in guesses:
        for path in (f"/download/{guess}", f"/files/{guess}", f"/api/uploads/{guess}"):
            status = httpx.get(url + path, headers={**TUS, **ADMIN}).status_code
            assert status in (400, 404), (path, status)
