"""tus OPTIONS: protocol discovery (Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm). The status is
200: the spec allows 200 or 204, the published conformance suite requires 200."""

from __future__ import annotations

import httpx
import pytest

from tests.protocols.test_tus_httptest import ABSENT, MAX_SIZE, TUS_VERSION, Given, HttpTest, ids, request

EXTENSIONS = [
    "creation", "creation-with-upload", "creation-defer-length", "termination", "checksum", "expiration",
    "concatenation",
]  # fmt: skip
DISCOVERY = {
    "Tus-Version": TUS_VERSION,
    "Tus-Max-Size": str(MAX_SIZE),
    "Tus-Extension": ",".join(EXTENSIONS),
    "Tus-Checksum-Algorithm": "sha1,sha256,md5,sha512",
}

CASES = [
    HttpTest("options_on_the_creation_url_returns_200_with_the_discovery_headers", "OPTIONS", 200,
             res_headers=DISCOVERY),
    HttpTest("options_on_files_without_a_slash_answers_the_same", "OPTIONS", 200, url="/files", res_headers=DISCOVERY),
    HttpTest("options_on_an_upload_url_answers_the_same", "OPTIONS", 200, url="{upload}", given=Given(),
             res_headers=DISCOVERY),
    HttpTest("options_on_an_unknown_upload_still_answers_discovery", "OPTIONS", 200,
             url="/files/AAAAAAAAAAAAAAAAAAAAAAAA", res_headers=DISCOVERY),
    HttpTest("options_without_an_origin_sends_no_cors_headers", "OPTIONS", 200,
             res_headers={"Access-Control-Allow-Origin": ABSENT, "Access-Control-Allow-Methods": ABSENT}),
    HttpTest("options_has_no_body", "OPTIONS", 200, res_headers={"Content-Type": ABSENT}),
    HttpTest("options_issues_no_owner_token", "OPTIONS", 200, with_owner=False,
             res_headers={"Set-Cookie": ABSENT, "X-Pyfiledrop-Token": ABSENT}),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_options(case: HttpTest, client: httpx.Client, owner: str) -> None:
    case.run(client, owner)


def test_options_advertises_sha1_as_the_spec_requires_plus_sha256_and_md5(client: httpx.Client) -> None:
    algorithms = request(client, "OPTIONS", "/files/").headers["tus-checksum-algorithm"].split(",")
    assert {"sha1", "sha256", "md5"} <= set(algorithms)


def test_options_extensions_match_what_api_config_reports(client: httpx.Client) -> None:
    advertised = request(client, "OPTIONS", "/files/").headers["tus-extension"].split(",")
    config = client.get("/api/config").json()
    assert config["tus_endpoint"] == "/files/"
    assert config["tus_extensions"] == advertised


def test_options_max_size_is_the_limit_post_enforces(client: httpx.Client, owner: str) -> None:
    limit = int(request(client, "OPTIONS", "/files/").headers["tus-max-size"])
    at_limit = request(client, "POST", "/files/", {"Upload-Length": str(limit), "X-Pyfiledrop-Token": owner})
    over = request(client, "POST", "/files/", {"Upload-Length": str(limit + 1), "X-Pyfiledrop-Token": owner})
    assert at_limit.status_code == 201
    assert over.status_code == 413
    assert request(client, "DELETE", httpx.URL(at_limit.headers["location"]).path).status_code == 204
