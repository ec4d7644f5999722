"""In-memory implementations of the ports: for ``lictor demo``, tests and embedding.

Nothing here survives the process. The durable implementations are in ``lictor.store``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from lictor.core.agents import Agent
from lictor.core.policy import SessionFacts
from lictor.core.requests import AgentId


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        """Return the current time."""
        return datetime.now(UTC)


class FixedClock:
    """A clock that only moves when told to: deterministic tests and replays."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._now = start

    def now(self) -> datetime:
        """Return the fixed time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self._now += timedelta(seconds=seconds)

    def set(self, moment: datetime) -> None:
        """Jump to ``moment``."""
        self._now = moment


class MemoryAgents:
    """An inventory held in a dict."""

    def __init__(self, agents: Iterable[Agent] = ()) -> None:
        self._agents: dict[AgentId, Agent] = {a.id: a for a in agents}

    def get(self, agent_id: str) -> Agent | None:
        """Return the agent record, or None."""
        return self._agents.get(AgentId(agent_id))

    def put(self, agent: Agent) -> None:
        """Insert or replace a record."""
        self._agents[agent.id] = agent

    def all(self) -> list[Agent]:
        """Return every record, sorted by id."""
        return sorted(self._agents.values(), key=lambda a: a.id)


class MemorySessions:
    """Session state in a bounded LRU dict (old sessions are forgotten first)."""

    def __init__(self, limit: int = 100_000) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, SessionFacts] = OrderedDict()

    def facts(self, session_id: str) -> SessionFacts:
        """Return the session's facts, empty when unknown."""
        with self._lock:
            found = self._sessions.get(session_id)
        return found if found is not None else SessionFacts(id=session_id)

    def record_call(self, session_id: str, tool: str, labels: frozenset[str]) -> None:
        """Count an allowed call and add its labels."""
        with self._lock:
            old = self._sessions.get(session_id) or SessionFacts(id=session_id)
            counters = dict(old.counters)
            counters[tool] = counters.get(tool, 0) + 1
            self._store(
                SessionFacts(
                    id=session_id,
                    labels=old.labels | labels,
                    counters=counters,
                    calls=old.calls + 1,
                )
            )

    def add_labels(self, session_id: str, labels: frozenset[str]) -> None:
        """Add reported labels."""
        with self._lock:
            old = self._sessions.get(session_id) or SessionFacts(id=session_id)
            self._store(
                SessionFacts(
                    id=session_id,
                    labels=old.labels | labels,
                    counters=old.counters,
                    calls=old.calls,
                )
            )

    def _store(self, facts: SessionFacts) -> None:
        self._sessions[facts.id] = facts
        self._sessions.move_to_end(facts.id)
        while len(self._sessions) > self._limit:
            self._sessions.popitem(last=False)


class MemoryAudit:
    """Audit entries in a list. **Not durable**: for demos and tests only."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.entries: list[Mapping[str, Any]] = []
        self._by_decision: dict[str, Mapping[str, Any]] = {}

    def append(self, entry: Mapping[str, Any]) -> None:
        """Keep the entry."""
        with self._lock:
            self.entries.append(entry)
            if entry.get("kind") == "decision":
                self._by_decision[str(entry["decision_id"])] = entry

    def find_decision(self, decision_id: str) -> Mapping[str, Any] | None:
        """Return the decision entry with this id."""
        with self._lock:
            return self._by_decision.get(decision_id)
