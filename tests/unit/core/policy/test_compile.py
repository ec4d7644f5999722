"""Compiling rules: every bad condition is a located PolicyError; the index selects rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from lictor.core.agents import Agent, RiskTier
from lictor.core.decisions import Outcome, ReasonCode
from lictor.core.policy import CompiledPolicy, Facts, compile_policy, evaluate, parse_document
from lictor.core.policy.compile import Candidates, referenced_variables
from lictor.core.policy.parse import parse_rules
from lictor.core.requests import AgentId, parse_request
from lictor.errors import PolicyError
from lictor.service.documents import load_yaml


def compile_yaml(text: str, source: str = "policies/p.yaml") -> CompiledPolicy:
    doc = load_yaml(text, source)
    rules, settings = parse_document(doc.data, source=source, locate=doc.locate)
    return compile_policy(rules, version="v1", timezone=settings.get("timezone", "UTC"))


def yaml_error(text: str, source: str = "policies/p.yaml") -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        compile_yaml(text, source)
    return caught.value


def compile_dicts(rules: list[dict[str, Any]], timezone: str = "UTC") -> CompiledPolicy:
    return compile_policy(parse_rules(rules), version="v1", timezone=timezone)


def condition_error(when: str) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        compile_dicts(
            [{"id": "ok", "effect": "allow"}, {"id": "bad", "effect": "deny", "when": when}]
        )
    return caught.value


# --- errors -----------------------------------------------------------------------------


def test_duplicate_rule_id_names_the_second_place_and_the_first() -> None:
    error = yaml_error(
        """\
rules:
  - id: finance/read
    effect: allow
  - id: other
    effect: allow
  - id: finance/read
    effect: deny
"""
    )

    assert (error.source, error.line, error.rule_id) == ("policies/p.yaml", 6, "finance/read")
    assert "policies/p.yaml:2" in str(error)


def test_duplicate_rule_id_across_files_names_both_files() -> None:
    first = load_yaml("rules:\n  - {id: r, effect: allow}\n", "a.yaml")
    second = load_yaml("rules:\n\n  - {id: r, effect: deny}\n", "b.yaml")
    rules = [
        *parse_document(first.data, source="a.yaml", locate=first.locate)[0],
        *parse_document(second.data, source="b.yaml", locate=second.locate)[0],
    ]

    with pytest.raises(PolicyError) as caught:
        compile_policy(rules, version="v1")

    assert (caught.value.source, caught.value.line, caught.value.rule_id) == ("b.yaml", 3, "r")
    assert "a.yaml:2" in str(caught.value)


def test_duplicate_rule_id_without_files_is_still_an_error() -> None:
    with pytest.raises(PolicyError) as caught:
        compile_dicts([{"id": "r", "effect": "allow"}, {"id": "r", "effect": "allow"}])

    assert caught.value.rule_id == "r"


def test_cel_syntax_error_reports_file_line_of_the_condition() -> None:
    error = yaml_error(
        """\
settings: {timezone: UTC}
rules:
  - id: fine
    effect: allow
  - id: broken
    match: {tools: [send_money]}
    when: "arguments.amount >"
    effect: deny
"""
    )

    assert (error.source, error.line, error.rule_id) == ("policies/p.yaml", 7, "broken")
    assert error.location().startswith("policies/p.yaml:7")


def test_cel_error_in_a_flow_mapping_rule_reports_its_line() -> None:
    error = yaml_error(
        "rules:\n  - {id: a, effect: allow}\n  - {id: b, effect: deny, when: 'tool ==='}\n"
    )

    assert (error.line, error.rule_id) == (3, "b")


def test_cel_error_on_the_second_line_of_a_block_condition_reports_that_file_line() -> None:
    error = yaml_error(
        """\
rules:
  - id: broken
    effect: deny
    when: |
      tool == 'send_money' &&
      no_such_function(arguments)
