"""Properties of risk in decisions: it never loosens, and a learned trace replays quietly."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lictor.core.agents import Agent, RiskTier
from lictor.core.decisions import Outcome, parse_result
from lictor.core.policy import Facts, compile_policy, evaluate
from lictor.core.policy.parse import parse_rules
from lictor.core.requests import AgentId, parse_request
from lictor.service.governor import Governor
from lictor.service.memory import FixedClock, MemoryAgents, MemoryAudit
from lictor.service.risk import MemoryRiskStore, RiskEngine, RiskSettings

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TOOLS = ("read_mail", "send_email", "send_money", "delete_file", "search")
DESTINATIONS = ("bob@corp.example", "eve@evil.example", "DE89370400440532013000", None)
RULES: dict[str, dict[str, Any]] = {
    "allow": {"id": "allow", "effect": "allow"},
    "deny-delete": {"id": "deny-delete", "effect": "deny", "match": {"tools": ["delete_file"]}},
    "review-big": {
        "id": "review-big",
        "effect": "review",
        "when": "has(arguments.amount) && arguments.amount > 500",
    },
    "flow": {
        "id": "flow",
        "effect": "deny",
        "match": {"tools": ["send_*"]},
        "when": "'confidential' in session.labels",
    },
    "budget": {
        "id": "budget",
        "effect": "deny",
        "match": {"tools": ["send_money"]},
        "when": "window_count('send_*', '1h', 'agent') >= 3",
    },
    "untrusted": {
        "id": "untrusted",
        "effect": "review",
        "when": "session.side_effecting && size(session.untrusted_destinations) > 0",
    },
}


@dataclass(frozen=True)
class Step:
    tool: str
    destination: str | None
    amount: int | None
    session: int
    labels: tuple[str, ...]
    output: str | None
    gap_seconds: int

    def request(self, prefix: str = "") -> dict[str, Any]:
        arguments: dict[str, Any] = {}
        if self.destination is not None:
            arguments["to"] = self.destination
        if self.amount is not None:
            arguments["amount"] = self.amount
        return {
            "agent_id": "agent",
            "principal": {"id": "p"},
            "session_id": f"{prefix}s{self.session}",
            "tool": self.tool,
            "arguments": arguments,
            "context": {"task": "mail bob@corp.example"},
        }


steps = st.builds(
    Step,
    tool=st.sampled_from(TOOLS),
    destination=st.sampled_from(DESTINATIONS),
    amount=st.one_of(st.none(), st.integers(0, 1000)),
    session=st.integers(0, 2),
    labels=st.lists(st.sampled_from(["confidential", "internal"]), max_size=1).map(tuple),
    output=st.sampled_from([None, "contact eve@evil.example", "card 4111 1111 1111 1111"]),
    gap_seconds=st.integers(0, 4000),
)
agents = st.builds(
    lambda tier, tolerance: Agent(
        id=AgentId("agent"), allowed_tools=TOOLS, risk_tier=tier, risk_tolerance=tolerance
    ),
    st.sampled_from(list(RiskTier)),
    st.floats(0.0, 1.0),
)


@settings(max_examples=150)
@given(
    st.lists(st.sampled_from(sorted(RULES)), min_size=1, max_size=6, unique=True),
    agents,
    st.integers(0, 5),
    st.lists(steps, max_size=15),
)
def test_a_decision_with_risk_is_never_more_permissive_than_the_policy_alone(
    rule_names: list[str], agent: Agent, learning: int, trace: list[Step]
) -> None:
    policy = compile_policy(parse_rules([RULES[n] for n in rule_names]), version="sha256:p")
    engine = RiskEngine(RiskSettings(learning_observations=learning, learning_seconds=0))
    now = START
    for i, step in enumerate(trace):
        now += timedelta(seconds=step.gap_seconds)
        request = parse_request(step.request())
        decision, session = engine.decide(policy, request, agent, now, f"d{i}")
        alone = evaluate(policy, request, Facts(agent=agent, now=now, session=session))
        assert decision.outcome.strength >= alone.outcome.strength
        if alone.outcome is Outcome.DENY:
            assert decision.reasons == alone.reasons
        engine.learn(request, decision)
        if decision.allowed:
            entry = {"tool": step.tool, "session_id": request.session_id, "agent_id": "agent"}
            report = {
                "decision_id": f"d{i}",
                "status": "ok",
                "output": step.output,
                "labels": list(step.labels),
            }
            engine.observe(entry, parse_result(report), agent, now)


NEW_X = {"new_tool", "first_time_destination", "first_time_resource", "new_data_class"}


@settings(max_examples=60)
@given(st.lists(steps, min_size=1, max_size=25))
def test_replaying_a_learned_trace_gives_no_new_x_signals(trace: list[Step]) -> None:
    agent = Agent(id=AgentId("agent"), allowed_tools=TOOLS)
    clock = FixedClock(START)
    governor = Governor(
        compile_policy(parse_rules([RULES["allow"]]), version="sha256:p"),
        MemoryAgents([agent]),
        audit=MemoryAudit(),
        clock=clock,
        risk=RiskEngine(
            RiskSettings(learning_observations=10**6, learning_seconds=0), MemoryRiskStore()
        ),
    )

    def run(prefix: str) -> list[set[str]]:
        seen = []
        for step in trace:
            clock.advance(step.gap_seconds)
            decision = governor.decide(step.request(prefix))
            assert decision.allowed  # learning only annotates
            seen.append({s.kind for s in decision.risk.signals})
            governor.report(
                {
                    "decision_id": decision.decision_id,
                    "status": "ok",
                    "output": step.output,
                    "labels": list(step.labels),
                }
            )
        return seen

    run("learn-")
    for kinds in run("replay-"):
        assert not kinds & NEW_X
