"""Schemathesis against the ASGI app: no 5xx, and responses match the OpenAPI document.

The schema is loaded from the app's own ``/openapi.json`` (with an admin token: the
document is not public). Agent routes are called with an agent token, every other route
with an admin token, so the fuzzer exercises the handlers rather than the auth guard
(the role matrix has its own test). Kept under a minute by ``max_examples``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from schemathesis import Case, GenerationMode
from schemathesis.checks import CheckFunction
from schemathesis.specs.openapi.checks import positive_data_acceptance
from schemathesis.specs.openapi.schemas import OpenApiSchema

from lictor.server.app import create_app
from lictor.server.auth import AGENT_ONLY, ENDPOINTS, Endpoint
from lictor.server.openapi import build_openapi
from lictor.server.runtime import Runtime
from lictor.service.memory import FixedClock
from lictor.service.ports import CredentialKind, Role
from lictor.settings import Settings
from server.support import FINANCE, NOW, bearer

pytestmark = pytest.mark.integration

FuzzCase = Case[Any]  # generic over the operation type, which we never inspect

# Bodies are where the parsers can disagree with the document, so they get the most
# examples; the whole module stays around a minute on a 2-core machine.
MAX_EXAMPLES_WITH_BODY = 40
MAX_EXAMPLES = 15


@dataclass(frozen=True)
class FuzzTarget:
    runtime: Runtime
    agent_token: str
    admin_token: str


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzTarget]:
    root: Path = tmp_path_factory.mktemp("fuzz")
    runtime = Runtime.open(
        Settings(
            data_dir=root,
            policies=FINANCE / "policies",
            agents=FINANCE / "agents.yaml",
        ),
        clock=FixedClock(NOW),
    )
    try:
        agent = runtime.credentials.issue(CredentialKind.AGENT, "payments-bot", Role.AGENT)
        admin = runtime.credentials.issue(CredentialKind.ADMIN, "fuzz", Role.ADMIN)
        yield FuzzTarget(runtime, agent.token, admin.token)
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def api_schema(fuzz_target: FuzzTarget) -> OpenApiSchema:
    app = create_app(fuzz_target.runtime)
    return schemathesis.openapi.from_asgi(
        "/openapi.json", app, headers=bearer(fuzz_target.admin_token)
    )


def _has_input(endpoint: Endpoint) -> bool:
    operation = build_openapi()["paths"][endpoint.path][endpoint.method.lower()]
    return "parameters" in operation or "requestBody" in operation


# Negative mode needs something to break: operations without parameters or body have none.
CASES = [(e, GenerationMode.POSITIVE) for e in ENDPOINTS] + [
    (e, GenerationMode.NEGATIVE) for e in ENDPOINTS if _has_input(e)
]


def _without_body_id(case: FuzzCase) -> FuzzCase:
    # The body's id must equal the URL's, which OpenAPI cannot say; a schema-valid body
    # with another id is rightly refused (422), so positive cases leave it out.
    if isinstance(case.body, dict):
        case.body = {k: v for k, v in case.body.items() if k != "id"}
    return case


def _is_sent_as_generated(case: FuzzCase) -> bool:
    # An empty list or None as a query value is not sent at all: the "invalid" request
    # that reaches the server is then a valid one.
    return not any(v is None or v == [] for v in (case.query or {}).values())


@pytest.mark.parametrize(
    ("endpoint", "mode"),
    CASES,
    ids=lambda v: v.value if isinstance(v, GenerationMode) else f"{v.method} {v.path}",
)
def test_api_conforms_to_its_openapi_document(
    api_schema: OpenApiSchema, fuzz_target: FuzzTarget, endpoint: Endpoint, mode: GenerationMode
) -> None:
    # schemathesis.pytest.from_fixture needs pytest internals that pytest 9 removed
    # (Function._nodeid), so each operation is driven through Hypothesis directly.
    token = fuzz_target.agent_token if endpoint.roles == AGENT_ONLY else fuzz_target.admin_token
    operation = api_schema[endpoint.path][endpoint.method]
    strategy = operation.as_strategy(generation_mode=mode)
    if mode is GenerationMode.POSITIVE and endpoint.name == "put_agent":
        strategy = strategy.map(_without_body_id)

    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES_WITH_BODY if endpoint.method in ("POST", "PUT") else MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: FuzzCase) -> None:
        assume(_is_sent_as_generated(case))
        case.call_and_validate(headers=bearer(token), excluded_checks=excluded)

    # A schema-valid token exchange still carries tokens that do not verify: RFC 6749
    # §5.2 answers 400, which the positive-data check would count as a rejection.
    excluded: list[CheckFunction] = []
    if endpoint.name == "exchange_token" and mode is GenerationMode.POSITIVE:
        excluded.append(positive_data_acceptance)
    # A schema-valid upload carries YAML text that JSON Schema cannot check: a bundle
    # that does not load or fails its tests is rightly refused (422, file and line).
    if endpoint.name == "upload_policy" and mode is GenerationMode.POSITIVE:
        excluded.append(positive_data_acceptance)

    check()
