"""Risk state in Redis: what only a network lock must prove (the shared contract is in
test_risk_store.py, which runs on Redis too).

Every store a test opens has its own connection pool, as another replica (or this one
restarted) would. Keys live under a prefix of the test's own, deleted afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from contract.backends import RedisHandles
from lictor.core.agents import Agent
from lictor.core.decisions import Outcome, ReasonCode
from lictor.core.policy import compile_policy
from lictor.core.policy.parse import parse_rules
from lictor.core.requests import AgentId
from lictor.core.risk.session import SessionState
from lictor.errors import ConfigError, StoreError
from lictor.server.runtime import Runtime, _risk_engine
from lictor.service.governor import Governor
from lictor.service.memory import FixedClock, MemoryAgents, MemoryAudit
from lictor.service.risk import RiskEngine, RiskSettings
from lictor.settings import Settings, load_settings
from lictor.store import open_store
from lictor.store.redis_risk import RedisRiskStore

pytestmark = pytest.mark.integration

NOW = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
AGENT = Agent(id=AgentId("payer"), allowed_tools=("send_money", "read_mail", "send_email"))
RAW_RULES: list[dict[str, Any]] = [
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
UNREACHABLE = "redis://127.0.0.1:1/0?socket_connect_timeout=1"


def transfer(amount: int, session: str = "s", principal: str = "emma") -> dict[str, Any]:
    return {
        "agent_id": "payer",
        "principal": {"id": principal},
        "session_id": session,
        "tool": "send_money",
        "arguments": {"amount": amount},
    }


# -- what only Redis can get wrong about baselines -----------------------------------------


def test_a_baseline_value_that_is_not_json_starts_learning_again(handles: RedisHandles) -> None:
    handles.raw().set(f"{handles.prefix}baseline:payer", b"not json")
    assert handles.open().baseline("payer") == {}
    assert RiskEngine(RiskSettings(), handles.open()).baseline("payer").observations == 0


# -- Redis: atomicity across processes and lock expiry ------------------------------------


def test_concurrent_session_updates_from_several_replicas_are_all_applied(
    handles: RedisHandles,
) -> None:
    stores = [handles.open() for _ in range(4)]

    def call(i: int) -> SessionState:
        return stores[i % 4].update_session("s", lambda s: s.after_call(f"tool{i % 3}"), NOW)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(call, range(40)))
    stored = handles.open().session("s")
    assert stored is not None
    assert (stored.calls, stored.version) == (40, 40)
    assert sum(stored.counters.values()) == 40


CHILD = """
import json, sys
from datetime import UTC, datetime
import redis
from lictor.core.agents import Agent
from lictor.core.policy import compile_policy
from lictor.core.policy.parse import parse_rules
from lictor.core.requests import AgentId
from lictor.service.governor import Governor
from lictor.service.memory import FixedClock, MemoryAgents, MemoryAudit
from lictor.service.risk import RiskEngine, RiskSettings
from lictor.store.redis_risk import RedisRiskStore

url, prefix, rules, principals = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
store = RedisRiskStore(redis.Redis.from_url(url), prefix=prefix)
governor = Governor(
    compile_policy(parse_rules(json.loads(rules)), version="sha256:risk"),
    MemoryAgents([Agent(id=AgentId("payer"), allowed_tools=("send_money",))]),
    audit=MemoryAudit(),
    clock=FixedClock(datetime(2026, 2, 2, 9, 0, tzinfo=UTC)),
    risk=RiskEngine(RiskSettings(baseline=False), store),
)
control = redis.Redis.from_url(url, socket_timeout=None)  # waits in BLPOP
control.rpush(prefix + "test:ready", "1")
if control.blpop([prefix + "test:go"], timeout=60) is None:
    sys.exit("never told to go")
won = {}
for principal in principals:
    request = {"agent_id": "payer", "principal": {"id": principal}, "tool": "send_money",
               "arguments": {"amount": 15000}}
    won[principal] = governor.decide(request).allowed
