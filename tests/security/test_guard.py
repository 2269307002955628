"""CSRF, rate limits, security headers, TLS and reverse-proxy trust, against real servers."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from pyfiledrop.errors import RateLimited
from pyfiledrop.web.guard import RateLimiter
from tests.conftest import ServerProcess

TUS = {"tus-resumable": "1.0.0", "upload-length": "10"}


def test_cross_origin_request_with_the_owner_cookie_is_refused(
    client: httpx.Client, shared_server: ServerProcess
) -> None:
    client.get("/api/session")  # the browser now has its cookie
    upload_id = client.put("/mine.txt", content=b"x", headers={"accept": "application/json"}).json()["id"]
    evil = client.delete(f"/api/uploads/{upload_id}", headers={"origin": "https://evil.example"})
    assert evil.status_code == 403 and "cross-origin" in evil.json()["detail"]
    cross_site = client.delete(f"/api/uploads/{upload_id}", headers={"sec-fetch-site": "cross-site"})
    assert cross_site.status_code == 403
    same = client.delete(f"/api/uploads/{upload_id}", headers={"origin": shared_server.url})
    assert same.status_code == 204


def test_header_token_requests_are_not_subject_to_the_origin_check(client: httpx.Client, owner: str) -> None:
    upload_id = client.put("/t.txt", content=b"x", headers={"x-pyfiledrop-token": owner, "accept": "application/json"})
    response = client.delete(f"/api/uploads/{upload_id.json()['id']}",
                             headers={"x-pyfiledrop-token": owner, "origin": "https://other.example"})  # fmt: skip
    assert response.status_code == 204


def test_every_answer_carries_nosniff_and_the_page_a_strict_csp(client: httpx.Client) -> None:
    for path in ("/", "/api/config", "/files/", "/nope"):
        assert client.get(path).headers["x-content-type-options"] == "nosniff", path
    page = client.get("/")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


def test_creation_rate_limit_answers_429_with_retry_after(make_server: type[ServerProcess], tmp_path: Path) -> None:
    server = make_server(tmp_path / "s", ["--create-rate", "3"]).start()
    statuses = [httpx.post(f"{server.url}/files/", headers=TUS) for _ in range(4)]
    assert [r.status_code for r in statuses[:3]] == [201, 201, 201]
    assert statuses[3].status_code == 429
    assert int(statuses[3].headers["retry-after"]) >= 1
    assert "too many new uploads" in statuses[3].text


def test_rate_limiter_refills_over_time() -> None:
    limiter = RateLimiter(60, "things")
    for _ in range(60):
        limiter.take("a", now=0.0)
    with pytest.raises(RateLimited):
        limiter.take("a", now=0.5)
    limiter.take("a", now=1.1)  # one token a second
    limiter.take("b", now=0.5)  # other addresses are not affected


def tls_server(make_server: type[ServerProcess], tmp_path: Path) -> ServerProcess:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)  # fmt: skip
    server = make_server(tmp_path / "s", ["--tls-cert", str(cert), "--tls-key", str(key)])
    server.start(scheme="https")
    return server


def test_tls_serves_https_with_secure_cookies(make_server: type[ServerProcess], tmp_path: Path) -> None:
    server = tls_server(make_server, tmp_path)
    response = httpx.get(f"https://127.0.0.1:{server.port}/api/session", verify=False)
    assert response.status_code == 200
    assert "Secure" in response.headers["set-cookie"]
    created = httpx.post(f"https://127.0.0.1:{server.port}/files/", headers=TUS, verify=False)
    assert created.headers["location"].startswith("https://")


@pytest.mark.parametrize("size", [100_000, (5 << 20) + 3])
def test_tls_bodies_are_stored_whole_and_hashed(make_server: type[ServerProcess], tmp_path: Path, size: int) -> None:
    """Under TLS no thread can read the socket itself: the body comes through asyncio's pieces (no pump), for a
    small PUT (read whole, then stored in a thread) and a large one and a tus PATCH (copied into the buffers)."""
    import hashlib
    import os

    server = tls_server(make_server, tmp_path)
    data = os.urandom(size)
    with httpx.Client(base_url=f"https://127.0.0.1:{server.port}", verify=False, timeout=30) as https:
        put = https.put("/tls.bin", content=data)
        assert put.status_code == 201
        assert put.headers["x-sha256"] == hashlib.sha256(data).hexdigest()
        created = https.post("/files/", headers={"tus-resumable": "1.0.0", "upload-length": str(size)})
        patch = {"tus-resumable": "1.0.0", "upload-offset": "0", "content-type": "application/offset+octet-stream"}
        patched = https.patch(created.headers["location"], content=data, headers=patch)
        assert patched.status_code == 204 and patched.headers["upload-offset"] == str(size)
        download = https.get(put.headers["location"])
        assert download.content == data


def test_tls_key_without_certificate_exits_2(tmp_path: Path) -> None:
    import os
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFILEDROP_")}
    result = subprocess.run([sys.executable, "-m", "pyfiledrop", "-s", str(tmp_path / "s"), "--tls-key", "/nope"],
                            capture_output=True, text=True, env=env, timeout=30)  # fmt: skip
    assert result.returncode == 2 and "--tls-cert and --tls-key go together" in result.stderr


def test_behind_proxy_trusts_forwarded_proto_and_host(make_server: type[ServerProcess], tmp_path: Path) -> None:
    server = make_server(tmp_path / "s", ["--behind-proxy"]).start()
    forwarded = {**TUS, "x-forwarded-proto": "https", "x-forwarded-host": "drop.example.org"}
    created = httpx.post(f"{server.url}/files/", headers=forwarded)
    assert created.headers["location"].startswith("https://drop.example.org/files/")
    assert "Secure" in created.headers["set-cookie"]
    plain = make_server(tmp_path / "t").start()  # without the flag the headers are ignored
    assert httpx.post(f"{plain.url}/files/", headers=forwarded).headers["location"].startswith(plain.url)
