"""Property tests: replays are quiet, tables match a dict model, JSON round-trips."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from lictor.core.risk.arguments import Destination, DestinationKind
from lictor.core.risk.baseline import Baseline, BaselineConfig, CallFacts, ResultFacts
from lictor.core.risk.signals import SignalKind


def at_most(examples: int) -> settings:
    """Cap the profile's example count: each example replays a whole trace."""
    return settings(max_examples=min(settings().max_examples, examples))


START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
NOVELTY = {
    SignalKind.NEW_TOOL,
    SignalKind.FIRST_TIME_DESTINATION,
    SignalKind.FIRST_TIME_RESOURCE,
    SignalKind.NEW_DATA_CLASS,
}
TOOLS = ["read", "send", "pay", "search", "delete"]


def dest(name: str) -> Destination:
    return Destination("to", DestinationKind.EMAIL, name, f"email:{name}")


calls = st.builds(
    CallFacts,
    tool=st.sampled_from(TOOLS),
    destinations=st.lists(
        st.sampled_from([f"u{i}@corp.example" for i in range(8)]).map(dest), max_size=3
    ).map(tuple),
    resource=st.none() | st.sampled_from(["mailbox:a", "mailbox:b", "file:x", "db:y"]),
    labels=st.frozensets(st.sampled_from(["internal", "pii.email", "secret", "financial"])),
    previous_tool=st.none() | st.sampled_from(TOOLS),
    requested_items=st.none() | st.integers(0, 10_000),
)
results = st.builds(
    ResultFacts,
    tool=st.sampled_from(TOOLS),
    output_bytes=st.none() | st.integers(0, 10**7),
    items=st.none() | st.integers(0, 10**5),
    labels=st.frozensets(st.sampled_from(["internal", "pii.phone"])),
)
gaps = st.integers(0, 7200).map(lambda s: timedelta(seconds=s))


@at_most(80)
@given(st.lists(st.tuples(calls, gaps), min_size=1, max_size=40), st.lists(results, max_size=5))
def test_replaying_a_learned_trace_raises_no_novelty(
    trace: list[tuple[CallFacts, timedelta]], reports: list[ResultFacts]
) -> None:
    baseline = Baseline.empty()
    now = START
    moments = []
    for call, gap in trace:
        now += gap
        moments.append(now)
        baseline = baseline.observe_call(call, now)
    for report in reports:
        baseline = baseline.observe_result(report, now)
    for (call, _), moment in zip(trace, moments, strict=True):
        assert not baseline.score(call, moment).kinds() & NOVELTY
        assert not baseline.score(call, now + timedelta(days=30)).kinds() & NOVELTY


@at_most(60)
@given(st.lists(st.tuples(calls, gaps), max_size=30), st.lists(results, max_size=5))
def test_json_round_trip_of_any_learned_baseline(
    trace: list[tuple[CallFacts, timedelta]], reports: list[ResultFacts]
) -> None:
    baseline = Baseline.empty()
    now = START
    for call, gap in trace:
        now += gap
        baseline = baseline.observe_call(call, now)
    for report in reports:
        baseline = baseline.observe_result(report, now)
    stored = json.loads(json.dumps(baseline.to_json()))
    loaded = Baseline.from_json(stored)
    assert loaded == baseline
    assert loaded.destinations_per_tool == baseline.destinations_per_tool
    assert loaded.destination_uses == baseline.destination_uses
    probe = CallFacts("send", (dest("new@evil.example"),), previous_tool="read")
    assert loaded.score(probe, now) == baseline.score(probe, now)


@at_most(60)
@given(st.lists(st.tuples(calls, gaps), max_size=30), calls, gaps)
def test_scores_stay_in_the_unit_interval(
    trace: list[tuple[CallFacts, timedelta]], probe: CallFacts, gap: timedelta
) -> None:
    baseline = Baseline.empty(BaselineConfig(learning_observations=0, learning_seconds=0))
    now = START
    for call, step in trace:
        now += step
        baseline = baseline.observe_call(call, now)
    assessment = baseline.score(probe, now + gap)
    assert 0.0 <= assessment.score <= 1.0
    assert all(0.0 <= s.score <= 1.0 for s in assessment.signals)
    assert assessment.enforce


# -- the tool and destination tables against a dict model ---------------------------

