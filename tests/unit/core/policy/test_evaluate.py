"""Evaluation: the combination semantics, fail-closed errors, and Lictor's CEL functions."""

from __future__ import annotations

import importlib
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from lictor.core.agents import Agent, AgentStatus, RiskTier
from lictor.core.decisions import Outcome, ReasonCode
from lictor.core.policy import (
    CompiledPolicy,
    Evaluation,
    Facts,
    SessionFacts,
    compile_policy,
    evaluate,
)
from lictor.core.policy.functions import domain, glob, glob_list, in_cidr, in_domain, mentions
from lictor.core.policy.parse import parse_rules
from lictor.core.requests import AgentId, parse_request

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)  # a Monday
BOT = Agent(
    id=AgentId("bot"),
    allowed_tools=("read", "send_email", "pay*"),
    tags=("finance",),
    risk_tier=RiskTier.HIGH,
    attributes={"limit": 100},
)


def policy(*rules: dict[str, Any], timezone: str = "UTC") -> CompiledPolicy:
    return compile_policy(parse_rules(list(rules)), version="sha256:test", timezone=timezone)


def decide(
    compiled: CompiledPolicy,
    *,
    agent: Agent | None = BOT,
    now: datetime = NOW,
    session: SessionFacts | None = None,
    **fields: Any,
) -> Evaluation:
    request = parse_request({"agent_id": "bot", "tool": "read", **fields})
    facts = Facts(agent=agent, now=now, session=session or SessionFacts())
    return evaluate(compiled, request, facts)


def reasons(verdict: Evaluation) -> list[tuple[str, ReasonCode]]:
    return [(r.rule, r.code) for r in verdict.reasons]


ALLOW_ALL = {"id": "allow-all", "effect": "allow"}
DENY_ALL = {"id": "deny-all", "effect": "deny"}
REVIEW_ALL = {"id": "review-all", "effect": "review"}


# --- combination ------------------------------------------------------------------------


def test_allow_rule_that_fires_allows_and_is_named() -> None:
    verdict = decide(policy(ALLOW_ALL))

    assert verdict.outcome is Outcome.ALLOW
    assert reasons(verdict) == [("allow-all", ReasonCode.RULE)]


def test_deny_rule_overrides_matching_allow() -> None:
    verdict = decide(policy(ALLOW_ALL, DENY_ALL, REVIEW_ALL))

    assert verdict.outcome is Outcome.DENY
    assert reasons(verdict) == [("deny-all", ReasonCode.RULE)]


def test_review_rule_overrides_matching_allow() -> None:
    verdict = decide(policy(ALLOW_ALL, REVIEW_ALL))

    assert verdict.outcome is Outcome.REVIEW
    assert reasons(verdict) == [("review-all", ReasonCode.RULE)]


def test_review_rule_holds_even_when_no_allow_rule_fires() -> None:
    assert decide(policy(REVIEW_ALL)).outcome is Outcome.REVIEW


def test_rule_whose_condition_is_false_does_not_fire() -> None:
    verdict = decide(policy(ALLOW_ALL, {"id": "never", "effect": "deny", "when": "false"}))

    assert verdict.outcome is Outcome.ALLOW


def test_every_firing_rule_of_the_deciding_effect_is_listed_sorted() -> None:
    verdict = decide(
        policy(
            {"id": "z-deny", "effect": "deny"},
            {"id": "a-deny", "effect": "deny", "when": "tool == 'read'"},
            {"id": "m-deny", "effect": "deny", "when": "tool == 'other'"},
        )
    )

    assert reasons(verdict) == [("a-deny", ReasonCode.RULE), ("z-deny", ReasonCode.RULE)]


def test_deciding_reason_carries_the_rule_message_and_effect() -> None:
    verdict = decide(policy({"id": "r", "effect": "review", "message": "needs a person"}))

    (reason,) = verdict.reasons
    assert (reason.effect, reason.message) == (Outcome.REVIEW, "needs a person")


