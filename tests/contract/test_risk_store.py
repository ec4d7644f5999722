"""Risk state shared by replicas, kept across restarts, with atomic budgets.

The contract runs on SQLite, PostgreSQL and Redis (``risk_backend``); what only the SQL
store does (pruning, batched session writes) on the databases alone. What only a network
lock must prove is in ``test_risk_store_redis.py``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from contract.backends import Backend, RiskBackend
from lictor.core.agents import Agent
from lictor.core.decisions import Outcome
from lictor.core.policy import compile_policy
from lictor.core.policy.parse import parse_rules
from lictor.core.requests import AgentId
from lictor.core.risk.session import SessionState
from lictor.server.runtime import _risk_engine
from lictor.service.governor import Governor
from lictor.service.memory import FixedClock, MemoryAgents, MemoryAudit
from lictor.service.risk import RiskEngine, RiskSettings
from lictor.settings import Settings, load_settings
from lictor.store import SqlRiskStore

NOW = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
AGENT = Agent(id=AgentId("payer"), allowed_tools=("send_money", "read_mail", "send_email"))
RULES = parse_rules(
    [
        {"id": "all", "effect": "allow"},
        {
            "id": "budget",
            "effect": "deny",
            "match": {"tools": ["send_money"]},
            "when": "window_sum('send_money', 'amount', '24h', 'principal')"
            " + double(arguments.amount) > 20000.0",
        },
        {
            "id": "flow",
            "effect": "deny",
            "match": {"tools": ["send_email"]},
            "when": "'confidential' in session.labels",
        },
    ]
)


def replica(backend: RiskBackend, settings: RiskSettings | None = None) -> Governor:
    """A Governor on a store of its own: another replica, or this one restarted."""
    engine = RiskEngine(settings or RiskSettings(baseline=False), backend.open())
    backend.engines.append(engine)
    return Governor(
        compile_policy(RULES, version="sha256:risk"),
        MemoryAgents([AGENT]),
        audit=MemoryAudit(),
        clock=FixedClock(NOW),
        risk=engine,
    )


def transfer(amount: int, session: str = "s", principal: str = "emma") -> dict[str, Any]:
    return {
        "agent_id": "payer",
        "principal": {"id": principal},
        "session_id": session,
        "tool": "send_money",
        "arguments": {"amount": amount},
    }


def test_session_labels_are_shared_by_replicas_and_survive_a_restart(
    risk_backend: RiskBackend,
) -> None:
    first = replica(risk_backend)
    second = replica(risk_backend)
    read = first.decide({"agent_id": "payer", "session_id": "s", "tool": "read_mail"})
    # The report may reach another replica than the decision did.
    first.report({"decision_id": read.decision_id, "status": "ok", "labels": ["confidential"]})
    mail = {"agent_id": "payer", "session_id": "s", "tool": "send_email"}
    assert second.decide(mail).outcome is Outcome.DENY
    restarted = replica(risk_backend)
    assert restarted.decide(mail).outcome is Outcome.DENY
    assert restarted.decide({**mail, "session_id": "other"}).allowed


def test_session_state_round_trips_with_outputs(risk_backend: RiskBackend) -> None:
    store = risk_backend.open()
    state = store.update_session(
        "s", lambda s: s.after_call("read").after_result("read", "d1", {"a": "x"}, ["l"]), NOW
    )
    assert store.session("s") == state
    assert store.session_version("s") == state.version == 2
    assert risk_backend.open().session("s") == state
    assert store.session("missing") is None
    assert store.session_version("missing") is None


def test_old_sessions_can_be_pruned(sql_backend: Backend) -> None:
    store = sql_backend.open_store().risk
    store.update_session("old", lambda s: s.after_call("a"), NOW - timedelta(days=30))
    store.update_session("new", lambda s: s.after_call("a"), NOW)
    assert store.prune_sessions(NOW - timedelta(days=7)) == 1
    assert store.session("old") is None
    assert store.session("new") == SessionState().after_call("a")


def test_budget_spent_before_a_restart_still_counts(risk_backend: RiskBackend) -> None:
    assert replica(risk_backend).decide(transfer(15000)).allowed
    restarted = replica(risk_backend)
    assert restarted.decide(transfer(6000)).outcome is Outcome.DENY
    assert restarted.decide(transfer(5000)).allowed


def test_baselines_are_stored_and_read_by_a_restarted_engine(risk_backend: RiskBackend) -> None:
    settings = RiskSettings(baseline_sync_seconds=3600)
    first = replica(risk_backend, settings)
    first.decide(transfer(10))
    assert first.risk is not None
    first.risk.flush(NOW)
    restarted = replica(risk_backend, settings)
    assert restarted.risk is not None
    assert restarted.risk.baseline("payer").tools.get("send_money") == 1


def test_unreadable_stored_baseline_starts_learning_again(risk_backend: RiskBackend) -> None:
    store = risk_backend.open()
    store.save_baseline("payer", {"version": 99}, NOW)
    engine = RiskEngine(RiskSettings(), store)
    assert engine.baseline("payer").observations == 0


def test_replicas_racing_on_one_budget_never_exceed_it(risk_backend: RiskBackend) -> None:
    replicas = [replica(risk_backend) for _ in range(4)]
    # Four budgets raced on at once: two spent in steps of 1,000 (20 fit), two in steps
    # of 15,000 (one fits, so any two replicas reading 0 together would overspend).
    amounts = {"p0": 1000, "p1": 1000, "p2": 15000, "p3": 15000}

    def attempt(i: int) -> tuple[str, bool]:
        principal = f"p{i % 4}"
        request = transfer(amounts[principal], session=f"s{i}", principal=principal)
        return principal, replicas[i // 4 % 4].decide(request).allowed

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(attempt, range(100)))
    allowed = {p: sum(1 for q, ok in results if q == p and ok) for p in amounts}
    # Every attempt that fits is allowed and none past the budget: the read, the
    # decision and the recorded transfer are one atomic step across the replicas.
    assert allowed == {"p0": 20, "p1": 20, "p2": 1, "p3": 1}


def test_server_settings_turn_risk_state_on_in_the_store_or_off(sql_backend: Backend) -> None:
    store = sql_backend.open_store()
    on = _risk_engine(Settings(risk_learning_observations=7), store)
    assert on is not None
    assert isinstance(on.store, SqlRiskStore)
    assert on.settings.config().learning_observations == 7
    assert _risk_engine(load_settings(env={"LICTOR_RISK": "false"}), store) is None


def test_allowed_calls_are_written_behind_seen_at_once_locally_and_after_flush_elsewhere(
    risk_backend: RiskBackend,
) -> None:
    first = replica(risk_backend)
    call = {"agent_id": "payer", "session_id": "s", "tool": "read_mail"}
    resource = {"type": "doc", "id": "plan", "labels": ["confidential"]}
    assert first.decide({**call, "resource": resource}).allowed
    mail = {"agent_id": "payer", "session_id": "s", "tool": "send_email"}
    assert first.decide(mail).outcome is Outcome.DENY  # this replica: at once
    assert first.risk is not None
    first.risk.flush(NOW)
    stored = risk_backend.open().session("s")
    assert stored is not None
    assert stored.labels == frozenset({"confidential"})
    assert replica(risk_backend).decide(mail).outcome is Outcome.DENY


def test_a_batch_of_session_changes_is_one_transaction_applied_in_order(
    sql_backend: Backend,
) -> None:
    store = sql_backend.open_store().risk
    assert isinstance(store, SqlRiskStore)
    at = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    store.update_session("a", lambda s: s.after_call("read", ("internal",)), at)

    results = store.update_sessions(
        [
            ("a", lambda s: s.after_call("read", ("confidential",)), at),
            ("b", lambda s: s.after_call("send", ()), at),
            ("a", lambda s: s.after_call("send", ()), at + timedelta(seconds=1)),
        ]
    )

    a, b = store.session("a"), store.session("b")
    assert a is not None
    assert b is not None
    assert a.counters == {"read": 2, "send": 1}
    assert a.labels == frozenset({"internal", "confidential"})
    assert a.previous_tool == "send"  # the later change of "a" applied last
    assert b.counters == {"send": 1}
    assert [r.version for r in results] == [a.version - 1, b.version, a.version]
    assert store.session_version("a") == a.version
    assert store.update_sessions([]) == []


def test_concurrent_batches_on_overlapping_sessions_lose_no_change(sql_backend: Backend) -> None:
    stores = [sql_backend.open_store().risk for _ in range(4)]
    at = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

    def burst(i: int) -> None:
        store = stores[i % 4]
        assert isinstance(store, SqlRiskStore)
        sessions = ["x", "y"] if i % 2 else ["y", "x"]  # opposite orders: no deadlock
        store.update_sessions([(s, lambda st: st.after_call("t", ()), at) for s in sessions])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(burst, range(40)))

    for session_id in ("x", "y"):
        state = stores[0].session(session_id)
        assert state is not None
        assert state.counters == {"t": 40}


def test_queued_session_changes_reach_the_store_in_batches_and_in_order(
    sql_backend: Backend,
) -> None:
    from lictor.core.decisions import Decision
    from lictor.core.requests import parse_request

    class Counting(SqlRiskStore):
        def __init__(self, inner: SqlRiskStore) -> None:
            super().__init__(inner._db)
            self.singles = 0
            self.batches: list[int] = []

        def update_session(self, *args: Any, **kwargs: Any) -> SessionState:
            self.singles += 1
            return super().update_session(*args, **kwargs)

        def update_sessions(self, changes: Any) -> list[SessionState]:
            self.batches.append(len(changes))
            return super().update_sessions(changes)

    raw = sql_backend.open_store().risk
    assert isinstance(raw, SqlRiskStore)
    store = Counting(raw)
    engine = RiskEngine(RiskSettings(baseline=False), store)
    at = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    for i in range(51):
        request = parse_request({"agent_id": "payer", "tool": f"t{i % 3}", "session_id": "s"})
        engine.learn(request, Decision(f"d{i}", Outcome.ALLOW, (), "v1", at))
    engine.flush(at)

    state = store.session("s")
    assert state is not None
    assert state.calls == 51
    assert state.counters == {"t0": 17, "t1": 17, "t2": 17}
    assert state.previous_tool == "t2"  # the last change applied last
    assert store.singles + sum(store.batches) == 51
    assert store.batches  # changes queued behind each other went in together
    assert store.singles + len(store.batches) < 51
