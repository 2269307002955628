"""Conditional requests (RFC 9110 §13) on downloads and the page's files; the page's protections on every URL of it."""

from __future__ import annotations

import hashlib
import os

import httpx
import pytest


@pytest.fixture
def download(client: httpx.Client) -> tuple[str, str]:
    """A download's path and its ETag."""
    data = os.urandom(5000)
    upload_id = client.put("/cond.bin", content=data, headers={"accept": "application/json"}).json()["id"]
    return f"/download/{upload_id}", f'"{hashlib.sha256(data).hexdigest()}"'


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("if_none_match", ["*", "{etag}", "W/{etag}", '"other", {etag}'])
def test_if_none_match_that_matches_is_304_with_validators(
    client: httpx.Client, download: tuple[str, str], method: str, if_none_match: str
) -> None:
    path, etag = download
    response = client.request(method, path, headers={"if-none-match": if_none_match.format(etag=etag)})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert response.headers["cache-control"] == "private, no-cache"


def test_if_none_match_that_does_not_match_sends_the_file(client: httpx.Client, download: tuple[str, str]) -> None:
    path, etag = download
    for value in ('"other"', etag[:-2] + '"', "garbage"):
        assert client.get(path, headers={"if-none-match": value}).status_code == 200


@pytest.mark.parametrize("if_match", ['"other"', "W/{etag}", "garbage"])
def test_if_match_that_does_not_match_is_412(client: httpx.Client, download: tuple[str, str], if_match: str) -> None:
    path, etag = download
    response = client.get(path, headers={"if-match": if_match.format(etag=etag), "range": "bytes=0-9"})
    assert response.status_code == 412


@pytest.mark.parametrize("if_match", ["*", "{etag}", '"a", {etag}'])
def test_if_match_that_matches_goes_on_to_the_range(
    client: httpx.Client, download: tuple[str, str], if_match: str
) -> None:
    path, etag = download
    response = client.get(path, headers={"if-match": if_match.format(etag=etag), "range": "bytes=0-9"})
    assert response.status_code == 206 and len(response.content) == 10


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/static/index.html", "/favicon.ico"])
def test_static_files_have_an_etag_and_answer_conditionals(client: httpx.Client, path: str) -> None:
    first = client.get(path)
    assert first.status_code == 200
    etag, cache = first.headers["etag"], first.headers["cache-control"]
    for value in (etag, "*"):
        again = client.get(path, headers={"if-none-match": value})
        assert again.status_code == 304 and again.content == b""
        assert (again.headers["etag"], again.headers["cache-control"]) == (etag, cache)
    assert client.get(path, headers={"if-match": '"stale"'}).status_code == 412
    assert client.get(path, headers={"if-none-match": '"stale"'}).status_code == 200


def test_the_page_is_protected_under_every_url_that_serves_it(client: httpx.Client) -> None:
    root, static = client.get("/"), client.get("/static/index.html")
    assert root.content == static.content
    for page in (root, static):
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in client.get("/static/app.js").headers  # a script is no page
