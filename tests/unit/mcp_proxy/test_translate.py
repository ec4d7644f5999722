"""The gateway's sans-IO logic: names, visibility, requests, answers, reports, framing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import mcp.types as types
import pytest
from mcp.shared.message import SessionMessage
from mcp_types import INVALID_REQUEST, PARSE_ERROR, JSONRPCError

from lictor.core.agents import AgentStatus
from lictor.core.decisions import Decision, Outcome, Reason, ResultStatus
from lictor.core.requests import ActionRequest
from lictor.mcp_proxy import translate
from lictor.mcp_proxy.translate import Caller, LineFramer, Oversized
from lictor.service.memory import MemoryAgents
from lictor.service.policies import load_bundle, load_inventory

DATA = Path(__file__).resolve().parents[2] / "integration" / "mcp" / "gateway" / "data"
AT = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def decision(outcome: Outcome, *messages: str) -> Decision:
    return Decision(
        decision_id="01DEC",
        outcome=outcome,
        reasons=tuple(Reason(f"r/{i}", outcome, m) for i, m in enumerate(messages)),
        policy_version="sha256:x",
        decided_at=AT,
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("fs.write_file", ("fs", "write_file")),
        ("fs.a.b", ("fs", "a.b")),  # upstream tool names may contain dots
        ("nodot", None),
        (".x", None),
        ("fs.", None),
    ],
)
def test_split_name(name: str, expected: tuple[str, str] | None) -> None:
    assert translate.split_name(name) == expected


def test_namespacing_round_trips() -> None:
    assert translate.split_name(translate.namespaced("fs", "read.file")) == ("fs", "read.file")
    assert translate.namespaced("fs", "x", "__") == "fs__x"


@pytest.mark.parametrize(
    ("agent_id", "tool", "visible"),
    [
        ("notes-agent", "time.get_current_time", True),
        ("notes-agent", "time.convert_time", False),  # unconditional deny
        ("notes-agent", "fs.edit_file", False),  # only a conditional deny: default deny
        ("notes-agent", "fs.write_file", True),  # allowed unless the path is protected
        ("notes-agent", "fs.move_file", True),  # review: may be approved
        ("clock-only", "fs.write_file", False),  # the allow rule selects notes-agent only
        ("clock-only", "time.get_current_time", True),
        ("nobody", "time.get_current_time", False),
    ],
)
def test_visibility_is_static(agent_id: str, tool: str, visible: bool) -> None:
    bundle = load_bundle(DATA / "policies")
    agents = MemoryAgents(load_inventory(DATA / "agents.yaml"))
    server = tool.split(".")[0]
    assert (
        translate.is_visible(bundle.policy, agents.get(agent_id), agent_id, tool, server) is visible
    )


def test_suspended_agent_sees_nothing() -> None:
    from dataclasses import replace

    bundle = load_bundle(DATA / "policies")
    agent = load_inventory(DATA / "agents.yaml")[0]
    suspended = replace(agent, status=AgentStatus.SUSPENDED)
    assert not translate.is_visible(
        bundle.policy, suspended, agent.id, "time.get_current_time", "time"
    )


def test_request_carries_identity_tool_server_and_context() -> None:
    request = translate.action_request(
        Caller("notes-agent", "s-1", "emma@corp.example"),
        "fs.write_file",
        "fs",
        {"path": "/a"},
        {"lictor/context": {"task": "notes", "ticket": "T-1", "n": 3, "team": "ops"}},
    )
    assert isinstance(request, ActionRequest)
    assert (request.agent_id, request.session_id, request.tool, request.server) == (
        "notes-agent",
        "s-1",
        "fs.write_file",
        "fs",
    )
    assert request.principal is not None
    assert request.principal.id == "emma@corp.example"
    assert (request.context.task, request.context.ticket) == ("notes", "T-1")
    assert request.context.extra == {"team": "ops"}  # non-string values are ignored


def test_request_without_agent_leaves_identity_to_the_server() -> None:
    wire = translate.action_request(Caller(None), "fs.read", "fs", None)
    assert isinstance(wire, dict)
    assert "agent_id" not in wire
    assert wire["arguments"] == {}


def test_argument_bytes_counts_utf8() -> None:
    assert translate.argument_bytes(None) == 0
    assert translate.argument_bytes({"a": "é"}) == len('{"a":"é"}'.encode())


def test_refusal_says_why_and_never_echoes_arguments() -> None:
    result = translate.refused_result(decision(Outcome.DENY, "No secrets", "No secrets"), "x.y")
    assert result.is_error
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    assert block.text.count("No secrets") == 1
    assert "was not run" in block.text
    assert result.meta is not None
    assert result.meta["lictor/decision"]["outcome"] == "deny"


def test_held_result_names_the_review() -> None:
    held = translate.held_result(decision(Outcome.REVIEW, "A person decides"), "x.y")
    block = held.content[0]
    assert isinstance(block, types.TextContent)
    assert "review" in block.text


def test_reports_take_structured_content_or_text() -> None:
    allowed = decision(Outcome.ALLOW)
    structured = types.CallToolResult(content=[], structured_content={"a": 1})
    assert translate.result_report(allowed, structured).output == {"a": 1}
    texts = types.CallToolResult(
        content=[
            types.TextContent(type="text", text="one"),
            types.ImageContent(type="image", data="AAAA", mime_type="image/png"),
        ],
        is_error=True,
    )
    report = translate.result_report(allowed, texts, ("pii",))
    assert report.status is ResultStatus.ERROR
    assert report.output == ["one", {"type": "image"}]
    assert report.labels == ("pii",)
    long = types.CallToolResult(content=[types.TextContent(type="text", text="z" * 50)])
    assert translate.output_of(long, limit=10).endswith("[truncated, 50 characters]")
    failed = translate.error_report(allowed, "timeout")
    assert (failed.status, failed.output) == (ResultStatus.ERROR, "timeout")


def test_event_entries_are_rejected_entries_with_an_event() -> None:
    entry = translate.event_entry(
        "unknown_tool", "no tool", at="t", agent_id="a", tool="x.y", server="x", detail={"k": 1}
    )
    assert entry["kind"] == "rejected"
    assert entry["event"] == "unknown_tool"
    assert entry["detail"] == {"k": 1}


def test_framer_splits_lines_and_drops_oversized_ones() -> None:
    framer = LineFramer(max_line_bytes=8)
    assert framer.feed(b"ab\ncd") == [b"ab"]
    assert framer.feed(b"e\n0123456789") == [b"cde"]
    assert framer.feed(b"abc\nok\n") == [Oversized(13), b"ok"]
    assert framer.feed(b"tail") == []
    assert framer.close() == [b"tail"]
    assert framer.close() == []


def test_parse_line_answers_bad_input_with_jsonrpc_errors() -> None:
    assert translate.parse_line(b"  \r") is None
    not_json = translate.parse_line(b"{oops")
    assert isinstance(not_json, JSONRPCError)
    assert (not_json.id, not_json.error.code) == (None, PARSE_ERROR)
    not_rpc = translate.parse_line(b'{"id": 3, "hello": 1}')
    assert isinstance(not_rpc, JSONRPCError)
    assert (not_rpc.id, not_rpc.error.code) == (3, INVALID_REQUEST)
    ok = translate.parse_line(b'{"jsonrpc":"2.0","id":1,"method":"ping"}\r')
    assert isinstance(ok, SessionMessage)
    assert translate.oversized_error(10, 5).error.code == INVALID_REQUEST
