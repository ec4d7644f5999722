"""``lictor agents baseline``: bootstrap a baseline from the audit trail, then show it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lictor.cli.main import main
from lictor.core.agents import Agent
from lictor.core.policy import compile_policy
from lictor.core.policy.parse import parse_rules
from lictor.core.requests import AgentId
from lictor.service.governor import Governor
from lictor.service.memory import FixedClock, MemoryAgents
from lictor.store import Store, open_store

NOW = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


class TrailAudit:
    """The Governor's audit log written straight into the store's trail."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def append(self, entry: Mapping[str, Any]) -> None:
        self.store.audit.append_batch([entry])

    def find_decision(self, decision_id: str) -> Mapping[str, Any] | None:
        found = self.store.audit.find_decision(decision_id)
        return None if found is None else found.payload


def test_bootstrap_learns_the_allowed_history_and_stores_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'lictor.db'}"
    store = open_store(url)
    store.migrate()
    rules = parse_rules(
        [
            {"id": "read", "effect": "allow", "match": {"tools": ["read_mail"]}},
            {"id": "no-pay", "effect": "deny", "match": {"tools": ["send_money"]}},
        ]
    )
    governor = Governor(
        compile_policy(rules, version="sha256:x"),
        MemoryAgents([Agent(id=AgentId("mailer"), allowed_tools=("read_mail", "send_money"))]),
        audit=TrailAudit(store),
        clock=FixedClock(NOW),
    )
    for i in range(3):
        allowed = governor.decide(
            {"agent_id": "mailer", "tool": "read_mail", "session_id": f"s{i}"}
        )
        governor.report(
            {"decision_id": allowed.decision_id, "status": "ok", "output": "hi a@b.example"}
        )
    governor.decide({"agent_id": "mailer", "tool": "send_money"})
    store.close()

    code = main(["agents", "baseline", "mailer", "--bootstrap", "--json", "--store", url])
    shown = json.loads(capsys.readouterr().out)
    assert code == 0
    assert shown["observations"] == 3  # the denied transfer taught nothing
    assert shown["results"] == 3
    assert shown["top_tools"] == [["read_mail", 3]]

    code = main(["agents", "baseline", "mailer", "--json", "--store", url])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["observations"] == 3


def test_baseline_of_an_unknown_agent_is_empty_and_learning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'lictor.db'}"
    store = open_store(url)
    store.migrate()
    store.close()
    code = main(["agents", "baseline", "nobody", "--store", url])
    assert code == 0
    assert "0 calls" in capsys.readouterr().out
