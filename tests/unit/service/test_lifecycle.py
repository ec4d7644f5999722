"""Policy lifecycle: versions and activation, monitor mode, backtests, diffs and lint."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lictor.core.agents import Agent, AgentStatus
from lictor.core.decisions import Outcome, ReasonCode
from lictor.core.policy import Mode, compile_policy, parse_document
from lictor.core.policy.parse import parse_rules
from lictor.core.requests import AgentId, parse_request
from lictor.errors import ConfigError, NotFound, PolicyError
from lictor.service.access_review import AgentAccess, review_access
from lictor.service.governor import Governor
from lictor.service.lifecycle import (
    MemoryPolicyVersions,
    PolicyDiffSide,
    PolicyLifecycle,
    backtest,
    diff_policies,
    find_version,
    lint_policy,
    recorded_request,
    resolve_bundle,
)
from lictor.service.memory import FixedClock, MemoryAgents, MemoryAudit
from lictor.service.policies import Bundle, bundle_from_files, load_bundle, load_inventory
from lictor.service.policy_tests import collect_cases

REPO = Path(__file__).resolve().parents[3]
FINANCE = REPO / "examples" / "finance"
NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
BOT = Agent(id=AgentId("bot"), allowed_tools=("read", "send"))

BASE = """
rules:
  - id: read
    match: {tools: [read]}
    effect: allow
  - id: send
    match: {tools: [send]}
    effect: allow
  - id: big-send
    match: {tools: [send]}
    when: "has(arguments.n) && arguments.n > 100"
    effect: review
tests:
  - name: reading is fine
    request: {agent_id: bot, tool: read}
    expect: {outcome: allow}
