"""LangChain / LangGraph tools governed by Lictor; the offline example runs."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode

from lictor.core.requests import Principal
from lictor.errors import ReviewRequired
from lictor.sdk import Guard
from lictor.sdk.integrations.langchain import govern_tool
from lictor.service.governor import Governor
from lictor.service.memory import FixedClock, MemoryAudit

pytestmark = [pytest.mark.integration]

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "integrations" / "langchain_support.py"
SUPPORT = REPO / "examples" / "support"


def test_the_example_refuses_the_slip_and_issues_the_refund() -> None:
    example = runpy.run_path(str(EXAMPLE), run_name="example")
    messages = example["main"]()
    tool_messages = [m for m in messages if isinstance(m, ToolMessage)]
    assert [m.status for m in tool_messages] == ["error", "success"]
    assert "hard limit" in str(tool_messages[0].content)
    assert example["issued"] == [89.0]
    assert isinstance(messages[-1], AIMessage)


@pytest.fixture
def guard() -> Guard:
    from datetime import UTC, datetime

    governor = Governor.from_paths(
        SUPPORT / "policies",
        SUPPORT / "agents.yaml",
        clock=FixedClock(datetime(2026, 11, 25, 10, tzinfo=UTC)),
        audit=MemoryAudit(),
    )
    return Guard(
        governor, agent_id="support-agent", principal=Principal("maria@corp.example", ("support",))
    )


@tool
def refund(order: str, amount: float) -> str:
    """Refund an order."""
    return f"refunded {amount}"


def call(amount: float) -> AIMessage:
    args = {"order": "ORD-1", "amount": amount}
    return AIMessage(content="", tool_calls=[{"name": "refund", "args": args, "id": "c1"}])


@pytest.mark.anyio
async def test_tool_node_runs_governed_tools_async(guard: Guard) -> None:
    graph = StateGraph(MessagesState)
    graph.add_node("tools", ToolNode([govern_tool(refund, guard, lictor_name="refunds.issue")]))
    graph.add_edge(START, "tools")
    graph.add_edge("tools", END)
    node = graph.compile()
    allowed = await node.ainvoke({"messages": [call(10.0)]})
    assert allowed["messages"][-1].content == "refunded 10.0"
    held = await node.ainvoke({"messages": [call(500.0)]})
    assert held["messages"][-1].status == "error"
    assert "review" in held["messages"][-1].content


def test_blocked_calls_can_raise_instead(guard: Guard) -> None:
    governed = govern_tool(refund, guard, lictor_name="refunds.issue", on_blocked="raise")
    assert governed.name == "refund"
    assert governed.args == refund.args
    with pytest.raises(ReviewRequired):
        governed.invoke({"order": "ORD-1", "amount": 500.0})


@pytest.fixture
def anyio_backend() -> Any:
    return "asyncio"