"""
    )

    assert (error.line, error.rule_id) == (6, "broken")


@pytest.mark.parametrize(
    "when",
    [
        "no_such_function(tool)",
        "tool.no_such_method()",
        "glob(tool)",
        "in_cidr(tool)",
    ],
)
def test_unknown_function_or_overload_is_a_policy_error(when: str) -> None:
    error = condition_error(when)

    assert (error.rule_id, error.pointer) == ("bad", "/when")


@pytest.mark.parametrize("when", ["argument.amount > 5", "user == 'x'", "times.hour > 3"])
def test_unknown_variable_is_a_policy_error(when: str) -> None:
    assert condition_error(when).rule_id == "bad"


@pytest.mark.parametrize(
    "when",
    ["1 + 2", "'yes'", "arguments.amount + 1", "domain(tool)", "[true]", "{'a': true}", "now"],
)
def test_condition_of_a_known_non_boolean_type_is_a_policy_error(when: str) -> None:
    assert condition_error(when).rule_id == "bad"


@pytest.mark.parametrize("when", ["arguments.amount", "arguments.a + arguments.b"])
def test_dynamic_condition_compiles_then_denies_with_evaluation_error(when: str) -> None:
    policy = compile_dicts([{"id": "dyn", "effect": "allow", "when": when}])
    request = parse_request(
        {"agent_id": "a", "tool": "t", "arguments": {"amount": 1, "a": 1, "b": 2}}
    )
    agent = Agent(id=AgentId("a"), allowed_tools=("t",))

    verdict = evaluate(policy, request, Facts(agent=agent, now=datetime(2026, 1, 5, tzinfo=UTC)))

    assert verdict.outcome is Outcome.DENY
    assert [(r.rule, r.code) for r in verdict.reasons] == [("dyn", ReasonCode.EVALUATION_ERROR)]


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "utc+2", "../etc/passwd"])
def test_unknown_timezone_is_a_policy_error_at_the_settings(zone: str) -> None:
    with pytest.raises(PolicyError) as caught:
        compile_dicts([], timezone=zone)

    assert caught.value.pointer == "/settings/timezone"


def test_known_timezone_becomes_the_policy_zone() -> None:
    policy = compile_dicts([], timezone="Europe/Berlin")

    assert policy.zone.key == "Europe/Berlin"
    assert policy.policy.timezone == "Europe/Berlin"


def test_compiled_policy_keeps_rules_in_load_order_and_its_version() -> None:
    policy = compile_dicts([{"id": "b", "effect": "allow"}, {"id": "a", "effect": "deny"}])

    assert [c.rule.id for c in policy.rules] == ["b", "a"]
    assert policy.version == "v1"


def test_condition_with_a_lone_surrogate_is_a_policy_error() -> None:
    doc = load_yaml(
        "rules:\n  - id: r\n    effect: deny\n    when: \"tool == '\\ud800'\"\n", "p.yaml"
    )
    rules, _ = parse_document(doc.data, source="p.yaml", locate=doc.locate)

    with pytest.raises(PolicyError):
        compile_policy(rules, version="v1")


def test_referenced_variables_over_approximates_top_level_names() -> None:
    assert referenced_variables("arguments.tool == 'x' && 'session' in context.task") == {
        "arguments",
        "context",
        "session",
    }
    assert referenced_variables(None) == frozenset()


# --- the index --------------------------------------------------------------------------

FIN = Agent(id=AgentId("pay-bot"), tags=("finance",), risk_tier=RiskTier.HIGH, allowed_tools=("*",))
OPS = Agent(id=AgentId("ops-bot"), tags=("ops",), risk_tier=RiskTier.LOW)

INDEXED = compile_dicts(
    [
        {"id": "exact", "effect": "allow", "match": {"tools": ["send_money"]}},
        {"id": "glob", "effect": "deny", "match": {"tools": ["payments.*"]}},
        {"id": "both", "effect": "review", "match": {"tools": ["payments.refund", "pay*"]}},
        {"id": "any-tool", "effect": "allow", "when": "true"},
        {"id": "other-tool", "effect": "deny", "match": {"tools": ["read"]}},
        {"id": "on-bank", "effect": "deny", "match": {"servers": ["bank"]}},
        {"id": "on-bank-glob", "effect": "deny", "match": {"servers": ["bank-*"]}},
        {"id": "for-pay-bot", "effect": "deny", "match": {"agents": ["pay-bot"]}},
        {"id": "for-pay-glob", "effect": "deny", "match": {"agents": ["pay-*"]}},
        {"id": "for-finance", "effect": "deny", "match": {"agents": {"tags": ["finance"]}}},
        {"id": "for-high", "effect": "deny", "match": {"agents": {"tiers": ["high", "critical"]}}},
        {
            "id": "finance-and-low",
            "effect": "deny",
            "match": {"agents": {"tags": ["finance"], "tiers": ["low"]}},
        },
        {"id": "shadowed", "effect": "deny", "mode": "shadow"},
    ]
)


def ids(candidates: Candidates) -> list[str]:
    chosen = [*candidates.deny, *candidates.review, *candidates.allow, *candidates.shadow]
    return [c.rule.id for c in sorted(chosen, key=lambda c: c.order)]


ALWAYS = ["any-tool", "shadowed"]


def test_candidates_for_an_exact_tool_are_its_rules_and_tool_less_ones() -> None:
    assert ids(INDEXED.candidates("send_money", None, "x", None)) == ["exact", *ALWAYS]


def test_candidates_for_a_globbed_tool_include_the_glob_rules() -> None:
    assert ids(INDEXED.candidates("payments.void", None, "x", None)) == ["glob", "both", *ALWAYS]


def test_rule_matching_a_tool_twice_is_a_candidate_once() -> None:
    assert ids(INDEXED.candidates("payments.refund", None, "x", None)) == ["glob", "both", *ALWAYS]


def test_unrelated_tool_gets_only_tool_less_rules() -> None:
    assert ids(INDEXED.candidates("delete_all", None, "x", None)) == ALWAYS


def test_tool_match_is_case_sensitive() -> None:
    assert ids(INDEXED.candidates("Send_Money", None, "x", None)) == ALWAYS


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        (None, []),
        ("bank", ["on-bank"]),
        ("bank-eu", ["on-bank-glob"]),
        ("Bank", []),
        ("shop", []),
    ],
)
def test_server_selectors_need_a_matching_server(server: str | None, expected: list[str]) -> None:
    chosen = ids(INDEXED.candidates("delete_all", server, "x", None))

    assert chosen == ["any-tool", *expected, "shadowed"]


@pytest.mark.parametrize(
    ("agent_id", "agent", "expected"),
    [
        ("pay-bot", FIN, ["for-pay-bot", "for-pay-glob", "for-finance", "for-high"]),
        ("pay-bot", None, ["for-pay-bot", "for-pay-glob"]),
        ("pay-other", None, ["for-pay-glob"]),
        ("ops-bot", OPS, []),
        (
            "pay-2",
            Agent(id=AgentId("pay-2"), tags=("finance",), risk_tier=RiskTier.LOW),
            ["for-pay-glob", "for-finance", "finance-and-low"],
        ),
    ],
)
def test_agent_selectors_filter_by_id_tag_and_tier(
    agent_id: str, agent: Agent | None, expected: list[str]
) -> None:
    chosen = ids(INDEXED.candidates("delete_all", None, agent_id, agent))

    assert chosen == ["any-tool", *expected, "shadowed"]


def test_candidates_are_sorted_into_roles_by_effect_and_mode() -> None:
    cands = INDEXED.candidates("payments.refund", None, "x", None)

    assert [c.rule.id for c in cands.deny] == ["glob"]
    assert [c.rule.id for c in cands.review] == ["both"]
    assert [c.rule.id for c in cands.allow] == ["any-tool"]
    assert [c.rule.id for c in cands.shadow] == ["shadowed"]
    assert cands.size == 4


def test_only_enforcing_allow_rules_that_name_tools_can_grant_a_tool() -> None:
    policy = compile_dicts(
        [
            {"id": "named", "effect": "allow", "match": {"tools": ["wire"]}},
            {"id": "named-glob", "effect": "allow", "match": {"tools": ["wi*"]}},
            {"id": "star", "effect": "allow", "match": {"tools": ["*"]}},
            {"id": "tool-less", "effect": "allow"},
            {"id": "shadow", "effect": "allow", "mode": "shadow", "match": {"tools": ["wire"]}},
            {"id": "review", "effect": "review", "match": {"tools": ["wire"]}},
        ]
    )

    granting = policy.candidates("wire", None, "a", None).granting

    assert [c.rule.id for c in granting] == ["named", "named-glob"]


def test_candidates_are_memoised_per_request_shape() -> None:
    first = INDEXED.candidates("send_money", "bank", "pay-bot", FIN)

    assert INDEXED.candidates("send_money", "bank", "pay-bot", FIN) is first
    assert INDEXED.candidates("send_money", "bank", "pay-bot", OPS) is not first
