"""Real-time alerts and automatic response.

Alert rules select security events (a deny by a high-severity policy rule, a review
opened, high risk, a shadow agent, a quarantine, a failed audit verification, credential
misuse, a changed tool definition), deduplicate and throttle them, and deliver alerts
to sinks (signed webhook, Slack, syslog, email) from worker threads, with retries, a
dead-letter state and a delivery log. Playbooks turn patterns of decisions into a
quarantine or suspension. Nothing here runs on the decision path: the Governor and the
event bus only enqueue (docs/alerts.md).
"""

from __future__ import annotations

from lictor.alerts.config import (
    AlertsConfig,
    SinkSpec,
    build_sinks,
    load_alerts_config,
    parse_alerts_config,
)
from lictor.alerts.deliveries import DeliveryLog, MemoryDeliveries, RetryPolicy, SinkWorker
from lictor.alerts.playbooks import Action, Playbook, Responder
from lictor.alerts.rules import AlertRule
from lictor.alerts.service import AlertService
from lictor.alerts.sinks import (
    DeliveryFailed,
    EmailSink,
    Sink,
    SlackSink,
    SyslogAlertSink,
    WebhookSink,
    sign,
    verify_signature,
)

__all__ = [
    "Action",
    "AlertRule",
    "AlertService",
    "AlertsConfig",
    "DeliveryFailed",
    "DeliveryLog",
    "EmailSink",
    "MemoryDeliveries",
    "Playbook",
    "Responder",
    "RetryPolicy",
    "Sink",
    "SinkSpec",
    "SinkWorker",
    "SlackSink",
    "SyslogAlertSink",
    "WebhookSink",
    "build_sinks",
    "load_alerts_config",
    "parse_alerts_config",
    "sign",
    "verify_signature",
]
