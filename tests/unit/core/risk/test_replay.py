from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from lictor.core.decisions import Decision, Effect, Outcome, ResultReport, ResultStatus
from lictor.core.requests import ActionRequest, parse_request
from lictor.core.risk import replay
from lictor.core.risk.baseline import Baseline, BaselineConfig, CallFacts, ResultFacts
from lictor.core.risk.replay import replay_audit
from lictor.service.records import decision_entry, result_entry

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CONFIG = BaselineConfig(learning_observations=0, learning_seconds=0)


def request(tool: str, session: str | None = "s1", **arguments: Any) -> ActionRequest:
    body: dict[str, Any] = {"agent_id": "mail", "tool": tool, "arguments": arguments}
    if session:
        body["session_id"] = session
    body["resource"] = {"type": "mailbox", "id": "emma", "labels": ["internal"]}
    return parse_request(body)


def decided(req: ActionRequest, decision_id: str, at: datetime, outcome: Outcome) -> dict[str, Any]:
    decision = Decision(decision_id, outcome, (), "v1", at)
    return decision_entry(req, decision)


def test_replaying_history_gives_the_online_baseline() -> None:
    read = request("read_inbox")
    send = request("send_email", to=["bob@corp.example"])
    report = ResultReport(
        "d1",
        ResultStatus.OK,
        output={"items": [{"from": "ann@corp.example"}]},
        labels=("confidential",),
        effects=(Effect("email_sent", "bob@corp.example"),),
    )
    entries = [
        decided(read, "d1", T0, Outcome.ALLOW),
        result_entry(report, at=T0 + timedelta(seconds=1)),
        decided(send, "d2", T0 + timedelta(minutes=1), Outcome.ALLOW),
        decided(request("wire_money", to=["x@evil.example"]), "d3", T0, Outcome.DENY),
        decided(parse_request({"agent_id": "other", "tool": "rm"}), "d4", T0, Outcome.ALLOW),
        {"kind": "result", "decision_id": "unknown", "at": "2026-01-05T09:00:00Z"},
        {"kind": "decision", "at": "not a time"},
        {"kind": "decision", "at": "2026-01-05T09:00:00Z", "agent_id": "mail", "outcome": "allow"},
        "garbage",
    ]
    replayed = replay_audit(Baseline.empty(CONFIG), entries, "mail")

    online = Baseline.empty(CONFIG)
    read_facts = CallFacts.from_request(read)
    online = online.observe_call(read_facts, T0)
    online = online.observe_result(
        ResultFacts.from_report("read_inbox", report), T0 + timedelta(seconds=1)
    )
    online = online.observe_call(
        CallFacts.from_request(
            send,
            previous_tool="read_inbox",
            session_labels=read_facts.labels | {"confidential", "pii.email"},
        ),
        T0 + timedelta(minutes=1),
    )
    assert replayed == online
    assert "wire_money" not in replayed.tools


def test_redacted_arguments_and_outputs_still_teach_tools_and_labels() -> None:
    req = request("read_inbox", query="x")
    entry = decision_entry(req, Decision("d1", Outcome.ALLOW, (), "v1", T0), redact_arguments=True)
    result = result_entry(
        ResultReport("d1", ResultStatus.OK, output="secret", labels=("pii.email",)),
        at=T0,
        redact_output=True,
    )
    replayed = replay_audit(Baseline.empty(CONFIG), [entry, result], "mail")
    assert "read_inbox" in replayed.tools
    assert "pii.email" in replayed.labels
    assert replayed.results == 1


def test_results_whose_decision_was_forgotten_are_skipped(monkeypatch: Any) -> None:
    monkeypatch.setattr(replay, "MAX_PENDING", 1)
    entries = [
        decided(request("read_inbox"), "d1", T0, Outcome.ALLOW),
        decided(request("search", session=None), "d2", T0, Outcome.ALLOW),
        result_entry(ResultReport("d1", ResultStatus.OK, labels=("x",)), at=T0),
        result_entry(ResultReport("d2", ResultStatus.OK, labels=("y",)), at=T0),
    ]
    replayed = replay_audit(Baseline.empty(CONFIG), entries, "mail")
    assert replayed.results == 1
    assert "y" in replayed.labels
    assert "x" not in replayed.labels


def test_odd_but_readable_entries() -> None:
    entry = decided(request("read_inbox"), "d1", T0, Outcome.ALLOW)
    entry.update(decision_id=None, resource="mailbox", session_id=7)
    other_kind = {"kind": "review", "at": "2026-01-05T09:00:00Z"}
    replayed = replay_audit(Baseline.empty(CONFIG), [entry, other_kind], "mail")
    assert replayed.observations == 1
    assert len(replayed.resources) == 0
