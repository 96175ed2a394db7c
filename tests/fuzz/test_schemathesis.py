"""Schemathesis against the live ``/openapi.json`` of a collector process (real HTTP on loopback):
generated and mutated requests for every operation never get a 5xx, and every answer matches the
description (status codes, content types, headers and bodies)."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fuzz.budget import examples
from collector.testing import CollectorProcess, make_settings

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    d = tmp_path_factory.mktemp("schemathesis")
    proc = CollectorProcess(make_settings(d / "data", request_timeout_s=5.0), d).start()
    try:
        yield proc
    finally:
        assert proc.stop() == 0


@pytest.fixture(scope="module")
def api_schema(served):
    return schemathesis.openapi.from_url(served.url + "/openapi.json")


def test_api_conforms_and_never_fails(served, api_schema):
    """Every operation in the published description, with generated and mutated requests."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    labels = {o.label for o in operations}
    # every public endpoint is described, and nothing of the internal listener is
    assert {"POST /api/event", "POST /api/batch", "GET /p.gif", "POST /api/consent", "GET /healthz",
            "GET /readyz", "GET /storagez"} <= labels
    assert not [label for label in labels if "/admin" in label or "/metrics" in label or "/api/query" in label]
    statuses: set[tuple[str, int]] = set()
    for operation in operations:
        @given(case=st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)))
        @settings(max_examples=examples(25), deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        def run(case):
            response = case.call_and_validate(checks=CHECKS)
            statuses.add((operation.label, response.status_code))

        run()
    # the generated traffic reached the beacon handlers, and bad input was refused with a 4xx
    assert {label for label, _ in statuses} >= {"POST /api/event", "POST /api/batch", "GET /p.gif"}, sorted(statuses)
    assert any(code == 400 for _, code in statuses), sorted(statuses)
    # whether random generation happened to hit a configured site is luck: after the fuzzing, the
    # documented example is accepted
    example = {"n": "pageview", "u": "https://example.org/plans?utm_source=news", "d": "example.org"}
    r = httpx.post(served.url + "/api/event", json=example, headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"})
    assert r.status_code == 202, r.text


def test_worker_is_alive_and_logged_no_server_error(served):
    assert httpx.get(served.url + "/healthz").status_code == 200
    log = served.log_path.read_text()
    assert '"level": "error"' not in log, log[-3000:]
