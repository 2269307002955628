"""tus PATCH /files/{id}: append at exactly Upload-Offset; a refused PATCH changes nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx
import pytest

from tests.protocols.test_tus_httptest import (
    ABSENT,
    MAX_SIZE,
    OCTET,
    OWNER_HEADER,
    PRESENT,
    Given,
    HttpTest,
    create,
    download,
    error_body_names,
    head,
    head_status_is,
    ids,
    offset_is,
    patch,
    request,
    upload_id,
)


def length_is_still_deferred(client: httpx.Client, path: str, response: httpx.Response) -> None:
    found = head(client, path)
    assert found.headers.get("upload-defer-length") == "1"
    assert "upload-length" not in found.headers


def length_is(expected: int) -> object:
    def check(client: httpx.Client, path: str, response: httpx.Response) -> None:
        assert head(client, path).headers.get("upload-length") == str(expected)

    return check


def body(offset: int, **extra: str) -> dict[str, str]:
    return {"Content-Type": OCTET, "Upload-Offset": str(offset), **extra}


CASES = [
    HttpTest("patch_at_the_current_offset_returns_204_with_the_new_offset", "PATCH", 204, url="{upload}",
             given=Given(length=10, written=b"abc"), headers=body(3), body=b"defg",
             res_headers={"Upload-Offset": "7", "Upload-Expires": PRESENT, "Content-Type": ABSENT},
             then=(offset_is(7),)),
    HttpTest("patch_from_zero_returns_204", "PATCH", 204, url="{upload}", given=Given(length=10), headers=body(0),
             body=b"0123", res_headers={"Upload-Offset": "4"}),
    HttpTest("patch_with_an_empty_body_returns_204_and_keeps_the_offset", "PATCH", 204, url="{upload}",
             given=Given(written=b"abc"), headers=body(3), body=b"", res_headers={"Upload-Offset": "3"}),
    HttpTest("patch_with_the_wrong_content_type_returns_415_and_appends_nothing", "PATCH", 415, url="{upload}",
             given=Given(written=b"abc"), headers={"Content-Type": "application/octet-stream", "Upload-Offset": "3"},
             body=b"def", then=(offset_is(3), error_body_names("ERR_INVALID_CONTENT_TYPE"))),
    HttpTest("patch_without_a_content_type_returns_415", "PATCH", 415, url="{upload}", given=Given(),
             headers={"Upload-Offset": "0"}, body=b"abc", then=(offset_is(0),)),
    HttpTest("patch_with_a_content_type_parameter_is_accepted", "PATCH", 204, url="{upload}", given=Given(),
             headers={"Content-Type": OCTET + "; charset=binary", "Upload-Offset": "0"}, body=b"ab",
             res_headers={"Upload-Offset": "2"}),
    # The 409 says where to resume (a best practice the conformance suite checks), so no extra HEAD is needed.
    HttpTest("patch_with_stale_offset_returns_409_with_the_offset_to_resume_from", "PATCH", 409, url="{upload}",
             given=Given(written=b"abcd"), headers=body(2), body=b"XY", res_headers={"Upload-Offset": "4"},
             then=(offset_is(4), error_body_names("ERR_MISMATCHED_OFFSET"))),
    HttpTest("patch_with_offset_beyond_the_received_bytes_returns_409", "PATCH", 409, url="{upload}",
             given=Given(written=b"ab"), headers=body(5), body=b"fgh", then=(offset_is(2),)),
    HttpTest("patch_without_upload_offset_returns_400", "PATCH", 400, url="{upload}", given=Given(written=b"ab"),
             headers={"Content-Type": OCTET}, body=b"cd", then=(offset_is(2),)),
    HttpTest("patch_with_a_negative_offset_returns_400", "PATCH", 400, url="{upload}", given=Given(),
             headers=body(-1), body=b"x"),
    HttpTest("patch_with_a_non_numeric_offset_returns_400", "PATCH", 400, url="{upload}", given=Given(),
             headers={"Content-Type": OCTET, "Upload-Offset": "zero"}, body=b"x"),
    HttpTest("patch_with_a_body_past_upload_length_returns_413_and_records_nothing", "PATCH", 413, url="{upload}",
             given=Given(length=5, written=b"ab"), headers=body(2), body=b"cdefgh",
             then=(offset_is(2), error_body_names("ERR_UPLOAD_SIZE_EXCEEDED"))),
    HttpTest("patch_that_completes_the_upload_returns_204_without_upload_expires", "PATCH", 204, url="{upload}",
             given=Given(length=5, written=b"ab"), headers=body(2), body=b"cde",
             res_headers={"Upload-Offset": "5", "Upload-Expires": ABSENT}),
    HttpTest("patch_repeating_the_end_offset_of_a_finished_upload_returns_204", "PATCH", 204, url="{upload}",
             given=Given(length=3, written=b"abc"), headers=body(3), body=b"", res_headers={"Upload-Offset": "3"}),
    HttpTest("patch_of_an_unknown_upload_returns_404", "PATCH", 404, url="/files/AAAAAAAAAAAAAAAAAAAAAAAA",
             headers=body(0), body=b"x", then=(error_body_names("ERR_UPLOAD_NOT_FOUND"),)),
    HttpTest("patch_with_a_malformed_id_returns_400", "PATCH", 400, url="/files/not!an!id", headers=body(0),
             body=b"x", then=(error_body_names("ERR_INVALID_UPLOAD_ID"),)),
    HttpTest("patch_of_a_terminated_upload_returns_410", "PATCH", 410, url="{upload}",
             given=Given(written=b"ab", terminated=True), headers=body(2), body=b"cd", then=(head_status_is(410),)),
    HttpTest("patch_needs_no_token_the_url_is_the_capability", "PATCH", 204, url="{upload}", given=Given(),
             with_owner=False, headers=body(0), body=b"abc", res_headers={"Upload-Offset": "3"}),
    HttpTest("patch_via_method_override_on_post_appends", "POST", 204, url="{upload}", given=Given(written=b"a"),
             headers={**body(1), "X-HTTP-Method-Override": "PATCH"}, body=b"bc", res_headers={"Upload-Offset": "3"},
             then=(offset_is(3),)),
    HttpTest("patch_with_upload_length_declares_a_deferred_length", "PATCH", 204, url="{upload}",
             given=Given(length=None, written=b"abc"), headers=body(3, **{"Upload-Length": "8"}), body=b"de",
             res_headers={"Upload-Offset": "5"}, then=(length_is(8),)),
    HttpTest("patch_with_upload_length_that_completes_a_deferred_upload_finishes_it", "PATCH", 204, url="{upload}",
             given=Given(length=None, written=b"abc"), headers=body(3, **{"Upload-Length": "5"}), body=b"de",
             res_headers={"Upload-Offset": "5", "Upload-Expires": ABSENT}, then=(length_is(5),)),
    HttpTest("patch_of_a_deferred_upload_without_upload_length_keeps_it_deferred", "PATCH", 204, url="{upload}",
             given=Given(length=None), headers=body(0), body=b"abc", then=(length_is_still_deferred, offset_is(3))),
    HttpTest("patch_declaring_a_length_below_the_received_bytes_returns_400", "PATCH", 400, url="{upload}",
             given=Given(length=None, written=b"abcdef"), headers=body(6, **{"Upload-Length": "4"}), body=b"",
             then=(length_is_still_deferred, offset_is(6))),
    HttpTest("patch_declaring_a_length_over_max_size_returns_413", "PATCH", 413, url="{upload}",
             given=Given(length=None), headers=body(0, **{"Upload-Length": str(MAX_SIZE + 1)}), body=b"ab",
             then=(length_is_still_deferred, offset_is(0))),
    HttpTest("patch_with_stale_offset_and_upload_length_returns_409_and_leaves_the_length_deferred", "PATCH", 409,
             url="{upload}", given=Given(length=None, written=b"abc"), headers=body(1, **{"Upload-Length": "9"}),
             body=b"bc", then=(length_is_still_deferred, offset_is(3))),
    HttpTest("patch_changing_a_known_upload_length_returns_400", "PATCH", 400, url="{upload}",
             given=Given(length=10), headers=body(0, **{"Upload-Length": "12"}), body=b"ab",
             then=(length_is(10), offset_is(0))),
    HttpTest("patch_repeating_the_known_upload_length_is_accepted", "PATCH", 204, url="{upload}",
             given=Given(length=10), headers=body(0, **{"Upload-Length": "10"}), body=b"ab",
             res_headers={"Upload-Offset": "2"}),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_patch(case: HttpTest, client: httpx.Client, owner: str) -> None:
    case.run(client, owner)


def test_patch_with_a_chunked_body_past_upload_length_returns_400_and_records_nothing(
    client: httpx.Client, owner: str
) -> None:
    path = create(client, owner, 5)

    def chunked() -> Iterator[bytes]:  # no Content-Length: the server only learns the size while reading
        yield b"abcdefgh"

    response = request(client, "PATCH", path, {"Content-Type": OCTET, "Upload-Offset": "0"}, chunked())
    assert response.status_code in (400, 413)
    assert head(client, path).headers["upload-offset"] == "0"


def test_patch_in_many_chunks_assembles_the_file_and_its_sha256(client: httpx.Client, owner: str) -> None:
    data = hashlib.sha256(b"seed").digest() * 40_000  # 1.28 MB
    path = create(client, owner, len(data))
    offset = 0
    for size in (1, 1000, 65_536, 300_000, 1 << 20):
        piece = data[offset : offset + size]
        response = patch(client, path, offset, piece)
        assert response.status_code == 204, response.text
        offset += len(piece)
        assert response.headers["upload-offset"] == str(offset)
        if offset == len(data):
            break
    assert offset == len(data)
    assert download(client, path) == data
    info = client.get(f"/api/uploads/{upload_id(path)}", headers={OWNER_HEADER: owner}).json()
    assert info["sha256"] == hashlib.sha256(data).hexdigest()
    assert info["complete"] is True


def test_patch_of_a_deferred_upload_then_declaring_its_length_completes_it(client: httpx.Client, owner: str) -> None:
    path = create(client, owner, None)
    assert patch(client, path, 0, b"hello ").status_code == 204
    done = patch(client, path, 6, b"world", {"Upload-Length": "11"})
    assert done.status_code == 204
    assert done.headers["upload-offset"] == "11"
    assert download(client, path) == b"hello world"


def test_patch_after_a_refused_patch_resumes_from_the_same_offset(client: httpx.Client, owner: str) -> None:
    path = create(client, owner, 6)
    assert patch(client, path, 0, b"abc").status_code == 204
    assert patch(client, path, 0, b"abc").status_code == 409  # a client that lost the answer retries
    assert patch(client, path, 3, b"defghi").status_code == 413
    assert patch(client, path, 3, b"def").status_code == 204
    assert download(client, path) == b"abcdef"


def test_patch_with_a_long_chunked_body_past_upload_length_records_nothing(client: httpx.Client, owner: str) -> None:
    path = create(client, owner, 6 << 20)

    def chunked() -> Iterator[bytes]:
        yield b"x" * (5 << 20)
        yield b"y" * (2 << 20)  # 7 MiB in all, one more than the upload's length

    response = request(client, "PATCH", path, {"Content-Type": OCTET, "Upload-Offset": "0"}, chunked())
    assert response.status_code in (400, 413)
    assert head(client, path).headers["upload-offset"] == "0"