"""


def bundle_of(text: str, name: str = "policy.yaml") -> Bundle:
    return bundle_from_files({name: text})


# --- versions, activation, replicas ---------------------------------------------------


def test_stored_files_give_the_same_version_as_the_directory() -> None:
    loaded = load_bundle(FINANCE / "policies")
    again = bundle_from_files(loaded.files)
    assert again.version == loaded.version
    assert [r.id for r in again.policy.policy.rules] == [r.id for r in loaded.policy.policy.rules]


@pytest.mark.parametrize("name", ["../x.yaml", "/abs.yaml", "a.txt", "", "a/./b.yaml"])
def test_bundle_file_names_must_be_plain_relative_yaml_paths(name: str) -> None:
    with pytest.raises(PolicyError):
        bundle_from_files({name: "rules: []"})


def swapper(governor: Governor) -> Callable[[Bundle], object]:
    return lambda bundle: governor.swap_policy(bundle.policy)


def lifecycle_pair() -> tuple[PolicyLifecycle, PolicyLifecycle, Governor, Governor]:
    """Two replicas (Governors) sharing one version store."""
    versions = MemoryPolicyVersions()
    clock = FixedClock(NOW)
    start = bundle_of(BASE)
    governors = [Governor(start.policy, MemoryAgents([BOT]), clock=clock) for _ in range(2)]
    lifecycles = [
        PolicyLifecycle(
            versions,
            current=start,
            swap=swapper(g),
            inventory=lambda: [BOT],
            clock=clock,
        )
        for g in governors
    ]
    lifecycles[0].start(author="a", message="first")
    lifecycles[1].start(author="b", message="second replica")
    return lifecycles[0], lifecycles[1], governors[0], governors[1]


def test_a_proposed_bundle_goes_live_and_the_other_replica_converges() -> None:
    one, two, gov_one, gov_two = lifecycle_pair()
    changed = BASE.replace("n > 100", "n > 50")
    bundle = one.propose_files({"policy.yaml": changed}, author="alice", message="lower")
    assert gov_one.policy.version == bundle.version
    assert gov_two.policy.version != bundle.version
    assert two.sync() == bundle.version
    assert gov_two.policy.version == bundle.version
    assert two.sync() is None  # nothing left to do
    history = one.versions.history()
    assert sorted(v.author for v in history) == ["a", "alice"]
    assert find_version(one.versions, bundle.version[7:15]).digest == bundle.version


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("rules:\n  - id: x\n    effect: allow\n    when: 'arguments.n >'\n", "policy.yaml:4"),
        ("rules: [\n", "policy.yaml"),
        (BASE.replace("expect: {outcome: allow}", "expect: {outcome: deny}"), "policy.yaml:"),
    ],
)
def test_a_broken_or_failing_bundle_is_refused_and_nothing_changes(text: str, where: str) -> None:
    one, _two, gov_one, _ = lifecycle_pair()
    before = gov_one.policy.version
    with pytest.raises(PolicyError) as caught:
        one.propose_files({"policy.yaml": text}, author="mallory", message="")
    assert str(caught.value).startswith(where)
    assert gov_one.policy.version == before
    assert one.versions.active() is not None
    assert one.versions.active().digest == before  # type: ignore[union-attr]
    assert len(one.versions.history()) == 1


def test_restart_with_a_known_bundle_follows_the_active_pointer() -> None:
    one, _two, _gov, _ = lifecycle_pair()
    uploaded = one.propose_files(
        {"policy.yaml": BASE.replace("n > 100", "n > 7")}, author="alice", message=""
    )
    restarted_gov = Governor(bundle_of(BASE).policy, MemoryAgents([BOT]))
    restarted = PolicyLifecycle(
        one.versions,
        current=bundle_of(BASE),
        swap=lambda b: restarted_gov.swap_policy(b.policy),
        inventory=lambda: [BOT],
        clock=FixedClock(NOW),
    )
    assert restarted.start(author="serve", message="restart") == uploaded.version
    assert restarted_gov.policy.version == uploaded.version


def test_unknown_version_prefix_is_not_found() -> None:
    with pytest.raises(NotFound):
        find_version(MemoryPolicyVersions(), "deadbeef")
    with pytest.raises(ConfigError):
        resolve_bundle("deadbeef", None)


# --- document-level shadow mode --------------------------------------------------------


def test_a_file_in_shadow_mode_puts_every_rule_in_shadow() -> None:
    rules, _ = parse_document(
        {"mode": "shadow", "rules": [{"id": "a", "effect": "deny", "mode": "enforce"}]}
    )
    assert [r.mode for r in rules] == [Mode.SHADOW]


def test_a_shadow_file_records_would_be_denials_without_enforcing() -> None:
    bundle = bundle_from_files(
        {
            "live.yaml": BASE,
            "trial.yaml": "mode: shadow\nrules:\n  - {id: no-send, effect: deny, "
            "match: {tools: [send]}}\n",
        }
    )
    governor = Governor(bundle.policy, MemoryAgents([BOT]), clock=FixedClock(NOW))
    decision = governor.decide({"agent_id": "bot", "tool": "send"})
    assert decision.outcome is Outcome.ALLOW
    assert [(r.rule, r.effect) for r in decision.shadow] == [("no-send", Outcome.DENY)]
    assert lint_policy(bundle) == []


# --- monitor mode ----------------------------------------------------------------------

MONITORED = Agent(id=AgentId("new-bot"), allowed_tools=("read",), attributes={"monitor": True})


def monitor_governor(agent: Agent) -> tuple[Governor, MemoryAudit]:
    audit = MemoryAudit()
    governor = Governor(
        bundle_of(BASE).policy, MemoryAgents([agent]), audit=audit, clock=FixedClock(NOW)
    )
    return governor, audit


def test_monitor_mode_records_the_would_be_denial_and_allows() -> None:
    governor, audit = monitor_governor(MONITORED)
    decision = governor.decide({"agent_id": "new-bot", "tool": "other"})
    assert decision.outcome is Outcome.ALLOW
    [reason] = decision.reasons
    assert (reason.code, reason.effect) == (ReasonCode.MONITOR, Outcome.DENY)
    assert [r.rule for r in decision.shadow] == ["lictor/tool-not-in-inventory"]
    entry = audit.entries[-1]
    assert entry["outcome"] == "allow"
    assert entry["enforced"] is False
    assert entry["would_be"] == "deny"
    assert "shadow" in decision.to_json()


def test_monitor_mode_leaves_allowed_actions_alone() -> None:
    governor, audit = monitor_governor(MONITORED)
    decision = governor.decide({"agent_id": "new-bot", "tool": "read"})
    assert decision.outcome is Outcome.ALLOW
    assert decision.reasons[0].code is ReasonCode.RULE
    assert "enforced" not in audit.entries[-1]


@pytest.mark.parametrize("status", [AgentStatus.QUARANTINED, AgentStatus.SUSPENDED])
def test_monitor_mode_never_lifts_a_status_denial(status: AgentStatus) -> None:
    agent = Agent(
        id=AgentId("new-bot"), allowed_tools=("read",), attributes={"monitor": True}, status=status
    )
    governor, _ = monitor_governor(agent)
    assert governor.decide({"agent_id": "new-bot", "tool": "read"}).outcome is Outcome.DENY


def test_monitor_mode_never_lifts_an_evaluation_error() -> None:
    rules = [{"id": "bad", "effect": "allow", "when": "arguments.missing > 1"}]
    governor = Governor(
        compile_policy(parse_rules(rules), version="sha256:x"),
        MemoryAgents([MONITORED]),
        clock=FixedClock(NOW),
    )
    decision = governor.decide({"agent_id": "new-bot", "tool": "read"})
    assert decision.outcome is Outcome.DENY
    assert decision.reasons[0].code is ReasonCode.EVALUATION_ERROR


def test_monitor_needs_literally_true() -> None:
    agent = Agent(id=AgentId("new-bot"), allowed_tools=("read",), attributes={"monitor": "yes"})
    governor, _ = monitor_governor(agent)
    assert governor.decide({"agent_id": "new-bot", "tool": "other"}).outcome is Outcome.DENY


# --- backtest --------------------------------------------------------------------------

SESSION_RULES = """
rules:
  - id: read
    match: {tools: [read]}
    effect: allow
  - id: send
    match: {tools: [send]}
    effect: allow
  - id: third-send-reviewed
    match: {tools: [send]}
    when: "session.counters.?send.orValue(0) >= 2"
    effect: review
