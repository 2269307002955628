"""tus HEAD /files/{id}: where to resume (Upload-Offset), never cached, 404/410 without an offset."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

import httpx
import pytest

from tests.protocols.test_tus_httptest import (
    ABSENT,
    PRESENT,
    Given,
    HttpTest,
    create,
    head,
    ids,
    metadata_header,
    parse_metadata,
    patch,
    request,
)

META = metadata_header(filename="résumé.pdf", filetype="application/pdf")

CASES = [
    HttpTest("head_of_a_new_upload_returns_200_offset_0_length_and_no_store", "HEAD", 200, url="{upload}",
             given=Given(length=10),
             res_headers={"Upload-Offset": "0", "Upload-Length": "10", "Cache-Control": "no-store",
                          "Upload-Defer-Length": ABSENT, "Upload-Concat": ABSENT, "Upload-Metadata": ABSENT}),
    HttpTest("head_after_a_patch_returns_the_new_offset", "HEAD", 200, url="{upload}",
             given=Given(length=10, written=b"abc"), res_headers={"Upload-Offset": "3", "Upload-Length": "10"}),
    HttpTest("head_of_an_unfinished_upload_says_when_it_expires", "HEAD", 200, url="{upload}",
             given=Given(written=b"abc"), res_headers={"Upload-Expires": PRESENT}),
    HttpTest("head_of_a_finished_upload_returns_offset_equal_to_length", "HEAD", 200, url="{upload}",
             given=Given(length=3, written=b"abc"),
             res_headers={"Upload-Offset": "3", "Upload-Length": "3", "Cache-Control": "no-store"}),
    HttpTest("head_of_a_deferred_upload_says_upload_defer_length_1_and_no_length", "HEAD", 200, url="{upload}",
             given=Given(length=None, written=b"ab"),
             res_headers={"Upload-Offset": "2", "Upload-Defer-Length": "1", "Upload-Length": ABSENT}),
    HttpTest("head_returns_the_metadata_given_at_creation", "HEAD", 200, url="{upload}",
             given=Given(metadata=META), res_headers={"Upload-Metadata": META}),
    HttpTest("head_of_a_partial_upload_says_upload_concat_partial", "HEAD", 200, url="{upload}",
             given=Given(length=4, concat="partial"), res_headers={"Upload-Concat": "partial", "Upload-Offset": "0"}),
    HttpTest("head_of_an_unknown_upload_returns_404_without_upload_offset", "HEAD", 404,
             url="/files/AAAAAAAAAAAAAAAAAAAAAAAA", res_headers={"Upload-Offset": ABSENT, "Upload-Length": ABSENT}),
    HttpTest("head_of_a_terminated_upload_returns_410_without_upload_offset", "HEAD", 410, url="{upload}",
             given=Given(written=b"abc", terminated=True), res_headers={"Upload-Offset": ABSENT}),
    HttpTest("head_with_a_short_id_returns_400", "HEAD", 400, url="/files/abc", res_headers={"Upload-Offset": ABSENT}),
    HttpTest("head_with_a_long_id_returns_400", "HEAD", 400, url="/files/" + "A" * 25),
    HttpTest("head_with_an_id_of_forbidden_characters_returns_400", "HEAD", 400, url="/files/AAAAAAAAAAAA.AAAAAAAAAAA"),
    HttpTest("head_with_an_encoded_dot_dot_id_returns_400", "HEAD", 400, url="/files/%2e%2e"),
    HttpTest("head_with_a_sql_quote_in_the_id_returns_400", "HEAD", 400, url="/files/AAAAAAAAAAAAAAAAAAAAAAA'"),
    HttpTest("head_needs_no_token_the_url_is_the_capability", "HEAD", 200, url="{upload}",
             given=Given(written=b"a"), with_owner=False, res_headers={"Upload-Offset": "1"}),
    HttpTest("head_via_method_override_on_post_answers_like_head", "POST", 200, url="{upload}",
             given=Given(written=b"ab"), headers={"X-HTTP-Method-Override": "HEAD"},
             res_headers={"Upload-Offset": "2", "Upload-Length": "10", "Cache-Control": "no-store"}),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_head(case: HttpTest, client: httpx.Client, owner: str) -> None:
    case.run(client, owner)


def test_head_metadata_decodes_to_what_was_sent(client: httpx.Client, owner: str) -> None:
    path = create(client, owner, 5, metadata=META)
    assert parse_metadata(head(client, path).headers["upload-metadata"]) == {
        "filename": "résumé.pdf",
        "filetype": "application/pdf",
    }


def test_head_upload_expires_is_a_future_http_date_that_moves_with_progress(client: httpx.Client, owner: str) -> None:
    path = create(client, owner, 10)
    before = parsedate_to_datetime(head(client, path).headers["upload-expires"])
    assert before.timestamp() > time.time()
    time.sleep(1.1)  # HTTP dates have one-second resolution
    assert patch(client, path, 0, b"abc").status_code == 204
    after = parsedate_to_datetime(head(client, path).headers["upload-expires"])
    assert after > before  # expiry counts from the last progress


def test_head_sends_no_body(client: httpx.Client, owner: str) -> None:
    path = create(client, owner, 10)
    with httpx.Client(base_url=str(client.base_url)) as raw:
        response = raw.head(path, headers={"Tus-Resumable": "1.0.0"})
    assert response.status_code == 200
    assert response.content == b""


def test_head_of_an_upload_deleted_through_the_api_returns_410(client: httpx.Client, owner: str) -> None:
    path = create(client, owner, 10)
    deleted = client.delete(f"/api/uploads/{path.rsplit('/', 1)[-1]}", headers={"X-Pyfiledrop-Token": owner})
    assert deleted.status_code == 204
    assert request(client, "HEAD", path).status_code == 410


@pytest.mark.parametrize("path", ["/files/..%2F..%2F.pyfiledrop.sqlite3", "/files/AAAAAAAAAAAAAAAAAAAAAAAA/x"])
def test_head_of_a_path_below_an_upload_url_is_rejected_as_malformed_or_unknown(
    client: httpx.Client, path: str
) -> None:
    response = request(client, "HEAD", path)
    assert response.status_code in (400, 404)
