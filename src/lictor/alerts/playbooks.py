"""Playbooks: automatic response to a pattern of decisions (quarantine or suspend an agent).

A playbook watches recorded decisions for one trigger: N denies within T seconds for
one agent, a risk score above X, or a call to a canary tool (a tool no honest agent
has a reason to call). When it fires, the action goes through a :class:`Responder`,
so the same code path a person uses (``lictor agents quarantine``) stops the agent.

:class:`PlaybookBook` is pure: decisions and time come in, firings go out; the alerts
worker calls the responder and records the firing.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from lictor.core.decisions import Decision, Outcome, ReasonCode
from lictor.core.policy.model import matches_any
from lictor.core.requests import ActionRequest

__all__ = [
    "Action",
    "CanaryTrigger",
    "DenyBurstTrigger",
    "Firing",
    "Playbook",
    "PlaybookBook",
    "Responder",
    "RiskTrigger",
    "Trigger",
]


class Responder(Protocol):
    """Stops an agent; the incident-response service implements it."""

    def quarantine(self, agent_id: str, *, reason: str, actor: str) -> None:
        """Deny every further request of ``agent_id`` and revoke its credentials."""
        ...

    def suspend(self, agent_id: str, *, reason: str, actor: str) -> None:
        """Deny every further request of ``agent_id`` until an operator resumes it."""
        ...


class Action(StrEnum):
    """What a playbook does to the agent."""

    QUARANTINE = "quarantine"
    SUSPEND = "suspend"


@dataclass(frozen=True, slots=True)
class DenyBurstTrigger:
    """``denies`` denied requests of one agent within ``within_seconds``."""

    denies: int
    within_seconds: float

    def describe(self) -> dict[str, Any]:
        """Return the trigger as JSON, for the audit entry and the event."""
        return {"type": "denies", "denies": self.denies, "within_seconds": self.within_seconds}


@dataclass(frozen=True, slots=True)
class RiskTrigger:
    """A decision whose risk score is greater than ``risk_above``."""

    risk_above: float

    def describe(self) -> dict[str, Any]:
        """Return the trigger as JSON, for the audit entry and the event."""
        return {"type": "risk", "risk_above": self.risk_above}


@dataclass(frozen=True, slots=True)
class CanaryTrigger:
    """Any request (allowed or not) for a tool matching one of ``tools``."""

    tools: tuple[str, ...]

    def describe(self) -> dict[str, Any]:
        """Return the trigger as JSON, for the audit entry and the event."""
        return {"type": "canary", "tools": list(self.tools)}


Trigger = DenyBurstTrigger | RiskTrigger | CanaryTrigger


@dataclass(frozen=True, slots=True)
class Playbook:
    """One trigger and the action it takes, for agents matching ``agents`` (all if empty)."""

    name: str
    trigger: Trigger
    action: Action
    agents: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Firing:
    """A playbook that fired on one decision: what to do, to whom, and why."""

    playbook: Playbook
    agent_id: str
    decision_id: str
    tool: str
    at: datetime
    detail: str
    observed: dict[str, Any] = field(default_factory=dict)

    @property
    def actor(self) -> str:
        """The actor recorded for the action: the playbook, never a person."""
        return f"lictor:playbook:{self.playbook.name}"


def _is_status_deny(decision: Decision) -> bool:
    """A deny because the agent is already stopped says nothing new about it."""
    return bool(decision.reasons) and all(
        r.code is ReasonCode.AGENT_STATUS for r in decision.reasons
    )


class PlaybookBook:
    """The configured playbooks and their per-agent memory. One thread owns it."""

    def __init__(self, playbooks: tuple[Playbook, ...]) -> None:
        self.playbooks = playbooks
        self._denies: dict[tuple[str, str], deque[datetime]] = {}

    def observe(self, request: ActionRequest, decision: Decision) -> list[Firing]:
        """Feed one recorded decision; return the playbooks it makes fire."""
        if _is_status_deny(decision):
            return []
        firings: list[Firing] = []
        agent_id = request.agent_id
        at = decision.decided_at
        for playbook in self.playbooks:
            if playbook.agents and not matches_any(agent_id, playbook.agents):
                continue
            trigger = playbook.trigger
            detail: str | None = None
            observed: dict[str, Any] = {}
            if isinstance(trigger, DenyBurstTrigger):
                if decision.outcome is Outcome.DENY:
                    detail, observed = self._count_deny(playbook.name, trigger, agent_id, at)
            elif isinstance(trigger, RiskTrigger):
                if decision.risk.score > trigger.risk_above:
                    detail = f"risk score {decision.risk.score:.2f} above {trigger.risk_above:.2f}"
                    observed = {"score": decision.risk.score}
            elif matches_any(request.tool, trigger.tools):
                detail = f"canary tool {request.tool!r} called"
                observed = {"tool": request.tool}
            if detail is not None:
                firings.append(
                    Firing(
                        playbook, agent_id, decision.decision_id, request.tool, at, detail, observed
                    )
                )
        return firings

    def _count_deny(
        self, name: str, trigger: DenyBurstTrigger, agent_id: str, at: datetime
    ) -> tuple[str | None, dict[str, Any]]:
        times = self._denies.setdefault((name, agent_id), deque())
        times.append(at)
        horizon = at - timedelta(seconds=trigger.within_seconds)
        while times and times[0] <= horizon:
            times.popleft()
        if len(times) < trigger.denies:
            return None, {}
        first = times[0]
        # Start over, so one burst fires once rather than on every further deny.
        del self._denies[(name, agent_id)]
        return (
            f"{trigger.denies} denies within {trigger.within_seconds:g} s",
            {"denies": trigger.denies, "first_at": first.isoformat(), "last_at": at.isoformat()},
        )
