"""Send audit events to a syslog collector as RFC 5424 messages over UDP or TCP.

Rule 1: :meth:`SyslogSink.publish` never blocks and never raises. It puts the event on a
bounded queue and returns; when the queue is full the event is dropped and counted
(``dropped``). A background thread formats and sends, so a slow, dead or unreachable
collector costs the decision path nothing.
Rule 2: one event is one RFC 5424 message: header, one ``[lictor@32473 ...]``
structured-data element with the fields a SIEM filters on, and the whole event as JSON
in MSG (RFC 5424 §6.4: UTF-8 MSG starts with a BOM).

Transports: UDP is one message per datagram (RFC 5426). TCP frames each message with
octet counting, ``MSG-LEN SP SYSLOG-MSG`` (RFC 6587 §3.4.1), which unlike newline
framing survives newlines inside the message; a broken TCP connection is re-opened with
exponential backoff. TLS (RFC 5425) is not offered: run a local relay for it.

``32473`` in the SD-ID is the private enterprise number IANA reserves for
documentation (RFC 5612); it marks the element as Lictor's own, as RFC 5424 §7.2.2
requires of non-IANA SD-IDs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import select
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Any, Final
from urllib.parse import urlsplit

from lictor.core.audit.canonical import canonical_json
from lictor.core.audit.chain import SealedRecord
from lictor.core.decisions import format_time, parse_time
from lictor.errors import ConfigError
from lictor.service.ports import Clock

__all__ = [
    "SD_ID",
    "Facility",
    "Severity",
    "SyslogSink",
    "SyslogTarget",
    "Transport",
    "escape_param_value",
    "format_message",
    "frame_octet_counting",
    "severity_of",
]

log = logging.getLogger("lictor.notify.syslog")

SD_ID: Final = "lictor@32473"
"""The structured-data element Lictor's fields go in (see the module docs)."""

DEFAULT_PORT: Final = 514
UDP_MAX_MESSAGE_BYTES: Final = 8192
"""Larger datagrams fragment and are cut by common collectors (rsyslog's default 8k)."""
TCP_MAX_MESSAGE_BYTES: Final = 65536

_NIL: Final = "-"
_BOM: Final = b"\xef\xbb\xbf"
# RFC 5424 §6: header field lengths, in PRINTUSASCII characters.
_MAX_HOSTNAME: Final = 255
_MAX_APP_NAME: Final = 48
_MAX_PROCID: Final = 128
_MAX_MSGID: Final = 32
_FIRST_PRINTABLE: Final = "!"  # PRINTUSASCII is %d33-126 (RFC 5424 §6)
_LAST_PRINTABLE: Final = "~"
_STOP: Final = object()


class Transport(StrEnum):
    """How messages travel."""

    UDP = "udp"
    TCP = "tcp"


class Facility(IntEnum):
    """RFC 5424 §6.2.1 facilities Lictor may log under."""

    AUTH = 4
    AUTHPRIV = 10
    LOG_AUDIT = 13
    LOCAL0 = 16
    LOCAL1 = 17
    LOCAL2 = 18
    LOCAL3 = 19
    LOCAL4 = 20
    LOCAL5 = 21
    LOCAL6 = 22
    LOCAL7 = 23


class Severity(IntEnum):
    """RFC 5424 §6.2.1 severities."""

    EMERGENCY = 0
    ALERT = 1
    CRITICAL = 2
    ERROR = 3
    WARNING = 4
    NOTICE = 5
    INFORMATIONAL = 6
    DEBUG = 7


@dataclass(frozen=True, slots=True)
class SyslogTarget:
    """Where to send: ``udp://host:port`` or ``tcp://host:port`` (port 514 by default)."""

    transport: Transport
    host: str
    port: int = DEFAULT_PORT

    @classmethod
    def parse(cls, url: str) -> SyslogTarget:
        """Parse the ``syslog`` setting.

        Raises:
            ConfigError: Not ``udp://`` or ``tcp://`` with a host, or a bad port.
        """
        parts = urlsplit(url)
        try:
            transport = Transport(parts.scheme)
            port = parts.port
        except ValueError:
            raise ConfigError(
                f"syslog target {url!r} must look like udp://host:514 or tcp://host:514"
            ) from None
        if not parts.hostname or parts.path not in ("", "/"):
            raise ConfigError(
                f"syslog target {url!r} must look like udp://host:514 or tcp://host:514"
            )
        return cls(transport, parts.hostname, DEFAULT_PORT if port is None else port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport.value}://{host}:{self.port}"


