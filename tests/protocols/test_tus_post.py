"""tus POST /files/: creation, creation-defer-length, creation-with-upload, metadata, expiration on creation."""

from __future__ import annotations

import hashlib
import re
import time
from email.utils import parsedate_to_datetime

import httpx
import pytest

from tests.protocols.test_tus_httptest import (
    ABSENT,
    ID_PATTERN,
    MAX_SIZE,
    OCTET,
    OWNER_HEADER,
    PRESENT,
    HttpTest,
    checksum,
    create,
    download,
    error_body_names,
    head,
    ids,
    metadata_header,
    offset_of,
    owner_has_no_uploads,
    request,
)


def location_is_an_absolute_upload_url(client: httpx.Client, path: str, response: httpx.Response) -> None:
    location = response.headers["location"]
    assert re.fullmatch(rf"http://127\.0\.0\.1:\d+/files/{ID_PATTERN}", location), location
    assert response.headers["x-upload-id"] == location.rsplit("/", 1)[-1]


def upload_expires_is_a_future_http_date(client: httpx.Client, path: str, response: httpx.Response) -> None:
    expires = parsedate_to_datetime(response.headers["upload-expires"])
    assert expires.timestamp() > time.time() + 60


def created_upload_has(**expected: str) -> object:
    def check(client: httpx.Client, path: str, response: httpx.Response) -> None:
        found = head(client, httpx.URL(response.headers["location"]).path)
        assert found.status_code == 200
        for name, value in expected.items():
            assert found.headers.get(name.replace("_", "-")) == value, (name, found.headers)

    return check