def test_nothing_allows_gives_default_deny() -> None:
    verdict = decide(policy({"id": "other-tool", "effect": "allow", "match": {"tools": ["x"]}}))

    assert verdict.outcome is Outcome.DENY
    assert reasons(verdict) == [("lictor/default-deny", ReasonCode.DEFAULT_DENY)]


def test_empty_policy_denies() -> None:
    verdict = decide(policy())

    assert verdict.outcome is Outcome.DENY
    assert reasons(verdict) == [("lictor/default-deny", ReasonCode.DEFAULT_DENY)]


def test_unknown_agent_is_denied_before_any_rule() -> None:
    verdict = decide(policy(ALLOW_ALL), agent=None)

    assert verdict.outcome is Outcome.DENY
    assert reasons(verdict) == [("lictor/unknown-agent", ReasonCode.UNKNOWN_AGENT)]


@pytest.mark.parametrize(
    "status",
    [AgentStatus.SUSPENDED, AgentStatus.QUARANTINED, AgentStatus.RETIRED, AgentStatus.SHADOW],
)
def test_non_active_agent_is_denied_before_any_rule(status: AgentStatus) -> None:
    agent = Agent(id=AgentId("bot"), allowed_tools=("read",), status=status)
    shadow_rule = {"id": "watch", "effect": "deny", "mode": "shadow"}

    verdict = decide(policy(ALLOW_ALL, shadow_rule), agent=agent)

    assert verdict.outcome is Outcome.DENY
    assert reasons(verdict) == [(f"lictor/agent-{status.value}", ReasonCode.AGENT_STATUS)]
    assert verdict.shadow == ()
    assert verdict.evaluated == 0


# --- inventory --------------------------------------------------------------------------


def test_tool_outside_inventory_is_denied_even_with_a_catch_all_allow() -> None:
    verdict = decide(policy(ALLOW_ALL), tool="delete_all")

    assert verdict.outcome is Outcome.DENY
    assert reasons(verdict) == [("lictor/tool-not-in-inventory", ReasonCode.INVENTORY)]


def test_star_tool_allow_does_not_grant_a_tool_outside_inventory() -> None:
    star = {"id": "star", "effect": "allow", "match": {"tools": ["*"]}}

    assert reasons(decide(policy(star), tool="delete_all")) == [
        ("lictor/tool-not-in-inventory", ReasonCode.INVENTORY)
    ]


@pytest.mark.parametrize("tools", [["delete_all"], ["delete_*"], ["x", "delete_all"]])
def test_allow_rule_naming_the_tool_grants_it_beyond_inventory(tools: list[str]) -> None:
    grant = {"id": "grant", "effect": "allow", "match": {"tools": tools}}

    verdict = decide(policy(grant), tool="delete_all")

    assert verdict.outcome is Outcome.ALLOW
    assert reasons(verdict) == [("grant", ReasonCode.RULE)]


def test_granting_rule_whose_condition_is_false_does_not_grant() -> None:
    grant = {"id": "grant", "effect": "allow", "match": {"tools": ["delete_all"]}, "when": "false"}

    verdict = decide(policy(grant, ALLOW_ALL), tool="delete_all")

    assert reasons(verdict) == [("lictor/tool-not-in-inventory", ReasonCode.INVENTORY)]


def test_shadow_allow_naming_the_tool_does_not_grant_it() -> None:
    grant = {"id": "grant", "effect": "allow", "mode": "shadow", "match": {"tools": ["delete_all"]}}

    verdict = decide(policy(grant, ALLOW_ALL), tool="delete_all")

    assert reasons(verdict) == [("lictor/tool-not-in-inventory", ReasonCode.INVENTORY)]
    assert [r.rule for r in verdict.shadow] == ["grant"]