def escape_param_value(value: str) -> str:
    r"""Escape an SD-PARAM value: ``"``, ``\`` and ``]`` get a backslash (RFC 5424 §6.3.3)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _printable(value: str | None, limit: int) -> str:
    """A header field: PRINTUSASCII (33..126) only, cut to ``limit``, or the NILVALUE."""
    if not value:
        return _NIL
    cleaned = "".join(ch if _FIRST_PRINTABLE <= ch <= _LAST_PRINTABLE else "_" for ch in value)
    return cleaned[:limit] or _NIL


def severity_of(payload: Mapping[str, Any]) -> Severity:
    """Pick a severity from an audit payload: deny and rejected warn, review notices."""
    kind = payload.get("kind")
    if kind == "rejected" or payload.get("outcome") == "deny":
        return Severity.WARNING
    if payload.get("outcome") == "review" or (
        kind == "result" and payload.get("status") == "error"
    ):
        return Severity.NOTICE
    return Severity.INFORMATIONAL


def _timestamp(payload: Mapping[str, Any], now: datetime) -> str:
    """RFC 5424 §6.2.3 TIMESTAMP: the event's own time if it has a valid one, else now."""
    at = payload.get("at")
    if isinstance(at, str):
        try:
            return format_time(parse_time(at))
        except ValueError:
            pass
    return format_time(now)


def _sd_params(payload: Mapping[str, Any], seq: int | None) -> list[tuple[str, str]]:
    principal = payload.get("principal")
    fields: list[tuple[str, object]] = [
        ("kind", payload.get("kind")),
        ("decision_id", payload.get("decision_id")),
        ("outcome", payload.get("outcome")),
        ("status", payload.get("status")),
        ("agent", payload.get("agent_id")),
        ("tool", payload.get("tool")),
        ("principal", principal.get("id") if isinstance(principal, Mapping) else None),
        ("session", payload.get("session_id")),
        ("review_id", payload.get("review_id")),
        ("seq", seq),
    ]
    return [(name, str(value)) for name, value in fields if value is not None and value != ""]


def _json_body(event: SealedRecord | Mapping[str, Any]) -> bytes:
    data = event.to_dict() if isinstance(event, SealedRecord) else event
    try:
        return canonical_json(data)
    except (TypeError, ValueError):
        # Not a JSON value as it stands (a datetime, a set ...): still say what it was.
        return json.dumps(data, default=str, ensure_ascii=False).encode("utf-8", "replace")


def format_message(
    event: SealedRecord | Mapping[str, Any],
    *,
    hostname: str | None,
    app_name: str = "lictor",
    procid: str | None = None,
    facility: Facility = Facility.AUTHPRIV,
    severity: Severity | None = None,
    now: datetime | None = None,
    max_bytes: int = TCP_MAX_MESSAGE_BYTES,
) -> bytes:
    """Format one event as an RFC 5424 SYSLOG-MSG (unframed).

    Args:
        event: A sealed audit record (its payload fills the SD element, the whole
            record with hashes goes to MSG) or any JSON-able mapping.
        hostname: HOSTNAME field; None gives the NILVALUE.
        app_name: APP-NAME field.
        procid: PROCID field (the process id, usually).
        facility: PRI facility.
        severity: PRI severity; default from the event (:func:`severity_of`).
        now: Time used when the event has no valid ``at``; default the wall clock.
        max_bytes: Longest message to produce. A longer one is rebuilt with a short
            JSON summary in MSG (``"truncated": true`` plus ids and the record hash),
            so a collector gets a whole, parseable message instead of a cut one.

    Returns:
        The message bytes.
    """
    payload = event.payload if isinstance(event, SealedRecord) else event
    seq = event.seq if isinstance(event, SealedRecord) else None
    chosen = severity if severity is not None else severity_of(payload)
    moment = now if now is not None else datetime.now(UTC)
    kind = payload.get("kind")
    header = " ".join(
        (
            f"<{facility * 8 + chosen}>1",
            _timestamp(payload, moment),
            _printable(hostname, _MAX_HOSTNAME),
            _printable(app_name, _MAX_APP_NAME),
            _printable(procid, _MAX_PROCID),
            _printable(kind if isinstance(kind, str) else None, _MAX_MSGID),
        )
    )
    params = "".join(
        f' {name}="{escape_param_value(value)}"' for name, value in _sd_params(payload, seq)
    )
    head = f"{header} [{SD_ID}{params}] ".encode()
    message = head + _BOM + _json_body(event)
    if len(message) <= max_bytes:
        return message
    summary: dict[str, Any] = {
        "truncated": True,
        "original_bytes": len(message),
        "kind": kind,
        "decision_id": payload.get("decision_id"),
    }
    if isinstance(event, SealedRecord):
        summary["seq"] = event.seq
        summary["record_hash"] = event.record_hash
    message = head + _BOM + _json_body(summary)
    if len(message) <= max_bytes:
        return message
    return head[:-1]  # no MSG at all: the SD element alone was too long to add to


