"""``guard`` with an in-process Governor: decide first, run only on allow, report after."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lictor.core.decisions import Decision, Outcome
from lictor.core.requests import Principal
from lictor.errors import ConfigError, ReviewRequired, ToolCallDenied
from lictor.sdk import AsyncLictorClient, Guard, guard, jsonable
from lictor.service.governor import Governor
from lictor.service.memory import FixedClock, MemoryAudit

SUPPORT = Path(__file__).resolve().parents[3] / "examples" / "support"
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
MARIA = Principal("maria@corp.example", ("support",))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def governor() -> Governor:
    return Governor.from_paths(
        SUPPORT / "policies", SUPPORT / "agents.yaml", clock=FixedClock(NOW), audit=MemoryAudit()
    )


def entries(governor: Governor, kind: str) -> list[Any]:
    audit = governor.audit
    assert isinstance(audit, MemoryAudit)
    return [e for e in audit.entries if e["kind"] == kind]


def refund_tool(governor: Governor, ran: list[float], **options: Any) -> Any:
    @guard(governor, name="refunds.issue", agent_id="support-agent", principal=MARIA, **options)
    def issue_refund(order: str, amount: float, currency: str = "GBP") -> dict[str, Any]:
        ran.append(amount)
        return {"refund": f"R-{order}", "amount": amount}

    return issue_refund


def test_allowed_call_runs_and_is_reported(governor: Governor) -> None:
    ran: list[float] = []
    issue = refund_tool(governor, ran, labels=["finance"])
    assert issue("ORD-1", 89.0) == {"refund": "R-ORD-1", "amount": 89.0}
    assert ran == [89.0]
    [decision] = entries(governor, "decision")
    assert decision["arguments"] == {"order": "ORD-1", "amount": 89.0, "currency": "GBP"}
    assert decision["tool"] == "refunds.issue"
    [result] = entries(governor, "result")
    assert result["decision_id"] == decision["decision_id"]
    assert result["status"] == "ok"
    assert result["output"] == {"refund": "R-ORD-1", "amount": 89.0}
    assert result["labels"] == ["finance"]


def test_denied_call_raises_and_never_runs(governor: Governor) -> None:
    ran: list[float] = []
    issue = refund_tool(governor, ran)
    with pytest.raises(ToolCallDenied) as denied:
        issue("ORD-1", 8900.0)
    assert ran == []
    assert denied.value.decision.outcome is Outcome.DENY
    assert entries(governor, "result") == []


def test_review_raises_without_a_waiter(governor: Governor) -> None:
    ran: list[float] = []
    with pytest.raises(ReviewRequired):
        refund_tool(governor, ran)("ORD-1", 500.0)
    assert ran == []


def test_review_waiter_is_the_hook_for_verdicts(governor: Governor) -> None:
    ran: list[float] = []
    seen: list[Decision] = []

    def approve(decision: Decision) -> Decision:
        seen.append(decision)
        return dataclasses.replace(decision, outcome=Outcome.ALLOW)

    assert refund_tool(governor, ran, waiter=approve)("ORD-1", 500.0)["amount"] == 500.0
    assert [d.outcome for d in seen] == [Outcome.REVIEW]
    assert ran == [500.0]

    def refuse(decision: Decision) -> Decision:
        return dataclasses.replace(decision, outcome=Outcome.DENY)

    with pytest.raises(ToolCallDenied):
        refund_tool(governor, ran, waiter=refuse)("ORD-2", 500.0)


def test_exception_is_reported_as_error_and_reraised(governor: Governor) -> None:
    @guard(governor, name="crm.lookup", agent_id="support-agent", principal=MARIA)
    def crm_lookup(customer_id: str) -> str:
        raise LookupError(f"no customer {customer_id}")

    with pytest.raises(LookupError):
        crm_lookup("C-1")
    [result] = entries(governor, "result")
    assert result["status"] == "error"
    assert result["output"] == "LookupError: no customer C-1"


def test_kwargs_are_flattened_and_self_is_left_out(governor: Governor) -> None:
    policy = Guard(governor, agent_id="support-agent", principal=MARIA)

    class Tickets:
        @lambda fn: policy.wrap(fn, name="tickets.comment")
        def comment(self, ticket: str, **extra: Any) -> str:
            return "ok"

    assert Tickets().comment("T-1", text="hi") == "ok"
    [decision] = entries(governor, "decision")
    assert decision["tool"] == "tickets.comment"
    assert decision["arguments"] == {"ticket": "T-1", "text": "hi"}


@pytest.mark.anyio
async def test_async_functions_are_governed(governor: Governor) -> None:
    ran: list[float] = []

    @guard(governor, name="refunds.issue", agent_id="support-agent", principal=MARIA)
    async def issue(order: str, amount: float) -> str:
        ran.append(amount)
        return "done"

    assert await issue("ORD-1", 10.0) == "done"
    with pytest.raises(ToolCallDenied):
        await issue("ORD-2", 9000.0)
    assert ran == [10.0]
    assert [e["status"] for e in entries(governor, "result")] == ["ok"]


def test_sync_function_with_async_decider_is_a_config_error() -> None:
    client = AsyncLictorClient()
    with pytest.raises(ConfigError):

        @guard(client)
        def tool() -> None: ...


def test_jsonable_handles_what_tools_take_and_return() -> None:
    @dataclasses.dataclass
    class Point:
        x: int
        when: datetime

    value = {"p": Point(1, NOW), "s": {3}, "b": b"abc", "f": float("nan"), 1: (1, 2)}
    assert jsonable(value) == {
        "p": {"x": 1, "when": str(NOW)},
        "s": [3],
        "b": "<3 bytes>",
        "f": "nan",
        "1": [1, 2],
    }
    deep: Any = []
    for _ in range(40):
        deep = [deep]
    assert "..." in repr(jsonable(deep))