CASES = [
    HttpTest("post_with_upload_length_returns_201_with_location_and_offset_0", "POST", 201,
             headers={"Upload-Length": "10"},
             res_headers={"Location": PRESENT, "Upload-Offset": "0", "Content-Type": ABSENT},
             then=(location_is_an_absolute_upload_url, upload_expires_is_a_future_http_date,
                   created_upload_has(upload_offset="0", upload_length="10"))),
    HttpTest("post_on_files_without_a_slash_creates_too", "POST", 201, url="/files", headers={"Upload-Length": "3"},
             then=(location_is_an_absolute_upload_url,)),
    HttpTest("post_without_upload_length_returns_400", "POST", 400, res_headers={"Location": ABSENT},
             then=(owner_has_no_uploads,)),
    HttpTest("post_with_a_negative_upload_length_returns_400", "POST", 400, headers={"Upload-Length": "-1"},
             then=(owner_has_no_uploads,)),
    HttpTest("post_with_a_non_numeric_upload_length_returns_400", "POST", 400, headers={"Upload-Length": "ten"}),
    HttpTest("post_with_a_float_upload_length_returns_400", "POST", 400, headers={"Upload-Length": "1.5"}),
    HttpTest("post_with_an_absurd_upload_length_returns_400", "POST", 400,
             headers={"Upload-Length": "9" * 30}),
    HttpTest("post_over_max_size_returns_413_and_creates_nothing", "POST", 413,
             headers={"Upload-Length": str(MAX_SIZE + 1)}, res_headers={"Location": ABSENT},
             then=(owner_has_no_uploads, error_body_names("ERR_UPLOAD_SIZE_EXCEEDED"))),
    HttpTest("post_with_upload_length_0_creates_a_finished_empty_upload", "POST", 201,
             headers={"Upload-Length": "0"}, res_headers={"Upload-Offset": "0", "Upload-Expires": ABSENT},
             then=(created_upload_has(upload_offset="0", upload_length="0"),)),
    HttpTest("post_with_defer_length_returns_201_and_head_says_deferred", "POST", 201,
             headers={"Upload-Defer-Length": "1"},
             then=(created_upload_has(upload_defer_length="1", upload_offset="0"),)),
    HttpTest("post_with_defer_length_other_than_1_returns_400", "POST", 400, headers={"Upload-Defer-Length": "2"}),
    HttpTest("post_with_both_length_and_defer_length_returns_400", "POST", 400,
             headers={"Upload-Length": "5", "Upload-Defer-Length": "1"}, then=(owner_has_no_uploads,)),
    HttpTest("post_with_metadata_keeps_it_for_head", "POST", 201,
             headers={"Upload-Length": "5", "Upload-Metadata": metadata_header(filename="a b.txt", filetype="text/x")},
             then=(created_upload_has(upload_metadata=metadata_header(filename="a b.txt", filetype="text/x")),)),
    HttpTest("post_with_a_key_only_metadata_entry_is_accepted", "POST", 201,
             headers={"Upload-Length": "5", "Upload-Metadata": "is_confidential," + metadata_header(filename="x")},
             then=(created_upload_has(upload_metadata="is_confidential," + metadata_header(filename="x")),)),
    HttpTest("post_with_metadata_that_is_not_base64_returns_400", "POST", 400,
             headers={"Upload-Length": "5", "Upload-Metadata": "filename !!notbase64!!"},
             then=(owner_has_no_uploads,)),
    HttpTest("post_with_a_duplicate_metadata_key_returns_400", "POST", 400,
             headers={"Upload-Length": "5", "Upload-Metadata": "a YQ==,a Yg=="}),
    HttpTest("post_with_an_empty_metadata_key_returns_400", "POST", 400,
             headers={"Upload-Length": "5", "Upload-Metadata": "a YQ==,,b Yg=="}),
    HttpTest("post_with_an_unknown_upload_concat_returns_400", "POST", 400,
             headers={"Upload-Length": "5", "Upload-Concat": "sideways"}),
    HttpTest("post_with_a_body_uploads_it_at_creation", "POST", 201,
             headers={"Upload-Length": "10", "Content-Type": OCTET}, body=b"hello",
             res_headers={"Upload-Offset": "5", "Upload-Expires": PRESENT},
             then=(created_upload_has(upload_offset="5", upload_length="10"),)),
    HttpTest("post_with_a_body_and_a_good_checksum_returns_201", "POST", 201,
             headers={"Upload-Length": "5", "Content-Type": OCTET, "Upload-Checksum": checksum("sha1", b"hello")},
             body=b"hello", res_headers={"Upload-Offset": "5"}),
    HttpTest("post_with_a_body_in_the_wrong_content_type_returns_415_and_creates_nothing", "POST", 415,
             headers={"Upload-Length": "5", "Content-Type": "text/plain"}, body=b"hello",
             then=(owner_has_no_uploads,)),
    HttpTest("post_with_a_body_longer_than_upload_length_returns_413_and_creates_nothing", "POST", 413,
             headers={"Upload-Length": "3", "Content-Type": OCTET}, body=b"hello", then=(owner_has_no_uploads,)),
    HttpTest("post_with_a_body_and_an_unsupported_checksum_returns_400_and_creates_nothing", "POST", 400,
             headers={"Upload-Length": "5", "Content-Type": OCTET, "Upload-Checksum": "crc32 AAAAAA=="},
             body=b"hello", then=(owner_has_no_uploads,)),
    HttpTest("post_with_an_empty_body_and_the_offset_content_type_is_a_plain_creation", "POST", 201,
             headers={"Upload-Length": "5", "Content-Type": OCTET}, body=b"", res_headers={"Upload-Offset": "0"}),
    HttpTest("post_by_a_known_owner_issues_no_new_token", "POST", 201, headers={"Upload-Length": "1"},
             res_headers={"X-Pyfiledrop-Token": ABSENT, "Set-Cookie": ABSENT}),
    HttpTest("post_by_an_anonymous_client_issues_an_owner_token", "POST", 201, headers={"Upload-Length": "1"},
             with_owner=False, res_headers={"X-Pyfiledrop-Token": PRESENT, "Set-Cookie": PRESENT}),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_post(case: HttpTest, client: httpx.Client, owner: str) -> None:
    case.run(client, owner)


def test_post_with_the_whole_body_finishes_the_upload_and_it_downloads_intact(client: httpx.Client, owner: str) -> None:
    data = bytes(range(256)) * 1000
    path = create(client, owner, len(data), metadata=metadata_header(filename="whole.bin"), body=data)
    found = head(client, path)
    assert found.headers["upload-offset"] == found.headers["upload-length"] == str(len(data))
    assert "upload-expires" not in found.headers  # finished: it no longer expires as unfinished
    assert download(client, path) == data
    info = client.get(f"/api/uploads/{path.rsplit('/', 1)[-1]}", headers={OWNER_HEADER: owner}).json()
    assert info["sha256"] == hashlib.sha256(data).hexdigest()
    assert info["filename"] == "whole.bin"


def test_post_with_a_body_and_a_bad_checksum_returns_460_with_the_location_to_resume(
    client: httpx.Client, owner: str
) -> None:
    response = request(
        client, "POST", "/files/",
        {OWNER_HEADER: owner, "Upload-Length": "5", "Content-Type": OCTET,
         "Upload-Checksum": checksum("md5", b"HELLO")},
        b"hello",
    )  # fmt: skip
    assert response.status_code == 460
    path = httpx.URL(response.headers["location"]).path
    assert offset_of(client, path) == 0  # nothing of the bad chunk was kept
    resumed = request(client, "PATCH", path, {"Content-Type": OCTET, "Upload-Offset": "0"}, b"hello")
    assert resumed.status_code == 204
    assert resumed.headers["upload-offset"] == "5"


def test_post_upload_length_at_exactly_max_size_is_accepted(client: httpx.Client, owner: str) -> None:
    path = create(client, owner, MAX_SIZE)
    assert head(client, path).headers["upload-length"] == str(MAX_SIZE)
    assert request(client, "DELETE", path).status_code == 204


def test_post_creates_a_new_upload_each_time(client: httpx.Client, owner: str) -> None:
    paths = {create(client, owner, 3) for _ in range(5)}
    assert len(paths) == 5