def frame_octet_counting(message: bytes) -> bytes:
    """Frame a message for TCP: ``MSG-LEN SP SYSLOG-MSG`` (RFC 6587 §3.4.1)."""
    return str(len(message)).encode("ascii") + b" " + message


class SyslogSink:
    """A best-effort, non-blocking syslog sender with its own thread.

    Build it, :meth:`start` it, :meth:`publish` events, :meth:`close` it. Counters
    ``sent``, ``dropped`` and ``errors`` tell an operator (and ``/metrics``) whether
    the collector keeps up. **Delivery is not guaranteed**: UDP loses silently, and
    TCP may lose or repeat the message in flight when a connection breaks. Verify the
    audit trail itself, not the copy in the SIEM.
    """

    def __init__(
        self,
        target: SyslogTarget,
        *,
        app_name: str = "lictor",
        hostname: str | None = None,
        facility: Facility = Facility.AUTHPRIV,
        queue_size: int = 10_000,
        timeout_seconds: float = 5.0,
        backoff_initial_seconds: float = 0.5,
        backoff_max_seconds: float = 30.0,
        max_message_bytes: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        if queue_size < 1:
            raise ConfigError("syslog queue_size must be at least 1")
        self.target = target
        self._app_name = app_name
        self._hostname = hostname
        self._facility = facility
        self._timeout = timeout_seconds
        self._backoff_initial = backoff_initial_seconds
        self._backoff_max = backoff_max_seconds
        default_max = (
            UDP_MAX_MESSAGE_BYTES if target.transport is Transport.UDP else TCP_MAX_MESSAGE_BYTES
        )
        self._max_bytes = max_message_bytes or default_max
        self._clock = clock
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._closing = threading.Event()
        self._deadline = float("inf")
        self._failing = False
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._address: tuple[Any, ...] | None = None
        self._procid = str(os.getpid())
        self._counter_lock = threading.Lock()
        self.sent = 0
        self.dropped = 0
        self.errors = 0

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SyslogSink:
        """Build a sink for the ``syslog`` setting (``udp://host:port`` or ``tcp://...``).

        Raises:
            ConfigError: The URL is not a syslog target.
        """
        return cls(SyslogTarget.parse(url), **options)

    def __repr__(self) -> str:
        return f"SyslogSink({str(self.target)!r})"

    # -- the caller's side ---------------------------------------------------------------

    def publish(
        self, event: SealedRecord | Mapping[str, Any], *, severity: Severity | None = None
    ) -> bool:
        """Queue an event for sending; return False if it was dropped (queue full, closed).

        Never blocks and never raises: this runs on the decision path.
        """
        if self._closing.is_set():
            self._count("dropped")
            return False
        try:
            self._queue.put_nowait((event, severity))
        except queue.Full:
            self._count("dropped")
            return False
        return True

    @property
    def pending(self) -> int:
        """Events queued and not yet sent (approximate, as any queue size is)."""
        return self._queue.qsize()

    def start(self) -> SyslogSink:
        """Start the sender thread (idempotent)."""
        if self._thread is None:
            if self._hostname is None:
                self._hostname = socket.gethostname()
            self._thread = threading.Thread(target=self._run, name="lictor-syslog", daemon=True)
            self._thread.start()
        return self

    def close(self, timeout_seconds: float = 5.0) -> None:
        """Send what is queued for up to ``timeout_seconds``, then stop; the rest is dropped."""
        self._deadline = time.monotonic() + timeout_seconds
        self._closing.set()
        with contextlib.suppress(queue.Full):  # a full queue wakes the thread by itself
            self._queue.put_nowait(_STOP)
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout_seconds)
            if thread.is_alive():
                log.warning("syslog sender to %s did not stop in time", self.target)
        else:
            self._drop_queued()
        self._disconnect()

    # -- the sender thread ---------------------------------------------------------------

    def _run(self) -> None:
        delay = self._backoff_initial
        while True:
            if self._closing.is_set():
                if time.monotonic() >= self._deadline:
                    self._drop_queued()
                    return
                if self._queue.empty():
                    return
            item = self._queue.get()
            if item is _STOP:
                if self._queue.empty():
                    return
                continue  # close() raced with late events: send them first
            event, severity = item
            try:
                message = self._format(event, severity)
            except Exception:  # a bad event must not stop the sender; logged, not swallowed
                log.exception("cannot format event for syslog; dropped")
                self._count("errors")
                self._count("dropped")
                continue
            while not self._deliver(message):
                self._count("errors")
                if self._closing.wait(delay):
                    self._count("dropped")  # the message in hand
                    self._drop_queued()
                    return
                delay = min(delay * 2, self._backoff_max)
            delay = self._backoff_initial
            self._count("sent")

    def _format(self, event: SealedRecord | Mapping[str, Any], severity: Severity | None) -> bytes:
        now = self._clock.now() if self._clock is not None else datetime.now(UTC)
        message = format_message(
            event,
            hostname=self._hostname,
            app_name=self._app_name,
            procid=self._procid,
            facility=self._facility,
            severity=severity,
            now=now,
            max_bytes=self._max_bytes,
        )
        if self.target.transport is Transport.TCP:
            return frame_octet_counting(message)
        return message

    def _deliver(self, data: bytes) -> bool:
        """Send once; on failure close the socket so the next try starts afresh."""
        try:
            sock, address = self._connected()
            if self.target.transport is Transport.UDP:
                sock.sendto(data, address)
            else:
                sock.sendall(data)
        except OSError as exc:  # includes timeouts and resolution failures
            # One warning per outage, not one per retry: backoff retries for hours.
            level = logging.DEBUG if self._failing else logging.WARNING
            log.log(level, "syslog to %s failed, will retry: %s", self.target, exc)
            self._failing = True
            self._disconnect()
            return False
        if self._failing:
            log.warning("syslog to %s works again", self.target)
            self._failing = False
        return True

    def _connected(self) -> tuple[socket.socket, Any]:
        """Return the open socket and the collector's address, opening them if needed."""
        sock, address = self._socket, self._address
        if sock is not None and self.target.transport is Transport.TCP and _peer_closed(sock):
            self._disconnect()
            sock = None
        if sock is not None:
            return sock, address
        kind = socket.SOCK_DGRAM if self.target.transport is Transport.UDP else socket.SOCK_STREAM
        family, socktype, proto, _, address = socket.getaddrinfo(
            self.target.host, self.target.port, type=kind
        )[0]
        sock = socket.socket(family, socktype, proto)
        sock.settimeout(self._timeout)
        if self.target.transport is Transport.TCP:
            try:
                sock.connect(address)
            except OSError:
                sock.close()
                raise
        self._socket, self._address = sock, address
        return sock, address

    def _disconnect(self) -> None:
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()

    def _drop_queued(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                self._count("dropped")

    def _count(self, name: str) -> None:
        with self._counter_lock:
            setattr(self, name, getattr(self, name) + 1)


def _peer_closed(sock: socket.socket) -> bool:
    """True if a TCP collector hung up: it never sends, so readable means EOF or error."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True
