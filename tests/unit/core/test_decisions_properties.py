"""Property tests: decisions round-trip through JSON text; parse_result is total."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from lictor.core.decisions import (
    Decision,
    Outcome,
    Reason,
    ReasonCode,
    ResultReport,
    Risk,
    RiskSignal,
    format_time,
    parse_result,
    parse_time,
)
from lictor.errors import InvalidToolCall

RFC3339_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")

text = st.text(max_size=20)
unit = st.floats(0.0, 1.0)
reasons = st.builds(Reason, text, st.sampled_from(Outcome), text, st.sampled_from(ReasonCode))
zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)
# Whole milliseconds: the wire form carries no more.
moments = st.builds(
    lambda base, ms, tz: (base + timedelta(milliseconds=ms)).astimezone(tz),
    st.just(datetime(2000, 1, 1, tzinfo=UTC)),
    st.integers(0, 200 * 365 * 24 * 3600 * 1000),
    zones,
)
decisions = st.builds(
    Decision,
    decision_id=text,
    outcome=st.sampled_from(Outcome),
    reasons=st.lists(reasons, max_size=3).map(tuple),
    policy_version=text,
    decided_at=moments,
    risk=st.builds(
        Risk, unit, st.lists(st.builds(RiskSignal, text, text, unit), max_size=3).map(tuple)
    ),
    review_id=st.none() | text,
    shadow=st.lists(reasons, max_size=3).map(tuple),
)


@given(decisions)
def test_decision_round_trips_through_json_text(decision: Decision) -> None:
    wire = json.loads(json.dumps(decision.to_json()))

    assert Decision.from_json(wire) == decision
    assert ("review_id" in wire) == (decision.review_id is not None)
    assert ("shadow" in wire) == bool(decision.shadow)


@given(moments)
def test_format_time_is_utc_milliseconds_and_parses_back(moment: datetime) -> None:
    formatted = format_time(moment)

    assert RFC3339_MS.fullmatch(formatted)
    assert parse_time(formatted) == moment


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
report_shaped = st.fixed_dictionaries(
    {},
    optional={
        "decision_id": st.sampled_from(["d1", "d2", ""]) | json_values,
        "status": st.sampled_from(["ok", "error"]) | json_values,
        "output": json_values,
        "labels": st.lists(st.text(max_size=5), max_size=3) | json_values,
        "effects": st.lists(
            st.fixed_dictionaries({"kind": text}, optional={"target": text | json_values})
            | json_values,
            max_size=3,
        )
        | json_values,
    },
)


@given(json_values | report_shaped, st.none() | st.sampled_from(["d1", "d2"]))
def test_parse_result_gives_a_report_or_invalid_tool_call(data: object, url_id: str | None) -> None:
    result: ResultReport | InvalidToolCall
    try:
        result = parse_result(data, decision_id=url_id)
    except InvalidToolCall as exc:
        result = exc
    if isinstance(result, InvalidToolCall):
        assert result.pointer.startswith("/")
    else:
        assert result.decision_id
        if url_id is not None:
            assert result.decision_id == url_id