"""


def recorded(policy_text: str, requests: list[dict[str, Any]]) -> list[Mapping[str, Any]]:
    audit = MemoryAudit()
    clock = FixedClock(NOW)
    governor = Governor(
        bundle_of(policy_text).policy, MemoryAgents([BOT]), audit=audit, clock=clock
    )
    for request in requests:
        governor.decide(request)
        clock.advance(1)
    return [e for e in audit.entries if e["kind"] == "decision"]


def test_backtest_reports_flips_by_direction_and_rule_with_examples() -> None:
    entries = recorded(
        BASE, [{"agent_id": "bot", "tool": "send", "arguments": {"n": n}} for n in (1, 60, 500)]
    )
    candidate = bundle_of(BASE.replace("n > 100", "n > 50"))
    report = backtest(candidate.policy, entries, {"bot": BOT})
    assert (report.replayed, report.unchanged, report.flipped) == (3, 2, 1)
    assert dict(report.by_direction) == {"allow->review": 1}
    assert dict(report.by_rule) == {"allow->review big-send": 1}
    assert report.examples["allow->review"][0].decision_id == entries[1]["decision_id"]
    loosened = backtest(
        bundle_of(BASE.replace("n > 100", "n > 1000")).policy, entries, {"bot": BOT}
    )
    assert dict(loosened.by_rule) == {"review->allow big-send": 1}


def test_backtest_replays_the_recorded_session_state() -> None:
    sends = [{"agent_id": "bot", "tool": "send", "session_id": "s1"} for _ in range(3)]
    entries = recorded(BASE, sends)
    assert [e["session"]["counters"].get("send", 0) for e in entries] == [0, 1, 2]
    report = backtest(bundle_of(SESSION_RULES).policy, entries, {"bot": BOT})
    assert dict(report.by_direction) == {"allow->review": 1}
    assert report.inexact == 0
    legacy = [{k: v for k, v in e.items() if k != "session"} for e in entries]
    old = backtest(bundle_of(SESSION_RULES).policy, legacy, {"bot": BOT})
    assert old.inexact == 3
    assert old.flipped == 0  # an empty session cannot show the third send


def test_backtest_compares_monitor_decisions_with_what_the_policy_decided() -> None:
    audit = MemoryAudit()
    governor = Governor(
        bundle_of(BASE).policy, MemoryAgents([MONITORED]), audit=audit, clock=FixedClock(NOW)
    )
    governor.decide({"agent_id": "new-bot", "tool": "other"})
    assert audit.entries[-1]["would_be"] == "deny"
    report = backtest(bundle_of(BASE).policy, audit.entries, {"new-bot": MONITORED})
    assert (report.replayed, report.flipped) == (1, 0)
    granting = BASE.replace(
        "rules:\n", "rules:\n  - {id: other, match: {tools: [other]}, effect: allow}\n", 1
    )
    report = backtest(bundle_of(granting).policy, audit.entries, {"new-bot": MONITORED})
    assert dict(report.by_rule) == {"deny->allow lictor/tool-not-in-inventory": 1}


@pytest.mark.parametrize(
    "request_",
    [
        {"agent_id": "bot", "tool": "send", "session_id": "s", "arguments": {"n": [1, {"a": 2}]}},
        {"agent_id": "bot", "tool": "read", "context": {"task": "t", "ticket": "T-1", "x": 1}},
        {"agent_id": "bot", "tool": "read", "principal": {"id": "emma", "groups": ["g"]}},
        {"agent_id": "bot", "tool": "read", "resource": {"type": "mail", "labels": ["pii"]}},
        {"agent_id": "bot", "tool": "read", "server": "s", "delegation": ["emma", "bot"]},
        {"agent_id": "bot", "tool": "read", "request_id": "r-1"},
    ],
)
def test_recorded_requests_rebuild_exactly(request_: dict[str, Any]) -> None:
    [entry] = recorded(BASE, [request_])
    assert recorded_request(entry) == parse_request(request_)


def test_backtest_skips_redacted_and_non_policy_decisions() -> None:
    [entry] = recorded(BASE, [{"agent_id": "bot", "tool": "read"}])
    redacted = {**entry, "arguments": None}
    unrecorded = {
        **entry,
        "reasons": [{"rule": "lictor/audit-unavailable", "code": "evaluation_error"}],
    }
    report = backtest(bundle_of(BASE).policy, [redacted, unrecorded], {"bot": BOT})
    assert report.replayed == 0
    assert sum(report.skipped.values()) == 2


# --- diff ------------------------------------------------------------------------------


def test_diff_names_added_removed_and_changed_fields() -> None:
    old = bundle_of(BASE)
    new = bundle_of(
        BASE.replace("n > 100", "n > 50")
        .replace("  - id: read\n    match: {tools: [read]}\n    effect: allow\n", "")
        .replace("rules:\n", "rules:\n  - {id: fresh, effect: deny, match: {tools: [rm]}}\n", 1)
    )
    result = diff_policies(PolicyDiffSide.of(old), PolicyDiffSide.of(new))
    assert [r.id for r in result.added] == ["fresh"]
    assert [r.id for r in result.removed] == ["read"]
    [change] = result.changed
    assert change.rule_id == "big-send"
    assert set(change.fields) == {"condition"}
    assert result.to_json()["changed"][0]["fields"]["condition"]["new"].endswith("> 50")
    assert diff_policies(PolicyDiffSide.of(old), PolicyDiffSide.of(old)).is_empty


# --- lint ------------------------------------------------------------------------------


def codes(text: str, **kwargs: Any) -> dict[str | None, set[str]]:
    found: dict[str | None, set[str]] = {}
    for finding in lint_policy(bundle_of(text), **kwargs):
        found.setdefault(finding.rule_id, set()).add(finding.code)
    return found


def rules_yaml(*rules: str) -> str:
    return "rules:\n" + "".join(f"  - {r}\n" for r in rules)


@pytest.mark.parametrize(
    ("condition", "flagged"),
    [
        ("arguments.x > 5 && arguments.x < 3", True),
        ("arguments.x >= 5 && arguments.x <= 5", False),
        ("arguments.x > 5 && arguments.x <= 5", True),
        ("arguments.x == 'a' && arguments.x == 'b'", True),
        ("arguments.x == 'a' && arguments.x != 'a'", True),
        ("arguments.x > 5 && arguments.y < 3", False),
        ("arguments.x > 5 || arguments.x < 3", False),
        ("(arguments.x > 5 || true) && arguments.x < 3", False),
        ("false", True),
    ],
)
def test_lint_finds_contradictory_conditions(condition: str, flagged: bool) -> None:
    found = codes(rules_yaml(f'{{id: r, effect: deny, when: "{condition}"}}'))
    assert ("never-matches" in found.get("r", set())) is flagged


def at_most(examples: int) -> settings:
    """The profile's example count, capped for a test that is slow under ``ci``."""
    return settings(max_examples=min(settings().max_examples, examples))


