"""The kill switch over HTTP: quarantine and release agents and principals, emergency mode."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from lictor.server.runtime import Runtime
from lictor.service.events import Event, EventKind
from lictor.service.ports import AuditQuery, CredentialKind, Role
from server.support import Tokens, bearer, problem_type, slug

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

KNOWN_PAYEE = "DE89370400440532013000"


def transfer(amount: int, principal: str = "emma@corp.example") -> dict[str, Any]:
    return {
        "tool": "send_money",
        "arguments": {"amount": amount, "to_account": KNOWN_PAYEE},
        "principal": {"id": principal},
        "context": {"task": f"pay {amount} to {KNOWN_PAYEE}"},
    }


async def decide(client: httpx.AsyncClient, token: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/v1/decide", json=body, headers=bearer(token))
    assert response.status_code == 200, response.text
    decision: dict[str, Any] = response.json()
    return decision


def incidents(runtime: Runtime) -> list[dict[str, Any]]:
    page = runtime.store.audit.query(AuditQuery(kind="incident", limit=1000))
    return [dict(r.payload) for r in page.records]


async def test_quarantine_denies_at_once_revokes_cancels_and_tells(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime
) -> None:
    events: list[Event] = []
    runtime.events.subscribe(events.append)
    pending = await decide(client, tokens.agent, transfer(20_000))
    assert pending["outcome"] == "review"

    response = await client.post(
        "/v1/agents/payments-bot/quarantine",
        json={"reason": "exfiltration suspected"},
        headers=bearer(tokens.admin),
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "quarantined"

    # The agent's credential is revoked: its next request is refused outright...
    refused = await client.post("/v1/decide", json=transfer(5), headers=bearer(tokens.agent))
    assert refused.status_code == 401
    # ...and a fresh credential cannot act either: the agent itself is denied.
    fresh = runtime.credentials.issue(CredentialKind.AGENT, "payments-bot", Role.AGENT)
    denied = await decide(client, fresh.token, transfer(5))
    assert denied["outcome"] == "deny"
    assert [r["rule"] for r in denied["reasons"]] == ["lictor/agent-quarantined"]

    review = await client.get(f"/v1/reviews/{pending['review_id']}", headers=bearer(tokens.admin))
    assert review.json()["status"] == "cancelled"
    [entry] = incidents(runtime)
    assert entry["action"] == "quarantined"
    assert entry["agent_id"] == "payments-bot"
    assert entry["actor"] == "alice"
    assert entry["reason"] == "exfiltration suspected"
    assert entry["cancelled_reviews"] == [pending["review_id"]]
    assert tokens.agent.split("_")[1] in entry["revoked_credentials"]
    stored = runtime.store.agents.get("payments-bot")
    assert stored is not None
    assert stored.tokens_valid_after is not None
    assert [e.kind for e in events if e.kind is EventKind.AGENT_QUARANTINED] == [
        EventKind.AGENT_QUARANTINED
    ]

    released = await client.post(
        "/v1/agents/payments-bot/release", json={"reason": "cleared"}, headers=bearer(tokens.admin)
    )
    assert released.json()["status"] == "active"
    assert (await decide(client, fresh.token, transfer(5)))["outcome"] == "allow"
    old = await client.post("/v1/decide", json=transfer(5), headers=bearer(tokens.agent))
    assert old.status_code == 401  # credentials stay revoked
    assert [e["action"] for e in incidents(runtime)] == ["quarantined", "release"]


async def test_principal_quarantine_stops_every_agent_acting_for_them(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime
) -> None:
    response = await client.post(
        "/v1/principals/emma@corp.example/quarantine",
        json={"reason": "account takeover"},
        headers=bearer(tokens.admin),
    )
    assert response.status_code == 200, response.text
    denied = await decide(client, tokens.agent, transfer(5, principal="emma@corp.example"))
    assert denied["outcome"] == "deny"
    assert [r["rule"] for r in denied["reasons"]] == ["lictor/principal-quarantined"]
    chained = dict(transfer(5, principal="bob@corp.example"))
    chained["delegation"] = ["emma@corp.example", "payments-bot"]
    assert (await decide(client, tokens.agent, chained))["outcome"] == "deny"
    other = await decide(client, tokens.agent, transfer(5, principal="bob@corp.example"))
    assert other["outcome"] == "allow"

    released = await client.post(
        "/v1/principals/emma@corp.example/release", headers=bearer(tokens.admin)
    )
    assert released.status_code == 200, released.text
    assert (await decide(client, tokens.agent, transfer(5)))["outcome"] == "allow"
    again = await client.post(
        "/v1/principals/emma@corp.example/release", headers=bearer(tokens.admin)
    )
    assert again.status_code == 404


async def test_emergency_mode_denies_every_agent_until_turned_off(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime
) -> None:
    on = await client.post(
        "/v1/emergency", json={"on": True, "reason": "drill"}, headers=bearer(tokens.admin)
    )
    assert on.status_code == 200, on.text
    assert on.json()["on"] is True
    assert on.json()["actor"] == "alice"
    for token in (tokens.agent, tokens.other_agent):
        decision = await decide(client, token, {"tool": "get_invoice", "arguments": {}})
        assert decision["outcome"] == "deny"
        assert [r["rule"] for r in decision["reasons"]] == ["lictor/emergency-mode"]
    state = await client.get("/v1/emergency", headers=bearer(tokens.auditor))
    assert state.json()["on"] is True
    off = await client.post(
        "/v1/emergency", json={"on": False, "reason": "drill over"}, headers=bearer(tokens.admin)
    )
    assert off.json() == {"on": False, "reason": None, "actor": None, "since": None}
    decision = await decide(client, tokens.agent, transfer(5))
    assert decision["outcome"] == "allow"
    assert [e["action"] for e in incidents(runtime)] == ["emergency_on", "emergency_off"]


SWITCHES = (
    "/v1/agents/payments-bot/quarantine",
    "/v1/agents/payments-bot/release",
    "/v1/principals/p/quarantine",
    "/v1/principals/p/release",
    "/v1/emergency",
)
BAD_BODIES: list[tuple[str, Any]] = [
    ("/v1/agents/payments-bot/quarantine", {}),
    ("/v1/agents/payments-bot/quarantine", {"reason": " "}),
    ("/v1/agents/payments-bot/quarantine", {"reason": 1}),
    ("/v1/agents/payments-bot/quarantine", {"reason": "x", "more": 1}),
    ("/v1/agents/payments-bot/release", {"reason": None}),
    ("/v1/emergency", {"on": "yes", "reason": "x"}),
    ("/v1/emergency", {"on": True}),
    ("/v1/principals/p/quarantine", ["reason"]),
]


async def test_only_admins_pull_the_switch_and_bad_bodies_change_nothing(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime
) -> None:
    for path in SWITCHES:
        for token in (tokens.reviewer, tokens.auditor, tokens.agent):
            response = await client.post(
                path, json={"on": True, "reason": "x"}, headers=bearer(token)
            )
            assert response.status_code == 403, path
            assert problem_type(response) == slug("forbidden")
    for path, body in BAD_BODIES:
        response = await client.post(path, json=body, headers=bearer(tokens.admin))
        assert response.status_code == 422, (path, body, response.text)
    unknown = await client.post(
        "/v1/agents/nobody/quarantine", json={"reason": "x"}, headers=bearer(tokens.admin)
    )
    assert unknown.status_code == 404
    assert incidents(runtime) == []
    assert (await decide(client, tokens.agent, transfer(5)))["outcome"] == "allow"
