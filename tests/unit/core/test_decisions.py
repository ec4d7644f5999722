"""Decisions and result reports: the wire shapes of ARCHITECTURE.md, parsed strictly."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from lictor.core.decisions import (
    Decision,
    Effect,
    Outcome,
    Reason,
    ReasonCode,
    ResultReport,
    ResultStatus,
    Risk,
    RiskSignal,
    format_time,
    parse_result,
    parse_time,
)
from lictor.errors import InvalidToolCall

DECIDED_AT = datetime(2026, 11, 25, 14, 3, 22, 418_000, tzinfo=UTC)


def decision(**fields: Any) -> Decision:
    base: dict[str, Any] = {
        "decision_id": "01J0000000000000000000000",
        "outcome": Outcome.REVIEW,
        "reasons": (
            Reason(
                "finance/large-transfer",
                Outcome.REVIEW,
                "Transfers over 10,000 need a reviewer",
            ),
        ),
        "policy_version": "sha256:abc",
        "decided_at": DECIDED_AT,
        "risk": Risk(
            score=0.72,
            signals=(
                RiskSignal("first_time_destination", "recipient never used by this agent", 0.5),
            ),
        ),
    }
    base.update(fields)
    return Decision(**base)


def through_json(data: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(data))
    return result


@pytest.mark.parametrize(
    "original",
    [
        decision(),
        decision(review_id="rev-1"),
        decision(
            outcome=Outcome.ALLOW,
            reasons=(Reason("finance/read", Outcome.ALLOW),),
            shadow=(
                Reason("finance/new-rule", Outcome.DENY, "would deny"),
                Reason(
                    "finance/broken", Outcome.DENY, "evaluation_error", ReasonCode.EVALUATION_ERROR
                ),
            ),
        ),
        decision(review_id="rev-2", shadow=(Reason("x", Outcome.REVIEW),), risk=Risk()),
        decision(
            outcome=Outcome.DENY,
            reasons=(
                Reason(
                    "lictor/default-deny", Outcome.DENY, "no rule allows", ReasonCode.DEFAULT_DENY
                ),
            ),
        ),
    ],
)
def test_decision_round_trips_through_json_text(original: Decision) -> None:
    assert Decision.from_json(through_json(original.to_json())) == original


def test_decision_has_the_architecture_shape() -> None:
    wire = decision(review_id="rev-1").to_json()

    assert set(wire) == {
        "decision_id",
        "outcome",
        "reasons",
        "risk",
        "review_id",
        "policy_version",
        "decided_at",
    }
    assert wire["outcome"] == "review"
    assert wire["reasons"] == [
        {
            "rule": "finance/large-transfer",
            "effect": "review",
            "message": "Transfers over 10,000 need a reviewer",
            "code": "rule",
        }
    ]
    assert set(wire["risk"]) == {"score", "signals"}
    assert wire["risk"]["score"] == 0.72
    assert {"kind", "detail"} <= set(wire["risk"]["signals"][0])
    assert wire["decided_at"] == "2026-11-25T14:03:22.418Z"


def test_review_id_and_shadow_are_left_out_when_absent() -> None:
    wire = decision(outcome=Outcome.ALLOW).to_json()

    assert "review_id" not in wire
    assert "shadow" not in wire


def test_shadow_reasons_appear_when_present() -> None:
    wire = decision(shadow=(Reason("x", Outcome.DENY, "would deny"),)).to_json()

    assert wire["shadow"] == [
        {"rule": "x", "effect": "deny", "message": "would deny", "code": "rule"}
    ]


def test_reason_without_code_or_message_defaults_to_a_rule_reason() -> None:
    assert Reason.from_json({"rule": "r", "effect": "deny"}) == Reason("r", Outcome.DENY)


def test_allowed_is_true_only_for_allow() -> None:
    assert decision(outcome=Outcome.ALLOW).allowed
    assert not decision(outcome=Outcome.REVIEW).allowed
    assert not decision(outcome=Outcome.DENY).allowed


def test_outcome_strength_orders_deny_over_review_over_allow() -> None:
    assert Outcome.DENY.strength > Outcome.REVIEW.strength > Outcome.ALLOW.strength


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (DECIDED_AT, "2026-11-25T14:03:22.418Z"),
        (datetime(2026, 1, 1, tzinfo=UTC), "2026-01-01T00:00:00.000Z"),
        (datetime(2026, 1, 1, 0, 0, 0, 999_999, tzinfo=UTC), "2026-01-01T00:00:00.999Z"),
        (
            datetime(2026, 1, 1, 1, 30, 0, 5_000, tzinfo=timezone(timedelta(hours=2))),
            "2025-12-31T23:30:00.005Z",
        ),
    ],
)
def test_format_time_gives_utc_with_milliseconds_and_z(moment: datetime, text: str) -> None:
    assert format_time(moment) == text


def test_format_time_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_time(datetime(2026, 1, 1))  # noqa: DTZ001 - the naive value under test


def test_parse_time_reads_z_and_offsets_as_aware_utc() -> None:
    assert parse_time("2026-11-25T14:03:22.418Z") == DECIDED_AT
    assert parse_time("2026-11-25T16:03:22.418+02:00") == DECIDED_AT
    assert parse_time("2026-11-25T16:03:22.418+02:00").tzinfo is UTC


def test_parse_time_rejects_timestamps_without_zone() -> None:
    with pytest.raises(ValueError, match="zone"):
        parse_time("2026-11-25T14:03:22")


def test_format_then_parse_keeps_the_instant_to_the_millisecond() -> None:
    moment = datetime(2026, 3, 29, 1, 59, 59, 123_456, tzinfo=UTC)

    assert parse_time(format_time(moment)) == moment.replace(microsecond=123_000)


# --- result reports -------------------------------------------------------------------


def test_full_result_report_parses() -> None:
    report = parse_result(
        {
            "decision_id": "d1",
            "status": "ok",
            "output": {"message_id": "m-1"},
            "labels": ["confidential"],
            "effects": [{"kind": "email_sent", "target": "bob@corp.example"}],
        }
    )

    assert report == ResultReport(
        decision_id="d1",
        status=ResultStatus.OK,
        output={"message_id": "m-1"},
        labels=("confidential",),
        effects=(Effect("email_sent", "bob@corp.example"),),
    )


def test_minimal_error_report_parses_with_defaults() -> None:
    report = parse_result({"decision_id": "d1", "status": "error", "output": "timeout"})

    assert report == ResultReport("d1", ResultStatus.ERROR, output="timeout")


def test_effect_target_is_optional() -> None:
    report = parse_result({"decision_id": "d1", "status": "ok", "effects": [{"kind": "k"}]})

    assert report.effects == (Effect("k", ""),)


def test_decision_id_may_come_from_the_url_alone() -> None:
    report = parse_result({"status": "ok"}, decision_id="from-url")

    assert report.decision_id == "from-url"


def test_decision_id_in_body_may_repeat_the_url() -> None:
    assert parse_result({"decision_id": "d1", "status": "ok"}, decision_id="d1").decision_id == "d1"


def test_report_to_json_parses_back_to_itself() -> None:
    report = ResultReport(
        "d1", ResultStatus.OK, output=[1, "x"], labels=("pii",), effects=(Effect("k", "t"),)
    )

    assert parse_result(through_json(report.to_json())) == report


def report_pointer(data: object, decision_id: str | None = None) -> str:
    with pytest.raises(InvalidToolCall) as caught:
        parse_result(data, decision_id=decision_id)
    return caught.value.pointer


def test_body_decision_id_that_contradicts_the_url_is_rejected() -> None:
    assert report_pointer({"decision_id": "other", "status": "ok"}, decision_id="d1") == (
        "/decision_id"
    )


@pytest.mark.parametrize(
    ("data", "pointer"),
    [
        ([], "/"),
        ("ok", "/"),
        (None, "/"),
        ({"decision_id": "d1", "status": "ok", "output_digest": "x"}, "/output_digest"),
        ({"status": "ok"}, "/decision_id"),
        ({"decision_id": "", "status": "ok"}, "/decision_id"),
        ({"decision_id": 5, "status": "ok"}, "/decision_id"),
        ({"decision_id": "d1"}, "/status"),
        ({"decision_id": "d1", "status": "OK"}, "/status"),
        ({"decision_id": "d1", "status": "done"}, "/status"),
        ({"decision_id": "d1", "status": "ok", "labels": "pii"}, "/labels"),
        ({"decision_id": "d1", "status": "ok", "labels": ["pii", 1]}, "/labels"),
        ({"decision_id": "d1", "status": "ok", "effects": {"kind": "k"}}, "/effects"),
        ({"decision_id": "d1", "status": "ok", "effects": ["email_sent"]}, "/effects/0"),
        ({"decision_id": "d1", "status": "ok", "effects": [{"kind": "k"}, {}]}, "/effects/1"),
        (
            {"decision_id": "d1", "status": "ok", "effects": [{"kind": "k", "target": 3}]},
            "/effects/0/target",
        ),
    ],
)
def test_bad_result_report_is_rejected_with_pointer(data: object, pointer: str) -> None:
    assert report_pointer(data) == pointer


def test_formatted_times_match_rfc3339_with_milliseconds() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", format_time(DECIDED_AT))