def test_granted_tool_is_still_denied_by_a_deny_rule() -> None:
    grant = {"id": "grant", "effect": "allow", "match": {"tools": ["delete_all"]}}

    verdict = decide(policy(grant, DENY_ALL), tool="delete_all")

    assert reasons(verdict) == [("deny-all", ReasonCode.RULE)]


def test_granted_tool_is_still_held_by_a_review_rule() -> None:
    grant = {"id": "grant", "effect": "allow", "match": {"tools": ["delete_all"]}}

    assert decide(policy(grant, REVIEW_ALL), tool="delete_all").outcome is Outcome.REVIEW


def test_granting_rule_that_errors_denies_with_evaluation_error() -> None:
    grant = {
        "id": "grant",
        "effect": "allow",
        "match": {"tools": ["delete_all"]},
        "when": "arguments.confirm == true",
    }

    verdict = decide(policy(grant), tool="delete_all")

    assert verdict.outcome is Outcome.DENY
    assert reasons(verdict) == [("grant", ReasonCode.EVALUATION_ERROR)]


def test_tool_in_inventory_by_glob_needs_no_grant() -> None:
    assert decide(policy(ALLOW_ALL), tool="payments.refund").outcome is Outcome.ALLOW


# --- evaluation errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "arguments"),
    [
        ("arguments.amount > 10", {}),
        ("arguments.amount > 10", {"amount": "lots"}),
        ("arguments.amount", {"amount": 5}),
        ("arguments.flag", {"flag": "yes"}),
        ("arguments.items[3] == 1", {"items": [1]}),
        ("int(arguments.amount) > 1", {"amount": "x"}),
    ],
)
@pytest.mark.parametrize("effect", ["allow", "deny", "review"])
def test_condition_that_errors_denies_with_evaluation_error_naming_the_rule(
    when: str, arguments: dict[str, Any], effect: str
) -> None:
    verdict = decide(policy({"id": "broken", "effect": effect, "when": when}), arguments=arguments)

    assert verdict.outcome is Outcome.DENY
    assert reasons(verdict) == [("broken", ReasonCode.EVALUATION_ERROR)]


def test_evaluation_error_denies_even_when_an_allow_rule_fires() -> None:
    broken = {"id": "broken", "effect": "allow", "when": "arguments.amount < 100"}

    verdict = decide(policy(ALLOW_ALL, broken), arguments={})

    assert verdict.outcome is Outcome.DENY
    assert reasons(verdict) == [("broken", ReasonCode.EVALUATION_ERROR)]


def test_evaluation_error_in_a_review_rule_denies_even_when_another_review_fires() -> None:
    broken = {"id": "broken", "effect": "review", "when": "arguments.amount < 100"}

    verdict = decide(policy(REVIEW_ALL, broken), arguments={})

    assert verdict.outcome is Outcome.DENY
    assert reasons(verdict) == [("broken", ReasonCode.EVALUATION_ERROR)]


def test_firing_deny_and_erroring_deny_are_both_listed() -> None:
    broken = {"id": "broken", "effect": "deny", "when": "arguments.amount < 100"}

    verdict = decide(policy(DENY_ALL, broken), arguments={})

    assert reasons(verdict) == [
        ("broken", ReasonCode.EVALUATION_ERROR),
        ("deny-all", ReasonCode.RULE),
    ]


def test_error_reasons_deny_and_say_evaluation_error() -> None:
    verdict = decide(policy({"id": "broken", "effect": "allow", "when": "arguments.x"}))

    (reason,) = verdict.reasons
    assert reason.effect is Outcome.DENY
    assert reason.message.startswith("evaluation_error")


def test_guarded_condition_does_not_error_on_missing_field() -> None:
    guarded = {
        "id": "big",
        "effect": "deny",
        "when": "has(arguments.amount) && arguments.amount > 10",
    }

    assert decide(policy(guarded, ALLOW_ALL), arguments={}).outcome is Outcome.ALLOW


