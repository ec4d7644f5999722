from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from lictor.core.decisions import Effect, ResultReport, ResultStatus
from lictor.core.requests import parse_request
from lictor.core.risk.arguments import read_arguments
from lictor.core.risk.baseline import (
    Assessment,
    Baseline,
    BaselineConfig,
    CallFacts,
    ResultFacts,
)
from lictor.core.risk.signals import SignalKind, combine
from lictor.errors import ConfigError

MONDAY_10 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
# Learning off unless a test is about it, so enforce reflects the signals alone.
NO_LEARNING = BaselineConfig(learning_observations=0, learning_seconds=0)


def facts(
    tool: str = "send_email",
    *,
    to: Iterable[str] = (),
    resource: tuple[str, str] | None = None,
    labels: Iterable[str] = (),
    previous: str | None = None,
    limit: int | None = None,
) -> CallFacts:
    arguments: dict[str, Any] = {"subject": "hello"}
    if to:
        arguments["to"] = list(to)
    if limit is not None:
        arguments["limit"] = limit
    request: dict[str, Any] = {"agent_id": "mail", "tool": tool, "arguments": arguments}
    if resource is not None:
        request["resource"] = {"type": resource[0], "id": resource[1], "labels": list(labels)}
    return CallFacts.from_request(
        parse_request(request),
        previous_tool=previous,
        session_labels=() if resource is not None else labels,
    )


def trained(
    calls: Iterable[CallFacts],
    config: BaselineConfig = NO_LEARNING,
    start: datetime = MONDAY_10,
    step: timedelta = timedelta(minutes=5),
) -> tuple[Baseline, datetime]:
    baseline = Baseline.empty(config)
    now = start
    for call in calls:
        baseline = baseline.observe_call(call, now)
        now += step
    return baseline, now


def kinds(assessment: Assessment) -> set[str]:
    return set(assessment.kinds())


def detail(assessment: Assessment, kind: SignalKind) -> str:
    return next(s.detail for s in assessment.signals if s.kind == kind)


# -- new_tool -----------------------------------------------------------------------


def test_new_tool_fires_for_a_tool_never_used() -> None:
    baseline, now = trained([facts("read_inbox"), facts("send_email")])
    assessment = baseline.score(facts("delete_mailbox"), now)
    assert kinds(assessment) == {SignalKind.NEW_TOOL}
    assert detail(assessment, SignalKind.NEW_TOOL) == (
        "tool delete_mailbox never used by this agent (it uses 2 other tools)"
    )
    assert assessment.score == pytest.approx(0.45)
    assert assessment.enforce


def test_new_tool_does_not_fire_for_a_known_tool() -> None:
    baseline, now = trained([facts("read_inbox")])
    assert baseline.score(facts("read_inbox"), now).signals == ()
    assert baseline.score(facts("read_inbox"), now).score == 0.0


# -- first_time_destination ---------------------------------------------------------


def test_first_time_destination_explains_itself() -> None:
    usual = [facts(to=[f"colleague{i}@corp.example"]) for i in range(14)]
    baseline, now = trained(usual)
    assessment = baseline.score(facts(to=["mallory@evil.example"]), now)
    assert kinds(assessment) == {SignalKind.FIRST_TIME_DESTINATION}
    assert detail(assessment, SignalKind.FIRST_TIME_DESTINATION) == (
        "recipient mallory@evil.example never used by this agent with send_email (seen 14 others)"
    )


def test_known_destination_matches_after_normalisation() -> None:
    baseline, now = trained([facts(to=["Bob@Corp.Example"])])
    assert baseline.score(facts(to=["bob <BOB@corp.example>"]), now).signals == ()


def test_destinations_are_learned_per_tool() -> None:
    baseline, now = trained([facts("send_email", to=["bob@corp.example"]), facts("share_file")])
    assessment = baseline.score(facts("share_file", to=["bob@corp.example"]), now)
    assert kinds(assessment) == {SignalKind.FIRST_TIME_DESTINATION}


