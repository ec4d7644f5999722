"""``POST /v1/events``: gateways put what they refused on the server's audit trail."""

from __future__ import annotations

import httpx
import pytest

from lictor.server.runtime import Runtime
from lictor.service.events import Event
from lictor.service.ports import AuditQuery
from server.support import Tokens, bearer, problem_type, slug

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def test_event_is_filed_under_the_callers_agent(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime
) -> None:
    seen: list[Event] = []
    runtime.events.subscribe(seen.append)
    response = await client.post(
        "/v1/events",
        json={
            "event": "tool_definition_changed",
            "problem": "tool fs.write changed its description",
            "tool": "fs.write",
            "server": "fs",
            "detail": {"digest": "ab12"},
        },
        headers=bearer(tokens.agent),
    )
    assert response.status_code == 204, response.text
    # Answered after the commit: the store holds it right away.
    page = runtime.store.audit.query(AuditQuery(kind="rejected"))
    [record] = [r.payload for r in page.records if r.payload.get("event")]
    assert record["agent_id"] == "payments-bot"
    assert record["credential_id"] == tokens.agent.split("_")[1]
    assert record["tool"] == "fs.write"
    assert record["detail"] == {"digest": "ab12"}
    assert [e.kind.value for e in seen] == ["tool_definition_changed"]
    assert seen[0].agent_id == "payments-bot"


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"problem": "x"}, "/event"),
        ({"event": "Bad Name", "problem": "x"}, "/event"),
        ({"event": "unknown_tool", "problem": "  "}, "/problem"),
        ({"event": "unknown_tool", "problem": "x", "agent_id": "someone-else"}, "/agent_id"),
        ({"event": "unknown_tool", "problem": "x", "tool": 3}, "/tool"),
        ({"event": "unknown_tool", "problem": "x", "detail": [1]}, "/detail"),
    ],
)
async def test_malformed_event_is_refused_with_its_field(
    client: httpx.AsyncClient,
    tokens: Tokens,
    runtime: Runtime,
    body: dict[str, object],
    pointer: str,
) -> None:
    before = runtime.store.audit.size()
    response = await client.post("/v1/events", json=body, headers=bearer(tokens.agent))
    assert response.status_code == 422
    assert problem_type(response) == slug("invalid-request")
    assert response.json()["pointer"] == pointer
    assert runtime.store.audit.size() == before


async def test_people_cannot_write_agent_events(client: httpx.AsyncClient, tokens: Tokens) -> None:
    response = await client.post(
        "/v1/events", json={"event": "unknown_tool", "problem": "x"}, headers=bearer(tokens.admin)
    )
    assert response.status_code == 403


async def test_acting_as_another_agent_is_credential_misuse(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime
) -> None:
    seen: list[Event] = []
    runtime.events.subscribe(seen.append)
    response = await client.post(
        "/v1/decide",
        json={"agent_id": "expense-helper", "tool": "list_invoices"},
        headers=bearer(tokens.agent),
    )
    assert response.status_code == 403
    [event] = seen
    assert event.kind.value == "credential_misuse"
    assert event.agent_id == "payments-bot"
    assert event.details["claimed"] == "expense-helper"
