"""Ports: what the use cases need from the outside world, as Protocols they own.

Each port has an in-memory implementation in :mod:`lictor.service.memory`; durable
ones live in :mod:`lictor.store`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from lictor.core.agents import Agent
from lictor.core.policy import SessionFacts


class Clock(Protocol):
    """Source of the current time (aware UTC)."""

    def now(self) -> datetime:
        """Return the current time."""
        ...


class AgentDirectory(Protocol):
    """Read access to the inventory."""

    def get(self, agent_id: str) -> Agent | None:
        """Return the agent record, or None if it is not registered."""
        ...


class SessionStore(Protocol):
    """Per-session state that rules read (labels, counters)."""

    def facts(self, session_id: str) -> SessionFacts:
        """Return what the session has done so far (empty for a new session)."""
        ...

    def record_call(self, session_id: str, tool: str, labels: frozenset[str]) -> None:
        """Count an allowed call and add the data labels it touched."""
        ...

    def add_labels(self, session_id: str, labels: frozenset[str]) -> None:
        """Add data labels reported after a call ran."""
        ...


class AuditLog(Protocol):
    """Where audit entries go. ``append`` returns only once the entry is durable."""

    def append(self, entry: Mapping[str, Any]) -> None:
        """Persist one entry; raise StoreError if it could not be made durable."""
        ...

    def find_decision(self, decision_id: str) -> Mapping[str, Any] | None:
        """Return the decision entry with this id, if recorded."""
        ...
