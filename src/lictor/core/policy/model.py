"""Policy records: rules, their selectors and the bundle they belong to.

All records are frozen and validated by ``parse``; a ``Rule`` that exists is well formed.
A rule's CEL source is kept as text here; ``compile`` turns it into a program.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from enum import StrEnum

from lictor.core.agents import Agent
from lictor.core.decisions import Outcome


class Mode(StrEnum):
    """``enforce`` rules decide; ``shadow`` rules are evaluated and recorded only."""

    ENFORCE = "enforce"
    SHADOW = "shadow"


class Severity(StrEnum):
    """How loud a firing rule should be in alerts."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


def is_glob(pattern: str) -> bool:
    """Return whether ``pattern`` uses glob syntax (``*``, ``?`` or ``[``)."""
    return any(ch in pattern for ch in "*?[")


def _names_something(pattern: str) -> bool:
    outside = re.sub(r"\[[^\]]*\]", "", pattern)
    return any(ch.isalnum() for ch in outside)


def matches_any(value: str, patterns: tuple[str, ...]) -> bool:
    """Return whether ``value`` equals or glob-matches one of ``patterns`` (case-sensitive)."""
    return any(p == value or (is_glob(p) and fnmatch.fnmatchcase(value, p)) for p in patterns)


@dataclass(frozen=True, slots=True)
class AgentSelector:
    """Which agents a rule applies to. Each list is any-of; given lists must all hold."""

    ids: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        """Return whether the selector selects every agent."""
        return not (self.ids or self.tags or self.tiers)

    def selects(self, agent_id: str, agent: Agent | None) -> bool:
        """Return whether the selector applies to this agent."""
        if self.ids and not matches_any(agent_id, self.ids):
            return False
        if self.tags and (agent is None or not set(self.tags) & set(agent.tags)):
            return False
        return not (self.tiers and (agent is None or agent.risk_tier.value not in self.tiers))


@dataclass(frozen=True, slots=True)
class Match:
    """Static selection of a rule: cheap checks that the index and cache exploit."""

    tools: tuple[str, ...] = ()
    servers: tuple[str, ...] = ()
    agents: AgentSelector = field(default_factory=AgentSelector)

    def is_explicit_for_tools(self) -> bool:
        """Return whether every tool pattern names something (no catch-all).

        A pattern names something when it has a letter or digit outside ``[...]``:
        ``send_money`` and ``payments.*`` do; ``*``, ``?*``, ``**`` and ``*.*`` do not,
        so they cannot grant a tool missing from an agent's inventory.
        """
        return bool(self.tools) and all(_names_something(p) for p in self.tools)

    def selects(self, tool: str, server: str | None, agent_id: str, agent: Agent | None) -> bool:
        """Return whether the static part of the rule applies to this request."""
        if self.tools and not matches_any(tool, self.tools):
            return False
        if self.servers and (server is None or not matches_any(server, self.servers)):
            return False
        return self.agents.selects(agent_id, agent)


@dataclass(frozen=True, slots=True)
class Rule:
    """One policy rule: when ``match`` selects the request and ``when`` holds, ``effect``.

    ``source`` and ``line`` point back to the file the rule came from, for messages.
    """

    id: str
    effect: Outcome
    match: Match = field(default_factory=Match)
    when: str | None = None
    message: str = ""
    description: str = ""
    mode: Mode = Mode.ENFORCE
    severity: Severity = Severity.MEDIUM
    source: str | None = None
    line: int | None = None
    when_line: int | None = None


@dataclass(frozen=True, slots=True)
class PolicySet:
    """A whole bundle: its rules in load order, its settings and its content version."""

    rules: tuple[Rule, ...]
    version: str
    timezone: str = "UTC"