def test_root_scoped_variable_reference_evaluates() -> None:
    verdict = decide(policy({"id": "r", "effect": "allow", "when": ".tool == 'read'"}))

    assert verdict.outcome is Outcome.ALLOW


# --- shadow rules -----------------------------------------------------------------------


def test_shadow_rules_are_reported_but_never_change_the_outcome() -> None:
    compiled = policy(
        ALLOW_ALL,
        {"id": "would-deny", "effect": "deny", "mode": "shadow", "message": "m"},
        {"id": "would-review", "effect": "review", "mode": "shadow"},
        {"id": "quiet", "effect": "deny", "mode": "shadow", "when": "false"},
    )

    verdict = decide(compiled)

    assert verdict.outcome is Outcome.ALLOW
    assert reasons(verdict) == [("allow-all", ReasonCode.RULE)]
    assert [(r.rule, r.effect, r.message) for r in verdict.shadow] == [
        ("would-deny", Outcome.DENY, "m"),
        ("would-review", Outcome.REVIEW, ""),
    ]


def test_shadow_rule_that_errors_is_reported_and_does_not_deny() -> None:
    broken = {"id": "broken", "effect": "allow", "mode": "shadow", "when": "arguments.x > 1"}

    verdict = decide(policy(ALLOW_ALL, broken), arguments={})

    assert verdict.outcome is Outcome.ALLOW
    assert [(r.rule, r.code) for r in verdict.shadow] == [("broken", ReasonCode.EVALUATION_ERROR)]


def test_shadow_rules_are_reported_on_a_denial_too() -> None:
    verdict = decide(policy(DENY_ALL, {"id": "watch", "effect": "allow", "mode": "shadow"}))

    assert verdict.outcome is Outcome.DENY
    assert [r.rule for r in verdict.shadow] == ["watch"]


def test_rule_ids_are_the_deciding_rules() -> None:
    verdict = decide(policy(ALLOW_ALL, {"id": "a2", "effect": "allow"}))

    assert verdict.rule_ids == ("a2", "allow-all")


# --- fast path and per-rule path ---------------------------------------------------------

PATHS = policy(
    {"id": "small", "effect": "allow", "when": "arguments.n > 1"},
    {"id": "big", "effect": "review", "when": "arguments.n > 100"},
    {"id": "odd", "effect": "deny", "when": "arguments.n % 2 == 1"},
    {"id": "probe", "effect": "deny", "mode": "shadow", "when": "arguments.probe == 1"},
)


@pytest.mark.parametrize("n", [0, 2, 3, 200, 201])
def test_combined_fast_path_and_per_rule_fallback_agree(n: int) -> None:
    fast = decide(PATHS, arguments={"n": n, "probe": 0})
    # A missing field makes the shadow rule error, so the combined list errors and every
    # condition is evaluated again on its own.
    slow = decide(PATHS, arguments={"n": n})

    assert fast.evaluated == 1
    assert slow.evaluated > 1
    assert (slow.outcome, slow.reasons) == (fast.outcome, fast.reasons)
    assert [(r.rule, r.code) for r in slow.shadow] == [("probe", ReasonCode.EVALUATION_ERROR)]


def test_fast_path_reports_shadow_rules_like_the_slow_path() -> None:
    fired = decide(PATHS, arguments={"n": 2, "probe": 1})

    assert fired.outcome is Outcome.ALLOW
    assert [r.rule for r in fired.shadow] == ["probe"]


def test_unconditional_rules_need_no_evaluation() -> None:
    assert decide(policy(ALLOW_ALL, REVIEW_ALL)).evaluated == 0


def test_a_value_cel_rejects_denies_and_leaves_later_verdicts_alone() -> None:
    compiled = policy({"id": "small", "effect": "allow", "when": "arguments.n > 1"})

    for _ in range(2):  # the second round meets the memoised verdicts
        plain = decide(compiled, arguments={"n": 5})
        huge = decide(compiled, arguments={"n": 2**64})  # past int64: CEL cannot hold it

        assert plain.outcome is Outcome.ALLOW
        assert huge.outcome is Outcome.DENY
        assert reasons(huge) == [("small", ReasonCode.EVALUATION_ERROR)]


