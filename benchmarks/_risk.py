"""The "lictor+risk" engine row of the decision benchmark: the policy plus the risk engine.

It times :meth:`lictor.service.risk.RiskEngine.decide`, the whole context-and-risk path
the Governor runs before the audit write: the session state read, argument reading and
provenance tracing, the policy evaluation with ``session.*`` filled in, and baseline
scoring with the agent's tolerance. Untimed set-up gives every workload session the state
its generated facts describe (labels, counters, calls) plus one earlier tool output, and
trains each agent's baseline on a third of the workload, as a running service would have
done. The baselines stay in their learning period, so risk annotates and the outcomes
stay comparable with the oracle; scoring costs the same either way.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from benchmarks._engines import Engine, Loaded
from benchmarks._workload import Verdict, Workload
from lictor.core.decisions import Outcome
from lictor.core.policy import Facts, compile_policy, parse_rules
from lictor.core.requests import ActionRequest
from lictor.core.risk.provenance import ToolOutput
from lictor.core.risk.session import SessionState
from lictor.service.risk import MemoryRiskStore, RiskEngine, RiskSettings

__all__ = ["RISK_ENGINE"]


def _state(facts: Facts, version: int) -> SessionState:
    session = facts.session
    page = ToolOutput(
        "search", "d-earlier", f"results for {session.id}: see https://docs.example/{session.id}"
    )
    return SessionState(
        labels=session.labels,
        counters=MappingProxyType(dict(session.counters)),
        calls=session.calls,
        previous_tool="search",
        outputs=(page,),
        version=version,
    )


def _seed(store: MemoryRiskStore, workload: Workload, version: int = 1) -> None:
    for _, facts in workload.requests:
        state = _state(facts, version)

        def put(_old: SessionState, state: SessionState = state) -> SessionState:
            return state

        store.update_session(facts.session.id, put, facts.now)


def _load(workload: Workload, rules: list[dict[str, Any]]) -> Loaded:
    policy = compile_policy(parse_rules(rules), version="bench", timezone=workload.timezone)
    store = MemoryRiskStore()
    _seed(store, workload)
    engine = RiskEngine(RiskSettings(learning_observations=10**9), store)
    for i, (request, facts) in enumerate(workload.requests[: len(workload.requests) // 3]):
        decision, _ = engine.decide(policy, request, facts.agent, facts.now, f"train-{i}")
        if decision.outcome is Outcome.ALLOW:
            engine.learn(request, decision)
    engine.flush(workload.requests[0][1].now)  # stored, as a running service does every 5 s
    # Learning changed the training sessions; put the generated state back, as a newer
    # version (versions only grow, and the engine keeps a state at or past the stored one).
    _seed(store, workload, version=1_000)
    counter = iter(range(1 << 62))

    def verdict(request: ActionRequest, facts: Facts) -> Any:
        decision, _ = engine.decide(policy, request, facts.agent, facts.now, f"d{next(counter)}")
        return decision

    def decide(request: ActionRequest, facts: Facts) -> Outcome:
        return verdict(request, facts).outcome  # type: ignore[no-any-return]  # a Decision

    def explain(request: ActionRequest, facts: Facts) -> Verdict:
        decision = verdict(request, facts)
        return Verdict(decision.outcome, tuple(r.rule for r in decision.reasons))

    return Loaded(decide, explain)


def _write(workload: Workload) -> list[dict[str, Any]]:
    return workload.rule_dicts()


RISK_ENGINE = Engine("lictor+risk", _write, _load)
