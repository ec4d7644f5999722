"""Tests for the JSON Lines and OCSF exports; every OCSF event is schema-validated."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]  # no stubs shipped
from ocsf_json_schema import (  # type: ignore[import-untyped]  # no stubs shipped
    OcsfJsonSchemaEmbedded,
    get_ocsf_schema,
)

from lictor.core.audit import SealedRecord, verify_chain
from lictor.core.decisions import (
    Decision,
    Effect,
    Outcome,
    Reason,
    ResultReport,
    ResultStatus,
    Risk,
    RiskSignal,
)
from lictor.core.requests import ActionRequest, AgentId, Context, parse_request
from lictor.service.exports import (
    OCSF_CLASS_UID,
    OCSF_PROFILES,
    OCSF_VERSION,
    export_jsonl,
    export_ocsf,
    iter_records,
    ocsf_event,
)
from lictor.service.memory import MemoryAuditStore
from lictor.service.ports import AuditQuery
from lictor.service.records import decision_entry, rejected_entry, result_entry

AT = datetime(2026, 11, 25, 14, 3, 22, 418000, tzinfo=UTC)
AT_MS = 1795615402418


@cache
def ocsf_validator() -> Any:
    schema = OcsfJsonSchemaEmbedded(get_ocsf_schema(version=OCSF_VERSION))
    class_schema = schema.get_class_schema("api_activity", list(OCSF_PROFILES))
    Draft202012Validator.check_schema(class_schema)
    return Draft202012Validator(class_schema)


def assert_valid_ocsf(event: dict[str, Any]) -> None:
    errors = sorted(ocsf_validator().iter_errors(event), key=lambda e: list(e.absolute_path))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]


def request(**changes: Any) -> ActionRequest:
    data: dict[str, Any] = {
        "request_id": "req-1",
        "agent_id": "mail-assistant",
        "principal": {"id": "emma@corp.example", "groups": ["sales"], "attributes": {}},
        "delegation": ["emma@corp.example", "planner", "mail-assistant"],
        "session_id": "run-42",
        "tool": "send_email",
        "server": "workspace",
        "arguments": {"recipients": ["bob@corp.example"], "subject": "Q3"},
        "resource": {"type": "mailbox", "id": "emma", "labels": ["internal"]},
        "context": {"task": "follow up", "purpose": "customer follow-up", "ticket": "SALES-1"},
    }
    data.update(changes)
    return parse_request(data)


def decision(outcome: Outcome, decision_id: str = "01JDEC", **changes: Any) -> Decision:
    fields: dict[str, Any] = {
        "decision_id": decision_id,
        "outcome": outcome,
        "reasons": (Reason("finance/large", outcome, "Transfers need a reviewer"),),
        "policy_version": "sha256:abc",
        "decided_at": AT,
        "risk": Risk(0.72, (RiskSignal("first_time_destination", "new recipient", 0.5),)),
        "review_id": "rev-1" if outcome is Outcome.REVIEW else None,
        "shadow": (Reason("new/strict", Outcome.DENY, "would deny"),),
    }
    fields.update(changes)
    return Decision(**fields)


def sealed(payloads: list[dict[str, Any]]) -> MemoryAuditStore:
    store = MemoryAuditStore()
    store.append_batch(payloads)
    return store


def only_record(payload: dict[str, Any]) -> SealedRecord:
    store = sealed([payload])
    return next(store.records())


def test_ocsf_schema_is_the_official_one() -> None:
    assert get_ocsf_schema(version=OCSF_VERSION)["classes"]["api_activity"]["uid"] == 6003
    assert OCSF_CLASS_UID == 6003


def test_the_validator_has_teeth() -> None:
    event = ocsf_event(only_record(decision_entry(request(), decision(Outcome.ALLOW))))
    assert event is not None
    for broken in (
        {**event, "lictor_outcome": "allow"},  # not an OCSF attribute
        {**event, "disposition_id": 1234},  # not in the enum
        {key: value for key, value in event.items() if key != "actor"},  # required
        {**event, "actor": {"user": {"uid": "x"}, "delegation": []}},
    ):
        assert list(ocsf_validator().iter_errors(broken))


@pytest.mark.parametrize(
    ("outcome", "action_id", "disposition_id", "status_id", "severity_id"),
    [
        (Outcome.ALLOW, 1, 1, 1, 1),
        (Outcome.DENY, 2, 2, 2, 3),
        (Outcome.REVIEW, 99, 14, 99, 2),
    ],
)
def test_decision_maps_to_a_valid_api_activity(
    outcome: Outcome, action_id: int, disposition_id: int, status_id: int, severity_id: int
) -> None:
    record = only_record(decision_entry(request(), decision(outcome), credential_id="cred-7"))

    event = ocsf_event(record)

    assert event is not None
    assert_valid_ocsf(event)
    assert event["class_uid"] == 6003
    assert event["type_uid"] == 600399
    assert event["time"] == AT_MS
    assert (event["action_id"], event["disposition_id"]) == (action_id, disposition_id)
    assert (event["status_id"], event["severity_id"]) == (status_id, severity_id)
    assert event["status_code"] == outcome.value
    assert event["metadata"]["uid"] == "01JDEC"
    assert event["metadata"]["product"]["name"] == "Lictor"
    assert event["metadata"]["version"] == OCSF_VERSION
    assert event["metadata"]["sequence"] == 0
    assert event["metadata"]["original_event_uid"] == record.record_hash
    assert event["actor"]["app_name"] == "mail-assistant"
    assert event["actor"]["user"] == {
        "uid": "emma@corp.example",
        "name": "emma@corp.example",
        "groups": [{"name": "sales"}],
    }
    assert event["actor"]["session"] == {"uid": "run-42", "credential_uid": "cred-7"}
    assert event["api"]["operation"] == "send_email"
    assert event["api"]["service"] == {"name": "workspace"}
    assert event["api"]["request"] == {"uid": "req-1"}  # no arguments unless asked
    assert event["resources"] == [{"type": "mailbox", "uid": "emma", "labels": ["internal"]}]
    assert event["policy"]["version"] == "sha256:abc"
    assert [a["policy"]["uid"] for a in event["authorizations"]] == ["finance/large", "new/strict"]
    assert [a["policy"]["is_applied"] for a in event["authorizations"]] == [True, False]
    assert event["risk_score"] == 72
    unmapped = event["unmapped"]
    assert unmapped["delegation"] == ["emma@corp.example", "planner", "mail-assistant"]
    assert unmapped["context"]["ticket"] == "SALES-1"
    assert unmapped["context"]["purpose"] == "customer follow-up"
    assert unmapped["risk"]["signals"][0]["kind"] == "first_time_destination"
    assert unmapped["arguments_digest"].startswith("sha256:")


def test_review_names_its_review_in_the_status() -> None:
    event = ocsf_event(only_record(decision_entry(request(), decision(Outcome.REVIEW))))
    assert event is not None
    assert event["disposition"] == "Delayed"
    assert event["status_detail"].startswith("held for review rev-1")
    assert event["unmapped"]["review_id"] == "rev-1"


def test_arguments_are_exported_only_when_asked() -> None:
    record = only_record(decision_entry(request(), decision(Outcome.ALLOW)))
    event = ocsf_event(record, include_arguments=True)
    assert event is not None
    assert_valid_ocsf(event)
    assert event["api"]["request"]["data"]["subject"] == "Q3"


def test_minimal_decision_maps_to_a_valid_event() -> None:
    bare = ActionRequest(agent_id=AgentId("bot"), tool="search", context=Context())
    plain = decision(Outcome.DENY, reasons=(), shadow=(), risk=Risk())
    entry = decision_entry(bare, plain, redact_arguments=True)

    event = ocsf_event(only_record(entry))

    assert event is not None
    assert_valid_ocsf(event)
    assert "user" not in event["actor"]
    assert "resources" not in event
    assert "authorizations" not in event
    assert event["api"]["request"] == {"uid": "01JDEC"}
    assert event["unmapped"]["arguments_redacted"] is True


def test_resource_without_id_is_named_by_its_type() -> None:
    typed = request(resource={"type": "mailbox", "id": "", "labels": []})
    event = ocsf_event(only_record(decision_entry(typed, decision(Outcome.ALLOW))))
    assert event is not None
    assert_valid_ocsf(event)
    assert event["resources"] == [{"type": "mailbox", "name": "mailbox"}]


def test_result_repeats_its_decisions_actor_and_api() -> None:
    report = ResultReport(
        "01JDEC",
        ResultStatus.ERROR,
        output="boom",
        labels=("confidential",),
        effects=(Effect("email_sent", "bob@corp.example"),),
    )
    store = sealed(
        [
            decision_entry(request(), decision(Outcome.ALLOW)),
            result_entry(report, at=AT),
        ]
    )
    decision_record, result_record = list(store.records())

    event = ocsf_event(result_record, decision=decision_record.payload)

    assert event is not None
    assert_valid_ocsf(event)
    assert event["metadata"]["uid"] == "01JDEC/result"
    assert event["metadata"]["correlation_uid"] == "01JDEC"
    assert event["status_id"] == 2
    assert event["api"]["operation"] == "send_email"
    assert event["actor"]["user"]["uid"] == "emma@corp.example"
    assert event["unmapped"]["labels"] == ["confidential"]
    assert event["unmapped"]["effects"] == [{"kind": "email_sent", "target": "bob@corp.example"}]
    assert "action_id" not in event


def test_result_without_its_decision_still_validates() -> None:
    record = only_record(result_entry(ResultReport("gone", ResultStatus.OK), at=AT))
    event = ocsf_event(record)
    assert event is not None
    assert_valid_ocsf(event)
    assert event["api"]["operation"] == "unknown"
    assert event["status_id"] == 1


def test_rejected_request_maps_to_rejected() -> None:
    entry = rejected_entry({"agent_id": "bot", "tool": 3}, "expected a string", "/tool", at=AT)
    event = ocsf_event(only_record(entry))
    assert event is not None
    assert_valid_ocsf(event)
    assert event["disposition_id"] == 25
    assert event["api"]["operation"] == "unknown"
    assert event["actor"]["app_name"] == "bot"
    assert event["status_detail"] == "/tool: expected a string"


def test_unknown_kinds_are_skipped() -> None:
    assert ocsf_event(only_record({"kind": "agent_registered", "at": "x"})) is None


def trail_of(n: int) -> MemoryAuditStore:
    payloads: list[dict[str, Any]] = []
    for i in range(n):
        agent = "mail-assistant" if i % 2 == 0 else "planner"
        req = request(agent_id=agent, request_id=f"req-{i}")
        payloads.append(decision_entry(req, decision(Outcome.ALLOW, f"d{i}")))
        if i % 3 == 0:
            payloads.append(result_entry(ResultReport(f"d{i}", ResultStatus.OK), at=AT))
    payloads.append({"kind": "future_kind", "at": "2026-11-25T14:03:22.418Z"})
    return sealed(payloads)


def test_iter_records_pages_through_everything() -> None:
    store = trail_of(10)
    everything = list(iter_records(store, AuditQuery(limit=3)))
    assert [r.seq for r in everything] == list(range(store.size()))
    only_planner = list(iter_records(store, AuditQuery(agent_id="planner", limit=2)))
    assert len(only_planner) == 5
    assert all(r.payload["agent_id"] == "planner" for r in only_planner)
    assert list(iter_records(store)) == list(store.records())


def test_jsonl_export_reverifies_offline() -> None:
    store = trail_of(10)
    out = io.StringIO()

    written = export_jsonl(store, AuditQuery(limit=4), out)

    lines = out.getvalue().splitlines()
    assert written == len(lines) == store.size()
    summary = verify_chain(SealedRecord.from_json(line) for line in lines)
    assert summary.head_hash == store.head().record_hash  # type: ignore[union-attr]  # not empty


def test_ocsf_export_writes_one_valid_event_per_line() -> None:
    store = trail_of(10)
    out = io.StringIO()

    stats = export_ocsf(store, AuditQuery(limit=4), out)

    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert stats.written == len(events) == store.size() - 1
    assert stats.skipped == 1
    for event in events:
        assert_valid_ocsf(event)
    results = [e for e in events if e["metadata"]["uid"].endswith("/result")]
    assert len(results) == 4
    assert all(e["api"]["operation"] == "send_email" for e in results)


def test_ocsf_export_looks_up_decisions_outside_the_export() -> None:
    store = trail_of(4)
    out = io.StringIO()
    stats = export_ocsf(store, AuditQuery(kind="result"), out)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert stats.written == 2
    assert [e["actor"]["app_name"] for e in events] == ["mail-assistant", "planner"]


def test_ocsf_export_uses_principal_and_session_ids_verbatim() -> None:
    req = request(principal={"id": "svc:batch", "groups": []}, session_id=None)
    store = sealed([decision_entry(req, decision(Outcome.ALLOW))])
    out = io.StringIO()
    export_ocsf(store, None, out)
    event = json.loads(out.getvalue())
    assert_valid_ocsf(event)
    assert event["actor"]["user"] == {"uid": "svc:batch", "name": "svc:batch"}
    assert "session" not in event["actor"]
