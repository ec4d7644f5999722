"""MCP messages in, Lictor requests and MCP answers out: the gateway's logic, sans-IO.

Nothing here reads or writes a stream, a socket or a file; :mod:`lictor.mcp_proxy.proxy`
does. That keeps every rule testable byte by byte (STYLE §1, after h11):

1. **Names.** Tools of upstream ``fs`` are exposed as ``fs.<tool>`` (MCP tool names may
   contain dots: spec 2025-11-25 "Tool names", SEP-986). Upstream names cannot contain
   the separator, so a namespaced name splits back at its first separator, uniquely.
2. **Visibility** (:func:`is_visible`): ``tools/list`` shows a tool only if the agent
   could be allowed to call it, judged statically, without running a decision: the
   agent is registered and active; no unconditional enforcing ``deny`` rule selects the
   tool; the inventory grants the tool or an explicit ``allow`` rule names it; and some
   ``allow`` or ``review`` rule could apply (otherwise the default deny would refuse
   every call). Conditions (CEL ``when``) are not evaluated: a tool that is allowed only
   for some arguments stays listed, and its calls are still decided one by one. Hiding
   is a courtesy to the model, never the enforcement.
3. **Answers.** A refusal is a tool result with ``isError: true`` whose text tells the
   model the call was refused and why (rule messages, the decision id) and never
   echoes arguments or risk internals. Unknown tools and malformed requests are
   JSON-RPC errors (spec: "Protocol errors").
4. **Framing.** stdio carries one JSON-RPC message per line (spec "Transports"); a line
   longer than the cap is dropped whole and answered with an error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import mcp.types as types
from mcp.shared.message import SessionMessage
from mcp_types import INVALID_REQUEST, PARSE_ERROR, ErrorData, JSONRPCError
from pydantic import ValidationError

from lictor.core.agents import Agent, AgentStatus
from lictor.core.decisions import Decision, Outcome, ResultReport, ResultStatus
from lictor.core.policy import CompiledPolicy
from lictor.core.requests import ActionRequest, AgentId, Context, Principal, SessionId
from lictor.sdk.deciders import RequestLike

CONTEXT_META_KEY: Final = "lictor/context"
"""``_meta`` key of a ``tools/call`` under which a client may pass business context
(``task``, ``purpose``, ``ticket``) for the decision."""

DECISION_META_KEY: Final = "lictor/decision"
"""``_meta`` key of a gateway answer carrying the decision id and outcome."""

DEFAULT_OUTPUT_LIMIT_CHARS: Final = 16_384


# -- names -----------------------------------------------------------------------------------


def namespaced(upstream: str, tool: str, separator: str = ".") -> str:
    """Return the name a client sees for ``tool`` of ``upstream``."""
    return f"{upstream}{separator}{tool}"


def split_name(name: str, separator: str = ".") -> tuple[str, str] | None:
    """Return ``(upstream, tool)`` for a namespaced name, or None if it has no prefix."""
    upstream, found, tool = name.partition(separator)
    if not found or not upstream or not tool:
        return None
    return upstream, tool


def exposed(tool: types.Tool, name: str) -> types.Tool:
    """Return the upstream's tool definition under its namespaced name."""
    return tool.model_copy(update={"name": name})


# -- visibility ------------------------------------------------------------------------------


def is_visible(
    policy: CompiledPolicy, agent: Agent | None, agent_id: str, tool: str, server: str | None
) -> bool:
    """Return whether ``tools/list`` should show ``tool`` to this agent (see rule 2)."""
    if agent is None or agent.status is not AgentStatus.ACTIVE:
        return False
    candidates = policy.candidates(tool, server, agent_id, agent)
    if any(c.rule.when is None for c in candidates.deny):
        return False
    if not agent.is_tool_allowed(tool) and not candidates.granting:
        return False
    return bool(candidates.allow or candidates.review)


