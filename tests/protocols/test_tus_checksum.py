"""tus checksum extension: Upload-Checksum per PATCH; a mismatch is 460 and the chunk is not kept."""

from __future__ import annotations

import base64
import hashlib

import httpx
import pytest

from tests.protocols.test_tus_httptest import (
    OCTET,
    OWNER_HEADER,
    Given,
    HttpTest,
    checksum,
    create,
    download,
    error_body_names,
    ids,
    offset_of,
    patch,
    upload_id,
)

ALGORITHMS = ["sha1", "sha256", "md5", "sha512"]


def headers(offset: int, upload_checksum: str) -> dict[str, str]:
    return {"Content-Type": OCTET, "Upload-Offset": str(offset), "Upload-Checksum": upload_checksum}


def _good(algorithm: str) -> HttpTest:
    return HttpTest(
        f"patch_with_a_matching_{algorithm}_checksum_returns_204", "PATCH", 204, url="{upload}",
        given=Given(written=b"abc"), headers=headers(3, checksum(algorithm, b"defg")), body=b"defg",
        res_headers={"Upload-Offset": "7"},
    )  # fmt: skip


def _bad(algorithm: str) -> HttpTest:
    return HttpTest(
        f"patch_with_a_wrong_{algorithm}_checksum_returns_460_and_keeps_the_offset", "PATCH", 460, url="{upload}",
        given=Given(written=b"abc"), headers=headers(3, checksum(algorithm, b"DEFG")), body=b"defg",
        then=(_offset_is_3, error_body_names("ERR_CHECKSUM_MISMATCH")),
    )  # fmt: skip


def _offset_is_3(client: httpx.Client, path: str, response: httpx.Response) -> None:
    assert offset_of(client, path) == 3


SHA1_OF_EMPTY = base64.b64encode(hashlib.sha1(b"").digest()).decode()

CASES = [
    *map(_good, ALGORITHMS),
    *map(_bad, ALGORITHMS),
    HttpTest("patch_with_an_unsupported_checksum_algorithm_returns_400", "PATCH", 400, url="{upload}",
             given=Given(written=b"abc"), headers=headers(3, "crc32 AAAAAA=="), body=b"defg",
             then=(_offset_is_3, error_body_names("ERR_CHECKSUM_ALGORITHM_NOT_SUPPORTED"))),
    HttpTest("patch_with_a_checksum_that_is_not_base64_returns_400", "PATCH", 400, url="{upload}",
             given=Given(written=b"abc"), headers=headers(3, "sha1 not*base64"), body=b"defg", then=(_offset_is_3,)),
    # A digest of the wrong length for a supported algorithm can match no data: a mismatch (460), not a bad request.
    HttpTest("patch_with_a_digest_of_the_wrong_length_returns_460", "PATCH", 460, url="{upload}",
             given=Given(written=b"abc"), headers=headers(3, "sha256 " + SHA1_OF_EMPTY), body=b"defg",
             then=(_offset_is_3, error_body_names("ERR_CHECKSUM_MISMATCH"))),
    HttpTest("patch_with_a_sha1_digest_one_byte_too_long_returns_460", "PATCH", 460, url="{upload}",
             given=Given(written=b"abc"), headers=headers(3, "sha1 " + "A" * 28), body=b"defg",
             then=(_offset_is_3, error_body_names("ERR_CHECKSUM_MISMATCH"))),
    HttpTest("patch_with_an_algorithm_but_no_digest_returns_400", "PATCH", 400, url="{upload}",
             given=Given(written=b"abc"), headers=headers(3, "sha1"), body=b"defg", then=(_offset_is_3,)),
    HttpTest("patch_with_an_empty_body_and_its_checksum_returns_204", "PATCH", 204, url="{upload}",
             given=Given(written=b"abc"), headers=headers(3, "sha1 " + SHA1_OF_EMPTY), body=b"",
             res_headers={"Upload-Offset": "3"}),
    HttpTest("a_wrong_checksum_on_the_last_chunk_leaves_the_upload_unfinished", "PATCH", 460, url="{upload}",
             given=Given(length=5, written=b"abc"), headers=headers(3, checksum("sha1", b"dX")), body=b"de",
             then=(_offset_is_3,)),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_checksum(case: HttpTest, client: httpx.Client, owner: str) -> None:
    case.run(client, owner)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_chunk_refused_for_its_checksum_can_be_sent_again_and_the_file_is_intact(
    client: httpx.Client, owner: str, algorithm: str
) -> None:
    data = hashlib.sha512(algorithm.encode()).digest() * 2048  # 128 KiB
    half = len(data) // 2
    path = create(client, owner, len(data))
    assert patch(client, path, 0, data[:half], {"Upload-Checksum": checksum(algorithm, data[:half])}).status_code == 204
    corrupted = data[half:-1] + b"\x00"
    refused = patch(client, path, half, corrupted, {"Upload-Checksum": checksum(algorithm, data[half:])})
    assert refused.status_code == 460
    assert offset_of(client, path) == half
    done = patch(client, path, half, data[half:], {"Upload-Checksum": checksum(algorithm, data[half:])})
    assert done.status_code == 204
    assert done.headers["upload-offset"] == str(len(data))
    assert download(client, path) == data
    info = client.get(f"/api/uploads/{upload_id(path)}", headers={OWNER_HEADER: owner}).json()
    assert info["sha256"] == hashlib.sha256(data).hexdigest()
