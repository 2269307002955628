"""tus concatenation: partial uploads, a final upload made of them in order, and a final upload is read-only."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN
from tests.protocols.test_tus_httptest import (
    ABSENT,
    OCTET,
    OWNER_HEADER,
    PRESENT,
    Given,
    HttpTest,
    create,
    download,
    error_body_names,
    head,
    ids,
    metadata_header,
    offset_of,
    patch,
    request,
    upload_id,
)


def final_is_unchanged(client: httpx.Client, path: str, response: httpx.Response) -> None:
    found = head(client, path)
    assert found.headers["upload-offset"] == found.headers["upload-length"] == "7"
    assert download(client, path) == b"abcdefg"


CASES = [
    HttpTest("post_with_upload_concat_partial_returns_201", "POST", 201,
             headers={"Upload-Length": "5", "Upload-Concat": "partial"},
             res_headers={"Location": PRESENT, "Upload-Offset": "0"}),
    HttpTest("post_of_a_partial_with_a_body_uploads_it_at_creation", "POST", 201,
             headers={"Upload-Length": "5", "Upload-Concat": "partial", "Content-Type": OCTET}, body=b"hello",
             res_headers={"Upload-Offset": "5"}),
    HttpTest("post_final_with_upload_length_returns_400", "POST", 400, given=Given(length=1, written=b"a",
             concat="partial"), headers={"Upload-Length": "1", "Upload-Concat": "final;{upload}"},
             res_headers={"Location": ABSENT}),
    HttpTest("post_final_naming_an_unfinished_partial_returns_400", "POST", 400,
             given=Given(length=4, written=b"ab", concat="partial"), headers={"Upload-Concat": "final;{upload}"}),
    HttpTest("post_final_naming_a_plain_upload_returns_400", "POST", 400, given=Given(length=1, written=b"a"),
             headers={"Upload-Concat": "final;{upload}"}),
    HttpTest("post_final_naming_a_terminated_partial_returns_400", "POST", 400,
             given=Given(length=1, written=b"a", concat="partial", terminated=True),
             headers={"Upload-Concat": "final;{upload}"}),
    HttpTest("post_final_naming_an_unknown_upload_returns_404", "POST", 404,
             headers={"Upload-Concat": "final;/files/AAAAAAAAAAAAAAAAAAAAAAAA"}),
    HttpTest("post_final_naming_a_malformed_id_returns_400", "POST", 400,
             headers={"Upload-Concat": "final;/files/../../etc/passwd"},
             then=(error_body_names("ERR_INVALID_UPLOAD_ID"),)),
    HttpTest("post_final_naming_a_url_outside_files_returns_400", "POST", 400,
             headers={"Upload-Concat": "final;/download/AAAAAAAAAAAAAAAAAAAAAAAA"}),
    HttpTest("post_final_naming_no_parts_returns_400", "POST", 400, headers={"Upload-Concat": "final;"}),
    HttpTest("post_final_with_a_body_returns_403", "POST", 403, given=Given(length=1, written=b"a", concat="partial"),
             headers={"Upload-Concat": "final;{upload}", "Content-Type": OCTET}, body=b"x"),
    HttpTest("head_of_a_final_upload_names_its_parts_and_offset_equals_length", "HEAD", 200, url="{upload}",
             given=Given(final_of=(b"abc", b"defg")),
             res_headers={"Upload-Offset": "7", "Upload-Length": "7", "Upload-Concat": PRESENT}),
    HttpTest("patch_to_a_final_upload_returns_403", "PATCH", 403, url="{upload}",
             given=Given(final_of=(b"abc", b"defg")),
             headers={"Content-Type": OCTET, "Upload-Offset": "0"}, body=b"XYZ",
             then=(final_is_unchanged, error_body_names("ERR_FORBIDDEN"))),
    HttpTest("patch_to_a_final_upload_at_its_end_offset_returns_403", "PATCH", 403, url="{upload}",
             given=Given(final_of=(b"abc", b"defg")), headers={"Content-Type": OCTET, "Upload-Offset": "7"},
             body=b"h", then=(final_is_unchanged,)),
    HttpTest("patch_to_a_final_upload_with_an_empty_body_returns_403", "PATCH", 403, url="{upload}",
             given=Given(final_of=(b"abc", b"defg")), headers={"Content-Type": OCTET, "Upload-Offset": "7"},
             body=b"", then=(final_is_unchanged,)),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_concat(case: HttpTest, client: httpx.Client, owner: str) -> None:
    case.run(client, owner)


def _partials(client: httpx.Client, owner: str | None, *pieces: bytes) -> list[str]:
    paths = [create(client, owner, len(piece), concat="partial") for piece in pieces]
    for path, piece in zip(paths, pieces, strict=True):
        assert patch(client, path, 0, piece).status_code == 204
    return paths


def _final(client: httpx.Client, owner: str | None, parts: list[str], **headers: str) -> httpx.Response:
    sent = {"Upload-Concat": "final;" + " ".join(parts), **headers}
    if owner is not None:
        sent[OWNER_HEADER] = owner
    return request(client, "POST", "/files/", sent)


def test_final_upload_is_the_parts_in_the_order_named(client: httpx.Client, owner: str) -> None:
    pieces = [bytes([n]) * (1000 + n) for n in range(4)]
    parts = _partials(client, owner, *pieces)
    absolute = [str(client.base_url.join(part)) for part in parts]  # tus-js-client names parts by absolute URL
    response = _final(client, owner, [absolute[2], parts[0], absolute[3], parts[1]],
                      **{"Upload-Metadata": metadata_header(filename="joined.bin")})  # fmt: skip
    assert response.status_code == 201, response.text
    assert response.headers["upload-offset"] == str(sum(map(len, pieces)))
    final = httpx.URL(response.headers["location"]).path
    expected = pieces[2] + pieces[0] + pieces[3] + pieces[1]
    assert download(client, final) == expected
    info = client.get(f"/api/uploads/{upload_id(final)}", headers={OWNER_HEADER: owner}).json()
    assert info["sha256"] == hashlib.sha256(expected).hexdigest()
    assert info["filename"] == "joined.bin"
    found = head(client, final)
    named = found.headers["upload-concat"].removeprefix("final;").split()
    assert [upload_id(url) for url in named] == [upload_id(parts[i]) for i in (2, 0, 3, 1)]


def test_final_upload_is_listed_and_its_partials_are_not(client: httpx.Client, owner: str) -> None:
    parts = _partials(client, owner, b"ab", b"cd")
    final = httpx.URL(_final(client, owner, parts).headers["location"]).path
    listed = [u["id"] for u in client.get("/api/uploads", headers={OWNER_HEADER: owner}).json()["uploads"]]
    assert listed == [upload_id(final)]


def test_partials_made_with_a_token_cannot_be_joined_by_another_owner(client: httpx.Client, owner: str) -> None:
    parts = _partials(client, owner, b"secret")
    stranger = client.get("/api/session").json()["token"]
    client.cookies.clear()
    response = _final(client, stranger, parts)
    assert response.status_code == 400
    assert offset_of(client, parts[0]) == 6  # the part is untouched and still usable by its owner
    assert _final(client, owner, parts).status_code == 201


def test_partials_made_without_a_token_can_be_joined_by_whoever_holds_their_urls(client: httpx.Client) -> None:
    """tus-js-client in Node keeps no cookies: its parallel parts arrive with no token, each as a stranger."""
    parts = _partials(client, None, b"one ", b"two")
    for part in parts:
        assert head(client, part).headers["upload-concat"] == "partial"
    response = _final(client, None, parts)
    assert response.status_code == 201, response.text
    token = response.headers["x-pyfiledrop-token"]  # the final upload's creator owns the file
    final = upload_id(httpx.URL(response.headers["location"]).path)
    info = client.get(f"/api/uploads/{final}", headers={OWNER_HEADER: token})
    assert info.status_code == 200
    assert info.json()["sha256"] == hashlib.sha256(b"one two").hexdigest()
    assert client.get(f"/api/uploads/{final}", headers={OWNER_HEADER: ADMIN_TOKEN}).json()["owner"] != ""


def test_creating_a_partial_without_a_token_issues_none(client: httpx.Client) -> None:
    response = request(client, "POST", "/files/", {"Upload-Length": "3", "Upload-Concat": "partial"})
    assert response.status_code == 201
    assert "x-pyfiledrop-token" not in response.headers
    assert "set-cookie" not in response.headers


def test_final_upload_can_be_terminated_by_its_owner(client: httpx.Client, owner: str) -> None:
    parts = _partials(client, owner, b"x", b"y")
    final = httpx.URL(_final(client, owner, parts).headers["location"]).path
    assert request(client, "DELETE", final, {OWNER_HEADER: owner}).status_code == 204
    assert head(client, final).status_code == 410


def test_partials_are_used_up_by_the_final_upload(client: httpx.Client, owner: str) -> None:
    parts = _partials(client, owner, b"x", b"y")
    assert _final(client, owner, parts).status_code == 201
    assert [head(client, part).status_code for part in parts] == [410, 410]
    assert _final(client, owner, parts).status_code == 400
