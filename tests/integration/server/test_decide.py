"""``POST /v1/decide`` and ``POST /v1/decisions/{id}/result`` with the finance example."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from lictor.server.runtime import Runtime
from lictor.service.ports import AuditQuery
from server.support import Tokens, bearer, problem_type, slug

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

KNOWN_PAYEE = "DE89370400440532013000"


def transfer(amount: int, task: str | None = None) -> dict[str, Any]:
    return {
        "tool": "send_money",
        "arguments": {"amount": amount, "to_account": KNOWN_PAYEE},
        "context": {"task": task if task is not None else f"pay {amount} to {KNOWN_PAYEE}"},
        "session_id": "run-1",
    }


async def decide(client: httpx.AsyncClient, token: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/v1/decide", json=body, headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    decision: dict[str, Any] = response.json()
    return decision


async def test_allow_is_on_record_before_the_response(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime
) -> None:
    decision = await decide(client, tokens.agent, transfer(500))
    assert decision["outcome"] == "allow"
    assert [r["rule"] for r in decision["reasons"]] == ["finance/transfer"]
    # Read the store directly, right away: the answer left only after the commit.
    record = runtime.store.audit.find_decision(decision["decision_id"])
    assert record is not None
    payload = record.payload
    assert payload["outcome"] == "allow"
    assert payload["agent_id"] == "payments-bot"
    assert payload["credential_id"] == tokens.agent.split("_")[1]
    assert payload["source"] == "10.1.2.3"
    assert payload["arguments"] == {"amount": 500, "to_account": KNOWN_PAYEE}


async def test_large_transfer_is_held_for_review(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime
) -> None:
    decision = await decide(client, tokens.agent, transfer(20_000))
    assert decision["outcome"] == "review"
    assert [r["rule"] for r in decision["reasons"]] == ["finance/large-transfer"]
    assert runtime.store.audit.find_decision(decision["decision_id"]) is not None


async def test_unknown_payee_is_denied(client: httpx.AsyncClient, tokens: Tokens) -> None:
    body = transfer(500, task="pay the supplier")
    body["arguments"]["to_account"] = "XX00000000000000000000"
    decision = await decide(client, tokens.agent, body)
    assert decision["outcome"] == "deny"
    assert "finance/unknown-payee" in [r["rule"] for r in decision["reasons"]]


async def test_agent_id_is_filled_from_the_credential_or_must_match(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime
) -> None:
    same = await decide(client, tokens.agent, {"agent_id": "payments-bot", "tool": "get_invoice"})
    assert same["outcome"] == "allow"

    response = await client.post(
        "/v1/decide",
        json={"agent_id": "expense-helper", "tool": "get_invoice"},
        headers=bearer(tokens.agent),
    )
    assert response.status_code == 403
    assert problem_type(response) == slug("agent-mismatch")
    assert response.json()["pointer"] == "/agent_id"
    runtime.writer.close()  # flush the (not awaited) rejection record
    rejected = runtime.store.audit.query(AuditQuery(kind="rejected"))
    assert [r.payload["agent_id"] for r in rejected.records] == ["expense-helper"]


async def test_agent_outside_the_inventory_gets_a_deny(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    decision = await decide(client, tokens.unknown_agent, {"tool": "get_invoice"})
    assert decision["outcome"] == "deny"
    assert [r["code"] for r in decision["reasons"]] == ["unknown_agent"]


async def test_result_for_own_allowed_decision_is_recorded(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime
) -> None:
    decision = await decide(client, tokens.agent, transfer(500))
    response = await client.post(
        f"/v1/decisions/{decision['decision_id']}/result",
        json={"status": "ok", "labels": ["confidential"], "effects": [{"kind": "payment_sent"}]},
        headers=bearer(tokens.agent),
    )
    assert response.status_code == 204, response.text
    results = runtime.store.audit.query(AuditQuery(kind="result"))
    assert [r.payload["decision_id"] for r in results.records] == [decision["decision_id"]]
    # The session read confidential data: the next transfer in it is denied.
    after = await decide(client, tokens.agent, transfer(600))
    assert after["outcome"] == "deny"


async def test_result_for_another_agents_decision_is_forbidden(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    decision = await decide(client, tokens.agent, {"tool": "get_invoice"})
    response = await client.post(
        f"/v1/decisions/{decision['decision_id']}/result",
        json={"status": "ok"},
        headers=bearer(tokens.other_agent),
    )
    assert response.status_code == 403
    assert problem_type(response) == slug("forbidden")


async def test_result_for_unknown_decision_is_not_found(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    response = await client.post(
        "/v1/decisions/01NOSUCHDECISION0000000000/result",
        json={"status": "ok"},
        headers=bearer(tokens.agent),
    )
    assert response.status_code == 404
    assert problem_type(response) == slug("not-found")


async def test_result_for_denied_decision_conflicts(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    decision = await decide(client, tokens.agent, {"tool": "delete_ledger"})
    assert decision["outcome"] == "deny"
    response = await client.post(
        f"/v1/decisions/{decision['decision_id']}/result",
        json={"status": "ok"},
        headers=bearer(tokens.agent),
    )
    assert response.status_code == 409
    assert problem_type(response) == slug("conflict")


async def test_malformed_result_points_at_the_field(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    decision = await decide(client, tokens.agent, {"tool": "get_invoice"})
    response = await client.post(
        f"/v1/decisions/{decision['decision_id']}/result",
        json={"status": "fine"},
        headers=bearer(tokens.agent),
    )
    assert response.status_code == 422
    assert problem_type(response) == slug("invalid-request")
    assert response.json()["pointer"] == "/status"


async def test_metrics_count_decisions_by_outcome(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await decide(client, tokens.agent, transfer(500))
    await decide(client, tokens.agent, transfer(20_000))
    await decide(client, tokens.agent, {"tool": "delete_ledger"})
    response = await client.get("/metrics", headers=bearer(tokens.auditor))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = set(response.text.splitlines())
    for outcome in ("allow", "review", "deny"):
        assert f'lictor_decisions_total{{outcome="{outcome}"}} 1.0' in lines
    assert "lictor_decision_seconds_count 3.0" in lines
    assert "lictor_audit_queue_depth 0.0" in lines
    assert any(line.startswith("lictor_audit_records_total ") for line in lines)
