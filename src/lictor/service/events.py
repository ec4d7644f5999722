"""Security events: what alerts, playbooks and live feeds listen to.

Decisions reach observers through :meth:`lictor.service.governor.Governor.add_observer`;
everything else that a security team must hear about (a review opened, an agent
quarantined, a shadow agent seen, a failed audit verification, a misused credential) is
emitted here as an :class:`Event`. Emitting never blocks and never fails the caller:
subscribers run on the emitting thread and must only hand the event on (enqueue), and a
subscriber that raises is logged and skipped. That keeps a slow or broken alert sink
away from the decision path.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = ["Event", "EventBus", "EventKind", "Severity"]

log = logging.getLogger("lictor.events")


class Severity(StrEnum):
    """How urgent an event is, in the order alert rules compare them."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Position in the order above (info = 0), for threshold comparisons."""
        return _RANKS[self]


_RANKS = {severity: rank for rank, severity in enumerate(Severity)}


class EventKind(StrEnum):
    """The kinds of event Lictor emits; alert rules select on these names."""

    DECISION_DENIED = "decision_denied"
    REVIEW_OPENED = "review_opened"
    REVIEW_RESOLVED = "review_resolved"
    RISK_HIGH = "risk_high"
    SHADOW_AGENT_SEEN = "shadow_agent_seen"
    AGENT_QUARANTINED = "agent_quarantined"
    AGENT_RELEASED = "agent_released"
    AGENT_STATUS_CHANGED = "agent_status_changed"
    EMERGENCY_MODE = "emergency_mode"
    AUDIT_VERIFICATION_FAILED = "audit_verification_failed"
    CREDENTIAL_MISUSE = "credential_misuse"
    TOOL_DEFINITION_CHANGED = "tool_definition_changed"
    PLAYBOOK_TRIGGERED = "playbook_triggered"


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened, with enough context to alert on it without a lookup.

    ``details`` holds JSON-compatible values only, so sinks can serialise it as is.
    """

    kind: EventKind
    at: datetime
    severity: Severity
    summary: str
    agent_id: str | None = None
    principal_id: str | None = None
    rule: str | None = None
    decision_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON object (what webhook sinks send)."""
        return {
            "kind": self.kind.value,
            "at": self.at.isoformat(),
            "severity": self.severity.value,
            "summary": self.summary,
            "agent_id": self.agent_id,
            "principal_id": self.principal_id,
            "rule": self.rule,
            "decision_id": self.decision_id,
            "details": dict(self.details),
        }


Subscriber = Callable[[Event], None]


class EventBus:
    """Fan-out of events to subscribers; thread-safe, never raises to the emitter."""

    def __init__(self) -> None:
        self._subscribers: tuple[Subscriber, ...] = ()
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber) -> None:
        """Add a subscriber; it must only enqueue (it runs on the emitting thread)."""
        with self._lock:
            self._subscribers = (*self._subscribers, subscriber)

    def emit(self, event: Event) -> None:
        """Hand ``event`` to every subscriber; failures are logged, never raised."""
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except Exception:  # a broken subscriber must not fail the emitter
                log.exception("event subscriber %r failed on %s", subscriber, event.kind)
