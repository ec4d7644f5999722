"""Inventory records: every agent is a known, owned and bounded non-human identity.

``parse_agent`` validates one record from YAML/JSON; the inventory file format is
documented in docs/inventory.md.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from lictor.core.requests import AgentId
from lictor.errors import PolicyError


class AgentStatus(StrEnum):
    """Lifecycle of an agent. Only ``active`` agents may act."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    QUARANTINED = "quarantined"
    RETIRED = "retired"
    SHADOW = "shadow"


class RiskTier(StrEnum):
    """How much harm the agent can do; policies and risk tolerance key on it."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


_AGENT_FIELDS = frozenset(
    {
        "id",
        "name",
        "owner",
        "purpose",
        "allowed_tools",
        "tags",
        "risk_tier",
        "risk_tolerance",
        "status",
        "attributes",
    }
)


@dataclass(frozen=True, slots=True)
class Agent:
    """One inventory record.

    ``allowed_tools`` holds exact names or globs (``payments.*``). A tool outside the
    list is denied unless a policy rule explicitly allows it. ``risk_tolerance`` in
    [0, 1] is the risk score above which an action is held for review.
    """

    id: AgentId
    name: str = ""
    owner: str = ""
    purpose: str = ""
    allowed_tools: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    risk_tier: RiskTier = RiskTier.MEDIUM
    risk_tolerance: float = 0.5
    status: AgentStatus = AgentStatus.ACTIVE
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def is_tool_allowed(self, tool: str) -> bool:
        """Return whether the inventory grants ``tool`` (exact name or glob)."""
        return any(
            pattern == tool or fnmatch.fnmatchcase(tool, pattern) for pattern in self.allowed_tools
        )

    def to_json(self) -> dict[str, Any]:
        """Return the wire form (also what CEL sees as ``agent``)."""
        return {
            "id": self.id,
            "name": self.name,
            "owner": self.owner,
            "purpose": self.purpose,
            "allowed_tools": list(self.allowed_tools),
            "tags": list(self.tags),
            "risk_tier": self.risk_tier.value,
            "risk_tolerance": self.risk_tolerance,
            "status": self.status.value,
            "attributes": dict(self.attributes),
        }


def parse_agent(data: object, *, source: str | None = None, pointer: str = "") -> Agent:
    """Validate one agent record.

    Raises:
        PolicyError: naming the field that is wrong.
    """

    def fail(message: str, where: str = "") -> PolicyError:
        return PolicyError(message, source=source, pointer=pointer + where)

    if not isinstance(data, Mapping):
        raise fail("an agent must be a mapping")
    unknown = sorted(set(data) - _AGENT_FIELDS)
    if unknown:
        raise fail(
            f"unknown field {unknown[0]!r} (allowed: {', '.join(sorted(_AGENT_FIELDS))})",
            f"/{unknown[0]}",
        )
    agent_id = data.get("id")
    if not isinstance(agent_id, str) or not agent_id:
        raise fail("id must be a non-empty string", "/id")
    strings = {}
    for name in ("name", "owner", "purpose"):
        value = data.get(name, "")
        if not isinstance(value, str):
            raise fail(f"{name} must be a string", f"/{name}")
        strings[name] = value
    tolerance = data.get("risk_tolerance", 0.5)
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float):
        raise fail("risk_tolerance must be a number in [0, 1]", "/risk_tolerance")
    if not 0.0 <= float(tolerance) <= 1.0:
        raise fail("risk_tolerance must be in [0, 1]", "/risk_tolerance")
    try:
        tier = RiskTier(data.get("risk_tier", RiskTier.MEDIUM.value))
    except ValueError:
        raise fail(
            f"risk_tier must be one of {', '.join(t.value for t in RiskTier)}", "/risk_tier"
        ) from None
    try:
        status = AgentStatus(data.get("status", AgentStatus.ACTIVE.value))
    except ValueError:
        raise fail(
            f"status must be one of {', '.join(s.value for s in AgentStatus)}", "/status"
        ) from None
    attributes = data.get("attributes", {}) or {}
    if not isinstance(attributes, Mapping):
        raise fail("attributes must be a mapping", "/attributes")
    return Agent(
        id=AgentId(agent_id),
        name=strings["name"],
        owner=strings["owner"],
        purpose=strings["purpose"],
        allowed_tools=_strings(data.get("allowed_tools"), fail, "/allowed_tools"),
        tags=_strings(data.get("tags"), fail, "/tags"),
        risk_tier=tier,
        risk_tolerance=float(tolerance),
        status=status,
        attributes=dict(attributes),
    )


def _strings(value: object, fail: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise fail("must be a list of strings", where)
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise fail("must be a non-empty string", f"{where}/{i}")
    return tuple(value)