CAPS = BaselineConfig(tools_capacity=3, destinations_capacity=4)


K = TypeVar("K", str, tuple[str, str])


class SpaceSaving(Generic[K]):
    """The reference: a plain dict, the textbook space-saving rule, and true counts."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.counts: dict[K, int] = {}
        self.true: Counter[K] = Counter()
        self.total = 0

    def add(self, key: K) -> None:
        self.true[key] += 1
        self.total += 1
        if key in self.counts:
            self.counts[key] += 1
        elif len(self.counts) < self.capacity:
            self.counts[key] = 1
        else:
            victim = sorted(self.counts.items(), key=lambda kv: (kv[1], kv[0]))[0][0]
            self.counts[key] = self.counts.pop(victim) + 1


class BaselineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.baseline = Baseline.empty(CAPS)
        self.tools: SpaceSaving[str] = SpaceSaving(CAPS.tools_capacity)
        self.destinations: SpaceSaving[tuple[str, str]] = SpaceSaving(CAPS.destinations_capacity)
        self.now = START

    @rule(
        tool=st.sampled_from(TOOLS),
        names=st.lists(st.sampled_from([f"d{i}@x.example" for i in range(7)]), max_size=3),
        gap=gaps,
    )
    def observe_call(self, tool: str, names: list[str], gap: timedelta) -> None:
        self.now += gap
        found = tuple(dest(n) for n in names)
        self.baseline = self.baseline.observe_call(CallFacts(tool, found), self.now)
        self.tools.add(tool)
        for key in dict.fromkeys((tool, d.key) for d in found):
            self.destinations.add(key)

    @rule(tool=st.sampled_from(TOOLS), name=st.sampled_from(["e0@x.example", "e1@x.example"]))
    def observe_result_effect(self, tool: str, name: str) -> None:
        result = ResultFacts(tool, destinations=(dest(name),))
        self.baseline = self.baseline.observe_result(result, self.now)
        self.destinations.add((tool, f"email:{name}"))

    @precondition(lambda self: self.baseline.observations > 0)
    @rule()
    def reload(self) -> None:
        stored = json.loads(json.dumps(self.baseline.to_json()))
        self.baseline = Baseline.from_json(stored, CAPS)

    @invariant()
    def tables_match_the_model(self) -> None:
        assert dict(self.baseline.tools.counts) == self.tools.counts
        assert dict(self.baseline.destinations.counts) == self.destinations.counts
        assert self.baseline.tools.total == self.tools.total
        assert self.baseline.destinations.total == self.destinations.total

    @invariant()
    def tables_are_bounded(self) -> None:
        assert len(self.baseline.tools) <= CAPS.tools_capacity
        assert len(self.baseline.destinations) <= CAPS.destinations_capacity
        assert len(self.baseline.volumes) <= CAPS.tools_capacity

    @invariant()
    def frequent_keys_are_kept(self) -> None:
        for key, count in self.tools.true.items():
            if count * self.tools.capacity > self.tools.total:
                assert key in self.baseline.tools
        for pair, count in self.destinations.true.items():
            if count * self.destinations.capacity > self.destinations.total:
                assert pair in self.baseline.destinations

    @invariant()
    def per_tool_counts_are_derived_from_the_table(self) -> None:
        derived = Counter(tool for tool, _ in self.baseline.destinations)
        assert dict(self.baseline.destinations_per_tool) == dict(derived)
        uses: dict[str, tuple[int, int]] = {}
        for (tool, _), count in self.baseline.destinations.counts.items():
            total, once = uses.get(tool, (0, 0))
            uses[tool] = (total + count, once + (count == 1))
        assert dict(self.baseline.destination_uses) == uses

    @invariant()
    def new_destination_signal_agrees_with_the_model(self) -> None:
        probe = CallFacts("send", (dest("d0@x.example"),))
        kinds = self.baseline.score(probe, self.now).kinds()
        known = ("send", "email:d0@x.example") in self.destinations.counts
        assert (SignalKind.FIRST_TIME_DESTINATION in kinds) is not known
        assert (SignalKind.NEW_TOOL in kinds) is ("send" not in self.tools.counts)


BaselineMachine.TestCase.settings = settings(
    max_examples=min(settings().max_examples, 40), stateful_step_count=20
)
test_baseline_tables_against_a_dict_model = BaselineMachine.TestCase