def test_memoised_verdicts_name_the_agent_that_was_decided() -> None:
    compiled = policy({"id": "any-tool", "effect": "allow", "match": {"tools": ["*"]}})
    other = replace(BOT, id=AgentId("bot-2"))

    for agent in (BOT, other, BOT, other):
        verdict = decide(compiled, agent=agent, tool="delete")

        assert reasons(verdict) == [("lictor/tool-not-in-inventory", ReasonCode.INVENTORY)]
        assert repr(agent.id) in verdict.reasons[0].message


def test_memoised_verdicts_follow_the_conditions_and_the_inventory() -> None:
    compiled = policy(
        {"id": "big", "effect": "review", "when": "arguments.n > 100"},
        {"id": "odd", "effect": "deny", "when": "arguments.n in [1, 3, 101]"},
        {"id": "grant", "effect": "allow", "match": {"tools": ["delete"]}, "when": "true"},
        {"id": "reads", "effect": "allow", "match": {"tools": ["read"]}},
    )
    expected = {
        (0, "read"): ("allow", ["reads"]),
        (3, "read"): ("deny", ["odd"]),
        (200, "read"): ("review", ["big"]),
        (101, "read"): ("deny", ["odd"]),
        (0, "delete"): ("allow", ["grant"]),  # outside the inventory, granted by name
        (200, "delete"): ("review", ["big"]),
    }
    for _ in range(2):
        for (n, tool), (outcome, rules) in expected.items():
            verdict = decide(compiled, tool=tool, arguments={"n": n})

            assert (verdict.outcome.value, list(verdict.rule_ids)) == (outcome, rules)


# --- CEL functions ----------------------------------------------------------------------


def holds(when: str, **fields: Any) -> bool:
    """Evaluate ``when`` as the one allow rule; fail the test on an evaluation error."""
    compiled = policy({"id": "probe", "effect": "allow", "when": when})
    verdict = decide(compiled, agent=replace(BOT, allowed_tools=("*",)), **fields)
    assert [r for r in verdict.reasons if r.code is ReasonCode.EVALUATION_ERROR] == []
    return verdict.outcome is Outcome.ALLOW


@pytest.mark.parametrize(
    ("tool", "pattern", "expected"),
    [
        ("payments.refund", "payments.*", True),
        ("payments", "payments.*", False),
        ("Payments.refund", "payments.*", False),
        ("report_1", "report_?", True),
        ("report_a", "report_[0-9]", False),
        ("read", "read", True),
    ],
)
def test_glob_matches_a_string_pattern_case_sensitively(
    tool: str, pattern: str, expected: bool
) -> None:
    assert glob(tool, pattern) is expected
    assert holds("glob(tool, arguments.p)", tool=tool, arguments={"p": pattern}) is expected


def test_glob_with_a_list_matches_any_pattern_and_ignores_non_strings() -> None:
    assert holds("glob(tool, ['x*', 'pay*'])", tool="payments.refund")
    assert not holds("glob(tool, ['x*', 'y'])", tool="payments.refund")
    assert holds("glob(tool, arguments.p)", tool="read", arguments={"p": [1, None, "re*"]})
    assert not holds("glob(tool, [])", tool="read")
    assert glob_list("read", ["x", 3, "r*"])


