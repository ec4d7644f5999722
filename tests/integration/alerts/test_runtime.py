"""Alerts wired into the server runtime: a real store, the real incident response, HTTP out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from contract.backends import backend_named

from lictor.core.audit.chain import verify_chain
from lictor.core.decisions import Outcome
from lictor.server.runtime import Runtime
from lictor.service.ports import AuditQuery
from lictor.settings import Settings
from lictor.store import open_store
from lictor.store.alerts import DeliveryStatus, SqlDeliveries

from .receivers import HttpReceiver, http_receiver, write_bundle

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{(tmp_path / 'lictor.db').as_posix()}"
        return
    with backend_named("postgres", tmp_path, fresh_schema=True) as backend:
        assert backend.url is not None
        yield backend.url


def settings_for(tmp_path: Path, store_url: str, alerts: dict[str, Any]) -> Settings:
    policies, inventory = write_bundle(tmp_path)
    return Settings(
        data_dir=tmp_path / "data",
        store_url=store_url,
        policies=policies,
        agents=inventory,
        checkpoint_seconds=3600,
        alerts=alerts,
    )


def webhook(receiver: HttpReceiver) -> dict[str, Any]:
    return {"name": "soc", "type": "webhook", "url": receiver.url, "secret_env": "SOC_SECRET"}


def test_a_high_severity_deny_reaches_the_webhook_and_the_log(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOC_SECRET", "k")
    rules = [{"name": "high-deny", "kinds": ["decision_denied"], "min_severity": "high"}]
    with http_receiver() as receiver:
        runtime = Runtime.open(
            settings_for(tmp_path, store_url, {"sinks": [webhook(receiver)], "rules": rules})
        )
        try:
            assert runtime.alerts is not None
            governor = runtime.governor
            assert governor.decide({"agent_id": "bot", "tool": "print"}).outcome is Outcome.DENY
            denied = governor.decide({"agent_id": "bot", "tool": "delete"})
            assert denied.outcome is Outcome.DENY
            assert runtime.alerts.wait_idle(10)
        finally:
            runtime.close()
        got = receiver.requests.get(timeout=5)
        assert receiver.requests.empty()  # the low-severity deny was not alerted
    alert = json.loads(got.body)
    assert (alert["policy_rule"], alert["severity"]) == ("ops/no-delete", "high")
    assert alert["decision_id"] == denied.decision_id
    assert got.headers["X-Lictor-Signature"].startswith("sha256=")
    again = open_store(store_url)  # the runtime closed its own handle
    try:
        [row] = SqlDeliveries(again.database).list()
    finally:
        again.close()
    assert (row.sink, row.status, row.attempts) == ("soc", DeliveryStatus.DELIVERED, 1)


def test_a_canary_call_quarantines_the_agent_through_incident_response(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOC_SECRET", "k")
    alerts = {
        "playbooks": [{"name": "canary", "canary_tools": ["honey*"], "action": "quarantine"}],
        "rules": [{"name": "response", "kinds": ["playbook_triggered"], "throttle_seconds": 0}],
    }
    with http_receiver() as receiver:
        alerts["sinks"] = [webhook(receiver)]
        runtime = Runtime.open(settings_for(tmp_path, store_url, alerts))
        try:
            assert runtime.alerts is not None
            governor = runtime.governor
            assert governor.decide({"agent_id": "bot", "tool": "read"}).outcome is Outcome.ALLOW
            canary = governor.decide({"agent_id": "bot", "tool": "honeypot"})
            assert canary.outcome is Outcome.ALLOW  # the policy lets the bait through
            assert runtime.alerts.wait_idle(10)
            after = governor.decide({"agent_id": "bot", "tool": "read"})
            assert after.outcome is Outcome.DENY
            other = governor.decide({"agent_id": "other", "tool": "read"})
            assert other.outcome is Outcome.ALLOW
            [entry] = [
                r.payload for r in runtime.store.audit.query(AuditQuery(kind="playbook")).records
            ]
            # The alert itself is on the trail too, under the agent: forensics shows it.
            [recorded] = [
                r.payload for r in runtime.store.audit.query(AuditQuery(kind="alert")).records
            ]
        finally:
            runtime.close()
        alert = json.loads(receiver.requests.get(timeout=5).body)
    assert entry["playbook"] == "canary"
    assert entry["action"] == "quarantine"
    assert entry["agent_id"] == "bot"
    assert entry["decision_id"] == canary.decision_id
    assert entry["result"] == "ok"
    assert alert["kind"] == "playbook_triggered"
    assert recorded["alert_id"] == alert["alert_id"]
    assert recorded["agent_id"] == "bot"
    assert recorded["sinks"] == ["soc"]
    assert alert["event"]["details"]["result"] == "ok"
    again = open_store(store_url)
    try:
        verify_chain(again.audit.records())  # raises if the trail does not verify
    finally:
        again.close()
