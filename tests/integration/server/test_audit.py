"""``/v1/audit``: query filters and paging, verify, export, inclusion proofs."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from lictor.core.audit.chain import SealedRecord, verify_chain
from lictor.identity.keys import verifier_from_public_pem
from lictor.server.runtime import Runtime
from lictor.service.audit_ops import verify_proof
from lictor.service.events import Event, EventKind, Severity
from lictor.store.schema import audit_records
from server.support import Tokens, bearer, problem_type, slug

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

INVENTORY_SEEDS = 3  # the finance inventory file's three agents, audited at start


async def make_decisions(client: httpx.AsyncClient, tokens: Tokens) -> list[dict[str, Any]]:
    """Six decisions: two sessions, three tools, every outcome, two agents."""
    requests = [
        (tokens.agent, {"tool": "get_invoice", "session_id": "s1"}),
        (tokens.agent, {"tool": "get_balance", "session_id": "s1"}),
        (tokens.agent, {"tool": "delete_ledger", "session_id": "s1"}),
        (
            tokens.agent,
            {
                "tool": "send_money",
                "session_id": "s2",
                "arguments": {"amount": 20000, "to_account": "DE89370400440532013000"},
                "context": {"task": "pay 20000 to DE89370400440532013000"},
                "principal": {"id": "emma@corp.example"},
            },
        ),
        (tokens.other_agent, {"tool": "get_invoice", "session_id": "s3"}),
        (tokens.other_agent, {"tool": "list_invoices", "session_id": "s3"}),
    ]
    decisions = []
    for token, body in requests:
        response = await client.post("/v1/decide", json=body, headers=bearer(token))
        assert response.status_code == 200
        decisions.append(response.json())
    return decisions


async def query(client: httpx.AsyncClient, tokens: Tokens, params: str) -> dict[str, Any]:
    response = await client.get(f"/v1/audit?{params}", headers=bearer(tokens.auditor))
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def tools(page: dict[str, Any]) -> list[str]:
    return [r["payload"]["tool"] for r in page["records"]]


async def test_filters_select_matching_records(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime
) -> None:
    decisions = await make_decisions(client, tokens)
    assert tools(await query(client, tokens, "agent=expense-helper&kind=decision")) == [
        "get_invoice",
        "list_invoices",
    ]
    assert tools(await query(client, tokens, "tool=get_invoice&kind=decision")) == [
        "get_invoice",
        "get_invoice",
    ]
    assert tools(await query(client, tokens, "outcome=review")) == ["send_money"]
    assert tools(await query(client, tokens, "outcome=deny")) == ["delete_ledger"]
    assert tools(await query(client, tokens, "session=s1")) == [
        "get_invoice",
        "get_balance",
        "delete_ledger",
    ]
    assert tools(await query(client, tokens, "principal=emma%40corp.example")) == ["send_money"]
    one = await query(client, tokens, f"decision_id={decisions[1]['decision_id']}")
    assert tools(one) == ["get_balance"]
    inventory = await query(client, tokens, "kind=agent_change")
    assert len(inventory["records"]) == INVENTORY_SEEDS
    assert (await query(client, tokens, "since=2026-11-25T09:00:00Z&kind=decision"))[
        "records"
    ] != []
    assert (await query(client, tokens, "since=2026-11-25T09:00:01Z"))["records"] == []
    assert (await query(client, tokens, "until=2026-11-25T09:00:00Z"))["records"] == []


async def test_paging_walks_the_whole_trail_once(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime
) -> None:
    await make_decisions(client, tokens)
    seen: list[int] = []
    params = "limit=4"
    pages = 0
    while True:
        page = await query(client, tokens, params)
        seen.extend(r["seq"] for r in page["records"])
        pages += 1
        if page["next"] is None:
            break
        params = f"limit=4&after={page['next']}"
    assert seen == list(range(INVENTORY_SEEDS + 6))
    assert pages == 3
    records = [
        SealedRecord.from_dict(r) for r in (await query(client, tokens, "limit=1000"))["records"]
    ]
    assert verify_chain(records).size == INVENTORY_SEEDS + 6


async def test_verify_reports_an_intact_trail_with_checkpoints(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime
) -> None:
    await make_decisions(client, tokens)
    runtime.writer.checkpoint_now()
    response = await client.get("/v1/audit/verify", headers=bearer(tokens.auditor))
    assert response.status_code == 200
    report = response.json()
    assert report["ok"] is True
    assert report["size"] == INVENTORY_SEEDS + 6
    assert report["checkpoints_checked"] == 1
    assert report["signatures_verified"] is True


async def test_verify_finds_a_record_edited_in_the_database(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime
) -> None:
    decisions = await make_decisions(client, tokens)
    target = runtime.store.audit.find_decision(decisions[2]["decision_id"])
    assert target is not None
    forged = dict(target.payload, outcome="allow")
    with runtime.store.engine.begin() as connection:
        connection.execute(
            update(audit_records)
            .where(audit_records.c.seq == target.seq)
            .values(payload=json.dumps(forged))
        )
    seen: list[Event] = []
    runtime.events.subscribe(seen.append)
    report = (await client.get("/v1/audit/verify", headers=bearer(tokens.admin))).json()
    assert report["ok"] is False
    assert report["error_index"] == target.seq
    # The security team hears of it: a critical event the alert rules can route.
    [event] = seen
    assert event.kind is EventKind.AUDIT_VERIFICATION_FAILED
    assert event.severity is Severity.CRITICAL
    assert event.details["first_bad_seq"] == target.seq


async def test_export_streams_sealed_jsonl_and_ocsf(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await make_decisions(client, tokens)
    jsonl = await client.get("/v1/audit/export", headers=bearer(tokens.auditor))
    assert jsonl.status_code == 200
    assert jsonl.headers["content-type"] == "application/x-ndjson"
    records = [SealedRecord.from_json(line) for line in jsonl.text.splitlines()]
    assert verify_chain(records).size == INVENTORY_SEEDS + 6

    ocsf = await client.get(
        "/v1/audit/export?format=ocsf&agent=payments-bot", headers=bearer(tokens.auditor)
    )
    events = [json.loads(line) for line in ocsf.text.splitlines()]
    assert len(events) == 4
    assert {e["class_uid"] for e in events} == {6003}


async def test_proof_of_a_decision_verifies_with_the_public_key(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime
) -> None:
    decisions = await make_decisions(client, tokens)
    response = await client.get(
        f"/v1/audit/proof/{decisions[3]['decision_id']}", headers=bearer(tokens.auditor)
    )
    assert response.status_code == 200, response.text
    proof = response.json()
    verify_proof(proof, verifier_from_public_pem(runtime.signer.public_key_pem()))
    assert proof["record"]["payload"]["tool"] == "send_money"

    missing = await client.get(
        "/v1/audit/proof/01NOSUCHDECISION0000000000", headers=bearer(tokens.auditor)
    )
    assert missing.status_code == 404
    assert problem_type(missing) == slug("not-found")


async def test_policies_lists_the_active_bundle(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime
) -> None:
    response = await client.get("/v1/policies", headers=bearer(tokens.auditor))
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == runtime.bundle.version
    assert body["timezone"] == "Europe/Berlin"
    assert body["rule_count"] == len(body["rules"]) == len(runtime.bundle.policy.rules)
    first = body["rules"][0]
    assert first == {
        "id": "finance/read",
        "effect": "allow",
        "mode": "enforce",
        "severity": "medium",
        "source": "payments.yaml:8",
    }
