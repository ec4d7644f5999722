"""What every server does in the background: idle risk sessions are pruned from the store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from lictor.server.runtime import Runtime
from lictor.service.memory import FixedClock
from lictor.settings import Settings

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
RULES = [{"id": "read", "effect": "allow", "match": {"tools": ["read"]}}]


def open_runtime(tmp_path: Path, clock: FixedClock, **settings: object) -> Runtime:
    policies = tmp_path / "policies"
    policies.mkdir(exist_ok=True)
    policies.joinpath("read.yaml").write_text(json.dumps({"rules": RULES}))
    agents = tmp_path / "agents.yaml"
    agents.write_text(json.dumps({"agents": [{"id": "bot", "allowed_tools": ["read"]}]}))
    config = Settings(
        data_dir=tmp_path / "data",
        policies=policies,
        agents=agents,
        checkpoint_seconds=3600,
        **settings,
    )
    return Runtime.open(config, clock=clock)


def test_sessions_idle_past_the_retention_are_pruned_and_active_ones_kept(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    runtime = open_runtime(tmp_path, clock, risk_session_retention_seconds=86_400)
    try:
        [pruning] = [c for c in runtime.chores if c.name == "lictor-session-pruning"]
        risk = runtime.governor.risk
        assert risk is not None
        runtime.governor.decide({"agent_id": "bot", "tool": "read", "session_id": "old"})
        clock.advance(86_400 - 60)
        runtime.governor.decide({"agent_id": "bot", "tool": "read", "session_id": "recent"})
        risk.flush(clock.now())  # the session rows are written behind the decisions
        clock.advance(120)  # "old" is now idle for a day and a minute, "recent" for 2 min

        assert pruning.run_once()

        assert runtime.store.risk.session("old") is None
        assert runtime.store.risk.session("recent") is not None
    finally:
        runtime.close()


def test_retention_zero_keeps_sessions_forever(tmp_path: Path) -> None:
    runtime = open_runtime(tmp_path, FixedClock(NOW), risk_session_retention_seconds=0)
    try:
        assert [c.name for c in runtime.chores] == ["lictor-review-expiry"]
    finally:
        runtime.close()