def test_several_new_destinations_make_one_signal_that_weighs_a_bit_more() -> None:
    baseline, now = trained([facts(to=["bob@corp.example"])])
    new = [f"x{i}@evil.example" for i in range(5)]
    assessment = baseline.score(facts(to=["bob@corp.example", *new]), now)
    (signal,) = assessment.signals
    assert signal.detail.startswith(
        "recipient x0@evil.example, recipient x1@evil.example, recipient x2@evil.example, 2 more"
    )
    assert signal.score == pytest.approx(0.6)


def asked(
    to: Iterable[str], task: str = "", principal: str | None = None, tool: str = "send_email"
) -> CallFacts:
    """A call as a requester made it: with the task text and the principal."""
    request: dict[str, Any] = {
        "agent_id": "mail",
        "tool": tool,
        "arguments": {"to": list(to)},
        "context": {"task": task},
    }
    if principal is not None:
        request["principal"] = {"id": principal}
    return CallFacts.from_request(parse_request(request))


def test_a_new_destination_named_in_the_task_weighs_a_third() -> None:
    baseline, now = trained([facts(to=["colleague@corp.example"])])
    task = "Send the onboarding pack to our new hire at Sara.Lind7@mail.example."
    named = baseline.score(asked(["sara.lind7@mail.example"], task), now)
    (signal,) = named.signals
    assert signal.kind == SignalKind.FIRST_TIME_DESTINATION
    assert signal.score == pytest.approx(0.15)
    assert signal.detail.endswith("; named in the task or the requester's own")
    # The same address when the task does not name it keeps the full weight.
    unnamed = baseline.score(asked(["sara.lind7@mail.example"], "Onboard the new hire."), now)
    assert unnamed.score == pytest.approx(0.45)
    # Whole words only, as policies' mentions(): a longer address does not vouch.
    longer = baseline.score(asked(["lind7@mail.example"], task), now)
    assert longer.score == pytest.approx(0.45)


def test_a_url_host_or_the_requesters_own_address_count_as_named() -> None:
    baseline, now = trained([facts("fetch", to=["https://docs.example/a"]), facts()])
    task = "Is the provider down? Check status.provider.example and tell #ops."
    url = "https://status.provider.example/api/v2"
    assert baseline.score(asked([url], task, tool="fetch"), now).score == pytest.approx(0.15)
    own = asked(["Emma@Corp.Example"], "Mail me a summary.", "emma@corp.example")
    assert baseline.score(own, now).score == pytest.approx(0.15)


def test_one_unnamed_new_destination_keeps_the_full_weight() -> None:
    baseline, now = trained([facts(to=["colleague@corp.example"])])
    task = "Invite ann@partner.example to the review."
    assessment = baseline.score(asked(["ann@partner.example", "x@evil.example"], task), now)
    (signal,) = assessment.signals
    # Only the unnamed one is counted, at the full base score.
    assert signal.score == pytest.approx(0.45)
    assert "named in the task" not in signal.detail


def test_a_new_destination_weighs_less_for_a_tool_that_often_meets_new_ones() -> None:
    # Twenty invitations, each to a new candidate and a regular interviewer: half of the
    # destination uses were first uses (Good-Turing: 10 seen once in 20 uses).
    invites = [
        facts("invite", to=[f"candidate{i}@mail.example", "interviewer@corp.example"])
        for i in range(10)
    ]
    baseline, now = trained(invites)
    assessment = baseline.score(facts("invite", to=["candidate99@mail.example"]), now)
    (signal,) = assessment.signals
    assert signal.score == pytest.approx(0.45 * (1 - 10 / 20))
    assert signal.detail.endswith("; about 50% of its invite destinations were new")
    # A tool that always goes to the same few places keeps the full weight.
    payments = [facts("pay", to=["DE89370400440532013000"]) for _ in range(30)]
    baseline, now = trained(payments)
    assert baseline.score(facts("pay", to=["x@evil.example"]), now).score == pytest.approx(0.45)


