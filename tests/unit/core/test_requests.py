"""Action requests: the ARCHITECTURE.md example parses, bad fields are named by pointer."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lictor.core.requests import (
    MAX_DEPTH,
    MAX_ID_LENGTH,
    ActionRequest,
    AgentId,
    Context,
    Principal,
    Resource,
    SessionId,
    parse_request,
)
from lictor.errors import InvalidToolCall

# The request shape of ARCHITECTURE.md, "The request and the decision (v1, JSON)".
EXAMPLE: dict[str, Any] = {
    "request_id": "optional client idempotency key",
    "agent_id": "mail-assistant",
    "principal": {"id": "emma@corp.example", "groups": ["sales"], "attributes": {}},
    "delegation": ["emma@corp.example", "planner", "mail-assistant"],
    "session_id": "run-42",
    "tool": "send_email",
    "server": "workspace",
    "arguments": {"recipients": ["bob@corp.example"], "subject": "Q3", "body": "..."},
    "resource": {"type": "mailbox", "id": "emma", "labels": ["internal"]},
    "context": {
        "task": "the human's request that started this run",
        "purpose": "customer follow-up",
        "ticket": "SALES-1234",
        "parent_decision_id": None,
    },
}


def with_fields(**fields: Any) -> dict[str, Any]:
    """A minimal valid request with ``fields`` added or replaced."""
    return {"agent_id": "a", "tool": "t", **fields}


def pointer_of(data: object) -> str:
    with pytest.raises(InvalidToolCall) as caught:
        parse_request(data)
    return caught.value.pointer


def nested(depth: int) -> object:
    """A value whose innermost leaf sits ``depth`` levels below the outer mapping."""
    value: object = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def test_architecture_example_parses_into_every_field() -> None:
    request = parse_request(EXAMPLE)

    assert request == ActionRequest(
        agent_id=AgentId("mail-assistant"),
        tool="send_email",
        request_id="optional client idempotency key",
        principal=Principal(id="emma@corp.example", groups=("sales",), attributes={}),
        delegation=("emma@corp.example", "planner", "mail-assistant"),
        session_id=SessionId("run-42"),
        server="workspace",
        arguments={"recipients": ["bob@corp.example"], "subject": "Q3", "body": "..."},
        resource=Resource(type="mailbox", id="emma", labels=("internal",)),
        context=Context(
            task="the human's request that started this run",
            purpose="customer follow-up",
            ticket="SALES-1234",
        ),
    )


def test_minimal_request_needs_only_agent_id_and_tool() -> None:
    request = parse_request({"agent_id": "mail-assistant", "tool": "send_email"})

    assert request == ActionRequest(agent_id=AgentId("mail-assistant"), tool="send_email")
    assert request.principal is None
    assert request.resource is None
    assert request.arguments == {}
    assert request.context == Context()


def test_unknown_context_keys_are_kept_as_extra_business_context() -> None:
    request = parse_request(with_fields(context={"task": "pay", "customer": {"tier": "gold"}}))

    assert request.context.task == "pay"
    assert request.context.extra == {"customer": {"tier": "gold"}}
    assert request.context.to_json()["customer"] == {"tier": "gold"}


def test_example_survives_a_json_round_trip() -> None:
    request = parse_request(EXAMPLE)

    assert parse_request(json.loads(json.dumps(request.to_json()))) == request


def test_minimal_request_survives_a_json_round_trip() -> None:
    request = parse_request(with_fields())

    assert parse_request(json.loads(json.dumps(request.to_json()))) == request


@pytest.mark.parametrize("data", [None, [], "agent", 3, 2.5, True, [EXAMPLE]])
def test_non_object_request_is_rejected_at_the_root(data: object) -> None:
    assert pointer_of(data) == "/"


def test_object_with_non_string_keys_is_rejected_at_the_root() -> None:
    assert pointer_of({"agent_id": "a", "tool": "t", 1: "x"}) == "/"


@pytest.mark.parametrize("name", ["agent_id", "tool"])
@pytest.mark.parametrize("value", [None, "", "   ", 7, ["a"], {"id": "a"}, True])
def test_required_field_missing_empty_or_not_a_string_is_named(name: str, value: object) -> None:
    assert pointer_of(with_fields(**{name: value})) == f"/{name}"


@pytest.mark.parametrize("name", ["agent_id", "tool"])
def test_absent_required_field_is_named(name: str) -> None:
    data = with_fields()
    del data[name]

    assert pointer_of(data) == f"/{name}"


@pytest.mark.parametrize("name", ["agent_id", "tool"])
def test_overlong_identifier_is_rejected_but_the_limit_itself_is_accepted(name: str) -> None:
    assert isinstance(parse_request(with_fields(**{name: "x" * MAX_ID_LENGTH})), ActionRequest)
    assert pointer_of(with_fields(**{name: "x" * (MAX_ID_LENGTH + 1)})) == f"/{name}"


@pytest.mark.parametrize("name", ["argumnets", "agent", "Tool", "extra"])
def test_unknown_top_level_field_is_rejected_by_name(name: str) -> None:
    assert pointer_of(with_fields(**{name: {}})) == f"/{name}"


def test_first_unknown_field_in_sorted_order_is_reported() -> None:
    assert pointer_of(with_fields(zeta=1, alpha=2)) == "/alpha"


@pytest.mark.parametrize("name", ["request_id", "session_id", "server"])
@pytest.mark.parametrize("value", [5, ["x"], {"x": 1}, False])
def test_optional_string_field_of_wrong_type_is_named(name: str, value: object) -> None:
    assert pointer_of(with_fields(**{name: value})) == f"/{name}"


@pytest.mark.parametrize(
    ("principal", "pointer"),
    [
        ("emma", "/principal"),
        (["emma"], "/principal"),
        ({}, "/principal/id"),
        ({"id": ""}, "/principal/id"),
        ({"id": 5}, "/principal/id"),
        ({"id": "emma", "groups": "sales"}, "/principal/groups"),
        ({"id": "emma", "groups": ["sales", 3]}, "/principal/groups/1"),
        ({"id": "emma", "attributes": "admin"}, "/principal/attributes"),
        ({"id": "emma", "role": "admin"}, "/principal/role"),
    ],
)
def test_bad_principal_field_is_named(principal: object, pointer: str) -> None:
    assert pointer_of(with_fields(principal=principal)) == pointer


@pytest.mark.parametrize(
    ("resource", "pointer"),
    [
        ("mailbox", "/resource"),
        ({"labels": "internal"}, "/resource/labels"),
        ({"labels": ["internal", None]}, "/resource/labels/1"),
        ({"owner": "emma"}, "/resource/owner"),
    ],
)
def test_bad_resource_field_is_named(resource: object, pointer: str) -> None:
    assert pointer_of(with_fields(resource=resource)) == pointer


@pytest.mark.parametrize("name", ["type", "id"])
def test_resource_type_and_id_of_wrong_type_are_named_under_resource(name: str) -> None:
    assert pointer_of(with_fields(resource={name: 5})) == f"/resource/{name}"


@pytest.mark.parametrize(
    ("context", "pointer"),
    [
        ("pay the invoice", "/context"),
        ([], "/context"),
        ({"task": 5}, "/context/task"),
        ({"purpose": ["x"]}, "/context/purpose"),
        ({"ticket": {"id": 1}}, "/context/ticket"),
        ({"parent_decision_id": 12}, "/context/parent_decision_id"),
    ],
)
def test_bad_context_field_is_named(context: object, pointer: str) -> None:
    assert pointer_of(with_fields(context=context)) == pointer


@pytest.mark.parametrize(
    ("delegation", "pointer"),
    [
        ("emma", "/delegation"),
        ({"emma": "planner"}, "/delegation"),
        (5, "/delegation"),
        (["emma", 5], "/delegation/1"),
        ([["emma"]], "/delegation/0"),
    ],
)
def test_delegation_must_be_a_list_of_strings(delegation: object, pointer: str) -> None:
    assert pointer_of(with_fields(delegation=delegation)) == pointer


@pytest.mark.parametrize("arguments", ["x", 5, True, [1]])
def test_arguments_that_are_not_an_object_are_rejected(arguments: object) -> None:
    assert pointer_of(with_fields(arguments=arguments)) == "/arguments"


@pytest.mark.parametrize("arguments", [[], False, 0, ""])
def test_falsy_arguments_that_are_not_an_object_are_rejected(arguments: object) -> None:
    assert pointer_of(with_fields(arguments=arguments)) == "/arguments"


def test_arguments_nested_to_the_depth_limit_are_accepted() -> None:
    request = parse_request(with_fields(arguments=nested(MAX_DEPTH)))

    assert request.arguments == nested(MAX_DEPTH)


def test_arguments_nested_past_the_depth_limit_are_rejected_at_the_deep_value() -> None:
    pointer = pointer_of(with_fields(arguments=nested(MAX_DEPTH + 1)))

    assert pointer == "/arguments" + "/a" * (MAX_DEPTH + 1)


def test_deep_lists_in_arguments_are_rejected_too() -> None:
    value: object = 1
    for _ in range(MAX_DEPTH):
        value = [value]

    assert pointer_of(with_fields(arguments={"a": value})) == "/arguments/a" + "/0" * MAX_DEPTH


def test_context_extra_nested_past_the_depth_limit_is_rejected() -> None:
    pointer = pointer_of(with_fields(context=nested(MAX_DEPTH + 1)))

    assert pointer.startswith("/context/a/")


@pytest.mark.parametrize(
    ("fields", "pointer"),
    [
        ({"arguments": {"amount": float("nan")}}, "/arguments/amount"),
        ({"arguments": {"amounts": [1.0, float("nan")]}}, "/arguments/amounts/1"),
        ({"context": {"score": float("nan")}}, "/context/score"),
    ],
)
def test_nan_is_rejected_where_it_occurs(fields: dict[str, Any], pointer: str) -> None:
    assert pointer_of(with_fields(**fields)) == pointer


def test_nan_from_json_text_is_rejected() -> None:
    data = json.loads('{"agent_id": "a", "tool": "t", "arguments": {"x": NaN}}')

    assert pointer_of(data) == "/arguments/x"


@pytest.mark.parametrize("text", ["1e999", "-1e999", "Infinity", "-Infinity"])
def test_infinite_number_from_json_text_is_rejected(text: str) -> None:
    data = json.loads('{"agent_id": "a", "tool": "t", "arguments": {"x": ' + text + "}}")

    assert pointer_of(data) == "/arguments/x"


def test_error_carries_pointer_and_message_separately() -> None:
    with pytest.raises(InvalidToolCall) as caught:
        parse_request(with_fields(tool=""))

    assert caught.value.pointer == "/tool"
    assert caught.value.message
