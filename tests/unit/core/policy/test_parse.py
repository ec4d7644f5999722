"""Policy documents to rules: every mistake is a PolicyError that says where it is."""

from __future__ import annotations

from typing import Any

import pytest

from lictor.core.decisions import Outcome
from lictor.core.policy import AgentSelector, Match, Mode, Rule, Severity, parse_document
from lictor.core.policy.parse import MAX_CONDITION_LENGTH, parse_rules
from lictor.errors import PolicyError
from lictor.service.documents import load_yaml


def error_of(data: object) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        parse_document(data)
    return caught.value


def rule_error(**fields: Any) -> PolicyError:
    """The error for a document whose second rule has ``fields`` (the first is fine)."""
    return error_of({"rules": [{"id": "ok", "effect": "allow"}, fields]})


def test_full_rule_parses_into_every_field() -> None:
    rules, settings = parse_document(
        {
            "description": "payments",
            "settings": {"timezone": "Europe/Berlin"},
            "rules": [
                {
                    "id": "finance/large-transfer",
                    "description": "big ones",
                    "match": {
                        "tools": ["send_money", "payments.*"],
                        "servers": ["bank"],
                        "agents": {"ids": ["pay-*"], "tags": ["finance"], "tiers": ["high"]},
                    },
                    "when": "arguments.amount > 10000",
                    "effect": "review",
                    "message": "needs a reviewer",
                    "mode": "shadow",
                    "severity": "high",
                }
            ],
        },
        source="payments.yaml",
    )

    assert settings == {"timezone": "Europe/Berlin"}
    assert rules == [
        Rule(
            id="finance/large-transfer",
            effect=Outcome.REVIEW,
            match=Match(
                tools=("send_money", "payments.*"),
                servers=("bank",),
                agents=AgentSelector(ids=("pay-*",), tags=("finance",), tiers=("high",)),
            ),
            when="arguments.amount > 10000",
            message="needs a reviewer",
            description="big ones",
            mode=Mode.SHADOW,
            severity=Severity.HIGH,
            source="payments.yaml",
        )
    ]


def test_minimal_rule_defaults_to_enforce_medium_and_matches_everything() -> None:
    (rule,) = parse_rules([{"id": "r", "effect": "deny"}])

    assert rule == Rule(id="r", effect=Outcome.DENY)
    assert rule.mode is Mode.ENFORCE
    assert rule.severity is Severity.MEDIUM
    assert rule.match == Match()
    assert rule.when is None


@pytest.mark.parametrize("data", [None, {}, {"rules": None}, {"rules": []}])
def test_empty_documents_hold_no_rules(data: object) -> None:
    assert parse_document(data) == ([], {})


def test_single_strings_are_shorthand_for_one_element_lists() -> None:
    (rule,) = parse_rules([{"id": "r", "effect": "allow", "match": {"tools": "send_money"}}])

    assert rule.match.tools == ("send_money",)


def test_agents_list_is_shorthand_for_ids() -> None:
    (rule,) = parse_rules([{"id": "r", "effect": "allow", "match": {"agents": ["a", "b*"]}}])

    assert rule.match.agents == AgentSelector(ids=("a", "b*"))


@pytest.mark.parametrize(("when", "text"), [(True, "true"), (False, "false")])
def test_boolean_when_becomes_a_cel_literal(when: bool, text: str) -> None:
    (rule,) = parse_rules([{"id": "r", "effect": "allow", "when": when}])

    assert rule.when == text


@pytest.mark.parametrize("data", [[], "rules: []", 3, True])
def test_document_that_is_not_a_mapping_is_rejected_at_the_root(data: object) -> None:
    assert error_of(data).pointer == ""


@pytest.mark.parametrize(
    ("data", "pointer"),
    [
        ({"rule": []}, "/rule"),
        ({"rules": [], "version": 2}, "/version"),
        ({"settings": "UTC"}, "/settings"),
        ({"settings": {"tz": "UTC"}}, "/settings/tz"),
        ({"settings": {"timezone": 1}}, "/settings/timezone"),
        ({"settings": {"timezone": ""}}, "/settings/timezone"),
        ({"rules": {"id": "r"}}, "/rules"),
        ({"rules": "r"}, "/rules"),
        ({"rules": [{"id": "ok", "effect": "allow"}, "deny all"]}, "/rules/1"),
    ],
)
def test_document_level_error_is_named_by_pointer(data: object, pointer: str) -> None:
    error = error_of(data)

    assert error.pointer == pointer
    assert error.rule_id is None


@pytest.mark.parametrize("rule_id", [None, "", "-leading-dash", "has space", "x" * 129, 5, ["r"]])
def test_bad_rule_id_is_named_without_a_rule_id(rule_id: object) -> None:
    error = rule_error(id=rule_id, effect="allow")

    assert error.pointer == "/rules/1/id"
    assert error.rule_id is None


def test_rule_without_id_is_named_at_its_id() -> None:
    assert rule_error(effect="allow").pointer == "/rules/1/id"


@pytest.mark.parametrize("rule_id", ["a", "finance/large-transfer", "x.y:z_1", "9" + "x" * 127])
def test_good_rule_ids_are_accepted(rule_id: str) -> None:
    (rule,) = parse_rules([{"id": rule_id, "effect": "allow"}])

    assert rule.id == rule_id


@pytest.mark.parametrize("rule_id", ["r1\n", "\nr1", "r1\r\n"])
def test_rule_id_with_a_newline_is_rejected(rule_id: str) -> None:
    assert rule_error(id=rule_id, effect="allow").pointer == "/rules/1/id"