def test_novelty_needs_enough_uses_of_the_tool() -> None:
    few = [facts("invite", to=[f"c{i}@mail.example"]) for i in range(19)]
    baseline, now = trained(few)
    assert baseline.score(facts("invite", to=["new@mail.example"]), now).score == pytest.approx(
        0.45
    )
    # Every use new: the estimate is 1, but a new destination keeps half its weight.
    config = BaselineConfig(learning_observations=0, learning_seconds=0, novelty_min_samples=5)
    baseline, now = trained(few, config)
    (signal,) = baseline.score(facts("invite", to=["new@mail.example"]), now).signals
    assert signal.score == pytest.approx(0.225)
    assert signal.detail.endswith("; about 100% of its invite destinations were new")


# -- first_time_resource ------------------------------------------------------------


def test_first_time_resource() -> None:
    baseline, now = trained([facts("read_inbox", resource=("mailbox", "emma"))])
    assert baseline.score(facts("read_inbox", resource=("mailbox", "emma")), now).signals == ()
    assessment = baseline.score(facts("read_inbox", resource=("mailbox", "ceo")), now)
    assert kinds(assessment) == {SignalKind.FIRST_TIME_RESOURCE}
    assert detail(assessment, SignalKind.FIRST_TIME_RESOURCE) == (
        "resource mailbox:ceo never touched by this agent (seen 1 others)"
    )


# -- new_data_class -----------------------------------------------------------------


def test_new_data_class_from_resource_or_session_labels() -> None:
    baseline, now = trained([facts(labels=["internal"])])
    assert baseline.score(facts(labels=["internal"]), now).signals == ()
    assessment = baseline.score(facts(labels=["internal", "pii.card"]), now)
    assert kinds(assessment) == {SignalKind.NEW_DATA_CLASS}
    assert detail(assessment, SignalKind.NEW_DATA_CLASS) == (
        "data class pii.card never handled by this agent (known: internal)"
    )


def test_labels_learned_from_result_reports_count_as_known() -> None:
    baseline, now = trained([facts("read_inbox")])
    report = ResultReport("d1", ResultStatus.OK, output="write to ann@corp.example")
    baseline = baseline.observe_result(ResultFacts.from_report("read_inbox", report), now)
    assert baseline.score(facts("read_inbox", labels=["pii.email"]), now).signals == ()


# -- unusual_hour -------------------------------------------------------------------


def office_hours_baseline() -> Baseline:
    baseline = Baseline.empty(NO_LEARNING)
    for day in range(5):  # Monday to Friday, 09:00-16:40
        for step in range(12):
            moment = MONDAY_10 + timedelta(days=day, hours=-1, minutes=40 * step)
            baseline = baseline.observe_call(facts("read_inbox"), moment)
    return baseline


def test_unusual_hour_fires_at_night_and_on_weekends() -> None:
    baseline = office_hours_baseline()
    night = MONDAY_10 + timedelta(days=7, hours=-7)  # Monday 03:00
    assessment = baseline.score(facts("read_inbox"), night)
    assert kinds(assessment) == {SignalKind.UNUSUAL_HOUR}
    assert detail(assessment, SignalKind.UNUSUAL_HOUR) == (
        "call at 03:00-03:59 UTC, an hour with 0 of this agent's 60 calls"
    )
    sunday = MONDAY_10 + timedelta(days=6)
    assert "on a Sunday" in detail(
        baseline.score(facts("read_inbox"), sunday), SignalKind.UNUSUAL_HOUR
    )


def test_unusual_hour_does_not_fire_in_office_hours_or_with_too_few_samples() -> None:
    baseline = office_hours_baseline()
    assert baseline.score(facts("read_inbox"), MONDAY_10 + timedelta(days=7)).signals == ()
    few, _ = trained([facts("read_inbox")] * 10)
    assert few.score(facts("read_inbox"), MONDAY_10 + timedelta(hours=-7)).signals == ()


# -- rate_spike ---------------------------------------------------------------------


def test_rate_spike_fires_when_calls_bunch_up() -> None:
    baseline, now = trained([facts("read_inbox")] * 40, step=timedelta(minutes=2))
    assert baseline.score(facts("read_inbox"), now).signals == ()
    for i in range(30):
        baseline = baseline.observe_call(facts("read_inbox"), now + timedelta(seconds=i))
    assessment = baseline.score(facts("read_inbox"), now + timedelta(seconds=31))
    assert kinds(assessment) == {SignalKind.RATE_SPIKE}
    assert detail(assessment, SignalKind.RATE_SPIKE).startswith(
        "a recent rate of about 24 calls per 60 s, 19.3 times this agent's usual 1.3"
    )


