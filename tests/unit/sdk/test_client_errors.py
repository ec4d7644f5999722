"""The client's one error table: problem+json types to the Lictor error tree.

The server is a fake transport answering with fixed problems (no server needed); the
real app is exercised in tests/integration/sdk.
"""

from __future__ import annotations

import json

import httpx
import pytest

from lictor.core.decisions import ResultReport, ResultStatus
from lictor.errors import (
    AuthError,
    Conflict,
    Forbidden,
    InvalidToolCall,
    LictorError,
    NotFound,
    StoreError,
    UpstreamError,
)
from lictor.sdk import LictorClient
from lictor.sdk.client import PROBLEM_ERRORS


def answering(
    status: int, body: object, content_type: str = "application/problem+json"
) -> LictorClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status, content=json.dumps(body).encode(), headers={"content-type": content_type}
        )

    http = httpx.Client(transport=httpx.MockTransport(handler), base_url="http://lictor.test")
    return LictorClient(token="t", http=http)  # noqa: S106 - a test token


def problem(slug: str, status: int, **extra: object) -> dict[str, object]:
    return {
        "type": f"urn:lictor:problem:{slug}",
        "title": slug,
        "status": status,
        "detail": "d",
        **extra,
    }


@pytest.mark.parametrize(
    ("slug", "status", "error"),
    [
        ("unauthorized", 401, AuthError),
        ("forbidden", 403, Forbidden),
        ("agent-mismatch", 403, Forbidden),
        ("not-found", 404, NotFound),
        ("conflict", 409, Conflict),
        ("malformed-json", 400, InvalidToolCall),
        ("invalid-request", 422, InvalidToolCall),
        ("payload-too-large", 413, InvalidToolCall),
        ("unsupported-media-type", 415, InvalidToolCall),
        ("store-unavailable", 503, StoreError),
        ("internal-error", 500, UpstreamError),
        ("something-new", 418, UpstreamError),
    ],
)
def test_problem_types_map_to_the_error_tree(
    slug: str, status: int, error: type[LictorError]
) -> None:
    client = answering(status, problem(slug, status, pointer="/tool"))
    with pytest.raises(error) as caught:
        client.report(ResultReport("D-1", ResultStatus.OK))
    assert type(caught.value) is error
    if isinstance(caught.value, NotFound | Conflict):
        assert (caught.value.kind, caught.value.id) == ("decision", "D-1")
    if isinstance(caught.value, InvalidToolCall):
        assert caught.value.pointer == "/tool"


def test_every_mapped_problem_is_tested() -> None:
    assert set(PROBLEM_ERRORS) <= {
        "unauthorized",
        "forbidden",
        "agent-mismatch",
        "not-found",
        "conflict",
        "malformed-json",
        "invalid-request",
        "payload-too-large",
        "unsupported-media-type",
        "store-unavailable",
    }


def test_a_non_problem_error_page_is_an_upstream_error() -> None:
    client = answering(502, "bad gateway", content_type="text/html")
    with pytest.raises(UpstreamError):
        client.policies()


def test_an_unreadable_answer_is_an_upstream_error() -> None:
    client = answering(200, {"not": "a decision"}, content_type="application/json")
    with pytest.raises(UpstreamError):
        client.decide({"tool": "x"})


def test_ids_are_quoted_into_one_path_segment() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(204)

    http = httpx.Client(transport=httpx.MockTransport(handler), base_url="http://lictor.test")
    LictorClient(http=http).delete_agent("../v1/audit?x=1")
    assert seen == ["/v1/agents/..%2Fv1%2Faudit%3Fx%3D1"]
