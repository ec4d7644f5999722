"""Oracles for the evaluator: a plain evaluator for whole decisions, CEL for native programs.

The benchmark's workload (``benchmarks/_workload.py``) decides every request twice:
through Lictor (index, memoised candidates, native programs, CEL) and through a plain
scan that shares no code with it. The native programs (``lictor.core.policy.native``)
must agree with CEL wherever they answer; hypothesis generates the expressions and data.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks._workload import generate, oracle
from lictor.core.decisions import Outcome
from lictor.core.policy import CompiledPolicy, compile_policy, evaluate, parse_rules
from lictor.core.policy.compile import CompiledRule
from lictor.core.policy.functions import environment
from lictor.core.policy.native import Unresolved, compile_native, is_plain


@pytest.fixture(scope="module")
def workload_200() -> Any:
    return generate(200, 3000, seed=11)


def test_lictor_agrees_with_the_plain_evaluator_at_200_rules(workload_200: Any) -> None:
    policy = compile_policy(
        parse_rules(workload_200.rule_dicts()), version="test", timezone=workload_200.timezone
    )
    mismatches = []
    outcomes = set()
    for request, facts in workload_200.requests:
        expected = oracle(workload_200, request, facts)
        got = evaluate(policy, request, facts)
        outcomes.add(got.outcome)
        if (got.outcome, got.rule_ids) != (expected.outcome, expected.rules):
            mismatches.append((request.request_id, got.outcome, got.rule_ids, expected))

    assert mismatches == []
    assert outcomes == {Outcome.ALLOW, Outcome.DENY, Outcome.REVIEW}


def _without_native(policy: CompiledPolicy) -> CompiledPolicy:
    rules = [replace(c, native=None) for c in policy.rules]
    return CompiledPolicy(policy.policy, rules, policy.zone)


def test_native_programs_change_no_evaluation(workload_200: Any) -> None:
    policy = compile_policy(
        parse_rules(workload_200.rule_dicts()), version="test", timezone=workload_200.timezone
    )
    cel_only = _without_native(policy)
    assert all(c.native is not None for c in policy.rules if c.program is not None)

    for request, facts in workload_200.requests[:1000]:
        assert evaluate(policy, request, facts) == evaluate(cel_only, request, facts)


# --- native programs against CEL --------------------------------------------------------

_KEYS = ("a", "b", "c", "l", "m")

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from([0, 1, -1, 2**53, 2**53 + 1, 2**63 - 1, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1.0, 1.5, -0.0, 2.0**53]),
    st.text(max_size=6),
    st.sampled_from(["", "a", "x@corp.example", "10.1.2.3", "pay 10 EUR", "\ud800", "é"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(_KEYS), inner, max_size=3),
    ),
    max_leaves=8,
)
_literals = st.one_of(
    st.sampled_from(
        ["0", "1", "-1", "2", "1.5", "0.0", "'a'", "''", "'x@corp.example'", "true", "false"]
    ),
    st.sampled_from(["null", "[1, 'a']", "['a', 'b']", "[]", "9007199254740993", "'é'"]),
)
_paths = st.sampled_from(
    [f"arguments.{k}" for k in _KEYS] + ["arguments", "arguments.m.a", "arguments.l[0]"]
)


def _expressions() -> st.SearchStrategy[str]:
    # Mostly variables: they are dynamically typed, so CEL's checker accepts far more
    # combinations than it does for literals.
    atoms = st.one_of(_paths, _paths, _paths, _literals)

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        binary = st.sampled_from(
            ["&&", "||", "==", "!=", "<", "<=", ">", ">=", "in", "+", "-", "*"]
        )
        return st.one_of(
            st.tuples(inner, binary, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            inner.map(lambda e: f"!({e})"),
            inner.map(lambda e: f"-({e})"),
            st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} ? {t[1]} : {t[2]})"),
            st.sampled_from(_KEYS).map(lambda k: f"has(arguments.{k})"),
            st.sampled_from(_KEYS).map(lambda k: f"has(arguments.m.{k})"),
            inner.map(lambda e: f"size({e})"),
            inner.map(lambda e: f"type({e}) == int"),
            st.tuples(inner, st.sampled_from(["string", "double", "list", "map", "bool"])).map(
                lambda t: f"type({t[0]}) == {t[1]}"
            ),
            st.tuples(inner, inner).map(lambda t: f"({t[0]}).startsWith({t[1]})"),
            st.tuples(inner, inner).map(lambda t: f"({t[0]}).endsWith({t[1]})"),
            st.tuples(inner, inner).map(lambda t: f"({t[0]}).contains({t[1]})"),
            st.tuples(st.sampled_from(_KEYS), inner).map(
                lambda t: f"arguments.m.?{t[0]}.orValue({t[1]})"
            ),
            st.tuples(inner, inner).map(lambda t: f"arguments[?{t[0]}].orValue({t[1]})"),
            st.tuples(inner, inner).map(lambda t: f"({t[0]})[{t[1]}]"),
            st.tuples(inner, inner).map(lambda t: f"[{t[0]}, {t[1]}]"),
            st.tuples(inner, inner).map(lambda t: f"glob({t[0]}, {t[1]})"),
            st.tuples(inner, inner).map(lambda t: f"mentions({t[0]}, {t[1]})"),
            st.tuples(inner, inner).map(lambda t: f"in_domain({t[0]}, {t[1]})"),
            st.tuples(inner, inner).map(lambda t: f"in_cidr({t[0]}, {t[1]})"),
            inner.map(lambda e: f"domain({e})"),
        )

    return st.recursive(atoms, extend, max_leaves=6)


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same kind all the way down (``True`` is not ``1``)."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return (math.isnan(a) and math.isnan(b)) or a == b
    if type(a) is list:
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def _cel(source: str, data: dict[str, Any]) -> tuple[bool, Any]:
    """(ok, plain value) from CEL; ok is False for an error value or a raised error."""
    env = environment()
    try:
        result = env.compile(source).eval(env.Activation(data))
        kind = result.type().name().lower()
        if "error" in kind or kind == "type":
            return False, None
        return True, result.plain_value()
    except RuntimeError:
        return False, None


def at_most(examples: int) -> settings:
    """The profile's example count, capped for a test that is slow under ``ci``."""
    return settings(max_examples=min(settings().max_examples, examples))