def test_a_short_loop_of_a_slow_agent_is_a_spike() -> None:
    # An agent that makes a call every two minutes, then the same call in a loop: five
    # calls within a few seconds are four times its pace, and that is the spike; the
    # absolute floor only rules out a handful of calls.
    baseline, now = trained([facts("pay")] * 40, step=timedelta(minutes=2))
    for i in range(3):
        baseline = baseline.observe_call(facts("pay"), now + timedelta(seconds=i))
    assert baseline.score(facts("pay"), now + timedelta(seconds=3)).signals == ()
    for i in range(3, 6):
        baseline = baseline.observe_call(facts("pay"), now + timedelta(seconds=i))
    assessment = baseline.score(facts("pay"), now + timedelta(seconds=6))
    assert kinds(assessment) == {SignalKind.RATE_SPIKE}
    assert detail(assessment, SignalKind.RATE_SPIKE).startswith("a recent rate of about 7 calls")


def test_rate_spike_does_not_fire_at_a_steady_fast_pace() -> None:
    baseline, now = trained([facts("read_inbox")] * 200, step=timedelta(seconds=3))
    assert baseline.score(facts("read_inbox"), now).signals == ()


def test_out_of_order_times_do_not_break_the_rate() -> None:
    baseline, _ = trained([facts("read_inbox")] * 3)
    earlier = baseline.observe_call(facts("read_inbox"), MONDAY_10 - timedelta(hours=1))
    assert earlier.rate.last_at == baseline.rate.last_at
    assert earlier.first_seen_at == MONDAY_10 - timedelta(hours=1)


# -- unusual_transition -------------------------------------------------------------


def test_unusual_transition() -> None:
    trace = []
    for _ in range(12):
        trace += [
            facts("read_inbox", previous="send_email"),
            facts("send_email", previous="read_inbox"),
        ]
    trace.append(facts("delete_mail", previous="read_inbox"))
    baseline, now = trained(trace)
    known = baseline.score(facts("send_email", previous="read_inbox"), now)
    assert known.signals == ()
    odd = baseline.score(facts("send_email", previous="delete_mail"), now)
    assert kinds(odd) == {SignalKind.UNUSUAL_TRANSITION}
    assert detail(odd, SignalKind.UNUSUAL_TRANSITION) == (
        "send_email right after delete_mail: a sequence this agent has not used before "
        "(seen 3 others)"
    )
    # A session start, or an unknown previous tool, is no transition to judge.
    assert baseline.score(facts("send_email"), now).signals == ()
    assert baseline.score(facts("send_email", previous="format_disk"), now).signals == ()


# -- volume_spike -------------------------------------------------------------------


def test_volume_spike_on_requested_items() -> None:
    baseline, now = trained([facts("search_customers", limit=20)] * 10)
    assert baseline.score(facts("search_customers", limit=40), now).signals == ()
    assessment = baseline.score(facts("search_customers", limit=5000), now)
    assert kinds(assessment) == {SignalKind.VOLUME_SPIKE}
    assert detail(assessment, SignalKind.VOLUME_SPIKE).startswith(
        "search_customers asks for 5000 items, about 238 times its usual 20 items"
    )


def test_volume_spike_on_output_size_in_result_reports() -> None:
    baseline, now = trained([facts("export_rows")])
    small = ResultReport("d", ResultStatus.OK, output=[{"n": i} for i in range(50)])
    for _ in range(6):
        baseline = baseline.observe_result(ResultFacts.from_report("export_rows", small), now)
    assert baseline.score_result(ResultFacts.from_report("export_rows", small), now).signals == ()
    big = ResultReport("d", ResultStatus.OK, output=[{"n": i} for i in range(20_000)])
    assessment = baseline.score_result(ResultFacts.from_report("export_rows", big), now)
    assert kinds(assessment) == {SignalKind.VOLUME_SPIKE}
    assert "export_rows returned" in detail(assessment, SignalKind.VOLUME_SPIKE)