@at_most(300)
@given(
    st.lists(
        st.tuples(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), st.integers(-5, 5)),
        min_size=2,
        max_size=5,
    ),
    st.integers(-6, 6),
)
def test_lint_never_calls_a_satisfiable_condition_contradictory(
    comparisons: list[tuple[str, int]], witness: int
) -> None:
    holds = {
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
        "==": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
    }
    condition = " && ".join(f"arguments.x {op} {value}" for op, value in comparisons)
    found = codes(rules_yaml(f'{{id: r, effect: deny, when: "{condition}"}}'))
    if all(holds[op](witness, value) for op, value in comparisons):
        assert "never-matches" not in found.get("r", set())


def test_lint_finds_fields_outside_the_request_schema() -> None:
    found = codes(
        rules_yaml(
            '{id: a, effect: deny, when: "request.foo == 1"}',
            "{id: b, effect: deny, when: \"resource.nope == 'x' || agent.nope\"}",
            "{id: c, effect: deny, when: \"context.bogus == 'x'\"}",
            "{id: d, effect: deny, when: \"context.?extra.orValue('') == 'x'\"}",
            "{id: e, effect: deny, when: \"arguments.anything == 'request.foo'\"}",
            '{id: f, effect: deny, when: "session.counters.send > 1 && time.hour > 1"}',
        )
    )
    assert found == {
        "a": {"unknown-field"},
        "b": {"unknown-field"},
        "c": {"unknown-field"},
    }


