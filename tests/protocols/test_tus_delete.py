"""tus DELETE /files/{id} (termination): 204, then the upload is gone (410) for every verb."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN
from tests.protocols.test_tus_httptest import (
    OCTET,
    OWNER_HEADER,
    Given,
    HttpTest,
    create,
    download,
    error_body_names,
    head_status_is,
    ids,
    patch,
    request,
    upload_id,
)

CASES = [
    HttpTest("delete_of_an_unfinished_upload_returns_204_then_head_410", "DELETE", 204, url="{upload}",
             given=Given(written=b"abc"), then=(head_status_is(410),)),
    HttpTest("delete_of_a_new_upload_needs_no_token_the_url_is_the_capability", "DELETE", 204, url="{upload}",
             given=Given(), with_owner=False, then=(head_status_is(410),)),
    HttpTest("delete_of_a_deferred_upload_returns_204", "DELETE", 204, url="{upload}", given=Given(length=None),
             then=(head_status_is(410),)),
    HttpTest("delete_of_a_terminated_upload_returns_410", "DELETE", 410, url="{upload}",
             given=Given(terminated=True), then=(error_body_names("ERR_UPLOAD_GONE"),)),
    HttpTest("delete_of_an_unknown_upload_returns_404", "DELETE", 404, url="/files/AAAAAAAAAAAAAAAAAAAAAAAA"),
    HttpTest("delete_with_a_malformed_id_returns_400", "DELETE", 400, url="/files/short"),
    HttpTest("delete_via_method_override_on_post_terminates", "POST", 204, url="{upload}", given=Given(written=b"a"),
             headers={"X-HTTP-Method-Override": "DELETE"}, then=(head_status_is(410),)),
    HttpTest("delete_of_a_finished_upload_by_its_owner_returns_204", "DELETE", 204, url="{upload}",
             given=Given(length=3, written=b"abc"), then=(head_status_is(410),)),
    HttpTest("delete_of_a_finished_upload_without_a_token_returns_403_and_keeps_it", "DELETE", 403, url="{upload}",
             given=Given(length=3, written=b"abc"), with_owner=False, then=(head_status_is(200),)),
    HttpTest("delete_of_a_finished_upload_by_the_admin_returns_204", "DELETE", 204, url="{upload}",
             given=Given(length=3, written=b"abc"), with_owner=False,
             headers={OWNER_HEADER: ADMIN_TOKEN}, then=(head_status_is(410),)),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_delete(case: HttpTest, client: httpx.Client, owner: str) -> None:
    case.run(client, owner)


def test_delete_makes_every_verb_answer_410(client: httpx.Client, owner: str) -> None:
    path = create(client, owner, 10)
    assert patch(client, path, 0, b"abc").status_code == 204
    assert request(client, "DELETE", path).status_code == 204
    assert request(client, "HEAD", path).status_code == 410
    assert patch(client, path, 3, b"def").status_code == 410
    assert request(client, "DELETE", path).status_code == 410
    gone = client.get(f"/api/uploads/{upload_id(path)}", headers={OWNER_HEADER: owner})
    assert gone.status_code == 410


def test_delete_of_a_finished_upload_removes_the_download(client: httpx.Client, owner: str) -> None:
    path = create(client, owner, 4, body=b"data")
    assert download(client, path) == b"data"
    assert request(client, "DELETE", path, {OWNER_HEADER: owner}).status_code == 204
    assert client.get(f"/download/{upload_id(path)}").status_code == 410


def test_delete_by_another_owner_of_a_finished_upload_returns_403(client: httpx.Client, owner: str) -> None:
    path = create(client, owner, 4, body=b"data")
    stranger = client.get("/api/session").json()["token"]
    client.cookies.clear()
    assert request(client, "DELETE", path, {OWNER_HEADER: stranger}).status_code == 403
    assert download(client, path) == b"data"


def test_a_new_upload_after_delete_starts_fresh(client: httpx.Client, owner: str) -> None:
    first = create(client, owner, 3)
    assert request(client, "DELETE", first).status_code == 204
    second = create(client, owner, 3)
    assert second != first
    response = request(client, "PATCH", second, {"Content-Type": OCTET, "Upload-Offset": "0"}, b"xyz")
    assert response.status_code == 204
    assert download(client, second) == b"xyz"