def test_result_facts_read_sizes_items_labels_and_effects() -> None:
    report = ResultReport(
        "d",
        ResultStatus.OK,
        output={"results": [1, 2, 3], "note": "card 4111 1111 1111 1111"},
        labels=("confidential",),
        effects=(Effect("email_sent", "Bob@Corp.Example"), Effect("noop")),
    )
    result = ResultFacts.from_report("lookup", report)
    assert result.items == 3
    assert result.output_bytes == len(json.dumps(report.output, separators=(",", ":")).encode())
    assert result.labels == {"confidential", "financial.card"}
    assert [d.key for d in result.destinations] == ["email:bob@corp.example"]
    assert ResultFacts.from_report("x", ResultReport("d", ResultStatus.ERROR)).output_bytes is None
    assert ResultFacts.from_report("x", ResultReport("d", ResultStatus.OK, "é")).output_bytes == 2
    undetected = ResultFacts.from_report("lookup", report, detect=False)
    assert undetected.labels == {"confidential"}


def test_effect_targets_become_known_destinations() -> None:
    baseline, now = trained([facts("send_email")])
    report = ResultReport("d", ResultStatus.OK, effects=(Effect("email_sent", "bob@corp.example"),))
    baseline = baseline.observe_result(ResultFacts.from_report("send_email", report), now)
    assert baseline.score(facts(to=["bob@corp.example"]), now).signals == ()


# -- learning period ----------------------------------------------------------------


def test_learning_by_count_annotates_without_enforcing() -> None:
    config = BaselineConfig(learning_observations=5, learning_seconds=0)
    baseline, now = trained([facts("read_inbox")] * 4, config)
    assessment = baseline.score(facts("delete_mailbox"), now)
    assert kinds(assessment) == {SignalKind.NEW_TOOL}  # still reported
    assert assessment.score > 0
    assert not assessment.enforce
    assert assessment.is_learning
    baseline = baseline.observe_call(facts("read_inbox"), now)
    assert baseline.score(facts("delete_mailbox"), now).enforce


def test_learning_by_time_since_first_seen() -> None:
    config = BaselineConfig(learning_observations=1, learning_seconds=3600)
    baseline, _ = trained([facts("read_inbox")] * 3, config)
    assert baseline.is_learning(MONDAY_10 + timedelta(minutes=59))
    assert not baseline.is_learning(MONDAY_10 + timedelta(hours=1))
    assert Baseline.empty(config).is_learning(MONDAY_10)
    assert not Baseline.empty(NO_LEARNING).is_learning(MONDAY_10)


def test_default_learning_period() -> None:
    baseline, now = trained([facts("read_inbox")] * 60, BaselineConfig())
    assert baseline.is_learning(now)  # 60 calls, but only five hours
    assert not baseline.is_learning(MONDAY_10 + timedelta(days=1))


# -- bounds -------------------------------------------------------------------------


def test_memory_stays_bounded_under_a_stream_of_new_destinations() -> None:
    config = BaselineConfig(
        learning_observations=0, learning_seconds=0, destinations_capacity=64, tools_capacity=4
    )
    baseline = Baseline.empty(config)
    now = MONDAY_10
    for i in range(3000):
        tool = f"tool{i % 7}"
        to = ["boss@corp.example"] if i % 3 == 0 else [f"spray{i}@evil.example"]
        baseline = baseline.observe_call(facts(tool, to=to), now)
        now += timedelta(seconds=1)
    assert len(baseline.destinations) == 64
    assert len(baseline.tools) == 4
    assert len(baseline.volumes) <= 4
    assert sum(baseline.destinations_per_tool.values()) == 64
    # A destination used a third of the time survives any flood (space-saving).
    assert any(key == "email:boss@corp.example" for _, key in baseline.destinations)
    assert len(json.dumps(baseline.to_json())) < 64 * 200 + 4_000


def test_long_keys_are_cut() -> None:
    baseline, _ = trained([CallFacts("t" * 256 + "x", resource="r" * 300)])
    assert list(baseline.tools) == ["t" * 256]
    assert list(baseline.resources) == ["r" * 256]


# -- storage ------------------------------------------------------------------------


