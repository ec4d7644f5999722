"""Alert sinks: where alerts go (a signed webhook, Slack, syslog, email).

Rule 1: a sink's :meth:`~Sink.send` makes one attempt and either returns (delivered)
or raises :class:`DeliveryFailed`; retries, backoff and the delivery log belong to
:mod:`lictor.alerts.deliveries`, which calls sinks from its own threads only. No sink
is ever called on the decision path.
Rule 2: every attempt is bounded by the sink's ``timeout_seconds``, so a receiver that
hangs costs one worker thread that long, and nothing else.

Webhook signatures follow the common "timestamp.body" scheme: the MAC covers the
``X-Lictor-Timestamp`` value, a dot and the exact body bytes, so a captured request
cannot be replayed later with a fresh timestamp (docs/alerts.md has the recipe).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import socket
import ssl
from collections.abc import Mapping, Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any, Final, Protocol

import httpx

from lictor.errors import LictorError
from lictor.notify.syslog import (
    TCP_MAX_MESSAGE_BYTES,
    UDP_MAX_MESSAGE_BYTES,
    Facility,
    SyslogTarget,
    Transport,
    format_message,
    frame_octet_counting,
)
from lictor.notify.syslog import Severity as SyslogSeverity

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "DeliveryFailed",
    "EmailSink",
    "Sink",
    "SlackSink",
    "SyslogAlertSink",
    "WebhookSink",
    "sign",
    "slack_payload",
    "verify_signature",
]

SIGNATURE_HEADER: Final = "X-Lictor-Signature"
TIMESTAMP_HEADER: Final = "X-Lictor-Timestamp"
DELIVERY_HEADER: Final = "X-Lictor-Delivery"
USER_AGENT: Final = "lictor-alerts/1"
_PERMANENT_STATUSES: Final = frozenset({400, 401, 403, 404, 405, 410, 413, 422})


class DeliveryFailed(LictorError):
    """One attempt to deliver an alert failed; ``permanent`` means retrying cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Sink(Protocol):
    """One alert destination. ``send`` is one bounded attempt (see the module docs)."""

    name: str

    def send(self, alert: Mapping[str, Any], delivery_id: str, now: datetime) -> None:
        """Deliver ``alert`` once, or raise DeliveryFailed."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def alert_body(alert: Mapping[str, Any]) -> bytes:
    """The JSON bytes a webhook receives (sorted keys: the same alert, the same bytes)."""
    return json.dumps(alert, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """Return the ``X-Lictor-Signature`` value: ``sha256=`` HMAC of ``timestamp.body``."""
    mac = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: bytes,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: datetime,
    tolerance_seconds: float = 300.0,
) -> bool:
    """Check a received webhook as a receiver should: MAC first, then freshness.

    Returns False for a wrong MAC, a malformed timestamp, or one further than
    ``tolerance_seconds`` from ``now`` (a replay).
    """
    if not hmac.compare_digest(sign(secret, timestamp, body), signature):
        return False
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    return abs(now.timestamp() - sent) <= tolerance_seconds


def _http_failure(sink: str, exc_or_response: httpx.HTTPError | httpx.Response) -> DeliveryFailed:
    if isinstance(exc_or_response, httpx.Response):
        status = exc_or_response.status_code
        return DeliveryFailed(
            f"{sink}: HTTP {status}",
            permanent=status in _PERMANENT_STATUSES,
        )
    return DeliveryFailed(f"{sink}: {type(exc_or_response).__name__}: {exc_or_response}")


class _HttpSink:
    """POST a JSON body; 2xx is delivered, anything else raises DeliveryFailed."""

    def __init__(self, name: str, url: str, *, timeout_seconds: float) -> None:
        self.name = name
        self.url = url
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_seconds),
            follow_redirects=False,  # a redirect would resend a signed body elsewhere
            headers={"User-Agent": USER_AGENT},
        )

    def _post(self, body: bytes, headers: Mapping[str, str]) -> None:
        try:
            response = self._client.post(
                self.url, content=body, headers={"Content-Type": "application/json", **headers}
            )
        except httpx.HTTPError as exc:
            raise _http_failure(self.name, exc) from exc
        if not response.is_success:
            raise _http_failure(self.name, response)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


class WebhookSink(_HttpSink):
    """A generic webhook: the alert JSON, signed with HMAC-SHA256 when a secret is set."""

    def __init__(
        self, name: str, url: str, *, secret: bytes | None, timeout_seconds: float = 5.0
    ) -> None:
        super().__init__(name, url, timeout_seconds=timeout_seconds)
        self._secret = secret

    def send(self, alert: Mapping[str, Any], delivery_id: str, now: datetime) -> None:
        """POST the alert once (see the module docs for the headers)."""
        body = alert_body(alert)
        timestamp = str(int(now.timestamp()))
        headers = {TIMESTAMP_HEADER: timestamp, DELIVERY_HEADER: delivery_id}
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign(self._secret, timestamp, body)
        self._post(body, headers)


def _mrkdwn(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(alert: Mapping[str, Any]) -> dict[str, Any]:
    """Return a Slack incoming-webhook message: fallback ``text`` plus Block Kit ``blocks``."""
    severity = str(alert.get("severity", "")).upper()
    title = str(alert.get("title", ""))
    text = f"[{severity}] {title}"
    facts = [
        ("Rule", alert.get("rule")),
        ("Kind", alert.get("kind")),
        ("Agent", alert.get("agent_id")),
        ("Policy rule", alert.get("policy_rule")),
        ("Suppressed", alert.get("suppressed") or None),
    ]
    fields = [
        {"type": "mrkdwn", "text": f"*{label}*\n{_mrkdwn(str(value))}"}
        for label, value in facts
        if value is not None
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": text[:150]}},
    ]
    if fields:
        blocks.append({"type": "section", "fields": fields[:10]})
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": _mrkdwn(f"alert {alert.get('alert_id')} at {alert.get('created_at')}"),
                }
            ],
        }
    )
    return {"text": _mrkdwn(text), "blocks": blocks}


class SlackSink(_HttpSink):
    """A Slack-compatible incoming webhook (also Mattermost and others that copy it)."""

    def send(self, alert: Mapping[str, Any], delivery_id: str, now: datetime) -> None:
        """POST the Slack message once."""
        self._post(alert_body(slack_payload(alert)), {})


_SYSLOG_SEVERITY: Final = {
    "critical": SyslogSeverity.CRITICAL,
    "high": SyslogSeverity.ERROR,
    "medium": SyslogSeverity.WARNING,
    "low": SyslogSeverity.NOTICE,
    "info": SyslogSeverity.INFORMATIONAL,
}


class SyslogAlertSink:
    """RFC 5424 over UDP or TCP, formatted by :mod:`lictor.notify.syslog`.

    The MSGID is ``alert``; the SD element carries the agent, tool and decision id; the
    MSG is the alert JSON. Over TCP each alert opens its own connection: alerts are few
    after throttling, and a fresh connection cannot be one the collector silently dropped.
    """

    def __init__(
        self,
        name: str,
        target: SyslogTarget,
        *,
        facility: Facility = Facility.AUTHPRIV,
        hostname: str | None = None,
        timeout_seconds: float = 5.0,
    ) -> None:
        self.name = name
        self.target = target
        self._facility = facility
        self._hostname = hostname if hostname is not None else socket.gethostname()
        self._timeout = timeout_seconds
        self._max_bytes = (
            UDP_MAX_MESSAGE_BYTES if target.transport is Transport.UDP else TCP_MAX_MESSAGE_BYTES
        )

    def send(self, alert: Mapping[str, Any], delivery_id: str, now: datetime) -> None:
        """Send one message; a socket error raises DeliveryFailed and drops the socket."""
        payload = {**alert, "kind": "alert", "delivery_id": delivery_id}
        severity = _SYSLOG_SEVERITY.get(str(alert.get("severity")), SyslogSeverity.WARNING)
        message = format_message(
            payload,
            hostname=self._hostname,
            facility=self._facility,
            severity=severity,
            now=now,
            max_bytes=self._max_bytes,
        )
        try:
            if self.target.transport is Transport.UDP:
                with socket.socket(_family(self.target.host), socket.SOCK_DGRAM) as sock:
                    sock.settimeout(self._timeout)
                    sock.sendto(message, (self.target.host, self.target.port))
                return
            with socket.create_connection(
                (self.target.host, self.target.port), timeout=self._timeout
            ) as stream:
                stream.sendall(frame_octet_counting(message))
                stream.shutdown(socket.SHUT_WR)
        except OSError as exc:
            raise DeliveryFailed(f"{self.name}: syslog to {self.target}: {exc}") from exc

    def close(self) -> None:
        """Nothing to close: each alert opens its own connection."""


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class EmailSink:
    """Email over SMTP (stdlib smtplib): plain text for people, the JSON attached inline.

    ``tls`` is ``starttls`` (upgrade on the submission port), ``ssl`` (implicit TLS,
    port 465) or ``none`` (only for a relay on the same host).
    """

    def __init__(
        self,
        name: str,
        *,
        host: str,
        port: int,
        sender: str,
        recipients: Sequence[str],
        tls: str = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout_seconds: float = 10.0,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.sender = sender
        self.recipients = tuple(recipients)
        self.tls = tls
        self._username = username
        self._password = password
        self._timeout = timeout_seconds

    def message(self, alert: Mapping[str, Any], delivery_id: str) -> EmailMessage:
        """Build the email for one alert."""
        severity = str(alert.get("severity", "")).upper()
        title = " ".join(str(alert.get("title", "")).split())  # no header injection
        message = EmailMessage()
        message["Subject"] = f"[Lictor {severity}] {title}"[:200]
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message["Message-ID"] = make_msgid(domain="lictor.invalid")
        message["X-Lictor-Delivery"] = delivery_id
        lines = [
            f"{severity} alert from Lictor rule {alert.get('rule')!s}",
            "",
            title,
            "",
            f"agent:       {alert.get('agent_id')}",
            f"kind:        {alert.get('kind')}",
            f"policy rule: {alert.get('policy_rule')}",
            f"suppressed:  {alert.get('suppressed', 0)}",
            f"alert id:    {alert.get('alert_id')}",
            "",
            json.dumps(alert, indent=2, sort_keys=True, ensure_ascii=False),
        ]
        message.set_content("\n".join(lines))
        return message

    def send(self, alert: Mapping[str, Any], delivery_id: str, now: datetime) -> None:
        """Hand the email to the SMTP server once."""
        message = self.message(alert, delivery_id)
        try:
            if self.tls == "ssl":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host,
                    self.port,
                    timeout=self._timeout,
                    context=ssl.create_default_context(),
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self._timeout)
            with client:
                if self.tls == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if self._username is not None:
                    client.login(self._username, self._password or "")
                client.send_message(message)
        except smtplib.SMTPResponseException as exc:
            # 5xx is the server's final word (bad recipient, refused sender).
            raise DeliveryFailed(
                f"{self.name}: SMTP {exc.smtp_code}", permanent=500 <= exc.smtp_code < 600
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"{self.name}: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        """Nothing to close: each email opens its own connection."""
