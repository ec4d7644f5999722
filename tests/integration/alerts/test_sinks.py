"""Every sink against a real receiver on loopback; retries and dead letters in a real log."""

from __future__ import annotations

import json
import queue
import re
import time
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest

from lictor.alerts.config import build_sinks, parse_alerts_config
from lictor.alerts.deliveries import (
    DeliveryLog,
    MemoryDeliveries,
    RetryPolicy,
    attempt_once,
    new_delivery,
)
from lictor.alerts.service import AlertService
from lictor.alerts.sinks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    DeliveryFailed,
    EmailSink,
    SlackSink,
    SyslogAlertSink,
    WebhookSink,
    sign,
    verify_signature,
)
from lictor.core.decisions import Outcome
from lictor.errors import Conflict
from lictor.notify.syslog import SyslogTarget, Transport
from lictor.service.events import Event, EventKind, Severity
from lictor.service.governor import Governor
from lictor.service.memory import SystemClock
from lictor.store.alerts import DeliveryStatus

from .receivers import http_receiver, smtp_server, tcp_receiver, udp_receiver, write_bundle

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 25, 14, 0, 0, tzinfo=UTC)
ALERT: dict[str, Any] = {
    "alert_id": "01ALERT",
    "type": "alert",
    "rule": "high-deny",
    "severity": "high",
    "title": "bot denied delete by ops/no-delete: never <delete> & co",
    "kind": "decision_denied",
    "agent_id": "bot",
    "principal_id": "emma",
    "policy_rule": "ops/no-delete",
    "decision_id": "01DEC",
    "dedup_key": "bot/ops/no-delete",
    "throttle_seconds": 300,
    "suppressed": 2,
    "window": None,
    "created_at": "2026-11-25T14:00:00.000Z",
    "event": {"kind": "decision_denied", "details": {"tool": "delete"}},
}


def test_webhook_posts_signed_json_that_a_receiver_can_verify() -> None:
    with http_receiver() as receiver:
        sink = WebhookSink("soc", receiver.url, secret=b"s3cret")
        sink.send(ALERT, "01DELIVERY", NOW)
        sink.close()
        got = receiver.requests.get(timeout=5)
    assert got.path == "/hook"
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["X-Lictor-Delivery"] == "01DELIVERY"
    assert json.loads(got.body) == ALERT
    timestamp = got.headers[TIMESTAMP_HEADER]
    signature = got.headers[SIGNATURE_HEADER]
    assert timestamp == str(int(NOW.timestamp()))
    assert re.fullmatch(r"sha256=[0-9a-f]{64}", signature)
    assert verify_signature(b"s3cret", timestamp, got.body, signature, now=NOW)
    # A wrong secret, a changed body, or a replay ten minutes later all fail.
    assert not verify_signature(b"other", timestamp, got.body, signature, now=NOW)
    assert not verify_signature(b"s3cret", timestamp, got.body + b" ", signature, now=NOW)
    later = NOW + timedelta(minutes=10)
    assert not verify_signature(b"s3cret", timestamp, got.body, signature, now=later)
    # The timestamp is inside the MAC: a fresh timestamp on an old body does not verify.
    fresh = str(int(later.timestamp()))
    assert not verify_signature(b"s3cret", fresh, got.body, signature, now=later)
    assert verify_signature(b"s3cret", fresh, got.body, sign(b"s3cret", fresh, got.body), now=later)


def test_webhook_failures_say_whether_to_retry() -> None:
    with http_receiver(status=503) as receiver:
        sink = WebhookSink("soc", receiver.url, secret=None)
        with pytest.raises(DeliveryFailed) as transient:
            sink.send(ALERT, "d1", NOW)
        receiver.status = 404
        with pytest.raises(DeliveryFailed) as permanent:
            sink.send(ALERT, "d2", NOW)
        sink.close()
        got = receiver.requests.get(timeout=5)
    assert SIGNATURE_HEADER not in got.headers  # no secret, no signature
    assert not transient.value.permanent
    assert permanent.value.permanent
    refused = WebhookSink("soc", "http://127.0.0.1:9/", secret=None, timeout_seconds=2)
    with pytest.raises(DeliveryFailed) as unreachable:
        refused.send(ALERT, "d3", NOW)
    assert not unreachable.value.permanent


def test_slack_sink_posts_text_and_blocks() -> None:
    with http_receiver() as receiver:
        sink = SlackSink("chat", receiver.url, timeout_seconds=5)
        sink.send(ALERT, "d", NOW)
        sink.close()
        body = json.loads(receiver.requests.get(timeout=5).body)
    assert (
        body["text"] == "[HIGH] bot denied delete by ops/no-delete: never &lt;delete&gt; &amp; co"
    )
    header, section, context = body["blocks"]
    assert header["type"] == "header"
    assert header["text"]["type"] == "plain_text"
    fields = {f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in section["fields"]}
    assert fields["*Agent*"] == "bot"
    assert fields["*Policy rule*"] == "ops/no-delete"
    assert fields["*Suppressed*"] == "2"
    assert "01ALERT" in context["elements"][0]["text"]


