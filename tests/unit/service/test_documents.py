"""YAML loading: plain data plus positions by JSON pointer; ambiguous YAML is an error."""

from __future__ import annotations

import pytest

from lictor.errors import PolicyError
from lictor.service.documents import load_yaml

POLICY = """\
settings:
  timezone: Europe/Berlin
rules:
  - id: finance/read
    match: {tools: [get_invoice, list_invoices]}
    effect: allow
  - id: "a/b~c"
    when: >
      tool == 'x'
    effect: deny
"""


def error_of(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        load_yaml(text, "policies/p.yaml")
    return caught.value


def test_data_is_plain_json_like_values() -> None:
    doc = load_yaml(POLICY, "policies/p.yaml")

    assert doc.data == {
        "settings": {"timezone": "Europe/Berlin"},
        "rules": [
            {
                "id": "finance/read",
                "match": {"tools": ["get_invoice", "list_invoices"]},
                "effect": "allow",
            },
            {"id": "a/b~c", "when": "tool == 'x'\n", "effect": "deny"},
        ],
    }
    assert doc.source == "policies/p.yaml"


@pytest.mark.parametrize(
    ("pointer", "position"),
    [
        ("", (1, 1)),
        ("/settings", (2, 3)),
        ("/settings/timezone", (2, 13)),
        ("/rules/0", (4, 5)),
        ("/rules/0/id", (4, 9)),
        ("/rules/0/match/tools", (5, 20)),
        ("/rules/0/match/tools/1", (5, 34)),
        ("/rules/0/effect", (6, 13)),
        ("/rules/1", (7, 5)),
        ("/rules/1/when", (9, 11)),  # a block scalar: its text starts on the next line
        ("/rules/1/effect", (10, 13)),
    ],
)
def test_positions_are_recorded_by_json_pointer(pointer: str, position: tuple[int, int]) -> None:
    assert load_yaml(POLICY, "p.yaml").locate(pointer) == position


def test_pointer_keys_are_escaped_per_rfc_6901() -> None:
    doc = load_yaml("a/b:\n  c~d: 1\n", "p.yaml")

    assert doc.locate("/a~1b/c~0d") == (2, 8)


def test_unknown_pointer_falls_back_to_its_nearest_located_ancestor() -> None:
    doc = load_yaml(POLICY, "p.yaml")

    assert doc.locate("/rules/0/match/servers/3") == doc.locate("/rules/0/match")
    assert doc.locate("/nowhere") == (1, 1)


def test_empty_document_is_none_and_locates_nothing() -> None:
    doc = load_yaml("# nothing here\n", "p.yaml")

    assert doc.data is None
    assert doc.locate("/rules") is None


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("effect: allow\neffect: deny\n", 2),
        ("rules:\n  - id: r\n    effect: allow\n    effect: deny\n", 4),
        ("a: {b: 1, b: 2}\n", 1),
    ],
)
def test_duplicate_keys_are_rejected_with_their_line(text: str, line: int) -> None:
    error = error_of(text)

    assert (error.source, error.line) == ("policies/p.yaml", line)


def test_duplicate_key_error_points_at_the_second_key() -> None:
    error = error_of("rules: []\nsettings: {}\nrules: [x]\n")

    assert (error.line, error.column) == (3, 1)


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("rules: [a, b\n", 2, 1),
        ("rules:\n  - id: r\n   effect: deny\n", 3, 4),
        ("a: b: c\n", 1, 5),
        ("a:\n\tb: 1\n", 2, 1),
        ("a: *undefined\n", 1, 4),
        ("a: 1\n---\nb: 2\n", 2, 1),
    ],
)
def test_yaml_syntax_error_has_line_and_column(text: str, line: int, column: int) -> None:
    error = error_of(text)

    assert (error.source, error.line, error.column) == ("policies/p.yaml", line, column)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("now: 2026-01-05T10:00:00Z\n", "2026-01-05T10:00:00Z"),
        ("now: 2026-01-05\n", "2026-01-05"),
        ("now: 2026-01-05 10:00:00+01:00\n", "2026-01-05 10:00:00+01:00"),
    ],
)
def test_timestamps_are_kept_as_strings(text: str, value: str) -> None:
    assert load_yaml(text, "p.yaml").data == {"now": value}


def test_scalars_resolve_to_json_types() -> None:
    doc = load_yaml("a: 1\nb: 2.5\nc: true\nd: null\ne: '10'\nf: ~\n", "p.yaml")

    assert doc.data == {"a": 1, "b": 2.5, "c": True, "d": None, "e": "10", "f": None}


def test_merge_keys_are_rejected_with_their_line() -> None:
    error = error_of("base: &base {effect: deny}\nrule:\n  <<: *base\n  id: r\n")

    assert (error.line, error.column) == (3, 3)


def test_plain_aliases_are_expanded() -> None:
    doc = load_yaml("tools: &t [a, b]\nmore: *t\n", "p.yaml")

    assert doc.data == {"tools": ["a", "b"], "more": ["a", "b"]}


@pytest.mark.parametrize("text", ["1: x\n", "? [a]\n: x\n", "null: x\n", "true: x\n"])
def test_non_string_keys_are_rejected(text: str) -> None:
    assert error_of(text).line == 1


def test_python_tags_on_scalars_are_refused_not_constructed() -> None:
    error = error_of("a: !!python/name:os.system x\n")

    assert (error.line, error.column) == (1, 4)


@pytest.mark.parametrize("text", ["a: &a [*a]\n", "a: &a {b: *a}\n", "a: &a [[x, *a]]\n"])
def test_recursive_alias_is_a_policy_error(text: str) -> None:
    assert error_of(text).line == 1