@pytest.mark.parametrize(
    ("value", "host"),
    [
        ("bob@corp.example", "corp.example"),
        ("Bob.Smith@Mail.Corp.Example", "mail.corp.example"),
        ("https://evil.example:8443/x?y=1", "evil.example"),
        ("https://user:secret@Corp.Example:443/path", "corp.example"),
        ("http://corp.example@evil.example/", "evil.example"),
        ("ftp://files.corp.example./", "files.corp.example"),
        ("corp.example", "corp.example"),
        ("Corp.Example/path/x", "corp.example"),
        ("corp.example:8080", "corp.example"),
        ("  corp.example.  ", "corp.example"),
        ("", ""),
        ("   ", ""),
        ("@", ""),
        ("http://", ""),
        ("https://[::1/", ""),
        ("not a host at all", ""),
        ("bob@corp.example, eve@corp.example", ""),
        ("<>", ""),
    ],
)
def test_domain_extracts_the_lower_case_host(value: str, host: str) -> None:
    assert domain(value) == host
    assert holds("domain(arguments.v) == arguments.host", arguments={"v": value, "host": host})


@pytest.mark.parametrize(
    "value",
    [
        "attacker@evil.example, bob@corp.example",
        "attacker@evil.example;bob@corp.example",
        "attacker@evil.example bob@corp.example",
        "evil.example/@corp.example",
        "evil.example/x?y=@corp.example",
    ],
)
def test_in_domain_is_false_for_strings_that_reach_another_host(value: str) -> None:
    assert not in_domain(value, "corp.example")
    assert not holds("in_domain(arguments.v, 'corp.example')", arguments={"v": value})


@pytest.mark.parametrize(
    ("value", "parent", "expected"),
    [
        ("bob@corp.example", "corp.example", True),
        ("bob@mail.corp.example", "corp.example", True),
        ("https://a.b.corp.example/x", "corp.example", True),
        ("bob@corp.example", ".Corp.Example.", True),
        ("bob@evilcorp.example", "corp.example", False),
        ("bob@corp.example.evil", "corp.example", False),
        ("https://corp.example.evil.example/", "corp.example", False),
        ("bob@example", "corp.example", False),
        ("", "corp.example", False),
        ("bob@corp.example", "", False),
    ],
)
def test_in_domain_accepts_subdomains_but_not_lookalikes(
    value: str, parent: str, expected: bool
) -> None:
    assert in_domain(value, parent) is expected
    assert (
        holds("in_domain(arguments.v, arguments.p)", arguments={"v": value, "p": parent})
        is expected
    )


@pytest.mark.parametrize(
    ("task", "value", "expected"),
    [
        ("mail Bob@X.io the report", "bob@x.io", True),
        ("Pay ACME GmbH today", "acme gmbh", True),
        ("pay  acme\n gmbh", "ACME GmbH", True),
        ("pay ACMEcorp", "acme", False),
        ("pay to DE89370400440532013000 now", "DE89370400440532013000", True),
        ("send 10,000 EUR", 10000, True),
        ("send 10000.00 EUR", 10000, True),
        ("send 10000.00 EUR", 10000.0, True),
        ("send 12.5 EUR", 12.5, True),
        ("send 100 EUR", 10, False),
        ("send 100 EUR", "10", False),
        ("invoice v2.10", 10, False),
        ("send 10 EUR", 100, False),
        ("mail bob and eve", ["Bob", "Eve"], True),
        ("mail bob", ["bob", "eve"], False),
        ("pay 5 to bob", ["bob", 5], True),
        ("anything", "", False),
        ("anything", "   ", False),
        ("anything", [], False),
        ("", "x", False),
    ],
)
def test_mentions_matches_whole_words_and_numbers_by_value(
    task: str, value: Any, expected: bool
) -> None:
    assert mentions(task, value) is expected
    assert (
        holds("mentions(context.task, arguments.v)", context={"task": task}, arguments={"v": value})
        is expected
    )


def test_mentions_accepts_unsigned_and_double_literals() -> None:
    assert holds("mentions(context.task, 10u)", context={"task": "pay 10"})
    assert holds("mentions(context.task, 10.0)", context={"task": "pay 10"})


