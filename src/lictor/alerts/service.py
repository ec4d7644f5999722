"""The alerts service: decisions and events in, alerts, deliveries and playbook actions out.

Rule 1: nothing here runs on the decision path but :meth:`AlertService.observe` and
:meth:`AlertService.on_event`, and those only put the item on a bounded queue (a full
queue drops and counts it: an alert is never worth slowing a decision).
Rule 2: one intake thread owns the rules, the throttle and the playbooks, so they need
no locks; it turns a denied decision into a ``decision_denied`` event (carrying the
severity of the deciding policy rules), a risky one into ``risk_high``, feeds the
playbooks, matches every event against the alert rules and hands alerts to one
:class:`~lictor.alerts.deliveries.SinkWorker` per sink.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final

from lictor.alerts.config import AlertsConfig
from lictor.alerts.deliveries import DeliveryLog, SinkWorker, new_delivery
from lictor.alerts.playbooks import Action, Firing, PlaybookBook, Responder
from lictor.alerts.rules import AlertRule
from lictor.alerts.sinks import Sink
from lictor.alerts.throttle import Closed, Throttle
from lictor.core.decisions import Decision, Outcome, ReasonCode, format_time
from lictor.core.policy import CompiledPolicy
from lictor.core.requests import ActionRequest
from lictor.errors import LictorError
from lictor.service.events import Event, EventBus, EventKind, Severity
from lictor.service.ids import new_ulid
from lictor.service.ports import AuditLog, Clock
from lictor.service.records import ENTRY_VERSION
from lictor.store.alerts import DeliveryStatus

__all__ = ["AlertService", "build_alert", "decision_events", "rule_severities"]

log = logging.getLogger("lictor.alerts")

_STOP: Final = object()
_IDLE_WAIT_SECONDS: Final = 0.5

RESUME_EVERY_SECONDS: Final = 60.0
"""How often the intake thread looks for pending deliveries a stopped process left."""

RESUME_MARGIN_SECONDS: Final = 60.0
"""Past a sink's longest backoff, how long a pending delivery waits before it is taken over."""

RESUME_BATCH: Final = 1000
"""Most pending deliveries read per look (the rest are found by the next one)."""


def rule_severities(policy: CompiledPolicy) -> dict[str, Severity]:
    """Map each policy rule id to its declared severity (``severity:`` in the policy)."""
    return {rule.id: Severity(rule.severity.value) for rule in policy.policy.rules}


def _reason_severity(code: ReasonCode, rule: str, severities: Mapping[str, Severity]) -> Severity:
    if code is ReasonCode.RULE:
        return severities.get(rule, Severity.MEDIUM)
    if code is ReasonCode.EVALUATION_ERROR:
        return Severity.HIGH  # something is broken: a person should look
    return Severity.LOW  # default deny, unknown agent, stopped agent: routine


def decision_events(
    request: ActionRequest,
    decision: Decision,
    severities: Mapping[str, Severity],
    risk_threshold: float,
) -> list[Event]:
    """Return the events one recorded decision gives.

    ``decision_denied`` for a deny, ``review_opened`` for a review (the pending review
    exists once the decision is on record), ``risk_high`` for a risk score above
    ``risk_threshold``.
    """
    events: list[Event] = []
    principal = request.principal.id if request.principal is not None else None
    common: dict[str, Any] = {
        "tool": request.tool,
        "server": request.server,
        "session_id": request.session_id,
        "outcome": decision.outcome.value,
        "score": decision.risk.score,
        "policy_version": decision.policy_version,
    }
    if decision.outcome is Outcome.DENY:
        denying = [r for r in decision.reasons if r.effect is Outcome.DENY] or list(
            decision.reasons
        )
        ranked = [(_reason_severity(r.code, r.rule, severities), r) for r in denying]
        severity, top = max(ranked, key=lambda pair: pair[0].rank, default=(Severity.LOW, None))
        rule = top.rule if top is not None else None
        message = f": {top.message}" if top is not None and top.message else ""
        events.append(
            Event(
                kind=EventKind.DECISION_DENIED,
                at=decision.decided_at,
                severity=severity,
                summary=f"{request.agent_id} denied {request.tool} by {rule or 'default'}{message}",
                agent_id=request.agent_id,
                principal_id=principal,
                rule=rule,
                decision_id=decision.decision_id,
                details={
                    **common,
                    "rules": [r.rule for r in denying],
                    "reasons": [r.to_json() for r in decision.reasons],
                    "severities": {r.rule: s.value for s, r in ranked},
                },
            )
        )
    if decision.outcome is Outcome.REVIEW and decision.review_id is not None:
        top = decision.reasons[0] if decision.reasons else None
        events.append(
            Event(
                kind=EventKind.REVIEW_OPENED,
                at=decision.decided_at,
                severity=_reason_severity(top.code, top.rule, severities) if top else Severity.LOW,
                summary=f"{request.agent_id} calling {request.tool} waits for a reviewer",
                agent_id=request.agent_id,
                principal_id=principal,
                rule=top.rule if top is not None else None,
                decision_id=decision.decision_id,
                details={
                    **common,
                    "review_id": decision.review_id,
                    "reasons": [r.to_json() for r in decision.reasons],
                },
            )
        )
    if decision.risk.score > risk_threshold:
        events.append(
            Event(
                kind=EventKind.RISK_HIGH,
                at=decision.decided_at,
                severity=Severity.HIGH,
                summary=(
                    f"{request.agent_id} calling {request.tool}: risk "
                    f"{decision.risk.score:.2f} ({decision.outcome.value})"
                ),
                agent_id=request.agent_id,
                principal_id=principal,
                decision_id=decision.decision_id,
                details={**common, "signals": [s.to_json() for s in decision.risk.signals]},
            )
        )
    return events


