"""Events that a gateway saw without a decision, put on the audit trail.

An MCP gateway refuses some calls before Lictor is asked (an unknown tool, oversized
arguments, a changed tool definition, an upstream that crashed). In process those go
straight to the Governor's audit log; a gateway in front of a remote ``lictor serve``
sends them to ``POST /v1/events``. Both end up as the same ``rejected`` audit entry with
an ``event`` field, so queries and exports treat them alike.

The agent an event is about is always the caller's credential subject, never a body
field: an agent cannot write events onto another agent's record.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from lictor.core.decisions import format_time
from lictor.core.jsontypes import describe_type
from lictor.errors import InvalidToolCall

__all__ = ["MAX_PROBLEM_LENGTH", "gateway_event_entry", "parse_gateway_event"]

MAX_PROBLEM_LENGTH: Final = 2_000
_EVENT_NAME: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
_FIELDS: Final = frozenset({"event", "problem", "tool", "server", "session_id", "detail"})
_OPTIONAL_STRINGS: Final = ("tool", "server", "session_id")
_MAX_NAME_LENGTH: Final = 256


def parse_gateway_event(body: object) -> dict[str, Any]:
    """Validate an event body; return its fields (absent optional ones as None).

    Raises:
        InvalidToolCall: the body is not an object of the documented shape; the pointer
            names the bad field.
    """
    if not isinstance(body, Mapping):
        raise InvalidToolCall(f"expected a JSON object, got {describe_type(body)}")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise InvalidToolCall(f"unknown field {unknown[0]!r}", pointer=f"/{unknown[0]}")
    event = body.get("event")
    if not isinstance(event, str) or _EVENT_NAME.fullmatch(event) is None:
        raise InvalidToolCall(
            "event must be a lower-case name of letters, digits and underscores "
            "(at most 64, starting with a letter)",
            pointer="/event",
        )
    problem = body.get("problem")
    if not isinstance(problem, str) or not problem.strip():
        raise InvalidToolCall("problem must be a non-empty string", pointer="/problem")
    if len(problem) > MAX_PROBLEM_LENGTH:
        raise InvalidToolCall(
            f"problem may be at most {MAX_PROBLEM_LENGTH} characters", pointer="/problem"
        )
    fields: dict[str, Any] = {"event": event, "problem": problem}
    for name in _OPTIONAL_STRINGS:
        value = body.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > _MAX_NAME_LENGTH):
            raise InvalidToolCall(
                f"{name} must be a string of at most {_MAX_NAME_LENGTH} characters or null",
                pointer=f"/{name}",
            )
        fields[name] = value
    detail = body.get("detail")
    if detail is not None and not isinstance(detail, Mapping):
        raise InvalidToolCall(
            f"detail must be an object or null, got {describe_type(detail)}", pointer="/detail"
        )
    fields["detail"] = dict(detail) if detail else None
    return fields


def gateway_event_entry(
    fields: Mapping[str, Any],
    *,
    agent_id: str | None,
    at: datetime,
    source: str | None,
    credential_id: str | None = None,
) -> dict[str, Any]:
    """Return the audit entry for a validated event (see :func:`parse_gateway_event`)."""
    entry: dict[str, Any] = {
        "v": 1,
        "kind": "rejected",
        "at": format_time(at),
        "agent_id": agent_id,
        "tool": fields.get("tool"),
        "problem": fields["problem"],
        "pointer": "",
        "source": source,
        "event": fields["event"],
        "server": fields.get("server"),
        "session_id": fields.get("session_id"),
    }
    if credential_id is not None:
        entry["credential_id"] = credential_id
    if fields.get("detail"):
        entry["detail"] = dict(fields["detail"])
    return entry
