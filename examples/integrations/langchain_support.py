"""A LangGraph agent whose tools are governed by Lictor, offline.

The model is LangChain's own fake chat model, scripted to do what a real one might on a
support ticket: first a refund with a decimal slip (8,900.00 instead of 89.00), which
the support policy denies, then the right refund, which it allows. The refusal reaches
the model as a tool error message, so the graph goes on. Run it:

    python examples/integrations/langchain_support.py

Decisions are made in process by a Governor over ``examples/support``, as if it were
Wednesday 10:00 in London (the policy holds refunds outside support hours).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool, tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from lictor.core.requests import Principal
from lictor.sdk import Guard
from lictor.sdk.integrations.langchain import govern_tools
from lictor.service.governor import Governor
from lictor.service.memory import FixedClock

SUPPORT = Path(__file__).resolve().parents[1] / "support"
WEDNESDAY_MORNING = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

issued: list[float] = []


@tool
def issue_refund(order: str, amount: float, currency: str = "GBP") -> str:
    """Refund part of an order to the customer."""
    issued.append(amount)
    return f"refunded {amount:.2f} {currency} on {order}"


class ScriptedChatModel(GenericFakeChatModel):
    """The fake model, able to take tools (it ignores them: its replies are scripted)."""

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        """Accept the tools, as a real chat model would; the script decides the calls."""
        return self


def script() -> list[AIMessage]:
    """The model's turns: the slip, the right refund, the final answer."""

    def refund(call_id: str, amount: float) -> AIMessage:
        args = {"order": "ORD-3391", "amount": amount, "currency": "GBP"}
        return AIMessage(
            content="", tool_calls=[{"name": "issue_refund", "args": args, "id": call_id}]
        )

    return [
        refund("call-1", 8900.0),
        refund("call-2", 89.0),
        AIMessage(content="The duplicate charge of 89.00 GBP is refunded."),
    ]


def build_graph(governor: Governor) -> Any:
    """The usual agent graph: a model node, LangGraph's ToolNode over governed tools."""
    guard = Guard(
        governor,
        agent_id="support-agent",
        principal=Principal("maria@corp.example", ("support",)),
        session_id="ticket-4821",
        labels=["finance"],
    )
    tools: list[BaseTool] = govern_tools(
        [issue_refund], guard, names={"issue_refund": "refunds.issue"}
    )
    model = ScriptedChatModel(messages=iter(script())).bind_tools(tools)

    def agent(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    graph.add_edge("agent", END)
    return graph.compile()


def main() -> list[BaseMessage]:
    """Run the scripted ticket; print and return the conversation."""
    governor = Governor.from_paths(
        SUPPORT / "policies", SUPPORT / "agents.yaml", clock=FixedClock(WEDNESDAY_MORNING)
    )
    graph = build_graph(governor)
    task = HumanMessage("Acme was charged twice for invoice 3391. Refund the duplicate 89.00.")
    messages: list[BaseMessage] = graph.invoke({"messages": [task]})["messages"]
    for message in messages:
        status = f" [{message.status}]" if isinstance(message, ToolMessage) else ""
        shown = message.content or getattr(message, "tool_calls", "")
        print(f"{message.type:>5}{status}: {shown}")
    print(f"refunds issued: {issued}")
    return messages


if __name__ == "__main__":
    main()