def build_alert(
    rule: AlertRule,
    event: Event,
    *,
    key: str,
    alert_id: str,
    now: datetime,
    suppressed: int = 0,
    window: tuple[datetime, datetime] | None = None,
    alert_type: str = "alert",
) -> dict[str, Any]:
    """Return the alert JSON every sink receives (docs/alerts.md, "Payloads")."""
    title = event.summary if window is None else f"{suppressed} more like: {event.summary}"
    return {
        "alert_id": alert_id,
        "type": alert_type,
        "rule": rule.name,
        "severity": rule.severity_for(event).value,
        "title": title,
        "kind": event.kind.value,
        "agent_id": event.agent_id,
        "principal_id": event.principal_id,
        "policy_rule": event.rule,
        "decision_id": event.decision_id,
        "dedup_key": key,
        "throttle_seconds": rule.throttle_seconds,
        "suppressed": suppressed,
        "window": (
            None
            if window is None
            else {"opened_at": format_time(window[0]), "closed_at": format_time(window[1])}
        ),
        "created_at": format_time(now),
        "event": event.to_json(),
    }


class AlertService:
    """Runs alert rules and playbooks off the decision path; see the module docs.

    Args:
        config: The validated ``[alerts]`` configuration.
        sinks: The built sinks by name (``SinkSpec.build``).
        deliveries: The delivery log.
        clock: Time for events, windows and records.
        bus: Where derived events (``decision_denied``, ``risk_high``,
            ``playbook_triggered``) are published; subscribe :meth:`on_event` to it.
            Without a bus they are handled directly.
        policy: Returns the live policy, to look up rule severities.
        responder: Carries out playbook actions; without one, a firing is recorded
            as failed.
        audit: Where playbook firings are recorded.
    """

    def __init__(
        self,
        config: AlertsConfig,
        *,
        sinks: Mapping[str, Sink],
        deliveries: DeliveryLog,
        clock: Clock,
        bus: EventBus | None = None,
        policy: Callable[[], CompiledPolicy] | None = None,
        responder: Responder | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.config = config
        self.deliveries = deliveries
        self.responder = responder
        self._clock = clock
        self._bus = bus
        self._policy = policy
        self._audit = audit
        self._workers = {
            spec.name: SinkWorker(
                sinks[spec.name],
                deliveries,
                clock,
                retry=spec.retry,
                max_backlog=config.queue_size,
            )
            for spec in config.sinks
        }
        self._queue: queue.Queue[object] = queue.Queue(maxsize=config.queue_size)
        self._throttle: Throttle[Event] = Throttle()
        self._playbooks = PlaybookBook(config.playbooks)
        self._severities: tuple[CompiledPolicy | None, dict[str, Severity]] = (None, {})
        self._thread: threading.Thread | None = None
        self._unfinished = 0
        self._idle = threading.Condition()
        self.dropped = 0
        self.alerts_sent = 0

    # -- the caller's side (decision path: enqueue only) ---------------------------------

    def observe(self, request: ActionRequest, decision: Decision) -> None:
        """Governor observer: queue the decision; never blocks, never raises."""
        self._enqueue((request, decision))

    def on_event(self, event: Event) -> None:
        """Event bus subscriber: queue the event; never blocks, never raises."""
        self._enqueue(event)

    def _enqueue(self, item: object) -> None:
        with self._idle:
            self._unfinished += 1
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            with self._idle:
                self._unfinished -= 1
                self._idle.notify_all()
            self.dropped += 1
            log.warning("alert queue full: an item was dropped (%d so far)", self.dropped)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> AlertService:
        """Start the intake thread and one delivery thread per sink (idempotent)."""
        if self._thread is None:
            for worker in self._workers.values():
                worker.start()
            self._thread = threading.Thread(target=self._run, name="lictor-alerts", daemon=True)
            self._thread.start()
        return self

    def wait_idle(self, timeout_seconds: float = 5.0) -> bool:
        """Wait until every queued item is handled and every sink is idle (for tests, CLI).

        Retries that are waiting for their backoff count as not idle.
        """
        deadline = time.monotonic() + timeout_seconds
        with self._idle:
            while self._unfinished:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        while not all(w.is_idle() for w in self._workers.values()):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout_seconds: float | None = None) -> None:
        """Handle what is queued, send open-window summaries, drain sinks; bounded wait.

        ``timeout_seconds`` defaults to ``drain_seconds`` of the configuration. What
        is not delivered by then stays ``pending`` in the delivery log.
        """
        budget = self.config.drain_seconds if timeout_seconds is None else timeout_seconds
        deadline = time.monotonic() + budget
        thread, self._thread = self._thread, None
        if thread is not None:
            try:
                self._queue.put(_STOP, timeout=max(budget, 0.01))
            except queue.Full:
                log.warning("alert queue still full at shutdown; queued items are lost")
            thread.join(max(deadline - time.monotonic(), 0.01))
        for worker in self._workers.values():
            worker.close(max(deadline - time.monotonic(), 0.0))

    # -- the intake thread ----------------------------------------------------------------

    def resume_stale(self) -> int:
        """Queue ``pending`` deliveries that nobody has touched for too long; return how many.

        A delivery is pending while some process queues or retries it, and stays pending
        when that process dies. One whose last change is older than its sink's longest
        backoff plus :data:`RESUME_MARGIN_SECONDS` has no live owner (a retrying worker
        writes at every attempt), so this process takes it over. The intake thread runs
        this at start and every :data:`RESUME_EVERY_SECONDS`. Never raises: a log that
        cannot be read is reported and tried again later.
        """
        now = self._clock.now()
        try:
            pending = self.deliveries.list(DeliveryStatus.PENDING, limit=RESUME_BATCH)
        except LictorError:
            log.exception("alerts: cannot read pending deliveries to resume")
            return 0
        resumed = 0
        for delivery in pending:
            worker = self._workers.get(delivery.sink)
            if worker is None:
                continue  # a sink removed from the configuration: left for the CLI
            idle = (now - delivery.updated_at).total_seconds()
            if idle >= worker.retry.backoff_max_seconds + RESUME_MARGIN_SECONDS:
                resumed += worker.resume(delivery)
        if resumed:
            log.warning("alerts: resumed %d pending deliveries left by a stopped process", resumed)
        return resumed

    def _run(self) -> None:
        self.resume_stale()
        next_resume = time.monotonic() + RESUME_EVERY_SECONDS
        while True:
            try:
                item = self._queue.get(timeout=self._wait_seconds())
            except queue.Empty:
                item = None
            if item is not _STOP and time.monotonic() >= next_resume:
                self.resume_stale()
                next_resume = time.monotonic() + RESUME_EVERY_SECONDS
            if item is _STOP:
                for closed in self._throttle.close_all(self._clock.now()):
                    self._summarise(closed)
                return
            try:
                self._summarise_due()
                if isinstance(item, Event):
                    self._handle_event(item)
                elif isinstance(item, tuple):
                    self._handle_decision(*item)
            except Exception:  # the intake thread must survive any one bad item
                log.exception("alerts: failed to handle %r", item)
            finally:
                if item is not None:
                    with self._idle:
                        self._unfinished -= 1
                        self._idle.notify_all()

    def _wait_seconds(self) -> float:
        closes = self._throttle.next_close()
        if closes is None:
            return _IDLE_WAIT_SECONDS
        remaining = (closes - self._clock.now()).total_seconds()
        return min(max(remaining, 0.01), _IDLE_WAIT_SECONDS)

    def _severities_for(self) -> Mapping[str, Severity]:
        if self._policy is None:
            return {}
        policy = self._policy()
        cached, severities = self._severities
        if cached is not policy:
            severities = rule_severities(policy)
            self._severities = (policy, severities)
        return severities

    def _handle_decision(self, request: ActionRequest, decision: Decision) -> None:
        events = decision_events(
            request, decision, self._severities_for(), self.config.risk_threshold
        )
        for event in events:
            self._publish(event)
        for firing in self._playbooks.observe(request, decision):
            self._fire(firing)

    def _publish(self, event: Event) -> None:
        if self._bus is not None:
            self._bus.emit(event)  # comes back through on_event, like everyone's events
        else:
            self._handle_event(event)

    def _handle_event(self, event: Event) -> None:
        now = self._clock.now()
        for rule in self.config.rules:
            if not rule.selects(event):
                continue
            key = rule.key_for(event)
            if self._throttle.admit((rule.name, key), rule.throttle_seconds, now, event):
                alert = build_alert(rule, event, key=key, alert_id=new_ulid(now), now=now)
                self._dispatch(rule, alert, now)

    def _summarise_due(self) -> None:
        for closed in self._throttle.close_due(self._clock.now()):
            self._summarise(closed)

    def _summarise(self, closed: Closed[Event]) -> None:
        rule = next((r for r in self.config.rules if r.name == closed.key[0]), None)
        if rule is None:
            return
        now = self._clock.now()
        alert = build_alert(
            rule,
            closed.last,
            key=closed.key[1],
            alert_id=new_ulid(now),
            now=now,
            suppressed=closed.suppressed,
            window=(closed.opened_at, closed.closed_at),
            alert_type="summary",
        )
        self._dispatch(rule, alert, now)

    def _dispatch(self, rule: AlertRule, alert: Mapping[str, Any], now: datetime) -> None:
        self.alerts_sent += 1
        names = rule.sinks or tuple(self._workers)
        self._record_alert(alert, names)
        for name in names:
            delivery = new_delivery(alert, name, now)
            try:
                self.deliveries.add(delivery)
            except LictorError:
                log.exception("cannot write the alert delivery log; delivering anyway")
            self._workers[name].submit(delivery)

    def _record_alert(self, alert: Mapping[str, Any], sinks: tuple[str, ...]) -> None:
        """Put the alert on the audit trail, so forensics (the timeline) shows what was raised.

        Runs on the alerts thread, never on the decision path; if the trail cannot take it,
        the alert still goes out and the failure is logged.
        """
        if self._audit is None:
            return
        entry = {
            "v": ENTRY_VERSION,
            "kind": "alert",
            "at": alert["created_at"],
            "alert_id": alert["alert_id"],
            "type": alert["type"],
            "rule": alert["rule"],
            "severity": alert["severity"],
            "summary": alert["title"],
            "event": alert["kind"],
            "agent_id": alert["agent_id"],
            "principal_id": alert["principal_id"],
            "policy_rule": alert["policy_rule"],
            "decision_id": alert["decision_id"],
            "dedup_key": alert["dedup_key"],
            "suppressed": alert["suppressed"],
            "sinks": list(sinks),
        }
        try:
            self._audit.append(entry)
        except LictorError:
            log.critical("audit store unavailable; alert %s not recorded", alert["alert_id"])

    def _fire(self, firing: Firing) -> None:
        playbook = firing.playbook
        reason = f"playbook {playbook.name}: {firing.detail}"
        result = "ok"
        try:
            if self.responder is None:
                raise LictorError("no responder is configured")
            if playbook.action is Action.QUARANTINE:
                self.responder.quarantine(firing.agent_id, reason=reason, actor=firing.actor)
            else:
                self.responder.suspend(firing.agent_id, reason=reason, actor=firing.actor)
        except Exception as exc:  # record the failure; the alert still goes out
            log.exception(
                "playbook %s could not %s %s", playbook.name, playbook.action, firing.agent_id
            )
            result = f"failed: {type(exc).__name__}: {exc}"
        now = self._clock.now()
        entry = {
            "v": ENTRY_VERSION,
            "kind": "playbook",
            "at": format_time(now),
            "playbook": playbook.name,
            "action": playbook.action.value,
            "agent_id": firing.agent_id,
            "actor": firing.actor,
            "decision_id": firing.decision_id,
            "tool": firing.tool,
            "trigger": playbook.trigger.describe(),
            "observed": firing.observed,
            "detail": firing.detail,
            "result": result,
        }
        if self._audit is not None:
            try:
                self._audit.append(entry)
            except LictorError:
                log.critical(
                    "audit store unavailable; playbook %s firing not recorded", playbook.name
                )
        self._publish(
            Event(
                kind=EventKind.PLAYBOOK_TRIGGERED,
                at=now,
                severity=Severity.CRITICAL if result != "ok" else Severity.HIGH,
                summary=f"{reason}; {playbook.action.value} {firing.agent_id}: {result}",
                agent_id=firing.agent_id,
                rule=playbook.name,
                decision_id=firing.decision_id,
                details={
                    "playbook": playbook.name,
                    "action": playbook.action.value,
                    "trigger": playbook.trigger.describe(),
                    "observed": firing.observed,
                    "tool": firing.tool,
                    "result": result,
                },
            )
        )
