"""Access review: what each agent is granted, against what it used in the audit trail.

Grants are the inventory's ``allowed_tools`` and its destination allowlists: every
attribute named ``*_allowlist`` or ``allowed_*`` whose value is a list of strings (for
example ``payee_allowlist``). A tool grant is used when an allowed decision in the
window named a tool it matches; an allowlist entry is used when it appears as a string
anywhere in the arguments (or as the resource id) of an allowed decision. The review
suggests an inventory without the unused grants, as a file for ``lictor agents apply``;
it never changes the inventory itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import yaml

from lictor.core.agents import Agent, AgentStatus
from lictor.core.policy.model import matches_any


def destination_lists(agent: Agent) -> dict[str, tuple[str, ...]]:
    """The agent's destination allowlists: ``*_allowlist`` / ``allowed_*`` string lists."""
    out: dict[str, tuple[str, ...]] = {}
    for key, value in agent.attributes.items():
        if not (key.endswith("_allowlist") or key.startswith("allowed_")):
            continue
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            out[key] = tuple(value)
    return out


@dataclass(slots=True)
class AgentAccess:
    """One agent's grants and use over the review window."""

    agent: Agent
    decisions: int = 0
    allowed: int = 0
    used_tools: Counter[str] = field(default_factory=Counter)
    denied_tools: Counter[str] = field(default_factory=Counter)
    seen_values: set[str] = field(default_factory=set)

    @property
    def unused_tools(self) -> tuple[str, ...]:
        """Tool grants (names or globs) that no allowed call used."""
        return tuple(
            p
            for p in self.agent.allowed_tools
            if not any(matches_any(t, (p,)) for t in self.used_tools)
        )

    @property
    def ungranted_tools(self) -> tuple[str, ...]:
        """Tools used (allowed by an explicit rule) that the inventory does not grant."""
        return tuple(sorted(t for t in self.used_tools if not self.agent.is_tool_allowed(t)))

    def used_destinations(self) -> dict[str, tuple[str, ...]]:
        """Allowlist entries that appeared in allowed calls, by attribute."""
        return {
            k: tuple(v for v in values if v in self.seen_values)
            for k, values in destination_lists(self.agent).items()
        }

    def unused_destinations(self) -> dict[str, tuple[str, ...]]:
        """Allowlist entries that no allowed call used, by attribute."""
        return {
            k: tuple(v for v in values if v not in self.seen_values)
            for k, values in destination_lists(self.agent).items()
        }

    @property
    def is_idle(self) -> bool:
        """No decision at all in the window: nothing to learn what it needs from."""
        return self.decisions == 0

    def suggested(self) -> Agent | None:
        """The least-privilege record, or None when nothing would change.

        Idle and inactive agents are left alone: with no use to go by, removing every
        grant is a decision for their owner, and the review flags them instead.
        """
        if self.is_idle or self.agent.status is not AgentStatus.ACTIVE:
            return None
        unused_tools = set(self.unused_tools)
        unused_dest = {k: v for k, v in self.unused_destinations().items() if v}
        if not unused_tools and not unused_dest:
            return None
        attributes = dict(self.agent.attributes)
        for key, values in self.used_destinations().items():
            if key in unused_dest:
                attributes[key] = list(values)
        return replace(
            self.agent,
            allowed_tools=tuple(p for p in self.agent.allowed_tools if p not in unused_tools),
            attributes=attributes,
        )

    def to_json(self) -> dict[str, Any]:
        """Return the wire form."""
        suggested = self.suggested()
        return {
            "agent_id": self.agent.id,
            "status": self.agent.status.value,
            "owner": self.agent.owner,
            "decisions": self.decisions,
            "allowed": self.allowed,
            "idle": self.is_idle,
            "granted_tools": list(self.agent.allowed_tools),
            "used_tools": dict(self.used_tools.most_common()),
            "unused_tools": list(self.unused_tools),
            "used_without_grant": list(self.ungranted_tools),
            "denied_tools": dict(self.denied_tools.most_common()),
            "destinations": {k: list(v) for k, v in destination_lists(self.agent).items()},
            "used_destinations": {k: list(v) for k, v in self.used_destinations().items()},
            "unused_destinations": {k: list(v) for k, v in self.unused_destinations().items()},
            "suggested_change": suggested is not None,
        }


@dataclass(frozen=True, slots=True)
class AccessReview:
    """The review of every agent in the inventory over one window."""

    since: datetime
    agents: tuple[AgentAccess, ...]
    unregistered: Mapping[str, int]

    def to_json(self) -> dict[str, Any]:
        """Return the wire form."""
        return {
            "since": self.since.isoformat().replace("+00:00", "Z"),
            "agents": [a.to_json() for a in self.agents],
            "unregistered_agents": dict(self.unregistered),
        }

    def suggested_inventory(self) -> dict[str, Any]:
        """The whole inventory with the suggested changes applied, as an inventory file."""
        records = []
        for access in self.agents:
            agent = access.suggested() or access.agent
            records.append(agent.to_json())
        return {"agents": records}

    def suggested_yaml(self) -> str:
        """:meth:`suggested_inventory` as YAML, headed by what changed and why."""
        changed = [a for a in self.agents if a.suggested() is not None]
        lines = [
            "# Least-privilege inventory suggested by `lictor agents review-access`.",
            f"# Grants unused since {self.since.isoformat()} are removed for "
            f"{len(changed)} agent(s); review, then apply with `lictor agents apply`.",
        ]
        for access in changed:
            parts = []
            if access.unused_tools:
                parts.append("tools " + ", ".join(access.unused_tools))
            for key, values in access.unused_destinations().items():
                if values:
                    parts.append(f"{key} " + ", ".join(values))
            lines.append(f"#   {access.agent.id}: removes " + "; ".join(parts))
        body = yaml.safe_dump(self.suggested_inventory(), sort_keys=False, allow_unicode=True)
        return "\n".join(lines) + "\n" + body


def review_access(
    agents: Sequence[Agent], records: Iterable[Mapping[str, Any]], *, since: datetime
) -> AccessReview:
    """Compare grants with use over decision payloads (already limited to the window)."""
    by_id: dict[str, AgentAccess] = {a.id: AgentAccess(a) for a in agents}
    unregistered: Counter[str] = Counter()
    for payload in records:
        agent_id = payload.get("agent_id")
        tool = payload.get("tool")
        if not isinstance(agent_id, str) or not isinstance(tool, str):
            continue
        access = by_id.get(agent_id)
        if access is None:
            unregistered[agent_id] += 1
            continue
        access.decisions += 1
        if payload.get("outcome") != "allow":
            access.denied_tools[tool] += 1
            continue
        access.allowed += 1
        access.used_tools[tool] += 1
        access.seen_values.update(_strings(payload.get("arguments")))
        resource = payload.get("resource")
        if isinstance(resource, Mapping) and isinstance(resource.get("id"), str):
            access.seen_values.add(resource["id"])
    ordered = tuple(by_id[a.id] for a in sorted(agents, key=lambda a: a.id))
    return AccessReview(since, ordered, dict(unregistered.most_common()))


def _strings(value: Any, depth: int = 0) -> Iterator[str]:
    """Every string inside a JSON value (keys excluded)."""
    if depth > 32:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, depth + 1)