def test_lint_finds_rules_an_unconditional_deny_shadows() -> None:
    found = codes(
        rules_yaml(
            "{id: block-pay, effect: deny, match: {tools: ['pay.*']}}",
            "{id: pay-small, effect: allow, match: {tools: [pay.send]}}",
            "{id: pay-other, effect: allow, match: {tools: [pay.send], servers: [bank]}}",
            "{id: other-tool, effect: allow, match: {tools: [read]}}",
            "{id: conditional, effect: deny, when: 'arguments.n > 1'}",
            "{id: after-conditional, effect: allow, match: {tools: [read]}}",
        )
    )
    assert found == {"pay-small": {"shadowed"}, "pay-other": {"shadowed"}}


def test_lint_finds_tools_no_selected_agent_holds_and_untested_rules() -> None:
    text = (
        rules_yaml(
            "{id: typo, effect: allow, match: {tools: [raed]}}",
            "{id: guard, effect: deny, match: {tools: [rm]}}",
            "{id: nobody, effect: allow, match: {agents: [ghost]}}",
            "{id: read, effect: allow, match: {tools: [read]}}",
        )
        + "tests:\n  - {name: t, request: {agent_id: bot, tool: read}, expect: {outcome: allow}}\n"
    )
    bundle = bundle_of(text)
    found: dict[str | None, set[str]] = {}
    for finding in lint_policy(bundle, inventory=[BOT], cases=collect_cases(bundle.documents)):
        found.setdefault(finding.rule_id, set()).add(finding.code)
    assert found == {
        "typo": {"unknown-tool", "untested"},
        "guard": {"untested"},
        "nobody": {"no-agent", "untested"},
    }


