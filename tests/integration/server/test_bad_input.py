"""Bad input gets the exact status and problem type, and refused decisions are on record."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from lictor.server.runtime import Runtime
from lictor.service.ports import AuditQuery
from server.support import Tokens, bearer, problem_type, slug

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("body", "content_type", "status", "kind"),
    [
        (b'{"tool": ', "application/json", 400, "malformed-json"),
        (b'{"tool": "a", "tool": "b"}', "application/json", 400, "malformed-json"),
        (b'{"tool": "a", "arguments": {"x": NaN}}', "application/json", 400, "malformed-json"),
        (b"\xff\xfe\xfa", "application/json", 400, "malformed-json"),
        (b"", "application/json", 400, "malformed-json"),
        (b'{"tool": "get_invoice"}', "text/plain", 415, "unsupported-media-type"),
        (
            b'{"tool": "get_invoice"}',
            "application/x-www-form-urlencoded",
            415,
            "unsupported-media-type",
        ),
        (b'{"tool": "get_invoice"}', "", 415, "unsupported-media-type"),
    ],
)
async def test_unreadable_decision_request(
    client: httpx.AsyncClient,
    tokens: Tokens,
    body: bytes,
    content_type: str,
    status: int,
    kind: str,
) -> None:
    headers = bearer(tokens.agent)
    if content_type:
        headers["content-type"] = content_type
    response = await client.post("/v1/decide", content=body, headers=headers)
    assert response.status_code == status
    assert problem_type(response) == slug(kind)


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"tool": 5}, "/tool"),
        ({"tool": ""}, "/tool"),
        ({}, "/tool"),
        ({"tool": "get_invoice", "argumnets": {}}, "/argumnets"),
        ({"tool": "get_invoice", "principal": {"id": 7}}, "/principal/id"),
        ({"tool": "get_invoice", "delegation": ["a", 1]}, "/delegation/1"),
        ({"tool": "get_invoice", "context": {"task": ["x"]}}, "/context/task"),
        ({"tool": "get_invoice", "agent_id": 3}, "/agent_id"),
    ],
)
async def test_invalid_decision_request_points_at_the_field(
    client: httpx.AsyncClient, tokens: Tokens, body: dict[str, object], pointer: str
) -> None:
    response = await client.post("/v1/decide", json=body, headers=bearer(tokens.agent))
    assert response.status_code == 422
    assert problem_type(response) == slug("invalid-request")
    assert response.json()["pointer"] == pointer


async def test_non_object_body_is_invalid_at_the_root(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    response = await client.post("/v1/decide", json=["get_invoice"], headers=bearer(tokens.agent))
    assert response.status_code == 422
    assert response.json()["pointer"] == "/"


async def test_refused_decision_requests_are_audited(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime
) -> None:
    headers = bearer(tokens.agent)
    await client.post("/v1/decide", json={"tool": 5}, headers=headers)
    await client.post("/v1/decide", content=b"{", headers={**headers, **JSON})
    await client.post("/v1/decide", content=b"{}", headers={**headers, "content-type": "text/csv"})
    runtime.writer.close()  # rejections are recorded without waiting; flush them
    records = runtime.store.audit.query(AuditQuery(kind="rejected")).records
    assert len(records) == 3
    for record in records:
        assert record.payload["agent_id"] == "payments-bot"
        assert record.payload["source"] == "10.1.2.3"
    assert records[0].payload["pointer"] == "/tool"


async def test_body_over_the_limit_by_content_length(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    body = b'{"tool": "get_invoice", "arguments": {"pad": "' + b"x" * 5000 + b'"}}'
    response = await client.post(
        "/v1/decide", content=body, headers={**bearer(tokens.agent), **JSON}
    )
    assert response.status_code == 413
    assert problem_type(response) == slug("payload-too-large")


async def test_body_over_the_limit_is_refused_while_streaming(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    sent: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        # No Content-Length: the server has to count while it reads.
        for i in range(100):
            sent.append(i)
            yield b"x" * 1000

    response = await client.post(
        "/v1/decide", content=chunks(), headers={**bearer(tokens.agent), **JSON}
    )
    assert response.status_code == 413
    assert problem_type(response) == slug("payload-too-large")
    assert len(sent) <= 6  # the 4096-byte limit was hit at the 5th chunk, not after 100


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert problem_type(response) == slug("not-found")


async def test_wrong_method_is_a_405_problem_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.patch("/v1/agents/payments-bot")
    assert response.status_code == 405
    assert problem_type(response) == slug("method-not-allowed")
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {
        "GET",
        "HEAD",
        "PUT",
        "DELETE",
    }
    response = await client.get("/v1/decide")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("agent_id=payments-bot", "agent_id"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("after=-1", "after"),
        ("since=yesterday", "since"),
        ("until=2026-11-25T10:00:00", "until"),
        ("outcome=maybe", "outcome"),
        ("tool=a&tool=b", "tool"),
    ],
)
async def test_bad_audit_parameters_name_the_parameter(
    client: httpx.AsyncClient, tokens: Tokens, query: str, parameter: str
) -> None:
    response = await client.get(f"/v1/audit?{query}", headers=bearer(tokens.auditor))
    assert response.status_code == 422
    assert problem_type(response) == slug("invalid-request")
    assert response.json()["parameter"] == parameter


async def test_bad_export_format(client: httpx.AsyncClient, tokens: Tokens) -> None:
    response = await client.get("/v1/audit/export?format=csv", headers=bearer(tokens.auditor))
    assert response.status_code == 422
    assert response.json()["parameter"] == "format"


async def test_invalid_agent_record_points_at_the_field(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    response = await client.put(
        "/v1/agents/new-bot",
        json={"id": "new-bot", "risk_tolerance": 3},
        headers=bearer(tokens.admin),
    )
    assert response.status_code == 422
    assert response.json()["pointer"] == "/risk_tolerance"
    mismatch = await client.put(
        "/v1/agents/new-bot", json={"id": "other-bot"}, headers=bearer(tokens.admin)
    )
    assert mismatch.status_code == 422
    assert mismatch.json()["pointer"] == "/id"
