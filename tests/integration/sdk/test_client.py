"""Both SDK clients against the real HTTP app: every API, typed answers, mapped errors."""

from __future__ import annotations

from typing import Any

import pytest

from lictor.core.agents import Agent, AgentStatus
from lictor.core.decisions import Decision, Outcome, ResultReport, ResultStatus
from lictor.core.requests import AgentId
from lictor.errors import AuthError, Conflict, Forbidden, InvalidToolCall, NotFound, UpstreamError
from lictor.sdk import AuditPage, Health, PolicySummary
from lictor.service.audit_ops import VerifyReport

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

MARIA = {"id": "maria@corp.example", "groups": ["support"], "attributes": {}}


def refund(amount: float) -> dict[str, Any]:
    """A request without agent_id: the server takes it from the credential."""
    return {
        "tool": "refunds.issue",
        "server": "billing",
        "principal": MARIA,
        "session_id": "sdk-1",
        "arguments": {"order": "ORD-1", "amount": amount, "currency": "GBP"},
    }


async def test_decide_and_report(client_for: Any, tokens: Any, call: Any) -> None:
    agent = client_for(tokens.agent)
    allowed = await call(agent, "decide", refund(89.0))
    assert isinstance(allowed, Decision)
    assert allowed.outcome is Outcome.ALLOW
    assert (await call(agent, "decide", refund(500.0))).outcome is Outcome.REVIEW
    denied = await call(agent, "decide", refund(8900.0))
    assert denied.outcome is Outcome.DENY
    assert [r.rule for r in denied.reasons] == ["support/refund-over-hard-limit"]
    report = ResultReport(allowed.decision_id, ResultStatus.OK, {"refund": "R-1"}, ("finance",))
    assert await call(agent, "report", report) is None
    with pytest.raises(Conflict) as conflict:
        await call(agent, "report", ResultReport(denied.decision_id, ResultStatus.OK))
    assert conflict.value.id == denied.decision_id
    with pytest.raises(NotFound) as missing:
        await call(agent, "report", ResultReport("01NOPE", ResultStatus.OK))
    assert (missing.value.kind, missing.value.id) == ("decision", "01NOPE")


async def test_decide_errors_are_mapped(client_for: Any, tokens: Any, call: Any) -> None:
    with pytest.raises(InvalidToolCall) as invalid:
        await call(client_for(tokens.agent), "decide", {"tool": "x", "argumnets": {}})
    assert invalid.value.pointer == "/argumnets"
    with pytest.raises(AuthError):
        await call(client_for("not-a-token"), "decide", refund(1.0))
    with pytest.raises(Forbidden):
        await call(client_for(tokens.admin), "decide", refund(1.0))
    with pytest.raises(Forbidden):
        await call(client_for(tokens.agent), "decide", {**refund(1.0), "agent_id": "triage-bot"})


async def test_inventory(client_for: Any, tokens: Any, call: Any) -> None:
    admin = client_for(tokens.admin)
    agents = await call(admin, "list_agents")
    assert "support-agent" in {a.id for a in agents}
    assert all(isinstance(a, Agent) for a in agents)
    new = Agent(id=AgentId("faq-bot"), owner="support-leads@corp.example", allowed_tools=("kb.*",))
    # The server stamps bookkeeping (who, when, version); the managed fields round-trip.
    stored = await call(admin, "put_agent", new)
    assert stored.same_content(new)
    assert (stored.version, stored.updated_by) == (1, "alice")
    assert await call(admin, "get_agent", "faq-bot") == stored
    retired = Agent(id=AgentId("faq-bot"), status=AgentStatus.RETIRED)
    assert (await call(admin, "put_agent", retired)).status is AgentStatus.RETIRED
    assert await call(admin, "delete_agent", "faq-bot") is None
    with pytest.raises(NotFound) as missing:
        await call(admin, "get_agent", "faq-bot")
    assert (missing.value.kind, missing.value.id) == ("agent", "faq-bot")
    with pytest.raises(Forbidden):
        await call(client_for(tokens.agent), "list_agents")


async def test_audit_policies_and_health(client_for: Any, tokens: Any, call: Any) -> None:
    decision = await call(client_for(tokens.agent), "decide", refund(89.0))
    auditor = client_for(tokens.auditor)
    page = await call(auditor, "query_audit", agent="support-agent", kind="decision")
    assert isinstance(page, AuditPage)
    assert [r.payload["decision_id"] for r in page.records] == [decision.decision_id]
    report = await call(auditor, "verify_audit")
    assert isinstance(report, VerifyReport)
    assert report.ok
    lines = await call(auditor, "export_audit", "jsonl", agent="support-agent")
    assert any(line["payload"].get("decision_id") == decision.decision_id for line in lines)
    proof = await call(auditor, "prove", decision.decision_id)
    assert proof["decision_id"] == decision.decision_id
    policies = await call(auditor, "policies")
    assert isinstance(policies, PolicySummary)
    assert "support/refund" in {r.id for r in policies.rules}
    assert policies.rule_count == len(policies.rules)
    health = await call(client_for(None), "health")
    assert health == Health(ready=True, checks={"store": True, "audit_writer": True})
    with pytest.raises(InvalidToolCall):
        await call(auditor, "query_audit", agnet="x")


async def test_unreachable_server_is_an_upstream_error(call: Any) -> None:
    from lictor.sdk import AsyncLictorClient, LictorClient

    for client in (
        LictorClient("http://127.0.0.1:9", timeout_seconds=2),
        AsyncLictorClient("http://127.0.0.1:9", timeout_seconds=2),
    ):
        with pytest.raises(UpstreamError):
            await call(client, "decide", refund(1.0))
        await call(client, "close" if isinstance(client, LictorClient) else "aclose")
