"""Govern OpenAI Agents SDK function tools: every call is decided by Lictor first.

The installed SDK offers tool input guardrails and tool output guardrails, but a
decision and its result report belong together (the report names the decision), so
this integration wraps the tool's ``on_invoke_tool`` instead: decide, run the original
only on ``allow``, report what it returned. Name, description and JSON schema are
unchanged, so the model sees the same tool.

A refusal is returned as the tool's output, a message that tells the model the call
was refused and why, so the run goes on; pass ``on_blocked="raise"`` to fail the run
with :class:`~lictor.errors.ToolCallDenied` / :class:`~lictor.errors.ReviewRequired`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from agents import FunctionTool, Tool
from agents.tool_context import ToolContext

from lictor.errors import Blocked
from lictor.sdk.guard import Guard, refusal_message

__all__ = ["govern_function_tool", "govern_tools"]

OnBlocked = Literal["message", "raise"]


def _arguments(input_json: str) -> dict[str, Any]:
    """The model's arguments as a mapping; anything that is not a JSON object is kept whole."""
    try:
        value = json.loads(input_json) if input_json else {}
    except ValueError:
        return {"input": input_json}
    return value if isinstance(value, dict) else {"input": value}


def govern_function_tool(
    tool: FunctionTool,
    guard: Guard,
    *,
    lictor_name: str | None = None,
    on_blocked: OnBlocked = "message",
) -> FunctionTool:
    """Return ``tool`` governed by ``guard``.

    Args:
        tool: A ``FunctionTool`` (what ``@function_tool`` makes).
        guard: Who acts, and where decisions come from (sync or async decider).
        lictor_name: The tool name policies match (default: the tool's name).
        on_blocked: ``"message"`` to tell the model, ``"raise"`` to fail the run.
    """
    original = tool.on_invoke_tool
    name = lictor_name or tool.name

    async def invoke(context: ToolContext[Any], input_json: str) -> Any:
        async def run() -> Any:
            return await original(context, input_json)

        try:
            return await guard.acall(name, _arguments(input_json), run)
        except Blocked as exc:
            if on_blocked == "raise":
                raise
            return refusal_message(exc, tool.name)

    return dataclasses.replace(tool, on_invoke_tool=invoke)


def govern_tools(
    tools: Iterable[Tool],
    guard: Guard,
    *,
    names: Mapping[str, str] | None = None,
    on_blocked: OnBlocked = "message",
) -> list[Tool]:
    """Govern every function tool of a list; other kinds of tool are passed through.

    Hosted tools (web search, file search, ...) run on OpenAI's side, out of reach of a
    local decision; keep them out of an agent that must be governed.
    """
    names = names or {}
    return [
        govern_function_tool(t, guard, lictor_name=names.get(t.name), on_blocked=on_blocked)
        if isinstance(t, FunctionTool)
        else t
        for t in tools
    ]