SYSLOG_HEADER = re.compile(r"<(\d+)>1 (\S+) (\S+) lictor (\S+) alert \[lictor@32473 ([^\]]*)\] ")


@pytest.mark.parametrize("transport", [Transport.UDP, Transport.TCP])
def test_syslog_sink_sends_rfc5424_over_udp_and_tcp(transport: Transport) -> None:
    receiver = udp_receiver() if transport is Transport.UDP else tcp_receiver()
    with receiver as (port, received):
        sink = SyslogAlertSink("siem", SyslogTarget(transport, "127.0.0.1", port), hostname="h1")
        sink.send(ALERT, "01DELIVERY", NOW)
        sink.send({**ALERT, "severity": "critical"}, "02DELIVERY", NOW)
        sink.close()
        # Each TCP alert has its own connection, so the two may arrive in either order.
        first, second = sorted(
            (received.get(timeout=5).decode() for _ in range(2)),
            key=lambda text: "02DELIVERY" in text,
        )
    match = SYSLOG_HEADER.match(first)
    assert match, first[:200]
    pri, _, hostname, _, params = match.groups()
    assert int(pri) == 10 * 8 + 3  # authpriv, error (high)
    assert hostname == "h1"
    assert 'agent="bot"' in params
    assert 'decision_id="01DEC"' in params
    body = json.loads(first[match.end() :].removeprefix("\ufeff"))
    assert body["alert_id"] == "01ALERT"
    assert body["delivery_id"] == "01DELIVERY"
    second_match = SYSLOG_HEADER.match(second)
    assert second_match
    assert int(second_match.group(1)) == 10 * 8 + 2  # critical


def test_syslog_tcp_failure_is_a_retryable_delivery_failure() -> None:
    with tcp_receiver() as (port, _):
        pass  # closed: nothing listens on the port any more
    sink = SyslogAlertSink(
        "siem", SyslogTarget(Transport.TCP, "127.0.0.1", port), timeout_seconds=2
    )
    with pytest.raises(DeliveryFailed) as failed:
        sink.send(ALERT, "d", NOW)
    assert not failed.value.permanent


def test_email_sink_sends_through_a_real_smtp_server() -> None:
    with smtp_server() as (port, mailbox):
        sink = EmailSink(
            "mail",
            host="127.0.0.1",
            port=port,
            sender="lictor@corp.example",
            recipients=["soc@corp.example", "oncall@corp.example"],
            tls="none",
        )
        sink.send({**ALERT, "title": "line one\r\nBcc: evil@x"}, "01DELIVERY", NOW)
        mail_from, rcpt_tos, content = mailbox.messages.get(timeout=5)
        mailbox.reject_with = "550 mailbox unavailable"
        with pytest.raises(DeliveryFailed) as rejected:
            sink.send(ALERT, "02DELIVERY", NOW)
    assert mail_from == "lictor@corp.example"
    assert rcpt_tos == ["soc@corp.example", "oncall@corp.example"]
    message = message_from_bytes(content)
    assert message["Subject"] == "[Lictor HIGH] line one Bcc: evil@x"
    assert message["Bcc"] is None  # no header injection through the title
    assert message["X-Lictor-Delivery"] == "01DELIVERY"
    text = message.get_payload(decode=True)
    assert isinstance(text, bytes)
    assert b"agent:       bot" in text
    assert b'"alert_id": "01ALERT"' in text
    assert rejected.value.permanent


def test_email_to_a_dead_server_is_retryable() -> None:
    with smtp_server() as (port, _):
        pass
    sink = EmailSink(
        "mail", host="127.0.0.1", port=port, sender="a@b.c", recipients=["d@e.f"], tls="none"
    )
    with pytest.raises(DeliveryFailed) as failed:
        sink.send(ALERT, "d", NOW)
    assert not failed.value.permanent