# -- requests --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling through the gateway: agent, Lictor session and principal.

    ``agent_id`` is None when a remote server takes the agent from the credential.
    """

    agent_id: str | None
    session_id: str | None = None
    principal: str | None = None


def call_context(meta: Mapping[str, Any] | None) -> Context:
    """Read business context from a request's ``_meta`` (:data:`CONTEXT_META_KEY`).

    Only string values are taken; anything else is ignored rather than refused, since
    ``_meta`` is advisory and must not make an otherwise valid call fail.
    """
    raw = (meta or {}).get(CONTEXT_META_KEY)
    if not isinstance(raw, Mapping):
        return Context()
    values = {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, str)}
    return Context(
        task=values.pop("task", ""),
        purpose=values.pop("purpose", ""),
        ticket=values.pop("ticket", ""),
        parent_decision_id=values.pop("parent_decision_id", None),
        extra=values,
    )


def action_request(
    caller: Caller,
    tool: str,
    server: str,
    arguments: Mapping[str, Any] | None,
    meta: Mapping[str, Any] | None = None,
) -> RequestLike:
    """Build the action request for one ``tools/call``.

    ``tool`` is the namespaced name (what policies match) and ``server`` the upstream.
    Without an agent id the wire form is returned without ``agent_id``, for a remote
    server that takes the identity from the bearer credential.
    """
    request = ActionRequest(
        agent_id=AgentId(caller.agent_id or ""),
        tool=tool,
        principal=Principal(caller.principal) if caller.principal else None,
        session_id=SessionId(caller.session_id) if caller.session_id else None,
        server=server,
        arguments=dict(arguments or {}),
        context=call_context(meta),
    )
    if caller.agent_id:
        return request
    wire = request.to_json()
    del wire["agent_id"]
    return wire


def argument_bytes(arguments: Mapping[str, Any] | None) -> int:
    """Return the size of the arguments as compact UTF-8 JSON (what the cap limits)."""
    if not arguments:
        return 0
    text = json.dumps(arguments, ensure_ascii=False, separators=(",", ":"), default=str)
    return len(text.encode("utf-8", "surrogatepass"))


# -- answers ---------------------------------------------------------------------------------


def _text_result(text: str, meta: dict[str, Any] | None = None) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], is_error=True, meta=meta
    )


def _decision_meta(decision: Decision) -> dict[str, Any]:
    return {
        DECISION_META_KEY: {
            "decision_id": decision.decision_id,
            "outcome": decision.outcome.value,
            "rules": [r.rule for r in decision.reasons],
            "review_id": decision.review_id,
        }
    }


def _because(decision: Decision) -> str:
    reasons = [r.message or r.rule for r in decision.reasons]
    return "; ".join(dict.fromkeys(reasons)) or "no rule allows it"


def refused_result(decision: Decision, tool: str) -> types.CallToolResult:
    """The answer to a denied call: refused, why, and that nothing ran."""
    text = (
        f"Lictor refused this call to {tool}: {_because(decision)}. The tool was not run. "
        f"Do not retry the same call; ask the user how to proceed if it is needed. "
        f"(decision {decision.decision_id})"
    )
    return _text_result(text, _decision_meta(decision))


def held_result(decision: Decision, tool: str) -> types.CallToolResult:
    """The answer to a call held for review (until review verdicts can be waited for)."""
    ticket = f", review {decision.review_id}" if decision.review_id else ""
    text = (
        f"Lictor is holding this call to {tool} for human review: {_because(decision)}. "
        f"The tool was not run; a reviewer must approve it first. "
        f"(decision {decision.decision_id}{ticket})"
    )
    return _text_result(text, _decision_meta(decision))


def failed_result(text: str) -> types.CallToolResult:
    """An error answer the model can read (the gateway or an upstream failed)."""
    return _text_result(text)


def output_of(result: types.CallToolResult, limit: int = DEFAULT_OUTPUT_LIMIT_CHARS) -> Any:
    """Return a result's output for the report: structured content, else its text.

    Non-text content is summarised by type (an image is not audit material), and the
    whole is cut at ``limit`` characters.
    """
    if result.structured_content is not None:
        output: Any = result.structured_content
    else:
        parts: list[Any] = []
        for block in result.content:
            if isinstance(block, types.TextContent):
                parts.append(block.text)
            else:
                parts.append({"type": block.type})
        output = parts[0] if len(parts) == 1 else parts
    text = output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)
    if len(text) > limit:
        return text[:limit] + f"... [truncated, {len(text)} characters]"
    return output


def result_report(
    decision: Decision,
    result: types.CallToolResult,
    labels: tuple[str, ...] = (),
    limit: int = DEFAULT_OUTPUT_LIMIT_CHARS,
) -> ResultReport:
    """Return the report of an allowed call that the upstream answered."""
    return ResultReport(
        decision_id=decision.decision_id,
        status=ResultStatus.ERROR if result.is_error else ResultStatus.OK,
        output=output_of(result, limit),
        labels=labels,
    )


def error_report(decision: Decision, message: str, labels: tuple[str, ...] = ()) -> ResultReport:
    """Return the report of an allowed call that failed before the upstream answered."""
    return ResultReport(
        decision_id=decision.decision_id, status=ResultStatus.ERROR, output=message, labels=labels
    )


def is_blocked_outcome(decision: Decision) -> bool:
    """Return whether the decision keeps the call from running."""
    return decision.outcome is not Outcome.ALLOW


# -- audit entries of the gateway's own refusals ----------------------------------------------


def event_entry(
    event: str,
    problem: str,
    *,
    at: str,
    agent_id: str | None,
    tool: str | None = None,
    server: str | None = None,
    session_id: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return an audit entry for something the gateway refused or saw without a decision.

    The shape is the core's ``rejected`` entry (so exports and queries treat it as a
    refused request), plus ``event`` naming what happened and the upstream ``server``.
    """
    entry: dict[str, Any] = {
        "v": 1,
        "kind": "rejected",
        "at": at,
        "agent_id": agent_id,
        "tool": tool,
        "problem": problem,
        "pointer": "",
        "source": "mcp-proxy",
        "event": event,
        "server": server,
        "session_id": session_id,
    }
    if detail:
        entry["detail"] = dict(detail)
    return entry


