"""schemathesis against the OpenAPI document the server serves at /api/openapi.json.

Every operation of the document, with data that fits it (positive) and data that does not (negative), sent to the
shared server with an owner's token: no answer may be a 5xx, and every answer must be one the document lists, with
the documented content type, headers and body schema. The operations with an ``{upload_id}`` also run with the ids
of real uploads (unfinished, finished, someone else's, deleted), so the 200, 403 and 410 answers are checked too,
not only the 404 of a random id.

schemathesis's own pytest integration (``schemathesis.pytest.from_fixture``) does not work with pytest 9 (it reads
``request.node._nodeid``), so the test drives each operation's hypothesis strategy itself.
"""

from __future__ import annotations

from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import ADMIN_TOKEN, ServerProcess
from tests.protocols.test_tus_httptest import create, patch, request, upload_id

EXAMPLES = 40  # per operation, mode and id kind
CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def real_ids(url: str, owner: str) -> dict[str, str]:
    """Uploads to aim at: one of each kind, made fresh."""
    with httpx.Client(base_url=url, timeout=30) as c:
        other = c.get("/api/session").json()["token"]
        c.cookies.clear()
        unfinished = create(c, owner, 100)
        finished = create(c, owner, 3)
        assert patch(c, finished, 0, b"abc").status_code == 204
        others = create(c, other, 2)
        assert patch(c, others, 0, b"ab").status_code == 204
        deleted = create(c, owner, 5)
        assert request(c, "DELETE", deleted, {"X-Pyfiledrop-Token": owner}).status_code == 204
    paths = {"unfinished": unfinished, "finished": finished, "someone-elses": others, "deleted": deleted}
    return {name: upload_id(path) for name, path in paths.items()}


def test_the_json_api_answers_as_its_openapi_document_says(shared_server: ServerProcess, owner: str) -> None:
    schema = schemathesis.openapi.from_url(f"{shared_server.url}/api/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {"GET /api/config", "GET /api/uploads/{upload_id}"}
    failures: list[str] = []
    tried = [0]

    def run_cases(label: str, strategy: Any, token: str) -> None:
        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def run(case: schemathesis.Case) -> None:
            tried[0] += 1
            case.call_and_validate(headers={"X-Pyfiledrop-Token": token}, checks=CHECKS)

        try:
            run()
        except Unsatisfiable:
            pass  # nothing to make invalid (an operation without parameters)
        except BaseException as exc:
            failures.append(f"{label}: {exc}")

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for token in (owner, ADMIN_TOKEN):
                run_cases(f"{operation.label} {mode} {'admin' if token == ADMIN_TOKEN else 'owner'}",
                          operation.as_strategy(mode), token)  # fmt: skip
        if "{upload_id}" in operation.path:
            for kind, real in real_ids(shared_server.url, owner).items():
                strategy = operation.as_strategy(GenerationMode.POSITIVE, path_parameters={"upload_id": real})
                run_cases(f"{operation.label} ({kind} upload)", strategy, owner)
    print(f"\nschemathesis: {tried[0]} requests over {len(operations)} operations")
    assert not failures, "\n\n".join(failures)
