"""The API fuzzed from its own OpenAPI document (schemathesis): whatever the
input, valid by the document or not, no 5xx and no traceback. Every
operation but the event stream (it does not end by itself)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from serve_kit import Served, serving
from test_http_api import ALICE, TOKENS, USERS

#: Operations of the document, as schemathesis labels them.
OPERATIONS = [
    "GET /healthz",
    "GET /metrics",
    "GET /v1/routes",
    "POST /v1/conversations",
    "GET /v1/conversations",
    "GET /v1/conversations/{conversation_id}",
    "DELETE /v1/conversations/{conversation_id}",
    "POST /v1/conversations/{conversation_id}/messages",
    "GET /v1/conversations/{conversation_id}/turns",
    "GET /v1/conversations/{conversation_id}/turns/{turn}",
    "POST /v1/conversations/{conversation_id}/cancel",
    "POST /v1/conversations/{conversation_id}/reset",
    "POST /v1/approvals/{approval_id}",
    "GET /v1/pairings",
    "POST /v1/pairings/{code}",
]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("fuzz")
    config = USERS + "routes:\n  echo: {profile: echo}\n"
    with serving(tmp, config, env=TOKENS, token=ALICE) as served:
        yield served


@pytest.fixture(scope="module")
def api(fuzzed: Served) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(fuzzed.url + "openapi.json")


def test_the_document_lists_every_operation_fuzzed(api: schemathesis.BaseSchema) -> None:
    labels = {r.ok().label for r in api.get_all_operations()}
    assert labels == {*OPERATIONS, "GET /v1/conversations/{conversation_id}/events"}


@pytest.mark.parametrize("label", OPERATIONS)
def test_no_input_gets_a_server_error(
    label: str, api: schemathesis.BaseSchema, fuzzed: Served
) -> None:
    operation = api.find_operation_by_label(label)
    assert operation is not None
    cases = st.one_of(
        operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
        operation.as_strategy(schemathesis.GenerationMode.NEGATIVE),
    )

    @given(cases)
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(
            headers={"Authorization": f"Bearer {ALICE}"},
            checks=[not_a_server_error],
            timeout=30,
        )

    check()
    assert "Traceback" not in fuzzed.stderr, fuzzed.stderr
