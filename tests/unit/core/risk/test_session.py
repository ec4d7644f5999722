"""Session state: grows by events only, stays bounded, round-trips through JSON."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lictor.core.risk.provenance import MAX_OUTPUTS, MAX_SOURCE_CHARS, OriginKind
from lictor.core.risk.session import MAX_COUNTERS, MAX_LABELS, SessionState


def test_calls_count_per_tool_and_remember_the_previous_tool() -> None:
    state = SessionState().after_call("read", ["internal"]).after_call("send").after_call("read")
    assert state.counters == {"read": 2, "send": 1}
    assert (state.calls, state.previous_tool, state.labels) == (3, "read", frozenset({"internal"}))
    assert state.version == 3


def test_results_add_outputs_and_labels_but_not_calls() -> None:
    state = SessionState().after_result("read", "d1", {"body": "pay DE89"}, ["confidential"])
    assert state.calls == 0
    assert state.labels == {"confidential"}
    assert [o.tool for o in state.outputs] == ["read"]
    assert "pay DE89" in state.outputs[0].output


def test_outputs_are_bounded_oldest_first_and_cut() -> None:
    state = SessionState()
    for i in range(MAX_OUTPUTS + 5):
        state = state.after_result("read", f"d{i}", "x" * (MAX_SOURCE_CHARS + 10))
    assert len(state.outputs) == MAX_OUTPUTS
    assert state.outputs[0].decision_id == "d5"
    assert all(len(o.output) == MAX_SOURCE_CHARS for o in state.outputs)


def test_labels_and_counters_are_bounded() -> None:
    state = SessionState()
    for i in range(MAX_COUNTERS + 10):
        state = state.after_call(f"tool{i}", [f"label{i}"])
    assert len(state.counters) == MAX_COUNTERS
    assert len(state.labels) == MAX_LABELS
    assert state.calls == MAX_COUNTERS + 10


def test_index_traces_values_to_outputs_and_trusted_context() -> None:
    state = SessionState().after_result("read_mail", "d1", "wire it to GB33BUKB20201555555555")
    index = state.index({"payees": ["DE89370400440532013000"]})
    from_output = index.trace_value("GB33 BUKB 2020 1555 5555 55")
    trusted = index.trace_value("DE89370400440532013000")
    assert [o.kind for o in from_output] == [OriginKind.TOOL_OUTPUT]
    assert [o.kind for o in trusted] == [OriginKind.TRUSTED]


@pytest.mark.parametrize(
    "data",
    [None, [], {"version": 2}, {"version": 1, "labels": "x"},
     {"version": 1, "labels": [], "counters": {}, "outputs": [["a"]], "calls": 0,
      "state_version": 0, "previous_tool": None}],
)  # fmt: skip
def test_malformed_stored_states_are_refused(data: object) -> None:
    with pytest.raises(ValueError, match="session"):
        SessionState.from_json(data)


events = st.lists(
    st.one_of(
        st.tuples(st.just("call"), st.text(max_size=8), st.lists(st.text(max_size=5), max_size=3)),
        st.tuples(
            st.just("result"), st.text(max_size=8), st.lists(st.text(max_size=5), max_size=3)
        ),
    ),
    max_size=20,
)


@given(
    events,
    st.one_of(st.none(), st.text(max_size=30), st.dictionaries(st.text(max_size=4), st.integers())),
)
def test_any_history_round_trips_through_json(
    history: list[tuple[str, str, list[str]]], output: object
) -> None:
    state = SessionState()
    for i, (kind, tool, labels) in enumerate(history):
        if kind == "call":
            state = state.after_call(tool, labels)
        else:
            state = state.after_result(tool, f"d{i}", output, labels)
    assert SessionState.from_json(state.to_json()) == state
    assert state.version == len(history)
