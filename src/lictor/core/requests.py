"""The action request: one proposed agent action, sent before it runs.

Field names are the v1 wire contract (ARCHITECTURE.md). ``parse_request`` is the one way
in from untrusted JSON: it either returns a fully validated :class:`ActionRequest` or
raises :class:`~lictor.errors.InvalidToolCall` with a JSON pointer to the bad field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NewType

from lictor.core.jsontypes import describe_type
from lictor.errors import InvalidToolCall

AgentId = NewType("AgentId", str)
SessionId = NewType("SessionId", str)

JSONValue = Any  # a value that came from, and goes back to, JSON

MAX_ID_LENGTH = 256
MAX_DEPTH = 32

_REQUEST_FIELDS = frozenset(
    {
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
    }
)


@dataclass(frozen=True, slots=True)
class Principal:
    """The human (or service) on whose behalf the agent acts."""

    id: str
    groups: tuple[str, ...] = ()
    attributes: Mapping[str, JSONValue] = field(default_factory=dict)

    def to_json(self) -> dict[str, JSONValue]:
        """Return the wire form."""
        return {"id": self.id, "groups": list(self.groups), "attributes": dict(self.attributes)}


@dataclass(frozen=True, slots=True)
class Resource:
    """What the action touches: a type, an id and data labels (``confidential`` …)."""

    type: str = ""
    id: str = ""
    labels: tuple[str, ...] = ()

    def to_json(self) -> dict[str, JSONValue]:
        """Return the wire form."""
        return {"type": self.type, "id": self.id, "labels": list(self.labels)}


@dataclass(frozen=True, slots=True)
class Context:
    """Why the action happens: the human's task text, purpose, ticket, parent decision.

    Unknown keys are kept in ``extra`` so that callers can pass more business context
    without a schema change; policies see them under ``context``.
    """

    task: str = ""
    purpose: str = ""
    ticket: str = ""
    parent_decision_id: str | None = None
    extra: Mapping[str, JSONValue] = field(default_factory=dict)

    def to_json(self) -> dict[str, JSONValue]:
        """Return the wire form (known keys, then the extra ones)."""
        out: dict[str, JSONValue] = dict(self.extra)
        out.update(
            {
                "task": self.task,
                "purpose": self.purpose,
                "ticket": self.ticket,
                "parent_decision_id": self.parent_decision_id,
            }
        )
        return out


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """One proposed agent action: a tool call with its arguments and its context."""

    agent_id: AgentId
    tool: str
    request_id: str | None = None
    principal: Principal | None = None
    delegation: tuple[str, ...] = ()
    session_id: SessionId | None = None
    server: str | None = None
    arguments: Mapping[str, JSONValue] = field(default_factory=dict)
    resource: Resource | None = None
    context: Context = field(default_factory=Context)

    def to_json(self) -> dict[str, JSONValue]:
        """Return the wire form; ``parse_request(r.to_json()) == r``."""
        return {
            "request_id": self.request_id,
            "agent_id": self.agent_id,
            "principal": self.principal.to_json() if self.principal else None,
            "delegation": list(self.delegation),
            "session_id": self.session_id,
            "tool": self.tool,
            "server": self.server,
            "arguments": dict(self.arguments),
            "resource": self.resource.to_json() if self.resource else None,
            "context": self.context.to_json(),
        }


def parse_request(data: object) -> ActionRequest:
    """Validate untrusted JSON into an :class:`ActionRequest`.

    Unknown top-level fields are rejected: a typo such as ``argumnets`` would otherwise
    make a policy see no arguments at all and decide on the wrong facts.

    Raises:
        InvalidToolCall: with ``pointer`` naming the first bad field.
    """
    obj = _mapping(data, "")
    unknown = sorted(set(obj) - _REQUEST_FIELDS)
    if unknown:
        raise InvalidToolCall(
            f"unknown field {unknown[0]!r}; allowed: {', '.join(sorted(_REQUEST_FIELDS))}",
            pointer=f"/{unknown[0]}",
        )
    agent_id = _required_id(obj, "agent_id")
    tool = _required_id(obj, "tool")
    _check_depth(obj.get("arguments"), "/arguments", 0)
    return ActionRequest(
        agent_id=AgentId(agent_id),
        tool=tool,
        request_id=_optional_str(obj, "request_id"),
        principal=_principal(obj.get("principal")),
        delegation=_str_list(obj.get("delegation"), "/delegation"),
        session_id=_opt_session(obj),
        server=_optional_str(obj, "server"),
        arguments=_mapping({} if obj.get("arguments") is None else obj["arguments"], "/arguments"),
        resource=_resource(obj.get("resource")),
        context=_context(obj.get("context")),
    )


def _opt_session(obj: Mapping[str, object]) -> SessionId | None:
    value = _optional_str(obj, "session_id")
    return SessionId(value) if value is not None else None


def _mapping(value: object, pointer: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidToolCall(
            f"expected an object, got {describe_type(value)}", pointer=pointer or "/"
        )
    for key in value:
        if not isinstance(key, str):
            raise InvalidToolCall("object keys must be strings", pointer=pointer or "/")
    return dict(value)


def _required_id(obj: Mapping[str, object], name: str) -> str:
    if name not in obj or obj[name] is None:
        raise InvalidToolCall(f"{name} is required", pointer=f"/{name}")
    value = obj[name]
    if not isinstance(value, str):
        raise InvalidToolCall(f"expected a string, got {describe_type(value)}", pointer=f"/{name}")
    if not value.strip():
        raise InvalidToolCall("must not be empty", pointer=f"/{name}")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidToolCall(f"longer than {MAX_ID_LENGTH} characters", pointer=f"/{name}")
    return value


def _optional_str(obj: Mapping[str, object], name: str) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidToolCall(f"expected a string, got {describe_type(value)}", pointer=f"/{name}")
    return value


def _str_list(value: object, pointer: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise InvalidToolCall(
            f"expected a list of strings, got {describe_type(value)}", pointer=pointer
        )
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise InvalidToolCall(
                f"expected a string, got {describe_type(item)}", pointer=f"{pointer}/{i}"
            )
    return tuple(value)


def _principal(value: object) -> Principal | None:
    if value is None:
        return None
    obj = _mapping(value, "/principal")
    unknown = sorted(set(obj) - {"id", "groups", "attributes"})
    if unknown:
        raise InvalidToolCall(f"unknown field {unknown[0]!r}", pointer=f"/principal/{unknown[0]}")
    pid = obj.get("id")
    if not isinstance(pid, str) or not pid:
        raise InvalidToolCall("principal.id must be a non-empty string", pointer="/principal/id")
    return Principal(
        id=pid,
        groups=_str_list(obj.get("groups"), "/principal/groups"),
        attributes=_principal_attributes(obj.get("attributes")),
    )


def _principal_attributes(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    attributes = _mapping(value, "/principal/attributes")
    _check_depth(attributes, "/principal/attributes", 0)
    return attributes


def _resource(value: object) -> Resource | None:
    if value is None:
        return None
    obj = _mapping(value, "/resource")
    unknown = sorted(set(obj) - {"type", "id", "labels"})
    if unknown:
        raise InvalidToolCall(f"unknown field {unknown[0]!r}", pointer=f"/resource/{unknown[0]}")
    for name in ("type", "id"):
        if obj.get(name) is not None and not isinstance(obj[name], str):
            raise InvalidToolCall(
                f"expected a string, got {describe_type(obj[name])}", pointer=f"/resource/{name}"
            )
    return Resource(
        type=obj.get("type") or "",
        id=obj.get("id") or "",
        labels=_str_list(obj.get("labels"), "/resource/labels"),
    )


def _context(value: object) -> Context:
    if value is None:
        return Context()
    obj = _mapping(value, "/context")
    known = {}
    for name in ("task", "purpose", "ticket", "parent_decision_id"):
        item = obj.pop(name, None)
        if item is not None and not isinstance(item, str):
            raise InvalidToolCall(
                f"expected a string, got {describe_type(item)}", pointer=f"/context/{name}"
            )
        known[name] = item
    _check_depth(obj, "/context", 0)
    return Context(
        task=known["task"] or "",
        purpose=known["purpose"] or "",
        ticket=known["ticket"] or "",
        parent_decision_id=known["parent_decision_id"],
        extra=obj,
    )


def _check_depth(value: object, pointer: str, depth: int) -> None:
    """Reject deeply nested values: they only serve to exhaust the evaluator's stack."""
    if depth > MAX_DEPTH:
        raise InvalidToolCall(f"nested deeper than {MAX_DEPTH} levels", pointer=pointer)
    if isinstance(value, Mapping):
        for key, item in value.items():
            _check_depth(item, f"{pointer}/{key}", depth + 1)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_depth(item, f"{pointer}/{i}", depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise InvalidToolCall("NaN and infinity are not JSON numbers", pointer=pointer)