print(json.dumps(won))
"""


def test_two_processes_racing_on_the_last_unit_of_budgets_never_both_spend_it(
    handles: RedisHandles,
) -> None:
    principals = [f"p{i}" for i in range(10)]  # ten budgets, each with room for one transfer
    children = [
        subprocess.Popen(  # noqa: S603 - this interpreter running the code above
            [
                sys.executable,
                "-c",
                CHILD,
                handles.url,
                handles.prefix,
                json.dumps(RAW_RULES),
                *principals,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    control = redis.Redis.from_url(handles.url, socket_timeout=None)  # waits in BLPOP
    try:
        for _ in children:  # both have imported everything: the race starts together
            assert control.blpop([f"{handles.prefix}test:ready"], timeout=60) is not None
        control.rpush(f"{handles.prefix}test:go", "go", "go")
        outputs = [child.communicate(timeout=60) for child in children]
    finally:
        control.close()
        for child in children:
            child.kill()  # a no-op for one that exited
            child.wait()
            for stream in (child.stdout, child.stderr):
                if stream is not None:
                    stream.close()
    assert [child.returncode for child in children] == [0, 0], outputs
    won = [json.loads(out) for out, _ in outputs]
    assert {p: won[0][p] + won[1][p] for p in principals} == dict.fromkeys(principals, 1)
    with handles.open().counting([]) as windows:
        series = "send_money\x1famount\x1fprincipal"
        day_ago = NOW - timedelta(days=1)
        assert [windows.totals(series, p, day_ago) for p in principals] == [(1, 15000.0)] * 10


def test_a_lock_that_expired_mid_block_records_nothing_so_no_budget_is_overspent(
    handles: RedisHandles,
) -> None:
    first, second = handles.open(), handles.open()
    series, since = "pay", NOW - timedelta(hours=1)

    def spend_after_a_stall() -> None:
        with first.counting(["budget"]) as slow:
            assert slow.totals(series, "emma", since) == (0, 0.0)
            # A stall past the lock's lifetime: the key expires and another replica goes on.
            handles.raw().delete(f"{handles.prefix}lock:budget")
            with second.counting(["budget"]) as fast:
                assert fast.totals(series, "emma", since) == (0, 0.0)
                fast.add(series, "emma", NOW, 15000.0, 86_400)
            slow.add(series, "emma", NOW, 15000.0, 86_400)  # decided on a stale read

    with pytest.raises(StoreError, match="expired"):
        spend_after_a_stall()
    with handles.open().counting(["budget"]) as windows:
        assert windows.totals(series, "emma", since) == (1, 15000.0)


def test_a_busy_lock_is_waited_for_then_fails_closed(handles: RedisHandles) -> None:
    holder, waiter = handles.open(), handles.open(lock_wait_seconds=0.05)
    with holder.counting(["k"]), pytest.raises(StoreError, match="busy"), waiter.counting(["k"]):
        pytest.fail("two transactions held one lock")
    with waiter.counting(["k"]) as windows:  # released by the holder
        windows.add("pay", "emma", NOW, 1.0, 60)


def test_an_error_in_the_block_releases_the_locks_and_records_nothing(
    handles: RedisHandles,
) -> None:
    store = handles.open(lock_wait_seconds=0)

    def fail_after_adding() -> None:
        with store.counting(["a", "b"]) as windows:
            windows.add("pay", "emma", NOW, 5.0, 60)
            raise LookupError("the decision failed")

    with pytest.raises(LookupError):
        fail_after_adding()
    with store.counting(["b", "a"]) as windows:  # no wait allowed: both were released
        assert windows.totals("pay", "emma", NOW) == (0, 0.0)
        windows.add("pay", "emma", NOW, 5.0, 60)
        assert windows.totals("pay", "emma", NOW) == (1, 5.0)  # its own event counts
    with pytest.raises(StoreError, match="outside"), store.counting([]) as read_only:
        read_only.add("pay", "emma", NOW, 1.0, 60)


def test_keys_are_namespaced_expire_when_idle_and_old_events_are_pruned(
    handles: RedisHandles,
) -> None:
    store = handles.open(session_ttl_seconds=3600)
    store.update_session("s", lambda s: s.after_call("t"), NOW)
    store.save_baseline("payer", {"version": 1}, NOW)
    with store.counting(["k"]) as windows:
        windows.add("pay", "emma", NOW - timedelta(hours=2), 1.0, 3600)
        windows.add("api", "emma", NOW, 0.0, 60)  # a count: no amounts flag
    with store.counting(["k"]) as windows:
        windows.add("pay", "emma", NOW, 2.0, 3600)  # the event two hours before goes
    p = handles.prefix.encode()
    window, flag, count = (
        p + b"window:3:pay:emma",
        p + b"amounts:3:pay:emma",
        p + b"window:3:api:emma",
    )
    assert handles.keys() == [flag, p + b"baseline:payer", p + b"session:s", count, window]
    raw = handles.raw()
    assert raw.zcard(window) == 1
    assert 3600_000 < raw.pttl(window) <= 3660_000  # its longest window plus a margin
    assert 3600_000 < raw.pttl(flag) <= 3660_000
    assert 60_000 < raw.pttl(count) <= 120_000
    assert 3590 < raw.ttl(p + b"session:s") <= 3600
    assert raw.ttl(p + b"baseline:payer") == -1  # baselines are kept
    with store.counting([]) as windows:
        assert windows.totals("pay", "emma", NOW - timedelta(hours=3)) == (1, 2.0)
        assert windows.totals("api", "emma", NOW) == (1, 0.0)


def test_amounts_sum_exactly_as_floating_point_does(handles: RedisHandles) -> None:
    store = handles.open()
    amounts = [0.1, 0.2, 1e-05, 12345678.901, -3.5]
    step = timedelta(microseconds=1)
    for i, amount in enumerate(amounts):  # one microsecond apart: summed in this order
        with store.counting(["k"]) as windows:
            windows.add("pay", "emma", NOW + i * step, amount, 60)
    with store.counting([]) as windows:
        assert windows.totals("pay", "emma", NOW) == (5, sum(amounts))
        assert windows.totals("pay", "emma", NOW + 4 * step) == (1, -3.5)
        assert windows.totals("pay", "emma", NOW + 5 * step) == (0, 0.0)


# -- failure, configuration and wiring ----------------------------------------------------


def test_an_unreachable_redis_raises_store_error_and_the_decision_is_an_audited_deny() -> None:
    store = RedisRiskStore.from_url(UNREACHABLE)
    try:
        for read in (store.session, store.session_version, store.baseline):
            with pytest.raises(StoreError, match=r"127\.0\.0\.1:1\b"):
                read("s")
        with pytest.raises(StoreError):
            store.update_session("s", lambda s: s.after_call("t"), NOW)
        with pytest.raises(StoreError), store.counting(["k"]):
            pytest.fail("a lock was taken on a Redis that is down")
        audit = MemoryAudit()
        governor = Governor(
            compile_policy(parse_rules(RAW_RULES), version="sha256:risk"),
            MemoryAgents([AGENT]),
            audit=audit,
            clock=FixedClock(NOW),
            risk=RiskEngine(RiskSettings(baseline=False), store),
        )
        decision = governor.decide(transfer(10))
        assert decision.outcome is Outcome.DENY
        assert decision.reasons[0].code is ReasonCode.EVALUATION_ERROR
        entry = audit.find_decision(decision.decision_id)
        assert entry is not None
        assert entry["outcome"] == "deny"
        assert entry["reasons"][0]["code"] == "evaluation_error"
    finally:
        store.close()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://127.0.0.1/x",
        "redis://127.0.0.1:6379/0?no_such_option=1",
        "redis://127.0.0.1:6379/0?session_ttl_seconds=soon",
        "redis://127.0.0.1:6379/0?session_ttl_seconds=-1",
        "redis://127.0.0.1:6379/0?socket_timeout=never",
    ],
)
def test_a_bad_redis_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError):
        RedisRiskStore.from_url(url)


def test_the_password_stays_out_of_messages() -> None:
    store = RedisRiskStore.from_url("redis://user:s3cret@127.0.0.1:1/0")
    try:
        assert "s3cret" not in store.description
        with pytest.raises(StoreError) as caught:
            store.session("s")
        assert "s3cret" not in str(caught.value)
    finally:
        store.close()


def test_a_unix_socket_url_keeps_its_path() -> None:
    store = RedisRiskStore.from_url("unix:///nonexistent/redis.sock?db=0&prefix=x:")
    try:
        with pytest.raises(StoreError, match=r"/nonexistent/redis\.sock"):
            store.session("s")
    finally:
        store.close()


def test_the_risk_store_setting_puts_risk_state_in_redis(tmp_path: Path) -> None:
    assert load_settings(env={}).risk_store is None
    with pytest.raises(ConfigError, match="risk_store"):
        load_settings(env={"LICTOR_RISK_STORE": "postgresql://127.0.0.1/x"})
    url = "redis://127.0.0.1:6379/3?prefix=tenant-a:"
    settings = load_settings(env={"LICTOR_RISK_STORE": url})
    store = open_store(f"sqlite:///{(tmp_path / 'lictor.db').as_posix()}")
    try:
        engine = _risk_engine(settings, store)
        assert engine is not None
        assert isinstance(engine.store, RedisRiskStore)
        assert engine.store.description == url
        engine.store.close()
        assert _risk_engine(settings.model_copy(update={"risk": False}), store) is None
    finally:
        store.close()


def test_two_server_replicas_sharing_redis_enforce_one_budget(
    handles: RedisHandles, tmp_path: Path
) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    policies.joinpath("budget.yaml").write_text(json.dumps({"rules": RAW_RULES}))
    agents = tmp_path / "agents.yaml"
    agents.write_text(json.dumps({"agents": [{"id": "payer", "allowed_tools": ["send_money"]}]}))
    runtimes = []
    try:
        for name in ("a", "b"):  # each its own database: the budget is only in Redis
            settings = Settings(
                data_dir=tmp_path / name,
                policies=policies,
                agents=agents,
                risk_store=f"{handles.url}?prefix={handles.prefix}",
                checkpoint_seconds=3600,
            )
            runtimes.append(Runtime.open(settings, clock=FixedClock(NOW)))
        a, b = (runtime.governor for runtime in runtimes)
        assert a.decide(transfer(15000)).allowed
        assert b.decide(transfer(6000)).outcome is Outcome.DENY
        assert b.decide(transfer(5000)).allowed
        assert a.decide(transfer(1)).outcome is Outcome.DENY
        assert runtimes[0].is_ready() == {"store": True, "audit_writer": True, "risk_store": True}
    finally:
        for runtime in runtimes:
            runtime.close()  # closes its Redis client too


def test_readiness_fails_while_the_redis_risk_store_does_not_answer(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    policies.joinpath("budget.yaml").write_text(json.dumps({"rules": RAW_RULES}))
    settings = Settings(
        data_dir=tmp_path / "d",
        policies=policies,
        agents=None,
        risk_store="redis://127.0.0.1:1/0",  # nothing listens on port 1
        checkpoint_seconds=3600,
    )
    runtime = Runtime.open(settings, clock=FixedClock(NOW))
    try:
        assert runtime.is_ready()["risk_store"] is False
        assert runtime.is_ready()["store"] is True
    finally:
        runtime.close()
