"""Inventory records: every agent is a known, owned and bounded non-human identity.

``parse_agent`` validates one record from YAML/JSON; the inventory file format is
documented in docs/inventory.md.

A record has two parts. The *managed* fields (:data:`MANAGED_FIELDS`: name, owner,
tools, status …) are what people and inventory files set. The *bookkeeping* fields
(who created and last changed it and when, its ``version``, the shadow sighting, the
token cut-off) are set by Lictor; :meth:`Agent.same_content` compares managed fields
only, so re-applying a file that matches the store is a no-op whatever the bookkeeping.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from lictor.core.decisions import format_time, parse_time
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


MANAGED_FIELDS: Final = (
    "name",
    "owner",
    "purpose",
    "allowed_tools",
    "tags",
    "risk_tier",
    "risk_tolerance",
    "status",
    "attributes",
)
"""The fields people set (besides ``id``); everything else is Lictor's bookkeeping."""

BOOKKEEPING_FIELDS: Final = (
    "created_by",
    "created_at",
    "updated_by",
    "updated_at",
    "version",
    "shadow",
    "tokens_valid_after",
)
"""Fields Lictor sets on every change; a client may send them back unchanged."""

MAX_SHADOW_TOOLS: Final = 64
"""Distinct tool names kept per shadow record; later ones only raise the count."""

_SETTABLE = frozenset({"id", *MANAGED_FIELDS})  # what an error message suggests
_AGENT_FIELDS = frozenset({*_SETTABLE, *BOOKKEEPING_FIELDS})
_SHADOW_FIELDS = frozenset(
    {"first_seen_at", "last_seen_at", "source", "user_agent", "tools", "count"}
)


@dataclass(frozen=True, slots=True)
class ShadowSighting:
    """What Lictor saw of an agent that asked to act without being registered.

    ``tools`` are the distinct tools it asked for (at most :data:`MAX_SHADOW_TOOLS`),
    ``count`` every request it made; ``source`` and ``user_agent`` are the latest.
    """

    first_seen_at: datetime
    last_seen_at: datetime
    source: str | None = None
    user_agent: str | None = None
    tools: tuple[str, ...] = ()
    count: int = 1

    def merge(self, other: ShadowSighting) -> ShadowSighting:
        """Return the sighting that covers both (order-independent except source/agent)."""
        latest = other if other.last_seen_at >= self.last_seen_at else self
        tools = list(self.tools)
        for tool in other.tools:
            if tool not in tools and len(tools) < MAX_SHADOW_TOOLS:
                tools.append(tool)
        return ShadowSighting(
            first_seen_at=min(self.first_seen_at, other.first_seen_at),
            last_seen_at=max(self.last_seen_at, other.last_seen_at),
            source=latest.source if latest.source is not None else self.source,
            user_agent=latest.user_agent if latest.user_agent is not None else self.user_agent,
            tools=tuple(tools),
            count=self.count + other.count,
        )

    def to_json(self) -> dict[str, Any]:
        """Return the wire form."""
        return {
            "first_seen_at": format_time(self.first_seen_at),
            "last_seen_at": format_time(self.last_seen_at),
            "source": self.source,
            "user_agent": self.user_agent,
            "tools": list(self.tools),
            "count": self.count,
        }


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
    created_by: str = ""
    created_at: datetime | None = None
    updated_by: str = ""
    updated_at: datetime | None = None
    version: int = 0
    shadow: ShadowSighting | None = None
    tokens_valid_after: datetime | None = None

    def managed(self) -> dict[str, Any]:
        """Return ``id`` and the managed fields in wire form (what files and people set)."""
        wire = self.to_json()
        return {"id": self.id, **{name: wire[name] for name in MANAGED_FIELDS}}

    def same_content(self, other: Agent | None) -> bool:
        """Return whether ``other`` has the same id and managed fields (bookkeeping aside)."""
        return other is not None and self.managed() == other.managed()

    def with_content_of(self, other: Agent) -> Agent:
        """Return this record with ``other``'s managed fields, bookkeeping kept."""
        return replace(self, **{name: getattr(other, name) for name in MANAGED_FIELDS})

    def is_token_revoked(self, issued_at: datetime) -> bool:
        """Return whether a token issued at ``issued_at`` is not after the cut-off.

        Quarantining an agent sets ``tokens_valid_after``: delegation tokens issued to
        it until then are refused even though they have not expired. ``iat`` has whole
        seconds, so a token of the cut-off's own second is refused too (the safe side).
        """
        cutoff = self.tokens_valid_after
        return cutoff is not None and issued_at <= cutoff

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
            "created_by": self.created_by,
            "created_at": _time_or_none(self.created_at),
            "updated_by": self.updated_by,
            "updated_at": _time_or_none(self.updated_at),
            "version": self.version,
            "shadow": self.shadow.to_json() if self.shadow is not None else None,
            "tokens_valid_after": _time_or_none(self.tokens_valid_after),
        }

    @classmethod
    def from_json(cls, data: object, *, source: str | None = None) -> Agent:
        """Parse the wire form back (the same validation as :func:`parse_agent`).

        Raises:
            PolicyError: naming the field that is wrong.
        """
        return parse_agent(data, source=source)


def _time_or_none(moment: datetime | None) -> str | None:
    return format_time(moment) if moment is not None else None


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
            f"unknown field {unknown[0]!r} (allowed: {', '.join(sorted(_SETTABLE))})",
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
    for name in ("created_by", "updated_by"):
        value = data.get(name, "")
        if not isinstance(value, str):
            raise fail(f"{name} must be a string", f"/{name}")
        strings[name] = value
    version = data.get("version", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise fail("version must be a non-negative integer", "/version")
    times = {
        name: _optional_time(data.get(name), fail, f"/{name}")
        for name in ("created_at", "updated_at", "tokens_valid_after")
    }
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
        created_by=strings["created_by"],
        created_at=times["created_at"],
        updated_by=strings["updated_by"],
        updated_at=times["updated_at"],
        version=version,
        shadow=_shadow(data.get("shadow"), fail),
        tokens_valid_after=times["tokens_valid_after"],
    )


def _optional_time(value: object, fail: Any, where: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise fail("must be an RFC 3339 time with an offset", where)
    try:
        return parse_time(value)
    except (ValueError, OverflowError):
        raise fail("must be an RFC 3339 time with an offset", where) from None


def _shadow(value: object, fail: Any) -> ShadowSighting | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise fail("shadow must be a mapping", "/shadow")
    unknown = sorted(set(value) - _SHADOW_FIELDS)
    if unknown:
        raise fail(f"unknown field {unknown[0]!r}", f"/shadow/{unknown[0]}")
    first = _optional_time(value.get("first_seen_at"), fail, "/shadow/first_seen_at")
    last = _optional_time(value.get("last_seen_at"), fail, "/shadow/last_seen_at")
    if first is None or last is None:
        raise fail("a shadow sighting needs first_seen_at and last_seen_at", "/shadow")
    texts: dict[str, str | None] = {}
    for name in ("source", "user_agent"):
        text = value.get(name)
        if text is not None and not isinstance(text, str):
            raise fail(f"{name} must be a string or null", f"/shadow/{name}")
        texts[name] = text
    count = value.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise fail("count must be a positive integer", "/shadow/count")
    return ShadowSighting(
        first_seen_at=first,
        last_seen_at=last,
        source=texts["source"],
        user_agent=texts["user_agent"],
        tools=_strings(value.get("tools"), fail, "/shadow/tools")[:MAX_SHADOW_TOOLS],
        count=count,
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