def rich_baseline() -> Baseline:
    trace = [
        facts("read_inbox", resource=("mailbox", "emma"), labels=["internal"]),
        facts("send_email", to=["bob@corp.example", "+1 415 555 0100"], previous="read_inbox"),
        facts("search", limit=20, previous="send_email"),
    ]
    baseline, now = trained(trace * 3)
    report = ResultReport("d", ResultStatus.OK, output=[{"email": "ann@corp.example"}])
    return baseline.observe_result(ResultFacts.from_report("search", report), now)


def test_json_round_trip() -> None:
    baseline = rich_baseline()
    stored = json.loads(json.dumps(baseline.to_json()))
    loaded = Baseline.from_json(stored, NO_LEARNING)
    assert loaded == baseline
    assert loaded.destinations_per_tool == baseline.destinations_per_tool
    assert loaded.to_json() == stored


def test_loading_under_smaller_capacities_keeps_the_top_keys() -> None:
    stored = rich_baseline().to_json()
    small = BaselineConfig(
        learning_observations=0,
        learning_seconds=0,
        tools_capacity=1,
        destinations_capacity=1,
    )
    loaded = Baseline.from_json(stored, small)
    assert len(loaded.tools) == 1
    assert len(loaded.destinations) == 1
    assert len(loaded.volumes) == 1
    assert sum(loaded.destinations_per_tool.values()) == 1


def test_empty_baseline_round_trips() -> None:
    empty = Baseline.empty()
    assert Baseline.from_json(json.loads(json.dumps(empty.to_json()))) == empty


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(version=2),
        lambda d: d.update(hours=[0] * 23),
        lambda d: d.update(tools={"counts": {"x": -1}, "total": 1}),
        lambda d: d.update(destinations={"counts": [["a", 1, 1]], "total": 1}),
        lambda d: d.update(destinations={"counts": [["a", "b"]], "total": 1}),
        lambda d: d.update(destinations={"counts": {}, "total": 1}),
        lambda d: d.update(first_seen_at="2026-01-05T10:00:00"),
        lambda d: d.update(first_seen_at=5),
        lambda d: d.update(rate={"recent": "x", "typical": 0, "samples": 0, "last_at": None}),
        lambda d: d.update(rate=None),
        lambda d: d.update(observations=True),
        lambda d: d["volumes"].update(search={"requested": [1, 2]}),
    ],
)
def test_malformed_stored_baselines_are_rejected(mutate: Any) -> None:
    stored = rich_baseline().to_json()
    mutate(stored)
    with pytest.raises(ValueError, match="baseline"):
        Baseline.from_json(stored, NO_LEARNING)


def test_from_json_needs_an_object() -> None:
    with pytest.raises(ValueError, match="expected an object"):
        Baseline.from_json([], NO_LEARNING)


