"""The identify step in the Governor: delegation scope, shadow agents, audit fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lictor.core.agents import Agent, AgentStatus
from lictor.core.decisions import Outcome, ReasonCode
from lictor.core.policy import compile_policy
from lictor.core.policy.parse import parse_rules
from lictor.core.requests import AgentId, Principal
from lictor.service.delegation import DelegationChain
from lictor.service.governor import Governor
from lictor.service.identity import CallerIdentity, IdentityGate
from lictor.service.inventory import Inventory
from lictor.service.memory import FixedClock, MemoryAgents, MemoryAudit
from lictor.service.shadow import ShadowRecorder

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
BOT = Agent(id=AgentId("bot"), allowed_tools=("read", "send", "pay.*"))
POLICY = compile_policy(
    parse_rules([{"id": "all", "effect": "allow", "match": {"tools": ["*"]}}]), version="v1"
)


def chain(*scope: str) -> DelegationChain:
    return DelegationChain(
        principal=Principal(id="emma@corp.example", groups=("finance",)),
        actors=(AgentId("bot"),),
        scope=frozenset(scope),
        token_id="01TOKEN",  # noqa: S106 - a token id, not a secret
        expires_at=NOW + timedelta(minutes=5),
        principal_issuer="https://idp.example",
    )


def governor(
    mode: str = "deny", agents: list[Agent] | None = None
) -> tuple[Governor, MemoryAudit, MemoryAgents, ShadowRecorder]:
    store = MemoryAgents(agents if agents is not None else [BOT])
    audit, clock = MemoryAudit(), FixedClock(NOW)
    recorder = ShadowRecorder(Inventory(store, audit, clock), clock)
    gov = Governor(POLICY, store, audit=audit, clock=clock)
    gov.identity_gate = IdentityGate(recorder, "review" if mode == "review" else "deny")
    return gov, audit, store, recorder


def test_a_tool_outside_the_scope_is_denied_and_inside_it_the_policy_decides() -> None:
    gov, audit, _, _ = governor()
    identity = CallerIdentity(chain("tool:read", "tool:pay.*"))

    outside = gov.decide({"agent_id": "bot", "tool": "send"}, identity=identity)
    inside = gov.decide({"agent_id": "bot", "tool": "pay.invoice"}, identity=identity)

    assert outside.outcome is Outcome.DENY
    assert [(r.rule, r.code) for r in outside.reasons] == [
        ("lictor/delegation-scope", ReasonCode.DELEGATION)
    ]
    assert inside.outcome is Outcome.ALLOW
    assert audit.entries[0]["principal_verified"] is True
    assert audit.entries[0]["delegation_token"]["token_id"] == "01TOKEN"  # noqa: S105 - an id


def test_without_a_token_the_principal_is_recorded_as_unverified() -> None:
    gov, audit, _, _ = governor()
    gov.decide({"agent_id": "bot", "tool": "read", "principal": {"id": "mallory"}})
    assert audit.entries[0]["principal"]["id"] == "mallory"
    assert audit.entries[0]["principal_verified"] is False
    assert audit.entries[0]["delegation_token"] is None


@pytest.mark.parametrize("mode", ["deny", "review"])
def test_an_unknown_agent_is_recorded_as_shadow_and_denied_or_held(mode: str) -> None:
    gov, _, store, recorder = governor(mode)

    decision = gov.decide(
        {"agent_id": "ghost", "tool": "pay.out"},
        source="10.0.0.5",
        identity=CallerIdentity(None, "rogue/1"),
    )
    assert store.get("ghost") is None  # the write is off the decision path...
    recorder.flush()

    assert decision.outcome is (Outcome.REVIEW if mode == "review" else Outcome.DENY)
    assert [r.rule for r in decision.reasons] == ["lictor/shadow-agent"]
    ghost = store.get("ghost")  # ...and lands on the next flush
    assert ghost is not None
    assert ghost.status is AgentStatus.SHADOW
    assert ghost.shadow is not None
    assert (ghost.shadow.source, ghost.shadow.user_agent) == ("10.0.0.5", "rogue/1")


def test_a_known_shadow_agent_stays_denied_and_its_count_grows() -> None:
    gov, _, store, recorder = governor()
    for _ in range(3):
        gov.decide({"agent_id": "ghost", "tool": "read"})
        recorder.flush()
    gov.decide({"agent_id": "ghost", "tool": "read"})
    gov.decide({"agent_id": "ghost", "tool": "send"})
    recorder.flush()

    ghost = store.get("ghost")
    assert ghost is not None
    assert ghost.shadow is not None
    assert (ghost.shadow.count, ghost.shadow.tools) == (5, ("read", "send"))


def test_a_failed_store_write_keeps_the_sighting_for_the_next_flush() -> None:
    gov, _, store, recorder = governor()

    original = store.put_if
    calls = {"n": 0}

    def flaky(agent: Agent, expected: int | None) -> bool:
        calls["n"] += 1
        if calls["n"] == 1:
            from lictor.errors import StoreError

            raise StoreError("database down")
        return original(agent, expected)

    store.put_if = flaky  # type: ignore[method-assign,assignment]  # a store failing once
    gov.decide({"agent_id": "ghost", "tool": "read"})
    assert recorder.flush() == 0
    gov.decide({"agent_id": "ghost", "tool": "send"})
    assert recorder.flush() == 1

    ghost = store.get("ghost")
    assert ghost is not None
    assert ghost.shadow is not None
    assert ghost.shadow.count == 2


def test_an_error_in_the_gate_is_an_audited_deny() -> None:
    gov, audit, _, _ = governor()

    class Exploding(DelegationChain):
        def permits(self, tool: str) -> bool:
            raise RuntimeError("boom")

    broken = Exploding(**{f: getattr(chain("tool:*"), f) for f in DelegationChain.__slots__})
    decision = gov.decide({"agent_id": "bot", "tool": "read"}, identity=CallerIdentity(broken))

    assert decision.outcome is Outcome.DENY
    assert decision.reasons[0].code is ReasonCode.EVALUATION_ERROR
    assert audit.entries[-1]["outcome"] == "deny"


@given(st.sets(st.sampled_from(["read", "send", "pay.a", "pay.b", "x"]), min_size=1))
def test_scope_never_turns_a_deny_into_an_allow(scope: set[str]) -> None:
    gov, _, _, _ = governor(agents=[Agent(id=AgentId("bot"), allowed_tools=("read",))])
    identity = CallerIdentity(chain(*(f"tool:{t}" for t in scope)))
    for tool in ("read", "send", "pay.a", "x"):
        decision = gov.decide({"agent_id": "bot", "tool": tool}, identity=identity)
        if tool not in scope or tool != "read":
            assert decision.outcome is not Outcome.ALLOW