@pytest.mark.parametrize(
    ("fields", "pointer"),
    [
        ({"wehn": "true"}, "/rules/1/wehn"),
        ({"effect": "allow", "tools": ["x"]}, "/rules/1/tools"),
        ({}, "/rules/1"),
        ({"effect": "permit"}, "/rules/1/effect"),
        ({"effect": "ALLOW"}, "/rules/1/effect"),
        ({"effect": None}, "/rules/1/effect"),
        ({"effect": ["deny"]}, "/rules/1/effect"),
        ({"effect": "deny", "mode": "audit"}, "/rules/1/mode"),
        ({"effect": "deny", "mode": ["shadow"]}, "/rules/1/mode"),
        ({"effect": "deny", "severity": "urgent"}, "/rules/1/severity"),
        ({"effect": "deny", "severity": 3}, "/rules/1/severity"),
        ({"effect": "deny", "when": ""}, "/rules/1/when"),
        ({"effect": "deny", "when": "   "}, "/rules/1/when"),
        ({"effect": "deny", "when": 5}, "/rules/1/when"),
        ({"effect": "deny", "when": ["a", "b"]}, "/rules/1/when"),
        ({"effect": "deny", "when": "x" * (MAX_CONDITION_LENGTH + 1)}, "/rules/1/when"),
        ({"effect": "deny", "message": 5}, "/rules/1/message"),
        ({"effect": "deny", "description": ["x"]}, "/rules/1/description"),
        ({"effect": "deny", "match": ["send_money"]}, "/rules/1/match"),
        ({"effect": "deny", "match": {"tool": ["x"]}}, "/rules/1/match/tool"),
        ({"effect": "deny", "match": {"tools": 5}}, "/rules/1/match/tools"),
        ({"effect": "deny", "match": {"tools": {"x": 1}}}, "/rules/1/match/tools"),
        ({"effect": "deny", "match": {"tools": ["x", ""]}}, "/rules/1/match/tools/1"),
        ({"effect": "deny", "match": {"tools": ["x", 3]}}, "/rules/1/match/tools/1"),
        ({"effect": "deny", "match": {"servers": [None]}}, "/rules/1/match/servers/0"),
        ({"effect": "deny", "match": {"agents": "a"}}, "/rules/1/match/agents"),
        ({"effect": "deny", "match": {"agents": ["a", 1]}}, "/rules/1/match/agents/1"),
        ({"effect": "deny", "match": {"agents": {"names": ["a"]}}}, "/rules/1/match/agents/names"),
        ({"effect": "deny", "match": {"agents": {"tags": 1}}}, "/rules/1/match/agents/tags"),
        (
            {"effect": "deny", "match": {"agents": {"tiers": ["low", "extreme"]}}},
            "/rules/1/match/agents/tiers/1",
        ),
        (
            {"effect": "deny", "match": {"agents": {"tiers": ["High"]}}},
            "/rules/1/match/agents/tiers/0",
        ),
    ],
)
def test_rule_level_error_is_named_by_pointer_and_rule_id(
    fields: dict[str, Any], pointer: str
) -> None:
    error = rule_error(id="bad", **fields)

    assert error.pointer == pointer
    assert error.rule_id == "bad"


def test_condition_at_the_length_limit_is_accepted() -> None:
    (rule,) = parse_rules([{"id": "r", "effect": "deny", "when": "x" * MAX_CONDITION_LENGTH}])

    assert rule.when is not None


def test_every_tier_is_accepted_in_a_selector() -> None:
    (rule,) = parse_rules(
        [
            {
                "id": "r",
                "effect": "deny",
                "match": {"agents": {"tiers": ["low", "medium", "high", "critical"]}},
            }
        ]
    )

    assert rule.match.agents.tiers == ("low", "medium", "high", "critical")


def test_source_is_carried_into_rules_and_errors() -> None:
    (rule,) = parse_rules([{"id": "r", "effect": "deny"}], source="p.yaml")
    with pytest.raises(PolicyError) as caught:
        parse_document({"rules": [{"id": "r"}]}, source="p.yaml")

    assert rule.source == "p.yaml"
    assert caught.value.source == "p.yaml"


POLICY_YAML = """\
settings:
  timezone: UTC
rules:
  - id: first
    effect: allow
  - id: second
    match:
      tools: [send_money]
    when: "arguments.amount > 5"
    effect: deny
"""


def test_rules_remember_the_line_of_the_rule_and_of_its_condition() -> None:
    doc = load_yaml(POLICY_YAML, "p.yaml")

    first, second = parse_document(doc.data, source=doc.source, locate=doc.locate)[0]

    assert (first.line, first.when_line) == (4, None)
    assert (second.line, second.when_line) == (6, 9)


def test_errors_carry_line_and_column_of_the_bad_value() -> None:
    doc = load_yaml(POLICY_YAML.replace("effect: deny", "effect: forbid"), "p.yaml")

    with pytest.raises(PolicyError) as caught:
        parse_document(doc.data, source=doc.source, locate=doc.locate)

    error = caught.value
    assert (error.source, error.line, error.column) == ("p.yaml", 10, 13)
    assert (error.pointer, error.rule_id) == ("/rules/1/effect", "second")


def test_missing_effect_points_at_the_rule_line() -> None:
    doc = load_yaml(POLICY_YAML.replace("    effect: deny\n", ""), "p.yaml")

    with pytest.raises(PolicyError) as caught:
        parse_document(doc.data, source=doc.source, locate=doc.locate)

    assert (caught.value.line, caught.value.rule_id) == (6, "second")