# -- config, time, combination ------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"tools_capacity": -1},
        {"learning_seconds": -1.0},
        {"rate_window_seconds": 0.0},
        {"rate_typical_seconds": 0.0},
        {"volume_smoothing": 0.0},
        {"rare_share": 1.5},
        {"rate_factor": 0.5},
        {"named_destination_weight": 0.0},
        {"named_destination_weight": 1.5},
        {"novelty_min_samples": -1},
        {"scores": {SignalKind.NEW_TOOL: 2.0}},
    ],
)
def test_bad_config_is_a_config_error(changes: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        BaselineConfig(**changes)


def test_signal_scores_can_be_overridden() -> None:
    config = BaselineConfig(
        learning_observations=0, learning_seconds=0, scores={SignalKind.NEW_TOOL: 0.9}
    )
    baseline, now = trained([facts("a")], config)
    assert baseline.score(facts("b"), now).score == pytest.approx(0.9)
    assert config.score_of(SignalKind.RATE_SPIKE) == 0.35


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        Baseline.empty().observe_call(facts(), datetime(2026, 1, 5))  # noqa: DTZ001 - on purpose


def test_score_is_the_noisy_or_of_the_signals() -> None:
    baseline, now = trained([facts("read_inbox", to=["bob@corp.example"])])
    assessment = baseline.score(
        facts("wire", to=["mallory@evil.example"], resource=("account", "x"), labels=["secret"]),
        now,
    )
    assert len(assessment.signals) == 4
    assert assessment.score == pytest.approx(combine(assessment.signals))
    assert assessment.to_risk().score == assessment.score
    assert assessment.to_risk().signals == assessment.signals


def test_volumes_are_kept_for_at_most_tools_capacity_tools() -> None:
    config = BaselineConfig(learning_observations=0, learning_seconds=0, tools_capacity=2)
    baseline, _ = trained(
        [facts(f"t{i}", limit=10) for i in range(5)] + [facts("t4", limit=9)], config
    )
    assert set(baseline.volumes) == {"t3", "t4"}
    assert baseline.volumes["t4"].samples == 2
    loaded = Baseline.from_json(baseline.to_json(), BaselineConfig(tools_capacity=1))
    assert set(loaded.volumes) == {"t4"}
    none = BaselineConfig(learning_observations=0, learning_seconds=0, tools_capacity=0)
    assert trained([facts("t", limit=10)], none)[0].volumes == {}


def test_result_scoring_edges() -> None:
    baseline, now = trained([facts("export")])
    unseen = ResultFacts("export", output_bytes=10**9, labels=frozenset({"secret"}))
    assessment = baseline.score_result(unseen, now)
    assert kinds(assessment) == {SignalKind.NEW_DATA_CLASS}  # no volume history yet
    for _ in range(6):
        baseline = baseline.observe_result(ResultFacts("export", output_bytes=100), now)
    items_only = ResultFacts("export", items=10**6)
    assert baseline.score_result(items_only, now).signals == ()  # no item history
    small_spike = ResultFacts("export", output_bytes=1000)  # 10x, but below the floor
    assert baseline.score_result(small_spike, now).signals == ()


def test_unreadable_outputs_have_no_size() -> None:
    circular: list[Any] = []
    circular.append(circular)
    report = ResultReport("d", ResultStatus.OK, output=circular)
    assert ResultFacts.from_report("x", report, detect=False).output_bytes is None
    assert ResultFacts.from_report("x", ResultReport("d", ResultStatus.OK, {"a": 1})).items is None
    long_target = Effect("posted", "x" * 400)
    assert (
        ResultFacts.from_report(
            "x", ResultReport("d", ResultStatus.OK, effects=(long_target,))
        ).destinations
        == ()
    )


def test_volume_entries_may_be_missing_in_storage() -> None:
    stored = rich_baseline().to_json()
    stored["volumes"]["search"].pop("output_bytes")
    loaded = Baseline.from_json(stored, NO_LEARNING)
    assert loaded.volumes["search"].output_bytes.samples == 0


def test_volume_above_the_floor_but_within_the_factor_is_normal() -> None:
    baseline, now = trained([facts("search_customers", limit=100)] * 10)
    assert baseline.score(facts("search_customers", limit=150), now).signals == ()


def test_a_tool_whose_last_destination_is_evicted_has_no_count() -> None:
    config = BaselineConfig(learning_observations=0, learning_seconds=0, destinations_capacity=1)
    baseline, now = trained(
        [facts("send_email", to=["a@x.example"]), facts("share", to=["b@x.example"])], config
    )
    assert dict(baseline.destinations_per_tool) == {"share": 1}
    assessment = baseline.score(facts("search", limit=10), now)  # no volume history
    assert kinds(assessment) == {SignalKind.NEW_TOOL}


def test_times_in_other_zones_are_read_as_utc() -> None:
    berlin_noon = datetime(2026, 1, 5, 12, 0, tzinfo=timezone(timedelta(hours=1)))
    baseline = Baseline.empty(NO_LEARNING).observe_call(facts("read_inbox"), berlin_noon)
    assert baseline.hours[11] == 1
    assert baseline.first_seen_at == MONDAY_10 + timedelta(hours=1)


def test_a_precomputed_reading_is_used_for_call_facts() -> None:
    request = parse_request({"agent_id": "a", "tool": "t", "arguments": {"to": "b@x.example"}})
    assert CallFacts.from_request(request, reading=read_arguments({})).destinations == ()
