"""``/v1/agents``: reading the inventory, and changes that are audited and seen at once."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from lictor.server.runtime import Runtime
from lictor.service.ports import AuditQuery
from server.support import Tokens, bearer, problem_type, slug

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

NEW_AGENT: dict[str, Any] = {
    "name": "Invoice reader",
    "owner": "finance-ops@corp.example",
    "allowed_tools": ["get_invoice"],
    "tags": ["finance"],
    "risk_tier": "low",
}


def inventory_changes(runtime: Runtime) -> list[dict[str, Any]]:
    page = runtime.store.audit.query(AuditQuery(kind="agent_change"))
    return [dict(r.payload) for r in page.records if r.payload["actor"] != "lictor:inventory-file"]


async def test_readers_list_and_get_agents(client: httpx.AsyncClient, tokens: Tokens) -> None:
    listed = await client.get("/v1/agents", headers=bearer(tokens.reviewer))
    assert listed.status_code == 200
    assert [a["id"] for a in listed.json()["agents"]] == [
        "expense-helper",
        "old-batch-job",
        "payments-bot",
    ]
    one = await client.get("/v1/agents/payments-bot", headers=bearer(tokens.auditor))
    assert one.json()["risk_tier"] == "high"
    missing = await client.get("/v1/agents/nobody", headers=bearer(tokens.admin))
    assert missing.status_code == 404
    assert problem_type(missing) == slug("not-found")


async def test_put_creates_then_replaces_and_each_change_is_audited(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime
) -> None:
    created = await client.put(
        "/v1/agents/reader-bot", json=NEW_AGENT, headers=bearer(tokens.admin)
    )
    assert created.status_code == 201
    assert created.json()["id"] == "reader-bot"

    same = await client.put("/v1/agents/reader-bot", json=NEW_AGENT, headers=bearer(tokens.admin))
    assert same.status_code == 200

    changed = await client.put(
        "/v1/agents/reader-bot",
        json={**NEW_AGENT, "id": "reader-bot", "risk_tier": "medium"},
        headers=bearer(tokens.admin),
    )
    assert changed.status_code == 200

    entries = inventory_changes(runtime)
    assert [(e["action"], e["changed"]) for e in entries] == [
        ("put", sorted(changed.json())),
        ("put", ["risk_tier"]),
    ]
    assert {e["actor"] for e in entries} == {"alice"}
    assert entries[0]["before"] is None
    assert entries[1]["before"]["risk_tier"] == "low"
    assert entries[1]["after"]["risk_tier"] == "medium"
    assert entries[1]["source"] == "10.1.2.3"


async def test_delete_is_audited_and_a_second_delete_is_not_found(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime
) -> None:
    deleted = await client.delete("/v1/agents/old-batch-job", headers=bearer(tokens.admin))
    assert deleted.status_code == 204
    again = await client.delete("/v1/agents/old-batch-job", headers=bearer(tokens.admin))
    assert again.status_code == 404
    entries = inventory_changes(runtime)
    assert [(e["action"], e["agent_id"], e["after"]) for e in entries] == [
        ("delete", "old-batch-job", None)
    ]
    assert entries[0]["before"]["status"] == "retired"


async def test_suspending_an_agent_takes_effect_on_the_next_decision(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    decide = {"tool": "get_invoice"}
    before = await client.post("/v1/decide", json=decide, headers=bearer(tokens.agent))
    assert before.json()["outcome"] == "allow"  # and the record is now cached

    record = (await client.get("/v1/agents/payments-bot", headers=bearer(tokens.admin))).json()
    suspended = await client.put(
        "/v1/agents/payments-bot",
        json={**record, "status": "suspended"},
        headers=bearer(tokens.admin),
    )
    assert suspended.status_code == 200

    after = await client.post("/v1/decide", json=decide, headers=bearer(tokens.agent))
    assert after.json()["outcome"] == "deny"
    assert [r["code"] for r in after.json()["reasons"]] == ["agent_status"]


async def test_restart_with_the_same_inventory_file_writes_nothing(
    runtime: Runtime, tokens: Tokens
) -> None:
    from lictor.server.runtime import seed_inventory
    from lictor.service.policies import load_inventory

    assert runtime.settings.agents is not None
    records = load_inventory(runtime.settings.agents)
    size = runtime.store.audit.size()
    assert seed_inventory(runtime.agents, runtime.audit, records, runtime.clock, source="f") == 0
    assert runtime.store.audit.size() == size


async def test_put_with_a_null_id_is_rejected_not_filled_from_the_url(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    response = await client.put(
        "/v1/agents/new-bot", json={"id": None, "name": "x"}, headers=bearer(tokens.admin)
    )

    assert response.status_code == 422
    listed = await client.get("/v1/agents/new-bot", headers=bearer(tokens.admin))
    assert listed.status_code == 404
