"""The alerts service: decisions become events, rules become alerts, sinks get them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lictor.alerts.config import parse_alerts_config
from lictor.alerts.deliveries import MemoryDeliveries
from lictor.alerts.service import AlertService, decision_events
from lictor.alerts.sinks import DeliveryFailed
from lictor.core.decisions import Decision, Outcome, Reason, ReasonCode, Risk
from lictor.core.policy import compile_policy
from lictor.core.policy.parse import parse_rules
from lictor.core.requests import ActionRequest, parse_request
from lictor.service.events import Event, EventBus, EventKind, Severity
from lictor.service.memory import FixedClock, MemoryAudit
from lictor.store.alerts import DeliveryStatus

NOW = datetime(2026, 11, 25, 14, 0, 0, tzinfo=UTC)


class RecordingSink:
    """Records what it is sent; fails the first ``failures`` attempts."""

    def __init__(self, name: str = "rec", *, failures: int = 0, permanent: bool = False) -> None:
        self.name = name
        self.failures = failures
        self.permanent = permanent
        self.attempts = 0
        self.sent: list[Mapping[str, Any]] = []
        self.closed = False
        self.lock = threading.Lock()

    def send(self, alert: Mapping[str, Any], delivery_id: str, now: datetime) -> None:
        with self.lock:
            self.attempts += 1
            if self.attempts <= self.failures:
                raise DeliveryFailed(f"{self.name}: HTTP 500", permanent=self.permanent)
            self.sent.append(alert)

    def close(self) -> None:
        self.closed = True


@dataclass
class RecordingResponder:
    """A Responder that remembers each call."""

    calls: list[tuple[str, str, str, str]] = field(default_factory=list)

    def quarantine(self, agent_id: str, *, reason: str, actor: str) -> None:
        self.calls.append(("quarantine", agent_id, reason, actor))

    def suspend(self, agent_id: str, *, reason: str, actor: str) -> None:
        self.calls.append(("suspend", agent_id, reason, actor))


def request(
    agent: str = "bot", tool: str = "send", principal: str | None = "emma"
) -> ActionRequest:
    data: dict[str, Any] = {"agent_id": agent, "tool": tool}
    if principal is not None:
        data["principal"] = {"id": principal}
    return parse_request(data)


def decision(
    outcome: Outcome = Outcome.DENY,
    *,
    rules: tuple[str, ...] = ("finance/no-wire",),
    score: float = 0.0,
    at: datetime = NOW,
    code: ReasonCode = ReasonCode.RULE,
    decision_id: str = "01DEC",
) -> Decision:
    return Decision(
        decision_id=decision_id,
        outcome=outcome,
        reasons=tuple(Reason(r, outcome, f"{r} says so", code) for r in rules),
        policy_version="sha256:v1",
        decided_at=at,
        risk=Risk(score=score),
    )


def event(
    kind: EventKind = EventKind.DECISION_DENIED,
    *,
    severity: Severity = Severity.HIGH,
    agent: str | None = "bot",
    rule: str | None = "finance/no-wire",
    at: datetime = NOW,
    **details: Any,
) -> Event:
    return Event(
        kind=kind,
        at=at,
        severity=severity,
        summary=f"{kind.value} for {agent}",
        agent_id=agent,
        rule=rule,
        details=details,
    )


SEVERITIES = {"finance/no-wire": Severity.HIGH, "mail/quiet": Severity.LOW}


def test_a_deny_carries_the_highest_severity_of_its_deny_rules() -> None:
    [denied] = decision_events(
        request(), decision(rules=("mail/quiet", "finance/no-wire")), SEVERITIES, 0.8
    )
    assert denied.kind is EventKind.DECISION_DENIED
    assert denied.severity is Severity.HIGH
    assert denied.rule == "finance/no-wire"
    assert (denied.agent_id, denied.principal_id, denied.decision_id) == ("bot", "emma", "01DEC")
    assert denied.details["tool"] == "send"
    assert denied.details["severities"] == {"mail/quiet": "low", "finance/no-wire": "high"}


def test_built_in_denies_are_low_unless_evaluation_failed() -> None:
    [default] = decision_events(
        request(), decision(rules=("lictor/default-deny",), code=ReasonCode.DEFAULT_DENY), {}, 0.8
    )
    assert default.severity is Severity.LOW
    [broken] = decision_events(
        request(), decision(rules=("x",), code=ReasonCode.EVALUATION_ERROR), {}, 0.8
    )
    assert broken.severity is Severity.HIGH
    [unknown_rule] = decision_events(request(), decision(rules=("gone",)), {}, 0.8)
    assert unknown_rule.severity is Severity.MEDIUM


def test_a_review_decision_is_a_review_opened_event() -> None:
    held = Decision(
        decision_id="01REV",
        outcome=Outcome.REVIEW,
        reasons=(Reason("finance/no-wire", Outcome.REVIEW, "needs a person"),),
        policy_version="sha256:v1",
        decided_at=NOW,
        review_id="01REVIEW",
    )
    [opened] = decision_events(request(), held, SEVERITIES, 0.8)
    assert opened.kind is EventKind.REVIEW_OPENED
    assert opened.severity is Severity.HIGH
    assert opened.details["review_id"] == "01REVIEW"
    assert decision_events(request(), decision(Outcome.REVIEW), SEVERITIES, 0.8) == []


def test_allows_give_no_event_unless_risky() -> None:
    assert decision_events(request(), decision(Outcome.ALLOW, score=0.8), {}, 0.8) == []
    [risky] = decision_events(request(), decision(Outcome.ALLOW, score=0.81), {}, 0.8)
    assert risky.kind is EventKind.RISK_HIGH
    assert risky.details["score"] == 0.81


@contextmanager
def running(config: dict[str, Any], **kwargs: Any) -> Iterator[tuple[AlertService, RecordingSink]]:
    sink = RecordingSink("rec")
    config = {"sinks": [{"name": "rec", "type": "slack", "url": "http://x"}], **config}
    service = AlertService(
        parse_alerts_config(config),
        sinks={"rec": sink},
        deliveries=kwargs.pop("deliveries", MemoryDeliveries()),
        clock=kwargs.pop("clock", FixedClock(NOW)),
        **kwargs,
    ).start()
    try:
        yield service, sink
    finally:
        service.close(5)


HIGH_DENY = {
    "name": "high-deny",
    "kinds": ["decision_denied"],
    "min_severity": "high",
    "throttle_seconds": 60,
}


def test_high_severity_deny_alerts_once_per_window_then_summarises() -> None:
    clock = FixedClock(NOW)
    policy = compile_policy(
        parse_rules(
            [
                {"id": "finance/no-wire", "effect": "deny", "severity": "high"},
                {"id": "mail/quiet", "effect": "deny", "severity": "low"},
            ]
        ),
        version="sha256:v1",
    )
    with running({"rules": [HIGH_DENY]}, clock=clock, policy=lambda: policy) as (service, sink):
        for _ in range(4):
            service.observe(request(), decision())
        service.observe(request(), decision(rules=("mail/quiet",)))  # low: not selected
        service.observe(request(agent="other"), decision())  # another key
        assert service.wait_idle()
        assert [a["agent_id"] for a in sink.sent] == ["bot", "other"]
        first = sink.sent[0]
        assert first["rule"] == "high-deny"
        assert first["severity"] == "high"
        assert first["dedup_key"] == "bot/finance/no-wire"
        assert first["suppressed"] == 0
        assert first["event"]["kind"] == "decision_denied"
        clock.advance(61)
        service.on_event(event(EventKind.REVIEW_OPENED))  # any item wakes the thread
        assert service.wait_idle()
    [summary] = sink.sent[2:]
    assert summary["type"] == "summary"
    assert summary["suppressed"] == 3
    assert summary["dedup_key"] == "bot/finance/no-wire"


def test_events_from_the_bus_are_alerted_and_derived_events_published() -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(seen.append)
    rules = [
        {"name": "shadow", "kinds": ["shadow_agent_seen"], "throttle_seconds": 0},
        {"name": "deny", "kinds": ["decision_denied"], "throttle_seconds": 0},
    ]
    with running({"rules": rules}, bus=bus) as (service, sink):
        bus.subscribe(service.on_event)
        bus.emit(event(EventKind.SHADOW_AGENT_SEEN, agent="ghost", rule=None))
        service.observe(request(), decision())
        assert service.wait_idle()
    assert sorted(a["rule"] for a in sink.sent) == ["deny", "shadow"]
    assert [e.kind for e in seen] == [EventKind.SHADOW_AGENT_SEEN, EventKind.DECISION_DENIED]


def test_a_full_intake_queue_drops_instead_of_blocking() -> None:
    service = AlertService(
        parse_alerts_config({"queue_size": 2, "rules": [HIGH_DENY]}),
        sinks={},
        deliveries=MemoryDeliveries(),
        clock=FixedClock(NOW),
    )  # not started: nothing drains the queue
    for _ in range(5):
        service.observe(request(), decision())
    assert service.dropped == 3
    service.start()
    assert service.wait_idle()
    service.close(1)


def test_deliveries_are_logged_and_retried_until_delivered() -> None:
    log = MemoryDeliveries()
    sink = RecordingSink("flaky", failures=2)
    config = parse_alerts_config(
        {
            "sinks": [
                {
                    "name": "flaky",
                    "type": "slack",
                    "url": "http://x",
                    "backoff_initial_seconds": 0.01,
                    "max_attempts": 3,
                }
            ],
            "rules": [HIGH_DENY],
        }
    )
    service = AlertService(config, sinks={"flaky": sink}, deliveries=log, clock=FixedClock(NOW))
    service.start()
    service.on_event(event())
    assert service.wait_idle()
    service.close(1)
    [row] = log.list()
    assert (row.status, row.attempts, row.last_error) == (DeliveryStatus.DELIVERED, 3, None)
    assert row.alert["rule"] == "high-deny"
    assert sink.closed


def test_dead_letter_after_max_attempts_and_at_once_when_permanent() -> None:
    log = MemoryDeliveries()
    sinks = {
        "down": RecordingSink("down", failures=99),
        "gone": RecordingSink("gone", failures=99, permanent=True),
    }
    spec = {"type": "slack", "url": "http://x", "backoff_initial_seconds": 0.001}
    config = parse_alerts_config(
        {
            "sinks": [{"name": n, **spec, "max_attempts": 4} for n in sinks],
            "rules": [HIGH_DENY],
        }
    )
    service = AlertService(config, sinks=sinks, deliveries=log, clock=FixedClock(NOW)).start()
    service.on_event(event())
    assert service.wait_idle()
    service.close(1)
    dead = {d.sink: d for d in log.list(DeliveryStatus.DEAD)}
    assert dead["down"].attempts == 4
    assert dead["down"].last_error == "down: HTTP 500"
    assert dead["gone"].attempts == 1
    assert sinks["down"].attempts == 4
    assert sinks["gone"].attempts == 1


def test_deny_burst_playbook_quarantines_records_and_alerts() -> None:
    responder = RecordingResponder()
    audit = MemoryAudit()
    bus = EventBus()
    playbooks = [{"name": "burst", "denies": 3, "within_seconds": 60, "action": "quarantine"}]
    rules = [{"name": "pb", "kinds": ["playbook_triggered"]}]
    with running(
        {"rules": rules, "playbooks": playbooks}, responder=responder, audit=audit, bus=bus
    ) as (service, sink):
        bus.subscribe(service.on_event)
        service.observe(request(), decision(at=NOW))
        service.observe(request(), decision(at=NOW.replace(second=30)))
        service.observe(request(agent="other"), decision(at=NOW.replace(second=40)))
        assert service.wait_idle()
        assert responder.calls == []
        service.observe(request(), decision(at=NOW.replace(second=50), decision_id="01LAST"))
        assert service.wait_idle()
    [(action, agent, reason, actor)] = responder.calls
    assert (action, agent, actor) == ("quarantine", "bot", "lictor:playbook:burst")
    assert "3 denies within 60 s" in reason
    [entry] = [e for e in audit.entries if e["kind"] == "playbook"]
    assert entry["decision_id"] == "01LAST"
    assert entry["result"] == "ok"
    assert entry["trigger"] == {"type": "denies", "denies": 3, "within_seconds": 60.0}
    [alert] = sink.sent
    assert alert["kind"] == "playbook_triggered"
    assert alert["agent_id"] == "bot"


def test_denies_outside_the_window_do_not_add_up() -> None:
    responder = RecordingResponder()
    playbooks = [{"name": "burst", "denies": 2, "within_seconds": 10, "action": "suspend"}]
    with running({"playbooks": playbooks}, responder=responder) as (service, _):
        service.observe(request(), decision(at=NOW))
        service.observe(request(), decision(at=NOW.replace(second=11)))
        service.observe(request(), decision(rules=("lictor/status",), code=ReasonCode.AGENT_STATUS))
        assert service.wait_idle()
        assert responder.calls == []
        service.observe(request(), decision(at=NOW.replace(second=15)))
        assert service.wait_idle()
    assert [c[0] for c in responder.calls] == ["suspend"]


def test_risk_and_canary_playbooks() -> None:
    responder = RecordingResponder()
    playbooks = [
        {"name": "risky", "risk_above": 0.9, "action": "suspend", "agents": ["fin-*"]},
        {"name": "canary", "canary_tools": ["honeypot_*"], "action": "quarantine"},
    ]
    with running({"playbooks": playbooks}, responder=responder) as (service, _):
        service.observe(request(agent="fin-1"), decision(Outcome.ALLOW, score=0.95))
        service.observe(request(agent="mail-1"), decision(Outcome.ALLOW, score=0.95))
        service.observe(request(agent="mail-1", tool="honeypot_keys"), decision(Outcome.ALLOW))
        assert service.wait_idle()
    assert [(c[0], c[1]) for c in responder.calls] == [
        ("suspend", "fin-1"),
        ("quarantine", "mail-1"),
    ]


def test_a_failing_responder_is_recorded_as_failed() -> None:
    audit = MemoryAudit()
    playbooks = [{"name": "canary", "canary_tools": ["honeypot"], "action": "quarantine"}]
    with running({"playbooks": playbooks}, audit=audit) as (service, _):  # no responder
        service.observe(request(tool="honeypot"), decision(Outcome.ALLOW))
        assert service.wait_idle()
    [entry] = audit.entries
    assert entry["result"].startswith("failed: LictorError")


def _left_pending(log: MemoryDeliveries, alert_id: str, at: datetime) -> str:
    """A delivery a stopped process queued (or was retrying) and never finished."""
    from dataclasses import replace

    from lictor.alerts.deliveries import new_delivery

    delivery = new_delivery({"alert_id": alert_id, "rule": "high-deny"}, "hook", at)
    log.add(replace(delivery, attempts=1, last_error="HTTP 503"))
    return delivery.id


def test_pending_deliveries_a_stopped_process_left_are_resumed_once_stale() -> None:
    from datetime import timedelta

    log = MemoryDeliveries()
    sink = RecordingSink("hook")
    config = parse_alerts_config(
        {
            "sinks": [
                {"name": "hook", "type": "slack", "url": "http://x", "backoff_max_seconds": 30}
            ],
            "rules": [HIGH_DENY],
        }
    )
    # Stale: untouched for longer than the longest backoff (30 s) plus the margin (60 s).
    stale = _left_pending(log, "A-stale", NOW - timedelta(seconds=91))
    # Fresh: a live replica may still be waiting to retry it.
    fresh = _left_pending(log, "A-fresh", NOW - timedelta(seconds=89))
    service = AlertService(config, sinks={"hook": sink}, deliveries=log, clock=FixedClock(NOW))

    service.start()
    assert service.wait_idle()
    assert service.resume_stale() == 0  # nothing is resent twice while it is held or done
    service.close(1)

    assert [a["alert_id"] for a in sink.sent] == ["A-stale"]
    assert log.get(stale).status is DeliveryStatus.DELIVERED  # type: ignore[union-attr]
    assert log.get(fresh).status is DeliveryStatus.PENDING  # type: ignore[union-attr]


def test_a_delivery_the_worker_still_holds_is_not_resumed_again() -> None:
    log = MemoryDeliveries()
    sink = RecordingSink("hook", failures=1)  # first attempt fails: a retry is waiting
    config = parse_alerts_config(
        {
            "sinks": [
                {
                    "name": "hook",
                    "type": "slack",
                    "url": "http://x",
                    "backoff_initial_seconds": 30,
                    "backoff_max_seconds": 30,
                }
            ],
            "rules": [HIGH_DENY],
        }
    )
    clock = FixedClock(NOW)
    service = AlertService(config, sinks={"hook": sink}, deliveries=log, clock=clock)
    service.start()
    service.on_event(event())
    deadline = time.monotonic() + 5
    while sink.attempts < 1 and time.monotonic() < deadline:
        time.sleep(0.005)
    clock.advance(3600)  # long past any staleness bound

    assert service.resume_stale() == 0  # its own worker still holds it for the retry
    service.close(0)
    assert sink.attempts == 1
