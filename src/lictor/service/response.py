"""Incident response: the kill switch for one agent, for one principal, or for all agents.

Invariants:

1. Every step is in the audit trail (kind ``incident``) *before* it takes effect, like
   inventory changes: the trail may hold a step the store then failed to make, but
   never lacks one that was made.
2. A stop reaches every replica sharing the store within one second: agent status goes
   through the inventory (cached 0.5 s per replica), principal quarantines and the
   emergency flag through :class:`ResponseGate` (cached 0.5 s per replica).
3. Nothing here ever allows: release only lifts the stop it names; credentials revoked
   by a quarantine stay revoked (issue new ones).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from lictor.core.agents import Agent, AgentStatus
from lictor.core.decisions import Outcome, Reason, ReasonCode
from lictor.core.requests import ActionRequest
from lictor.errors import NotFound
from lictor.service.credentials import Credentials
from lictor.service.events import Event, EventBus, EventKind, Severity
from lictor.service.inventory import Inventory
from lictor.service.ports import AgentStore, AuditLog, Clock
from lictor.service.records import incident_entry
from lictor.service.reviews import ReviewService, ReviewStatus

__all__ = [
    "EMERGENCY_RULE",
    "PRINCIPAL_RULE",
    "EmergencyState",
    "IncidentResponse",
    "MemoryResponseState",
    "PrincipalQuarantine",
    "ResponseGate",
    "ResponseState",
]

EMERGENCY_RULE = "lictor/emergency-mode"
PRINCIPAL_RULE = "lictor/principal-quarantined"
STATE_TTL_SECONDS = 0.5
"""How long a replica trusts its copy of the emergency flag and principal list."""


@dataclass(frozen=True, slots=True)
class PrincipalQuarantine:
    """One quarantined principal: every agent acting for them is denied."""

    principal_id: str
    reason: str
    actor: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class EmergencyState:
    """Emergency mode is on: who turned it on, why and when."""

    reason: str
    actor: str
    since: datetime


class ResponseState(Protocol):
    """Where principal quarantines and the emergency flag live (shared by all replicas)."""

    def quarantine_principal(self, entry: PrincipalQuarantine) -> bool:
        """Add a principal; False if it was quarantined already."""
        ...

    def release_principal(self, principal_id: str) -> bool:
        """Remove a principal; return whether it was quarantined."""
        ...

    def quarantined_principals(self) -> Mapping[str, PrincipalQuarantine]:
        """Return every quarantined principal by id."""
        ...

    def set_emergency(self, state: EmergencyState | None) -> None:
        """Turn emergency mode on, or off with None."""
        ...

    def emergency(self) -> EmergencyState | None:
        """Return the emergency state, or None when off."""
        ...


class MemoryResponseState:
    """The in-process :class:`ResponseState` (embedded Governors and tests)."""

    def __init__(self) -> None:
        self._principals: dict[str, PrincipalQuarantine] = {}
        self._emergency: EmergencyState | None = None
        self._lock = threading.Lock()

    def quarantine_principal(self, entry: PrincipalQuarantine) -> bool:
        """Add a principal; False if it was quarantined already."""
        with self._lock:
            if entry.principal_id in self._principals:
                return False
            self._principals[entry.principal_id] = entry
            return True

    def release_principal(self, principal_id: str) -> bool:
        """Remove a principal; return whether it was quarantined."""
        with self._lock:
            return self._principals.pop(principal_id, None) is not None

    def quarantined_principals(self) -> Mapping[str, PrincipalQuarantine]:
        """Return every quarantined principal by id."""
        return dict(self._principals)

    def set_emergency(self, state: EmergencyState | None) -> None:
        """Turn emergency mode on, or off with None."""
        self._emergency = state

    def emergency(self) -> EmergencyState | None:
        """Return the emergency state, or None when off."""
        return self._emergency


class ResponseGate:
    """The Governor's status-step check for emergency mode and quarantined principals.

    The state is read from the store at most every ``ttl_seconds`` per process, so the
    hot path costs one read per half second, and a change made on another replica is
    seen within that window. A store failure raises, and the Governor turns that into
    an audited deny (fail closed).
    """

    def __init__(
        self,
        state: ResponseState,
        *,
        ttl_seconds: float = STATE_TTL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = state
        self._ttl = ttl_seconds
        self._monotonic = monotonic
        self._snapshot: tuple[EmergencyState | None, Mapping[str, PrincipalQuarantine]] | None
        self._snapshot = None
        self._valid_until = 0.0
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        """Forget the cached state (after a change made through this process)."""
        with self._lock:
            self._snapshot = None

    def _current(self) -> tuple[EmergencyState | None, Mapping[str, PrincipalQuarantine]]:
        now = self._monotonic()
        snapshot = self._snapshot
        if snapshot is not None and self._valid_until > now:
            return snapshot
        fresh = (self.state.emergency(), self.state.quarantined_principals())
        with self._lock:
            self._snapshot = fresh
            self._valid_until = now + self._ttl
        return fresh

    def __call__(self, request: ActionRequest) -> Reason | None:
        """Return the deny reason for a request stopped by emergency mode or its principal."""
        emergency, principals = self._current()
        if emergency is not None:
            return Reason(
                EMERGENCY_RULE,
                Outcome.DENY,
                f"emergency mode is on: every agent request is denied ({emergency.reason})",
                ReasonCode.AGENT_STATUS,
            )
        if principals:
            acting_for = {request.principal.id} if request.principal is not None else set()
            acting_for.update(request.delegation)
            for principal_id in sorted(acting_for):
                found = principals.get(principal_id)
                if found is not None:
                    return Reason(
                        PRINCIPAL_RULE,
                        Outcome.DENY,
                        f"principal {principal_id!r} is quarantined ({found.reason})",
                        ReasonCode.AGENT_STATUS,
                    )
        return None


class IncidentResponse:
    """Stop an agent, everything acting for a principal, or every agent; and undo it.

    Args:
        agents: The inventory (the server's cached view, so this replica sees at once).
        credentials: Revoked on quarantine.
        state: Principal quarantines and the emergency flag.
        audit: Where each step is recorded before it takes effect.
        events: Told of each step (alerts listen there).
        clock: Time of each step.
        reviews: Pending reviews of a stopped agent are cancelled (None: no reviews).
        gate: This replica's cached view of ``state``, refreshed after each change.
    """

    def __init__(
        self,
        *,
        agents: AgentStore,
        credentials: Credentials,
        state: ResponseState,
        audit: AuditLog,
        events: EventBus,
        clock: Clock,
        reviews: ReviewService | None = None,
        gate: ResponseGate | None = None,
    ) -> None:
        self._agents = agents
        # Status changes go through the inventory's one write path: audited as
        # ``agent_change`` and versioned, so no concurrent edit can undo a quarantine.
        self._inventory = Inventory(agents, audit, clock)
        self._credentials = credentials
        self._state = state
        self._audit = audit
        self._events = events
        self._clock = clock
        self._reviews = reviews
        self._gate = gate

    def quarantine(self, agent_id: str, *, reason: str, actor: str) -> None:
        """Deny every further request of the agent, revoke its credentials and tokens.

        Its pending reviews are cancelled, and tokens issued before now stop verifying.

        Raises:
            NotFound: no such agent in the inventory.
        """
        self._stop(agent_id, AgentStatus.QUARANTINED, reason=reason, actor=actor, revoke=True)

    def suspend(self, agent_id: str, *, reason: str, actor: str) -> None:
        """Deny every further request of the agent; its credentials stay valid.

        Raises:
            NotFound: no such agent in the inventory.
        """
        self._stop(agent_id, AgentStatus.SUSPENDED, reason=reason, actor=actor, revoke=False)

    def release(self, agent_id: str, *, reason: str, actor: str) -> None:
        """Make a quarantined or suspended agent active again (revoked credentials stay so).

        Raises:
            NotFound: no such agent in the inventory.
        """
        agent = self._agent(agent_id)
        now = self._clock.now()
        self._audit.append(
            incident_entry(
                "release",
                at=now,
                actor=actor,
                reason=reason,
                agent_id=agent_id,
                status_before=agent.status.value,
                status_after=AgentStatus.ACTIVE.value,
            )
        )
        self._inventory.set_status(agent_id, AgentStatus.ACTIVE, actor=actor, reason=reason)
        self._emit(
            EventKind.AGENT_RELEASED,
            Severity.MEDIUM,
            f"agent {agent_id} released",
            now,
            agent_id=agent_id,
            details={"reason": reason, "actor": actor},
        )

    def quarantine_principal(self, principal_id: str, *, reason: str, actor: str) -> None:
        """Deny every request made for ``principal_id`` (as principal or in the chain)."""
        now = self._clock.now()
        cancelled = self._pending_of(principal_id=principal_id)
        self._audit.append(
            incident_entry(
                "quarantine_principal",
                at=now,
                actor=actor,
                reason=reason,
                principal_id=principal_id,
                cancelled_reviews=[r for r, _ in cancelled],
            )
        )
        self._state.quarantine_principal(
            PrincipalQuarantine(principal_id, reason=reason, actor=actor, created_at=now)
        )
        self._refresh()
        self._cancel(cancelled, reason=reason, actor=actor)
        self._emit(
            EventKind.AGENT_QUARANTINED,
            Severity.HIGH,
            f"principal {principal_id} quarantined",
            now,
            principal_id=principal_id,
            details={"reason": reason, "actor": actor, "scope": "principal"},
        )

    def release_principal(self, principal_id: str, *, reason: str, actor: str) -> None:
        """Lift a principal quarantine.

        Raises:
            NotFound: the principal is not quarantined.
        """
        if principal_id not in self._state.quarantined_principals():
            raise NotFound("principal quarantine", principal_id)
        now = self._clock.now()
        self._audit.append(
            incident_entry(
                "release_principal", at=now, actor=actor, reason=reason, principal_id=principal_id
            )
        )
        self._state.release_principal(principal_id)
        self._refresh()
        self._emit(
            EventKind.AGENT_RELEASED,
            Severity.MEDIUM,
            f"principal {principal_id} released",
            now,
            principal_id=principal_id,
            details={"reason": reason, "actor": actor, "scope": "principal"},
        )

    def set_emergency(self, on: bool, *, reason: str, actor: str) -> None:
        """Turn emergency mode on (every agent request is denied) or off."""
        now = self._clock.now()
        self._audit.append(
            incident_entry(
                "emergency_on" if on else "emergency_off", at=now, actor=actor, reason=reason
            )
        )
        self._state.set_emergency(EmergencyState(reason, actor, now) if on else None)
        self._refresh()
        self._emit(
            EventKind.EMERGENCY_MODE,
            Severity.CRITICAL if on else Severity.HIGH,
            "emergency mode on: every agent request is denied" if on else "emergency mode off",
            now,
            details={"on": on, "reason": reason, "actor": actor},
        )

    def emergency(self) -> EmergencyState | None:
        """Return the emergency state as stored now (None when off)."""
        return self._state.emergency()

    def principals(self) -> Mapping[str, PrincipalQuarantine]:
        """Return the quarantined principals as stored now."""
        return self._state.quarantined_principals()

    # -- internals --------------------------------------------------------------------------

    def _agent(self, agent_id: str) -> Agent:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise NotFound("agent", agent_id)
        return agent

    def _stop(
        self, agent_id: str, status: AgentStatus, *, reason: str, actor: str, revoke: bool
    ) -> None:
        agent = self._agent(agent_id)
        now = self._clock.now()
        revoked = (
            [c.id for c in self._credentials.store.list(agent_id) if c.is_active] if revoke else []
        )
        cancelled = self._pending_of(agent_id=agent_id)
        self._audit.append(
            incident_entry(
                status.value if status is AgentStatus.QUARANTINED else "suspend",
                at=now,
                actor=actor,
                reason=reason,
                agent_id=agent_id,
                status_before=agent.status.value,
                status_after=status.value,
                revoked_credentials=revoked,
                cancelled_reviews=[r for r, _ in cancelled],
            )
        )
        self._inventory.set_status(agent_id, status, actor=actor, reason=reason)
        if revoke:  # delegation tokens issued before now stop verifying (core.agents.Agent)
            self._inventory.revoke_tokens(agent_id, after=now, actor=actor, reason=reason)
        for credential_id in revoked:
            self._credentials.revoke(credential_id)
        self._cancel(cancelled, reason=reason, actor=actor)
        kind = EventKind.AGENT_QUARANTINED if revoke else EventKind.AGENT_STATUS_CHANGED
        self._emit(
            kind,
            Severity.HIGH,
            f"agent {agent_id} {status.value}",
            now,
            agent_id=agent_id,
            details={
                "reason": reason,
                "actor": actor,
                "status": status.value,
                "revoked_credentials": revoked,
                "cancelled_reviews": [r for r, _ in cancelled],
            },
        )

    def _pending_of(
        self, *, agent_id: str | None = None, principal_id: str | None = None
    ) -> list[tuple[str, str]]:
        """Return (review id, agent id) of the pending reviews of an agent or principal."""
        if self._reviews is None:
            return []
        found = self._reviews.store.list(
            status=ReviewStatus.PENDING, agent_id=agent_id, limit=10_000
        )
        return [
            (r.review_id, r.agent_id)
            for r in found
            if principal_id is None or r.principal_id == principal_id
        ]

    def _cancel(self, pending: list[tuple[str, str]], *, reason: str, actor: str) -> None:
        if self._reviews is None:
            return
        for review_id, _ in pending:
            self._reviews.cancel(review_id, reason=reason, actor=actor)

    def _refresh(self) -> None:
        if self._gate is not None:
            self._gate.invalidate()

    def _emit(
        self,
        kind: EventKind,
        severity: Severity,
        summary: str,
        at: datetime,
        *,
        agent_id: str | None = None,
        principal_id: str | None = None,
        details: Mapping[str, object] | None = None,
    ) -> None:
        self._events.emit(
            Event(
                kind=kind,
                at=at,
                severity=severity,
                summary=summary,
                agent_id=agent_id,
                principal_id=principal_id,
                details=dict(details or {}),
            )
        )
