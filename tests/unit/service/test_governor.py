"""The Governor: decide, audit before answering, fail closed, sessions, reports, reloads."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lictor.core.agents import Agent, AgentStatus
from lictor.core.decisions import Decision, Outcome, ReasonCode, format_time
from lictor.core.policy import CompiledPolicy, SessionFacts, compile_policy
from lictor.core.policy.parse import parse_rules
from lictor.core.requests import ActionRequest, AgentId, parse_request
from lictor.errors import Conflict, InvalidToolCall, NotFound, PolicyError, StoreError
from lictor.service.governor import Governor
from lictor.service.memory import FixedClock, MemoryAgents, MemoryAudit, MemorySessions
from lictor.service.records import digest

NOW = datetime(2026, 1, 5, 10, 0, 0, 123_456, tzinfo=UTC)
BOT = Agent(id=AgentId("bot"), allowed_tools=("read", "send", "search"))
RULES: list[dict[str, Any]] = [
    {"id": "read", "effect": "allow", "match": {"tools": ["read", "search"]}},
    {"id": "send", "effect": "allow", "match": {"tools": ["send"]}, "message": "may send"},
    {
        "id": "no-send-after-confidential",
        "effect": "deny",
        "match": {"tools": ["send"]},
        "when": "'confidential' in session.labels",
    },
    {"id": "big", "effect": "review", "when": "has(arguments.n) && arguments.n > 100"},
]


def compiled(rules: list[dict[str, Any]] = RULES, version: str = "sha256:v1") -> CompiledPolicy:
    return compile_policy(parse_rules(rules), version=version)


class FailingAudit:
    """An audit log whose store is down: every append fails."""

    def __init__(self) -> None:
        self.attempts: list[Mapping[str, Any]] = []

    def append(self, entry: Mapping[str, Any]) -> None:
        self.attempts.append(entry)
        raise StoreError("disk full")

    def find_decision(self, decision_id: str) -> Mapping[str, Any] | None:
        return None


class BrokenAgents:
    """An inventory whose backend raises on every lookup."""

    def get(self, agent_id: str) -> Agent | None:
        raise RuntimeError("inventory backend exploded")


class BrokenSessions(MemorySessions):
    """A session store that cannot read facts."""

    def facts(self, session_id: str) -> SessionFacts:
        raise OSError("session store unreachable")


def governor(**kwargs: Any) -> tuple[Governor, MemoryAudit]:
    audit = MemoryAudit()
    built = Governor(
        kwargs.pop("policy", compiled()),
        kwargs.pop("agents", MemoryAgents([BOT])),
        audit=kwargs.pop("audit", audit),
        clock=FixedClock(NOW),
        **kwargs,
    )
    return built, audit


def call(**fields: Any) -> dict[str, Any]:
    return {"agent_id": "bot", "tool": "read", **fields}


# --- decide and audit -------------------------------------------------------------------


def test_decision_is_audited_with_who_what_why_and_verdict() -> None:
    gov, audit = governor()
    request = call(
        tool="send",
        arguments={"to": "bob@corp.example"},
        context={"task": "mail bob", "ticket": "T-1"},
        session_id="run-1",
        principal={"id": "emma"},
    )

    decision = gov.decide(request, credential_id="cred-1", source="http")

    (entry,) = audit.entries
    assert entry["kind"] == "decision"
    assert entry["decision_id"] == decision.decision_id
    assert entry["agent_id"] == "bot"
    assert entry["tool"] == "send"
    assert entry["arguments"] == {"to": "bob@corp.example"}
    assert entry["arguments_digest"] == digest({"to": "bob@corp.example"})
    assert entry["context"]["task"] == "mail bob"
    assert entry["context"]["ticket"] == "T-1"
    assert entry["session_id"] == "run-1"
    assert entry["principal"]["id"] == "emma"
    assert entry["outcome"] == "allow"
    assert entry["reasons"] == [
        {"rule": "send", "effect": "allow", "message": "may send", "code": "rule"}
    ]
    assert entry["policy_version"] == "sha256:v1"
    assert entry["at"] == format_time(NOW)
    assert (entry["credential_id"], entry["source"]) == ("cred-1", "http")
    assert audit.find_decision(decision.decision_id) is entry


def test_decision_carries_policy_version_and_millisecond_clock_time() -> None:
    gov, _ = governor()

    decision = gov.decide(call())

    assert decision.outcome is Outcome.ALLOW
    assert decision.policy_version == "sha256:v1"
    assert decision.decided_at == NOW.replace(microsecond=123_000)
    assert len(decision.decision_id) == 26


def test_every_decision_gets_its_own_id() -> None:
    gov, audit = governor()

    ids = {gov.decide(call()).decision_id for _ in range(20)}

    assert len(ids) == 20
    assert len(audit.entries) == 20


def test_parsed_requests_are_accepted_as_is() -> None:
    gov, audit = governor()

    decision = gov.decide(parse_request(call(tool="search")))

    assert decision.outcome is Outcome.ALLOW
    assert audit.entries[0]["tool"] == "search"


def test_denials_and_reviews_are_audited_too() -> None:
    gov, audit = governor()

    review = gov.decide(call(arguments={"n": 500}))
    deny = gov.decide(call(agent_id="stranger"))

    assert (review.outcome, deny.outcome) == (Outcome.REVIEW, Outcome.DENY)
    assert [e["outcome"] for e in audit.entries] == ["review", "deny"]
    assert audit.entries[1]["reasons"][0]["rule"] == "lictor/unknown-agent"


def test_redaction_drops_arguments_but_keeps_their_digest() -> None:
    arguments = {"card": "4111 1111 1111 1111", "amount": 12}
    plain_gov, plain = governor()
    redacted_gov, redacted = governor(redact_arguments=True)

    plain_gov.decide(call(arguments=arguments))
    redacted_gov.decide(call(arguments=arguments))

    assert redacted.entries[0]["arguments"] is None
    assert redacted.entries[0]["arguments_digest"] == plain.entries[0]["arguments_digest"]
    assert redacted.entries[0]["arguments_digest"] == digest(arguments)
    assert "4111" not in json.dumps(redacted.entries[0])


def test_unrecordable_decision_is_denied_as_audit_unavailable() -> None:
    audit = FailingAudit()
    gov, _ = governor(audit=audit)

    decision = gov.decide(call())

    assert decision.outcome is Outcome.DENY
    assert [(r.rule, r.code) for r in decision.reasons] == [
        ("lictor/audit-unavailable", ReasonCode.EVALUATION_ERROR)
    ]
    assert [e["outcome"] for e in audit.attempts] == ["allow"]


def test_unrecorded_allow_does_not_count_in_the_session() -> None:
    sessions = MemorySessions()
    gov, _ = governor(audit=FailingAudit(), sessions=sessions)

    gov.decide(call(session_id="s1", resource={"labels": ["confidential"]}))

    assert sessions.facts("s1") == SessionFacts(id="s1")


def test_exception_while_deciding_denies_with_evaluation_error_and_is_audited() -> None:
    gov, audit = governor(agents=BrokenAgents())

    decision = gov.decide(call())

    assert decision.outcome is Outcome.DENY
    assert [(r.rule, r.code) for r in decision.reasons] == [
        ("lictor/evaluation-error", ReasonCode.EVALUATION_ERROR)
    ]
    (entry,) = audit.entries
    assert (entry["decision_id"], entry["outcome"]) == (decision.decision_id, "deny")


def test_broken_session_store_denies_with_evaluation_error() -> None:
    gov, audit = governor(sessions=BrokenSessions())

    decision = gov.decide(call(session_id="s1"))

    assert decision.reasons[0].code is ReasonCode.EVALUATION_ERROR
    assert audit.entries[0]["outcome"] == "deny"


def test_malformed_request_raises_and_is_audited_as_rejected() -> None:
    gov, audit = governor()

    with pytest.raises(InvalidToolCall) as caught:
        gov.decide({"agent_id": "bot", "tool": "read", "argumnets": {}}, source="http")

    assert caught.value.pointer == "/argumnets"
    (entry,) = audit.entries
    assert entry["kind"] == "rejected"
    assert (entry["agent_id"], entry["tool"]) == ("bot", "read")
    assert entry["pointer"] == "/argumnets"
    assert entry["source"] == "http"
    assert entry["at"] == format_time(NOW.replace(microsecond=123_000))


def test_rejected_request_that_is_not_an_object_is_audited_without_names() -> None:
    gov, audit = governor()

    with pytest.raises(InvalidToolCall):
        gov.decide(["not", "an", "object"])  # type: ignore[arg-type]  # hostile input

    assert (audit.entries[0]["kind"], audit.entries[0]["agent_id"]) == ("rejected", None)


def test_malformed_request_still_raises_when_the_audit_is_down() -> None:
    gov, _ = governor(audit=FailingAudit())

    with pytest.raises(InvalidToolCall):
        gov.decide({"agent_id": "bot"})


def test_wire_request_with_a_number_json_cannot_hold_is_rejected_and_audited() -> None:
    gov, audit = governor()
    raw = json.loads('{"agent_id": "bot", "tool": "read", "arguments": {"x": 1e999}}')

    with pytest.raises(InvalidToolCall) as caught:
        gov.decide(raw)

    assert caught.value.pointer == "/arguments/x"
    assert [(e["kind"], e["pointer"]) for e in audit.entries] == [("rejected", "/arguments/x")]


@pytest.mark.parametrize("value", [float("inf"), float("nan"), "\ud800", b"bytes"])
def test_in_process_request_that_json_cannot_hold_is_denied_and_audited(value: object) -> None:
    gov, audit = governor()
    request = ActionRequest(agent_id=AgentId("bot"), tool="read", arguments={"x": value})

    decision = gov.decide(request)

    assert decision.outcome is Outcome.DENY
    assert [(r.rule, r.code) for r in decision.reasons] == [
        ("lictor/unrecordable-request", ReasonCode.EVALUATION_ERROR)
    ]
    (entry,) = audit.entries
    assert (entry["decision_id"], entry["outcome"]) == (decision.decision_id, "deny")


# --- sessions ---------------------------------------------------------------------------


def test_confidential_data_read_in_a_session_blocks_later_sends_in_that_session() -> None:
    gov, _ = governor()

    read = gov.decide(call(session_id="s1", resource={"labels": ["confidential"]}))
    same = gov.decide(call(tool="send", session_id="s1"))
    other = gov.decide(call(tool="send", session_id="s2"))
    no_session = gov.decide(call(tool="send"))

    assert read.outcome is Outcome.ALLOW
    assert (same.outcome, same.reasons[0].rule) == (Outcome.DENY, "no-send-after-confidential")
    assert other.outcome is Outcome.ALLOW
    assert no_session.outcome is Outcome.ALLOW


def test_denied_call_does_not_add_its_labels_to_the_session() -> None:
    gov, _ = governor()

    denied = gov.decide(call(tool="delete", session_id="s1", resource={"labels": ["confidential"]}))

    assert denied.outcome is Outcome.DENY
    assert gov.decide(call(tool="send", session_id="s1")).outcome is Outcome.ALLOW


def test_allowed_calls_are_counted_per_tool() -> None:
    velocity = {
        "id": "velocity",
        "effect": "deny",
        "match": {"tools": ["search"]},
        "when": "session.counters.?search.orValue(0) >= 2",
    }
    gov, _ = governor(policy=compiled([*RULES, velocity]))

    outcomes = [gov.decide(call(tool="search", session_id="s1")).outcome for _ in range(3)]

    assert outcomes == [Outcome.ALLOW, Outcome.ALLOW, Outcome.DENY]


# --- reports ----------------------------------------------------------------------------


def test_labels_reported_after_a_call_affect_later_decisions_in_its_session() -> None:
    gov, audit = governor()
    read = gov.decide(call(session_id="s1"))

    gov.report({"decision_id": read.decision_id, "status": "ok", "labels": ["confidential"]})

    assert gov.decide(call(tool="send", session_id="s1")).outcome is Outcome.DENY
    assert gov.decide(call(tool="send", session_id="s2")).outcome is Outcome.ALLOW
    result = audit.entries[1]
    assert (result["kind"], result["decision_id"]) == ("result", read.decision_id)
    assert result["labels"] == ["confidential"]


def test_report_is_audited_with_output_digest() -> None:
    gov, audit = governor()
    read = gov.decide(call())

    gov.report({"decision_id": read.decision_id, "status": "error", "output": "timeout"})

    result = audit.entries[-1]
    assert (result["status"], result["output"]) == ("error", "timeout")
    assert result["output_digest"] == digest("timeout")


def test_report_for_an_unknown_decision_is_not_found() -> None:
    gov, _ = governor()

    with pytest.raises(NotFound) as caught:
        gov.report({"decision_id": "01NOPE", "status": "ok"})

    assert (caught.value.kind, caught.value.id) == ("decision", "01NOPE")


@pytest.mark.parametrize("fields", [{"tool": "delete"}, {"arguments": {"n": 1000}}])
def test_report_for_a_decision_that_was_not_allowed_is_a_conflict(fields: dict[str, Any]) -> None:
    gov, audit = governor()
    decision = gov.decide(call(session_id="s1", **fields))
    assert decision.outcome is not Outcome.ALLOW

    with pytest.raises(Conflict) as caught:
        gov.report({"decision_id": decision.decision_id, "status": "ok", "labels": ["x"]})

    assert caught.value.id == decision.decision_id
    assert len(audit.entries) == 1


def test_malformed_report_is_invalid() -> None:
    gov, _ = governor()

    with pytest.raises(InvalidToolCall) as caught:
        gov.report({"decision_id": "x", "status": "fine"})

    assert caught.value.pointer == "/status"


# --- reload -----------------------------------------------------------------------------

GOOD = "rules:\n  - {id: read, effect: allow, match: {tools: [read]}}\n"
STRICTER = "rules:\n  - {id: nothing, effect: allow, match: {tools: [nothing]}}\n"


def bundle(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "p.yaml").write_text(text, encoding="utf-8")
    return root


def test_reload_with_a_broken_bundle_keeps_the_old_policy_live(tmp_path: Path) -> None:
    root = bundle(tmp_path / "policies", GOOD)
    gov = Governor.from_paths(root, [BOT], clock=FixedClock(NOW))
    version = gov.policy.version
    bundle(root, GOOD + "  - {id: broken, effect: deny, when: 'tool =='}\n")

    with pytest.raises(PolicyError):
        gov.reload(root)

    assert gov.policy.version == version
    decision = gov.decide(call())
    assert (decision.outcome, decision.policy_version) == (Outcome.ALLOW, version)


def test_reload_with_a_good_bundle_swaps_the_policy(tmp_path: Path) -> None:
    root = bundle(tmp_path / "policies", GOOD)
    gov = Governor.from_paths(root, [BOT], clock=FixedClock(NOW))
    old = gov.policy.version
    bundle(root, STRICTER)

    new = gov.reload(root)

    assert new != old
    assert gov.policy.version == new
    decision = gov.decide(call())
    assert (decision.outcome, decision.policy_version) == (Outcome.DENY, new)


def test_swap_policy_returns_the_old_one() -> None:
    gov, _ = governor()
    old = gov.policy
    replacement = compiled(version="sha256:v2")

    assert gov.swap_policy(replacement) is old
    assert gov.decide(call()).policy_version == "sha256:v2"


def test_from_paths_reads_the_inventory_file(tmp_path: Path) -> None:
    root = bundle(tmp_path / "policies", GOOD)
    inventory = tmp_path / "agents.yaml"
    inventory.write_text(
        "agents:\n  - {id: bot, allowed_tools: [read]}\n  - {id: old, status: retired}\n",
        encoding="utf-8",
    )
    gov = Governor.from_paths(root, inventory, clock=FixedClock(NOW))

    assert gov.decide(call()).outcome is Outcome.ALLOW
    retired = gov.decide(call(agent_id="old"))
    assert retired.reasons[0].rule == f"lictor/agent-{AgentStatus.RETIRED.value}"


def test_decisions_serialise_to_the_wire_form() -> None:
    gov, _ = governor()

    decision = gov.decide(call(arguments={"n": 500}))

    assert Decision.from_json(json.loads(json.dumps(decision.to_json()))) == decision
