"""The "lictor+risk" row of the decision benchmark, and "governor", the reference it adds to.

It times :meth:`lictor.service.risk.RiskEngine.decide`, the whole context-and-risk path
the Governor runs before the audit write: the session state read, argument reading and
provenance tracing, the policy evaluation with ``session.*`` filled in, and baseline
scoring with the agent's tolerance. Untimed set-up gives every workload session the state
its generated facts describe (labels, counters, calls) plus one earlier tool output, and
trains each agent's baseline on a third of the workload, as a running service would have
done. The baselines stay in their learning period, so risk annotates and the outcomes
stay comparable with the oracle; scoring costs the same either way.

"governor" times what :meth:`lictor.service.governor.Governor.decide` does with risk off,
up to the same point: the session facts from the in-memory session store, ``Facts``,
``evaluate`` and the ``Decision``. The "lictor" row times ``evaluate`` alone on facts built
beforehand, so against it the risk row would also be charged for the ``Facts`` and the
``Decision`` that every Governor decision builds; what turning risk on costs is the
difference to this row.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from benchmarks._engines import Engine, Loaded
from benchmarks._workload import Verdict, Workload
from lictor.core.decisions import Decision, Outcome
from lictor.core.policy import Facts, SessionFacts, compile_policy, evaluate, parse_rules
from lictor.core.requests import ActionRequest
from lictor.core.risk.provenance import ToolOutput
from lictor.core.risk.session import SessionState
from lictor.service.memory import MemorySessions
from lictor.service.risk import MemoryRiskStore, RiskEngine, RiskSettings

__all__ = ["GOVERNOR_ENGINE", "RISK_ENGINE"]


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
        engine.learn(request, decision)  # as the Governor does: only an allow teaches
    engine.flush(workload.requests[0][1].now)  # stored, as a running service does every 5 s
    # Learning changed the training sessions; put the generated state back, as a newer
    # version (versions only grow, and the engine keeps a state at or past the stored one).
    _seed(store, workload, version=1_000)
    counter = iter(range(1 << 62))
    engine_decide, forget = engine.decide, engine.forget

    def verdict(request: ActionRequest, facts: Facts) -> Decision:
        decision_id = f"d{next(counter)}"
        decision, _ = engine_decide(policy, request, facts.agent, facts.now, decision_id)
        # A running service learns from (or drops) every recorded decision right after the
        # answer, so nothing a decision keeps for learning outlives it. Without this, each
        # scored call would stay in memory and the row would time the garbage collector.
        forget(decision_id)
        return decision

    def decide(request: ActionRequest, facts: Facts) -> Outcome:  # timed: ``verdict`` inlined
        decision_id = f"d{next(counter)}"
        decision, _ = engine_decide(policy, request, facts.agent, facts.now, decision_id)
        forget(decision_id)
        return decision.outcome

    def explain(request: ActionRequest, facts: Facts) -> Verdict:
        decision = verdict(request, facts)
        return Verdict(decision.outcome, tuple(r.rule for r in decision.reasons))

    return Loaded(decide, explain)


def _write(workload: Workload) -> list[dict[str, Any]]:
    return workload.rule_dicts()


RISK_ENGINE = Engine("lictor+risk", _write, _load)


def _load_governor(workload: Workload, rules: list[dict[str, Any]]) -> Loaded:
    policy = compile_policy(parse_rules(rules), version="bench", timezone=workload.timezone)
    sessions = MemorySessions()
    for _, facts in workload.requests:
        session = facts.session
        # Through the store's own writes, so a zero counter is left out: the workload's
        # conditions read counters with ``orValue(0)`` and cannot tell (nor can the oracle).
        for tool, count in session.counters.items():
            for _ in range(count):
                sessions.record_call(session.id, tool, frozenset())
        if session.labels:
            sessions.add_labels(session.id, session.labels)
    counter = iter(range(1 << 62))

    def verdict(request: ActionRequest, facts: Facts) -> Decision:
        # Governor.decide with risk off, from the session read to the Decision.
        decision_id = f"d{next(counter)}"
        session = sessions.facts(request.session_id) if request.session_id else SessionFacts()
        found = evaluate(policy, request, Facts(agent=facts.agent, now=facts.now, session=session))
        return Decision(
            decision_id=decision_id,
            outcome=found.outcome,
            reasons=found.reasons,
            policy_version=policy.version,
            decided_at=facts.now,
            shadow=found.shadow,
        )

    def explain(request: ActionRequest, facts: Facts) -> Verdict:
        decision = verdict(request, facts)
        return Verdict(decision.outcome, tuple(r.rule for r in decision.reasons))

    return Loaded(lambda request, facts: verdict(request, facts).outcome, explain)


GOVERNOR_ENGINE = Engine("governor", _write, _load_governor)
