"""Property tests: parse_request is total over JSON values, and valid requests round-trip."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lictor.core.requests import MAX_DEPTH, ActionRequest, parse_request
from lictor.errors import InvalidToolCall

FIELDS = (
    "request_id",
    "agent_id",
    "principal",
    "delegation",
    "session_id",
    "tool",
    "server",
    "arguments",
    "resource",
    "context",
)

# Everything json.loads can return: NaN and infinities included, as Python's parser
# accepts them (``NaN``, ``1e999``).
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["", " ", "a", "agent", "tool", "confidential"])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.sampled_from(FIELDS), children, max_size=4)
    ),
    max_leaves=20,
)


def deep(depth: int) -> object:
    value: object = 0
    for _ in range(depth):
        value = {"k": value}
    return value


# Request-shaped objects, so that validation gets past the top level and into fields.
request_shaped = st.fixed_dictionaries(
    {"agent_id": st.sampled_from(["a", "", 3]) | json_values, "tool": st.just("t") | json_values},
    optional={
        name: json_values | st.integers(0, MAX_DEPTH + 3).map(deep)
        for name in FIELDS
        if name not in ("agent_id", "tool")
    },
)


def at_most(examples: int) -> settings:
    """The profile's example count, capped for a test that is slow under ``ci``."""
    return settings(max_examples=min(settings().max_examples, examples))


@at_most(500)
@given(json_values | request_shaped)
def test_any_json_value_gives_a_request_or_invalid_tool_call(data: object) -> None:
    result: ActionRequest | InvalidToolCall
    try:
        result = parse_request(data)
    except InvalidToolCall as exc:
        result = exc
    if isinstance(result, InvalidToolCall):
        assert result.pointer.startswith("/")
    else:
        assert result.agent_id.strip()
        assert result.tool.strip()


# Valid requests: finite numbers only (JSON has no NaN or infinity).
finite = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
plain_json = st.recursive(
    finite,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=12,
)
names = st.text(min_size=1, max_size=20).filter(lambda s: bool(s.strip()))
optional_text = st.none() | st.text(max_size=20)
string_lists = st.lists(st.text(max_size=10), max_size=3)

valid_requests = st.fixed_dictionaries(
    {"agent_id": names, "tool": names},
    optional={
        "request_id": optional_text,
        "session_id": optional_text,
        "server": optional_text,
        "delegation": st.none() | string_lists,
        "arguments": st.dictionaries(st.text(max_size=8), plain_json, max_size=4),
        "principal": st.none()
        | st.fixed_dictionaries(
            {"id": names},
            optional={
                "groups": string_lists,
                "attributes": st.dictionaries(st.text(max_size=6), plain_json, max_size=3),
            },
        ),
        "resource": st.none()
        | st.fixed_dictionaries(
            {},
            optional={"type": optional_text, "id": optional_text, "labels": string_lists},
        ),
        "context": st.none()
        | st.fixed_dictionaries(
            {},
            optional={
                "task": optional_text,
                "purpose": optional_text,
                "ticket": optional_text,
                "parent_decision_id": optional_text,
                "customer": plain_json,
                "priority": plain_json,
            },
        ),
    },
)


@given(valid_requests)
def test_valid_requests_round_trip_through_json(data: dict[str, Any]) -> None:
    request = parse_request(data)

    wire = json.loads(json.dumps(request.to_json()))

    assert parse_request(wire) == request
    assert parse_request(wire).to_json() == wire
