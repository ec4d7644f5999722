"""Property tests: parsing and compiling are total (rules or PolicyError, nothing else)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lictor.core.policy import CompiledPolicy, Rule, compile_policy, parse_document
from lictor.core.policy.parse import DOCUMENT_KEYS, MATCH_KEYS, RULE_KEYS
from lictor.errors import PolicyError

KEYS = sorted(DOCUMENT_KEYS | RULE_KEYS | MATCH_KEYS | {"ids", "tags", "tiers", "timezone"})
WORDS = [
    "allow",
    "deny",
    "review",
    "enforce",
    "shadow",
    "high",
    "low",
    "critical",
    "info",
    "r1",
    "a/b",
    "*",
    "pay*",
    "true",
    "UTC",
    "",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from(WORDS)
)
json_like = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=25,
)

# Rule-shaped values reach deeper than arbitrary ones: ids and effects are often valid.
rule_shaped = st.fixed_dictionaries(
    {"id": st.sampled_from(["r1", "r2", "bad id"]) | json_like, "effect": json_like},
    optional={
        "when": json_like,
        "mode": st.sampled_from(["enforce", "shadow"]) | json_like,
        "severity": st.sampled_from(["low", "high"]) | json_like,
        "message": json_like,
        "description": json_like,
        "match": st.fixed_dictionaries(
            {},
            optional={
                "tools": json_like,
                "servers": json_like,
                "agents": json_like
                | st.fixed_dictionaries(
                    {}, optional={"ids": json_like, "tags": json_like, "tiers": json_like}
                ),
            },
        )
        | json_like,
    },
)
document_shaped = st.fixed_dictionaries(
    {},
    optional={
        "rules": st.lists(rule_shaped | json_like, max_size=4) | json_like,
        "settings": st.fixed_dictionaries({}, optional={"timezone": json_like}) | json_like,
        "tests": json_like,
        "description": json_like,
    },
)


def at_most(examples: int) -> settings:
    """The profile's example count, capped for a test that is slow under ``ci``."""
    return settings(max_examples=min(settings().max_examples, examples))


@at_most(500)
@given(json_like | document_shaped)
def test_parse_document_gives_rules_or_policy_error(data: object) -> None:
    result: tuple[list[Rule], dict[str, Any]] | PolicyError
    try:
        result = parse_document(data, source="p.yaml")
    except PolicyError as exc:
        result = exc
    if isinstance(result, PolicyError):
        assert result.source == "p.yaml"
    else:
        rules, settings = result
        assert all(isinstance(rule, Rule) for rule in rules)
        assert isinstance(settings, dict)


valid_rules = st.lists(
    st.fixed_dictionaries(
        {
            "effect": st.sampled_from(["allow", "deny", "review"]),
            "when": st.text(min_size=1, max_size=40).filter(lambda s: bool(s.strip())),
        }
    ),
    min_size=1,
    max_size=3,
).map(lambda items: [{"id": f"r{i}", **item} for i, item in enumerate(items)])

CEL_PIECES = [
    "tool",
    "arguments",
    ".",
    "amount",
    " ",
    "==",
    ">",
    "&&",
    "||",
    "!",
    "(",
    ")",
    "[",
    "]",
    "'x'",
    "1",
    "2.5",
    "true",
    "has(",
    "in",
    "glob(",
    "mentions(",
    "domain(",
    ",",
    "size()",
    "//",
    "\n",
    "?",
    ":",
    "+",
]
cel_like = st.lists(st.sampled_from(CEL_PIECES), min_size=1, max_size=12).map("".join)


def compile_rules(data: list[dict[str, Any]]) -> CompiledPolicy | None:
    rules, _ = parse_document({"rules": data})
    result: CompiledPolicy | PolicyError
    try:
        result = compile_policy(rules, version="v1")
    except PolicyError as exc:
        result = exc
    if isinstance(result, PolicyError):
        assert result.rule_id in {rule.id for rule in rules}
        return None
    compiled = result
    # Selecting candidates compiles the combined condition list; that must not raise.
    assert compiled.candidates("t", None, "a", None).size == len(rules)
    return compiled


@given(valid_rules)
def test_compile_policy_on_arbitrary_condition_text_gives_policy_or_policy_error(
    data: list[dict[str, Any]],
) -> None:
    compiled = compile_rules(data)

    assert compiled is None or len(compiled.rules) == len(data)


@given(
    st.lists(
        st.fixed_dictionaries(
            {"effect": st.sampled_from(["allow", "deny", "review"]), "when": cel_like}
        ),
        min_size=1,
        max_size=3,
    ).map(lambda items: [{"id": f"r{i}", **item} for i, item in enumerate(items)])
)
def test_compile_policy_on_cel_like_condition_text_gives_policy_or_policy_error(
    data: list[dict[str, Any]],
) -> None:
    data = [item for item in data if item["when"].strip()]
    compiled = compile_rules(data)

    assert compiled is None or len(compiled.rules) == len(data)