def test_lint_warns_when_nothing_is_enforced() -> None:
    found = codes("mode: shadow\n" + rules_yaml("{id: a, effect: allow}"))
    assert found == {None: {"all-shadow"}}


def test_examples_lint_clean(tmp_path: Path) -> None:
    shutil.copytree(FINANCE, tmp_path / "finance")
    bundle = load_bundle(tmp_path / "finance" / "policies")
    inventory = load_inventory(FINANCE / "agents.yaml")
    assert lint_policy(bundle, inventory=inventory, cases=collect_cases(bundle.documents)) == []


# --- access review ---------------------------------------------------------------------


def test_access_review_suggests_removing_unused_grants() -> None:
    payer = Agent(
        id=AgentId("payer"),
        allowed_tools=("read", "send", "admin.*"),
        attributes={"payee_allowlist": ["DE1", "GB2"], "limit": 5},
    )
    idle = Agent(id=AgentId("idle"), allowed_tools=("read",))
    since = NOW - timedelta(days=30)
    records = [
        {"agent_id": "payer", "tool": "read", "outcome": "allow", "arguments": {}},
        {"agent_id": "payer", "tool": "send", "outcome": "allow", "arguments": {"to": ["DE1"]}},
        {"agent_id": "payer", "tool": "admin.drop", "outcome": "deny", "arguments": {}},
        {"agent_id": "ghost", "tool": "read", "outcome": "deny", "arguments": {}},
    ]
    review = review_access([payer, idle], records, since=since)
    by_id: dict[str, AgentAccess] = {a.agent.id: a for a in review.agents}
    assert by_id["payer"].unused_tools == ("admin.*",)
    assert by_id["payer"].unused_destinations() == {"payee_allowlist": ("GB2",)}
    suggested = by_id["payer"].suggested()
    assert suggested is not None
    assert suggested.allowed_tools == ("read", "send")
    assert suggested.attributes == {"payee_allowlist": ["DE1"], "limit": 5}
    assert by_id["idle"].is_idle
    assert by_id["idle"].suggested() is None
    assert review.unregistered == {"ghost": 1}
    from lictor.service.documents import load_yaml
    from lictor.service.policies import parse_inventory

    agents = parse_inventory(load_yaml(review.suggested_yaml(), "suggested.yaml"))
    assert {a.id: a.allowed_tools for a in agents} == {"payer": ("read", "send"), "idle": ("read",)}


# --- untrusted uploads -----------------------------------------------------------------

_YAMLISH = st.text(alphabet="rules:-{}[]'\"\n #&*!|>idefctalowny0123.", max_size=60)


@given(st.dictionaries(st.text(max_size=12), _YAMLISH | st.text(max_size=30), max_size=3))
def test_any_upload_is_a_bundle_or_a_policy_error(files: dict[str, str]) -> None:
    try:
        bundle = bundle_from_files(files)
    except PolicyError:
        return
    assert bundle_from_files(bundle.files).version == bundle.version


@given(st.text(max_size=30))
def test_a_rule_condition_of_any_text_lints_without_crashing(condition: str) -> None:
    try:
        bundle = bundle_from_files(
            {"p.yaml": rules_yaml(f"{{id: r, effect: deny, when: {json.dumps(condition)}}}")}
        )
    except PolicyError:
        return
    for finding in lint_policy(bundle, inventory=[BOT], cases=[]):
        assert finding.rule_id in ("r", None)
