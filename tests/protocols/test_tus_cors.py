"""CORS for browser tus clients: preflight answers, and Access-Control-Expose-Headers on real responses so that
tus-js-client in a page on another origin can read Location, Upload-Offset, ... (else it sees them as missing)."""

from __future__ import annotations

import httpx
import pytest

from tests.protocols.test_tus_httptest import ABSENT, OCTET, PRESENT, Given, HttpTest, ids

ORIGIN = "https://app.example"
CORS = {"Access-Control-Allow-Origin": ORIGIN, "Vary": "Origin", "Access-Control-Expose-Headers": PRESENT}
PREFLIGHT = {"Origin": ORIGIN, "Access-Control-Request-Method": "PATCH",
             "Access-Control-Request-Headers": "tus-resumable,upload-offset,content-type"}  # fmt: skip
NO_CORS = {"Access-Control-Allow-Origin": ABSENT, "Access-Control-Expose-Headers": ABSENT}

CASES = [
    HttpTest("preflight_returns_allow_origin_methods_headers_and_max_age", "OPTIONS", 200, headers=PREFLIGHT,
             tus_resumable=None,
             res_headers={"Access-Control-Allow-Origin": ORIGIN, "Access-Control-Allow-Methods": PRESENT,
                          "Access-Control-Allow-Headers": PRESENT, "Access-Control-Max-Age": PRESENT,
                          "Vary": "Origin"}),
    HttpTest("preflight_on_an_upload_url_answers_the_same", "OPTIONS", 200, url="{upload}", given=Given(),
             headers=PREFLIGHT, tus_resumable=None,
             res_headers={"Access-Control-Allow-Origin": ORIGIN, "Access-Control-Allow-Methods": PRESENT}),
    HttpTest("post_with_an_origin_exposes_location", "POST", 201, headers={"Origin": ORIGIN, "Upload-Length": "3"},
             res_headers=CORS),
    HttpTest("head_with_an_origin_exposes_the_offset", "HEAD", 200, url="{upload}", given=Given(written=b"a"),
             headers={"Origin": ORIGIN}, res_headers=CORS),
    HttpTest("patch_with_an_origin_exposes_the_offset", "PATCH", 204, url="{upload}", given=Given(),
             headers={"Origin": ORIGIN, "Content-Type": OCTET, "Upload-Offset": "0"}, body=b"ab", res_headers=CORS),
    HttpTest("delete_with_an_origin_carries_cors_headers", "DELETE", 204, url="{upload}", given=Given(),
             headers={"Origin": ORIGIN}, res_headers=CORS),
    HttpTest("an_error_with_an_origin_carries_cors_headers_so_the_page_can_read_it", "PATCH", 409, url="{upload}",
             given=Given(written=b"abc"), headers={"Origin": ORIGIN, "Content-Type": OCTET, "Upload-Offset": "0"},
             body=b"x", res_headers=CORS),
    HttpTest("a_412_with_an_origin_carries_cors_headers", "POST", 412, headers={"Origin": ORIGIN}, tus_resumable=None,
             res_headers={**CORS, "Tus-Version": "1.0.0"}),
    HttpTest("a_404_with_an_origin_carries_cors_headers", "HEAD", 404, url="/files/AAAAAAAAAAAAAAAAAAAAAAAA",
             headers={"Origin": ORIGIN}, res_headers=CORS),
    HttpTest("a_request_without_an_origin_gets_no_cors_headers", "POST", 201, headers={"Upload-Length": "3"},
             res_headers=NO_CORS),
    HttpTest("a_plain_options_without_an_origin_gets_no_cors_headers", "OPTIONS", 200, res_headers=NO_CORS),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_cors(case: HttpTest, client: httpx.Client, owner: str) -> None:
    case.run(client, owner)


def _listed(value: str) -> set[str]:
    return {item.strip().lower() for item in value.split(",")}


def test_preflight_allows_every_tus_method_and_request_header(client: httpx.Client) -> None:
    response = client.options("/files/", headers=PREFLIGHT)
    assert {"post", "head", "patch", "delete", "options"} <= _listed(response.headers["access-control-allow-methods"])
    needed = {"tus-resumable", "upload-length", "upload-offset", "upload-metadata", "upload-defer-length",
              "upload-concat", "upload-checksum", "content-type", "x-http-method-override",
              "x-pyfiledrop-token"}  # fmt: skip
    assert needed <= _listed(response.headers["access-control-allow-headers"])
    assert int(response.headers["access-control-max-age"]) > 0


def test_real_responses_expose_every_header_a_tus_client_reads(client: httpx.Client) -> None:
    response = client.post("/files/", headers={"Origin": ORIGIN, "Tus-Resumable": "1.0.0", "Upload-Length": "1"})
    client.cookies.clear()
    exposed = _listed(response.headers["access-control-expose-headers"])
    needed = {"location", "upload-offset", "upload-length", "tus-resumable", "tus-version", "tus-extension",
              "tus-max-size", "tus-checksum-algorithm", "upload-metadata", "upload-defer-length", "upload-concat",
              "upload-expires", "x-pyfiledrop-token"}  # fmt: skip
    assert needed <= exposed
    for name in ("location", "upload-offset", "upload-expires"):
        assert name in response.headers  # exposed and actually sent
