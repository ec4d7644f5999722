"""Govern LangChain tools: every call of a wrapped tool is decided by Lictor first.

:func:`govern_tool` returns a new tool with the same name, description and argument
schema, so a model (and LangGraph's ``ToolNode``) sees no difference. Each call is
decided by the :class:`~lictor.sdk.Guard`; on ``allow`` the original tool runs and its
result is reported. A refusal becomes a ``ToolException`` whose message tells the
model the call was refused and why (the tool message gets ``status="error"``), so an
agent loop goes on instead of crashing; pass ``on_blocked="raise"`` to get
:class:`~lictor.errors.ToolCallDenied` / :class:`~lictor.errors.ReviewRequired` instead.

Arguments injected by the framework (``InjectedToolCallId``, ``InjectedState``) are not
part of a wrapped tool's schema; govern tools that do not use them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from langchain_core.tools import BaseTool, StructuredTool, ToolException

from lictor.errors import Blocked
from lictor.sdk.guard import Guard, refusal_message

__all__ = ["govern_tool", "govern_tools"]

OnBlocked = Literal["message", "raise"]


def govern_tool(
    tool: BaseTool,
    guard: Guard,
    *,
    lictor_name: str | None = None,
    on_blocked: OnBlocked = "message",
) -> BaseTool:
    """Return ``tool`` governed by ``guard`` (see the module docstring).

    Args:
        tool: Any LangChain tool (``@tool`` functions, ``StructuredTool``, subclasses).
        guard: Who acts, and where decisions come from.
        lictor_name: The tool name policies match (default: the tool's own name), e.g.
            ``refunds.issue`` for a tool the model knows as ``issue_refund``.
        on_blocked: ``"message"`` to tell the model, ``"raise"`` to raise ``Blocked``.
    """
    name = lictor_name or tool.name

    def blocked(exc: Blocked) -> Exception:
        return exc if on_blocked == "raise" else ToolException(refusal_message(exc, tool.name))

    def run(**arguments: Any) -> Any:
        try:
            return guard.call(name, arguments, lambda: tool.invoke(arguments))
        except Blocked as exc:
            raise blocked(exc) from exc

    async def arun(**arguments: Any) -> Any:
        async def invoke() -> Any:
            return await tool.ainvoke(arguments)

        try:
            return await guard.acall(name, arguments, invoke)
        except Blocked as exc:
            raise blocked(exc) from exc

    return StructuredTool.from_function(
        func=run,
        coroutine=arun,
        name=tool.name,
        description=tool.description,
        args_schema=tool.args_schema,
        return_direct=tool.return_direct,
        handle_tool_error=True,
        infer_schema=False,
    )


def govern_tools(
    tools: Iterable[BaseTool],
    guard: Guard,
    *,
    names: Mapping[str, str] | None = None,
    on_blocked: OnBlocked = "message",
) -> list[BaseTool]:
    """Govern every tool of a list (for ``bind_tools`` and ``ToolNode``).

    ``names`` maps a tool's own name to the name policies match.
    """
    names = names or {}
    return [
        govern_tool(t, guard, lictor_name=names.get(t.name), on_blocked=on_blocked) for t in tools
    ]