def test_mentions_reads_a_comma_separated_list_as_separate_numbers() -> None:
    assert mentions("pay invoices of 100, 200 and 300", 100)
    assert mentions("pay invoices of 100, 200 and 300", 200)
    assert not mentions("pay invoices of 100, 200 and 300", 100200)
    assert not mentions("between 10 20", 1020)


@pytest.mark.parametrize(
    ("address", "network", "expected"),
    [
        ("10.1.2.3", "10.0.0.0/8", True),
        ("11.1.2.3", "10.0.0.0/8", False),
        ("192.168.1.7", "192.168.1.7/32", True),
        ("10.1.2.3", "10.1.2.0/24 ", True),
        ("10.1.2.3", "10.1.2.9/24", True),
        ("2001:db8::1", "2001:db8::/32", True),
        ("2001:db8::1", "10.0.0.0/8", False),
        ("not an ip", "10.0.0.0/8", False),
        ("10.1.2.3", "garbage", False),
    ],
)
def test_in_cidr_tests_membership_and_is_false_on_garbage(
    address: str, network: str, expected: bool
) -> None:
    assert in_cidr(address, network) is expected
    assert holds("in_cidr(arguments.a, arguments.n)", arguments={"a": address, "n": network}) is (
        expected
    )


# --- variables --------------------------------------------------------------------------


def test_time_variables_are_in_the_bundle_timezone() -> None:
    # Sunday 23:30 UTC is Monday 00:30 in Berlin.
    compiled = policy(
        {
            "id": "berlin-monday",
            "effect": "allow",
            "when": "time.day == 'monday' && time.weekday == 1 && time.hour == 0 "
            "&& time.minute == 30 && time.date == '2026-01-05'",
        },
        timezone="Europe/Berlin",
    )

    late_sunday_utc = datetime(2026, 1, 4, 23, 30, tzinfo=UTC)

    assert decide(compiled, now=late_sunday_utc).outcome is Outcome.ALLOW


def test_time_variables_default_to_utc() -> None:
    compiled = policy(
        {"id": "utc", "effect": "allow", "when": "time.day == 'sunday' && time.weekday == 7"}
    )

    assert decide(compiled, now=datetime(2026, 1, 4, 23, 30, tzinfo=UTC)).outcome is Outcome.ALLOW


def test_now_is_a_timestamp() -> None:
    assert holds("now == timestamp('2026-01-05T10:00:00Z')")
    assert holds("now > timestamp('2026-01-05T09:59:59Z')")
    assert not holds("now < timestamp('2026-01-01T00:00:00Z')")


def test_session_labels_and_counters_are_visible() -> None:
    session = SessionFacts(
        id="run-1", labels=frozenset({"confidential"}), counters={"send_email": 3}, calls=4
    )

    assert holds("'confidential' in session.labels", session=session)
    assert holds("session.counters.send_email == 3 && session.calls == 4", session=session)
    assert holds("session.id == 'run-1'", session=session)
    assert holds("session.counters.?read.orValue(0) == 0", session=session)


def test_empty_session_has_no_labels_or_counters() -> None:
    assert holds("size(session.labels) == 0 && size(session.counters) == 0 && session.calls == 0")


def test_principal_and_resource_have_empty_defaults_when_absent() -> None:
    assert holds("principal.id == '' && size(principal.groups) == 0")
    assert holds("size(principal.attributes) == 0")
    assert holds("resource.type == '' && resource.id == '' && size(resource.labels) == 0")
    assert holds("request.principal.id == '' && request.resource.labels == []")
    assert holds("server == '' && request.server == '' && request.session_id == ''")