def test_attempts_are_logged_in_the_store(deliveries: DeliveryLog) -> None:
    with http_receiver(status=500) as receiver:
        sink = WebhookSink("soc", receiver.url, secret=b"k")
        delivery = new_delivery(ALERT, "soc", NOW)
        deliveries.add(delivery)
        policy = RetryPolicy(max_attempts=2)
        failed, again = attempt_once(sink, delivery, NOW, policy)
        deliveries.update(failed)
        assert again
        assert deliveries.get(delivery.id) == failed
        assert failed.status is DeliveryStatus.PENDING
        assert failed.last_error == "soc: HTTP 500"
        dead, again = attempt_once(sink, failed, NOW + timedelta(seconds=1), policy)
        deliveries.update(dead)
        receiver.status = 200
        resent, again = attempt_once(sink, dead, NOW + timedelta(seconds=2), policy)
        deliveries.update(resent)
        sink.close()
    assert not again
    stored = deliveries.get(delivery.id)
    assert stored is not None
    assert (stored.status, stored.attempts, stored.last_error) == (
        DeliveryStatus.DELIVERED,
        3,
        None,
    )
    assert stored.alert == ALERT
    assert stored.created_at == NOW
    assert stored.updated_at == NOW + timedelta(seconds=2)
    assert [d.id for d in deliveries.list(DeliveryStatus.DELIVERED)] == [delivery.id]
    assert deliveries.list(DeliveryStatus.DEAD) == []


def test_a_receiver_answering_500_is_retried_until_dead_letter(deliveries: DeliveryLog) -> None:
    with http_receiver(status=500) as receiver:
        config = parse_alerts_config(
            {
                "sinks": [
                    {
                        "name": "soc",
                        "type": "webhook",
                        "url": receiver.url,
                        "max_attempts": 3,
                        "backoff_initial_seconds": 0.01,
                    }
                ],
                "rules": [{"name": "all", "kinds": ["decision_denied"], "throttle_seconds": 0}],
            }
        )
        service = AlertService(
            config, sinks=build_sinks(config), deliveries=deliveries, clock=SystemClock()
        ).start()
        service.on_event(DENIED)
        assert service.wait_idle(10)
        service.close(2)
        attempts = receiver.requests.qsize()
    assert attempts == 3
    [dead] = deliveries.list(DeliveryStatus.DEAD)
    assert (dead.sink, dead.attempts, dead.last_error) == ("soc", 3, "soc: HTTP 500")
    assert dead.alert["kind"] == "decision_denied"
    assert deliveries.list(DeliveryStatus.PENDING) == []


DENIED = Event(
    kind=EventKind.DECISION_DENIED,
    at=NOW,
    severity=Severity.HIGH,
    summary="bot denied delete",
    agent_id="bot",
    rule="ops/no-delete",
)


def test_a_hanging_webhook_never_holds_up_decisions(tmp_path: Path) -> None:
    policies, inventory = write_bundle(tmp_path)
    governor = Governor.from_paths(policies, inventory)
    with http_receiver(hang=True) as receiver:
        config = parse_alerts_config(
            {
                "sinks": [
                    {"name": "soc", "type": "webhook", "url": receiver.url, "timeout_seconds": 60}
                ],
                "rules": [{"name": "deny", "kinds": ["decision_denied"], "throttle_seconds": 0}],
            }
        )
        service = AlertService(
            config,
            sinks=build_sinks(config),
            deliveries=MemoryDeliveries(),
            clock=SystemClock(),
            policy=lambda: governor.policy,
        ).start()
        governor.add_observer(service.observe)
        request = {"agent_id": "bot", "tool": "delete"}
        assert governor.decide(request).outcome is Outcome.DENY
        assert receiver.arrived.wait(5)  # the sink is now stuck inside its first POST
        slowest = 0.0
        for _ in range(200):
            started = time.perf_counter()
            decision = governor.decide(request)
            slowest = max(slowest, time.perf_counter() - started)
            assert decision.outcome is Outcome.DENY
        # Every decision came back while the receiver still held the first request: the
        # sink's 60 s timeout never reached the decision path.
        assert receiver.served == 0
        assert slowest < 1.0
        assert not service.wait_idle(0.1)
        receiver.hang = False
        receiver.release.set()
        assert service.wait_idle(20)
        service.close(2)
    delivered = [
        d for d in service.deliveries.list(limit=500) if d.status is DeliveryStatus.DELIVERED
    ]
    assert len(delivered) == 201
    assert receiver.served == 201
    received: list[str] = []
    while True:
        try:
            received.append(json.loads(receiver.requests.get_nowait().body)["policy_rule"])
        except queue.Empty:
            break
    assert set(received) == {"ops/no-delete"}


def test_the_log_refuses_duplicates_and_lists_newest_first(deliveries: DeliveryLog) -> None:
    rows = [new_delivery(ALERT, f"sink-{i}", NOW + timedelta(seconds=i)) for i in range(3)]
    for row in rows:
        deliveries.add(row)
    with pytest.raises(Conflict):
        deliveries.add(rows[0])
    assert [d.sink for d in deliveries.list()] == ["sink-2", "sink-1", "sink-0"]
    assert [d.sink for d in deliveries.list(limit=1)] == ["sink-2"]
    assert deliveries.get("missing") is None
    assert deliveries.list(DeliveryStatus.DEAD) == []