@at_most(500)
@given(source=_expressions(), arguments=st.dictionaries(st.sampled_from(_KEYS), _values))
def test_native_programs_answer_only_with_cels_answer(
    source: str, arguments: dict[str, Any]
) -> None:
    try:
        environment().compile(source)
    except RuntimeError:
        return  # not a valid condition; compile_policy would reject it
    native = compile_native(source)
    if native is None:
        return
    data = {"arguments": arguments}
    if not is_plain(arguments):
        return  # the evaluator hands such requests to CEL
    try:
        value = native.run(data)
    except Unresolved:
        return
    ok, expected = _cel(source, data)
    assert ok, f"native answered {value!r} where CEL fails: {source} on {arguments!r}"
    assert _same(value, expected), f"{source} on {arguments!r}: {value!r} != {expected!r}"


@at_most(500)
@given(
    key=st.sampled_from(_KEYS),
    rest=_expressions(),
    arguments=st.dictionaries(st.sampled_from(_KEYS), _values),
)
def test_guarded_conditions_answer_only_with_cels_answer(
    key: str, rest: str, arguments: dict[str, Any]
) -> None:
    # ``has(v.f) && …`` runs as one closure; it must answer exactly as CEL does,
    # including when the field is absent and the rest would fail.
    source = f"has(arguments.{key}) && {rest}"
    try:
        environment().compile(source)
    except RuntimeError:
        return
    native = compile_native(source)
    if native is None or not is_plain(arguments):
        return
    try:
        value = native.run({"arguments": arguments})
    except Unresolved:
        return
    ok, expected = _cel(source, {"arguments": arguments})
    assert ok, f"native answered {value!r} where CEL fails: {source} on {arguments!r}"
    assert _same(value, expected), f"{source} on {arguments!r}: {value!r} != {expected!r}"


@pytest.mark.parametrize(
    ("source", "data"),
    [
        ("arguments.a == arguments.b", {"a": 2**53 + 1, "b": float(2**53)}),
        ("arguments.a < arguments.b", {"a": 2**53 + 1, "b": float(2**53)}),
        ("arguments.a[1.0] == 2", {"a": [1, 2]}),
        ("arguments.a in arguments.b", {"a": True, "b": {"x": 1}}),
        ("arguments.a + arguments.b > 0", {"a": 2**62, "b": 2**62}),
        ("arguments.a ? true : false", {"a": 1}),
        ("type(arguments.a) == int", {"a": True}),
    ],
)
def test_native_programs_leave_doubtful_cases_to_cel(source: str, data: dict[str, Any]) -> None:
    native = compile_native(source)
    assert native is not None
    ok, expected = _cel(source, {"arguments": data})
    try:
        value = native.run({"arguments": data})
    except Unresolved:
        return
    assert ok
    assert _same(value, expected)


@pytest.mark.parametrize(
    "source",
    [
        "arguments.all(k, k == 'a')",
        "now > timestamp('2026-01-01T00:00:00Z')",
        "arguments.a / 2 > 1",
        "arguments.a % 2 == 1",
        "arguments.a.matches('^x')",
        "math.greatest([1, 2]) == 2",
        "arguments.a == 1u",
        "r'x' == arguments.a",
        "[type(arguments.a)] == [int]",
    ],
)
def test_conditions_outside_the_native_subset_compile_to_none(source: str) -> None:
    assert compile_native(source) is None


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        ({"a": [1, {"b": [None, 1.5, True, "é"]}]}, True),
        ({"a": 2**63}, False),
        ({"a": -(2**63)}, True),
        ({"a": (1,)}, False),
        ({1: 2}, False),
        ({"a": "\ud800"}, False),
        ({"\udfff": 1}, False),
        ([{"x": object()}], False),
        ("x", True),
    ],
)
def test_is_plain_accepts_exactly_what_cel_converts_unchanged(value: Any, plain: bool) -> None:
    assert is_plain(value) is plain


def test_shared_compiled_rules_keep_their_own_reasons() -> None:
    rules = parse_rules(
        [
            {"id": "one", "effect": "deny", "when": "arguments.n > 1", "message": "m1"},
            {"id": "two", "effect": "deny", "when": "arguments.n > 1", "message": "m2"},
        ]
    )
    policy = compile_policy(rules, version="test")
    first, second = policy.rules
    assert isinstance(first, CompiledRule)
    assert first.program is second.program  # one compile per distinct condition
    assert first.fired is not None
    assert first.fired.message == "m1"
    assert second.fired is not None
    assert second.fired.message == "m2"