# -- stdio framing ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Oversized:
    """A line longer than the cap was dropped; ``size`` is how many bytes were seen."""

    size: int


@dataclass(slots=True)
class LineFramer:
    """Splits a byte stream into newline-terminated lines, bounded in size.

    Feed it any chunking of the stream (whole, byte by byte, with trailing bytes): the
    lines come out the same. A line over ``max_line_bytes`` is dropped, reported once as
    :class:`Oversized`, and skipped up to its newline, so memory stays bounded.
    """

    max_line_bytes: int = 4 * 1024 * 1024
    _buffer: bytearray = field(default_factory=bytearray)
    _skipping: int = 0

    def feed(self, data: bytes) -> list[bytes | Oversized]:
        """Add bytes; return the complete lines (without the newline) and oversize notices."""
        out: list[bytes | Oversized] = []
        start = 0
        while start < len(data):
            end = data.find(b"\n", start)
            chunk = data[start:] if end < 0 else data[start:end]
            if self._skipping:
                self._skipping += len(chunk)
                if end >= 0:
                    out.append(Oversized(self._skipping))
                    self._skipping = 0
            elif len(self._buffer) + len(chunk) > self.max_line_bytes:
                self._skipping = len(self._buffer) + len(chunk)
                self._buffer.clear()
                if end >= 0:
                    out.append(Oversized(self._skipping))
                    self._skipping = 0
            else:
                self._buffer += chunk
                if end >= 0:
                    out.append(bytes(self._buffer))
                    self._buffer.clear()
            if end < 0:
                break
            start = end + 1
        return out

    def close(self) -> list[bytes | Oversized]:
        """End of stream: a last line without a newline still counts."""
        if self._skipping:
            size, self._skipping = self._skipping, 0
            return [Oversized(size)]
        if self._buffer.strip():
            line = bytes(self._buffer)
            self._buffer.clear()
            return [line]
        self._buffer.clear()
        return []


def parse_line(line: bytes) -> SessionMessage | JSONRPCError | None:
    """Parse one stdio line into a message, or the JSON-RPC error to answer it with.

    Blank lines are ignored (None). Not JSON is ``-32700 Parse error`` with a null id;
    JSON that is not a JSON-RPC message is ``-32600 Invalid Request``, with the id when
    one can be read (JSON-RPC 2.0 §5).
    """
    text = line.rstrip(b"\r")
    if not text.strip():
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return JSONRPCError(
            jsonrpc="2.0",
            id=None,
            error=ErrorData(code=PARSE_ERROR, message=f"Parse error: {exc}"),
        )
    try:
        message = types.jsonrpc_message_adapter.validate_python(data, by_name=False)
    except ValidationError:
        ident = data.get("id") if isinstance(data, dict) else None
        if isinstance(ident, bool) or not isinstance(ident, str | int):
            ident = None
        return JSONRPCError(
            jsonrpc="2.0",
            id=ident,
            error=ErrorData(
                code=INVALID_REQUEST, message="Invalid Request: not a JSON-RPC message"
            ),
        )
    return SessionMessage(message)


def oversized_error(size: int, limit: int) -> JSONRPCError:
    """The answer to a dropped oversized line (its id could not be read)."""
    return JSONRPCError(
        jsonrpc="2.0",
        id=None,
        error=ErrorData(
            code=INVALID_REQUEST,
            message=f"Invalid Request: message of {size} bytes exceeds the limit of {limit}",
        ),
    )