def test_principal_resource_and_context_are_visible_when_given() -> None:
    fields: dict[str, Any] = {
        "principal": {"id": "emma", "groups": ["sales"], "attributes": {"level": 3}},
        "resource": {"type": "mailbox", "id": "emma", "labels": ["internal"]},
        "context": {"task": "follow up", "ticket": "T-1", "customer": "acme"},
        "delegation": ["emma", "bot"],
        "server": "workspace",
    }

    assert holds("principal.id == 'emma' && 'sales' in principal.groups", **fields)
    assert holds("principal.attributes.level == 3", **fields)
    assert holds("'internal' in resource.labels && resource.type == 'mailbox'", **fields)
    assert holds("context.ticket == 'T-1' && context.customer == 'acme'", **fields)
    assert holds("delegation == ['emma', 'bot'] && server == 'workspace'", **fields)
    assert holds("request.tool == 'read' && request.agent_id == 'bot'", **fields)


def test_agent_record_is_visible() -> None:
    assert holds("agent.id == 'bot' && 'finance' in agent.tags && agent.risk_tier == 'high'")
    assert holds("agent.attributes.limit == 100")


# The package re-exports the function ``evaluate``, which hides the module of that name.
evaluate_module = importlib.import_module("lictor.core.policy.evaluate")
EVERY_VARIABLE = policy(
    {
        "id": "reads-everything",
        "effect": "allow",
        "when": "tool == 'x' || server == 'y' || size(delegation) > 5 || principal.id == 'z' "
        "|| context.task == 'z' || resource.id == 'z' || agent.id == 'z' || session.id == 'z' "
        "|| time.hour == 25 || arguments.n == 1",
    }
)
REQUEST_SHAPES: list[dict[str, Any]] = [
    {},
    {"arguments": {"n": 2, "to": ["é@corp.example"]}, "server": "bank", "delegation": ["emma"]},
    {
        "principal": {"id": "emma", "groups": ["sales"], "attributes": {"level": [1, 2.5]}},
        "resource": {"type": "mailbox", "id": "emma", "labels": ["internal", "pii"]},
        "context": {"task": "pay 5 € to bob", "purpose": "refund", "customer": {"id": 7}},
    },
]


@pytest.mark.parametrize("fields", REQUEST_SHAPES)
def test_fast_path_variables_are_the_values_cel_is_given(fields: dict[str, Any]) -> None:
    # The fast path builds each variable on its own; CEL's activation comes from _Run.
    request = parse_request({"agent_id": "bot", "tool": "read", **fields})
    session = SessionFacts(
        id="run-1", labels=frozenset({"pii", "b"}), counters={"read": 2}, calls=3
    )
    facts = Facts(agent=BOT, now=NOW, session=session)
    cands = EVERY_VARIABLE.candidates(request.tool, request.server, request.agent_id, BOT)
    names = tuple(evaluate_module._PLAIN_VARIABLES)
    built = evaluate_module._Run(EVERY_VARIABLE, request, facts, cands)._data()

    fast = evaluate_module._native_data(names, request, facts, EVERY_VARIABLE.zone)

    assert fast == {name: built[name] for name in names}


@pytest.mark.parametrize(
    ("condition", "fields", "session"),
    [
        ("'pii' in session.labels", {}, SessionFacts(labels=frozenset({"pii", "\ud800"}))),
        ("session.counters.read > 1", {}, SessionFacts(counters={"read": 2**64})),
        ("resource.id == 'r'", {"resource": {"id": "r", "labels": ["\udfff"]}}, None),
        ("context.purpose == 'p'", {"context": {"purpose": "p", "big": 2**64}}, None),
        ("principal.id == 'p'", {"principal": {"id": "p", "attributes": {"x": 2**64}}}, None),
    ],
)
def test_a_variable_cel_cannot_hold_denies_with_evaluation_error(
    condition: str, fields: dict[str, Any], session: SessionFacts | None
) -> None:
    compiled = policy({"id": "reads", "effect": "allow", "when": condition})

    for _ in range(2):
        verdict = decide(compiled, session=session, **fields)

        assert verdict.outcome is Outcome.DENY
        assert reasons(verdict) == [("reads", ReasonCode.EVALUATION_ERROR)]
