"""The kill switch in process: agents, principals, emergency mode, and the status-step gate."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from lictor.core.agents import Agent, AgentStatus
from lictor.core.decisions import Outcome
from lictor.core.policy import compile_policy
from lictor.core.policy.parse import parse_rules
from lictor.core.requests import AgentId
from lictor.errors import AuthError, NotFound
from lictor.service.credentials import Credentials
from lictor.service.events import Event, EventBus, EventKind
from lictor.service.governor import Governor
from lictor.service.memory import FixedClock, MemoryAgents, MemoryAudit, MemoryCredentials
from lictor.service.ports import CredentialKind, Role
from lictor.service.response import (
    EmergencyState,
    IncidentResponse,
    MemoryResponseState,
    ResponseGate,
)
from lictor.service.reviews import MemoryReviews, ReviewService, ReviewStatus

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
RULES: list[dict[str, Any]] = [
    {"id": "read", "effect": "allow", "match": {"tools": ["read"]}},
    {"id": "pay", "effect": "review", "match": {"tools": ["pay"]}},
]


class Tick:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Site:
    def __init__(self) -> None:
        self.clock = FixedClock(NOW)
        self.audit = MemoryAudit()
        self.agents = MemoryAgents(
            [
                Agent(id=AgentId("bot"), allowed_tools=("read", "pay")),
                Agent(id=AgentId("helper"), allowed_tools=("read",)),
            ]
        )
        self.credentials = Credentials(MemoryCredentials(), self.clock)
        self.events: list[Event] = []
        bus = EventBus()
        bus.subscribe(self.events.append)
        self.tick = Tick()
        self.gate = ResponseGate(MemoryResponseState(), monotonic=self.tick)
        self.reviews = ReviewService(MemoryReviews(), self.audit, self.clock)
        self.governor = Governor(
            compile_policy(parse_rules(RULES), version="v1"),
            self.agents,
            audit=self.audit,
            clock=self.clock,
        )
        self.governor.attach_reviews(self.reviews, self.gate)
        self.response = IncidentResponse(
            agents=self.agents,
            credentials=self.credentials,
            state=self.gate.state,
            audit=self.audit,
            events=bus,
            clock=self.clock,
            reviews=self.reviews,
            gate=self.gate,
        )

    def decide(self, agent: str = "bot", tool: str = "read", **extra: Any) -> Any:
        return self.governor.decide({"agent_id": agent, "tool": tool, **extra})

    def incidents(self) -> list[str]:
        return [str(e["action"]) for e in self.audit.entries if e.get("kind") == "incident"]


def test_quarantine_denies_revokes_cancels_and_is_told() -> None:
    site = Site()
    token = site.credentials.issue(CredentialKind.AGENT, "bot", Role.AGENT).token
    held = site.decide(tool="pay")
    assert held.review_id is not None
    site.response.quarantine("bot", reason="exfiltration", actor="alice")

    denied = site.decide()
    assert denied.outcome is Outcome.DENY
    assert [r.rule for r in denied.reasons] == ["lictor/agent-quarantined"]
    with pytest.raises(AuthError):
        site.credentials.authenticate(token)
    assert site.reviews.get(held.review_id).status is ReviewStatus.CANCELLED
    agent = site.agents.get("bot")
    assert agent is not None
    assert agent.status is AgentStatus.QUARANTINED
    assert agent.tokens_valid_after == NOW
    assert site.incidents() == ["quarantined"]
    assert [e.kind for e in site.events] == [EventKind.AGENT_QUARANTINED]
    assert site.decide("helper").outcome is Outcome.ALLOW  # only that agent

    site.response.release("bot", reason="cleared", actor="alice")
    assert site.decide().outcome is Outcome.ALLOW
    with pytest.raises(AuthError):
        site.credentials.authenticate(token)  # credentials stay revoked
    assert site.incidents() == ["quarantined", "release"]


def test_suspend_denies_but_keeps_credentials() -> None:
    site = Site()
    token = site.credentials.issue(CredentialKind.AGENT, "bot", Role.AGENT).token
    site.response.suspend("bot", reason="too many denies", actor="playbook:denies")
    assert [r.rule for r in site.decide().reasons] == ["lictor/agent-suspended"]
    assert site.credentials.authenticate(token).subject == "bot"


def test_unknown_agents_are_not_found_and_nothing_is_recorded() -> None:
    site = Site()
    with pytest.raises(NotFound):
        site.response.quarantine("ghost", reason="x", actor="alice")
    assert site.incidents() == []


def test_principal_quarantine_covers_the_whole_delegation_chain() -> None:
    site = Site()
    held = site.decide(tool="pay", principal={"id": "emma"})
    site.response.quarantine_principal("emma", reason="phished", actor="alice")
    assert site.reviews.get(held.review_id).status is ReviewStatus.CANCELLED
    for extra in ({"principal": {"id": "emma"}}, {"delegation": ["emma", "planner", "bot"]}):
        decision = site.decide(**extra)
        assert decision.outcome is Outcome.DENY
        assert [r.rule for r in decision.reasons] == ["lictor/principal-quarantined"]
    assert site.decide(principal={"id": "bob"}).outcome is Outcome.ALLOW
    site.response.release_principal("emma", reason="", actor="alice")
    assert site.decide(principal={"id": "emma"}).outcome is Outcome.ALLOW
    with pytest.raises(NotFound):
        site.response.release_principal("emma", reason="", actor="alice")


def test_emergency_mode_denies_everyone_even_monitored_agents() -> None:
    site = Site()
    monitored = Agent(id=AgentId("watched"), allowed_tools=(), attributes={"monitor": True})
    site.agents.put(monitored)
    site.response.set_emergency(True, reason="breach", actor="alice")
    for agent in ("bot", "helper", "watched"):
        decision = site.decide(agent)
        assert decision.outcome is Outcome.DENY, agent
        assert [r.rule for r in decision.reasons] == ["lictor/emergency-mode"]
    site.response.set_emergency(False, reason="contained", actor="alice")
    assert site.decide().outcome is Outcome.ALLOW
    assert site.incidents() == ["emergency_on", "emergency_off"]
    assert [e.kind for e in site.events] == [EventKind.EMERGENCY_MODE] * 2


def test_the_gate_sees_another_replicas_change_within_its_ttl() -> None:
    site = Site()
    assert site.decide().outcome is Outcome.ALLOW
    # Written by "another replica": this process is not told.
    site.gate.state.set_emergency(EmergencyState("other replica", "bob", NOW))
    site.tick.now = 0.4
    assert site.decide().outcome is Outcome.ALLOW  # still the cached view
    site.tick.now = 0.6
    assert site.decide().outcome is Outcome.DENY


def test_a_gate_that_cannot_read_its_state_denies() -> None:
    class Broken(MemoryResponseState):
        def emergency(self) -> Any:
            raise OSError("store down")

    site = Site()
    site.governor.attach_reviews(site.reviews, ResponseGate(Broken()))
    decision = site.decide()
    assert decision.outcome is Outcome.DENY
    assert decision.reasons[0].rule == "lictor/evaluation-error"
