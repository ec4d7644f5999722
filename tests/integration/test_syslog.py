"""The syslog sink against real UDP and TCP receivers on loopback.

The receivers are small socketserver servers written here; each received message is
parsed with a strict RFC 5424 parser, so header fields, SD escaping and the JSON body
are checked as a collector would read them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import re
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from lictor.core.audit import SealedRecord, seal
from lictor.errors import ConfigError
from lictor.notify.syslog import (
    SD_ID,
    Facility,
    Severity,
    SyslogSink,
    SyslogTarget,
    Transport,
    escape_param_value,
    format_message,
    frame_octet_counting,
)
from lictor.service.memory import FixedClock

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 25, 14, 3, 22, 418000, tzinfo=UTC)
BOM = "\ufeff"
HEADER = re.compile(
    r"<(?P<pri>\d{1,3})>(?P<version>1) (?P<timestamp>\S+) (?P<hostname>\S+) "
    r"(?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) "
)
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)")


@dataclass
class Message:
    facility: int
    severity: int
    timestamp: str
    hostname: str
    app_name: str
    procid: str
    msgid: str
    sd: dict[str, dict[str, str]]
    msg: str


def parse_rfc5424(data: bytes) -> Message:
    """Parse one SYSLOG-MSG strictly (RFC 5424 §6), unescaping SD-PARAM values."""
    text = data.decode("utf-8")
    header = HEADER.match(text)
    assert header, text[:200]
    assert TIMESTAMP.fullmatch(header["timestamp"]), header["timestamp"]
    pri = int(header["pri"])
    pos = header.end()
    sd: dict[str, dict[str, str]] = {}
    if text[pos] == "-":
        pos += 1
    else:
        while pos < len(text) and text[pos] == "[":
            end_id = min(i for i in (text.find(" ", pos), text.find("]", pos)) if i != -1)
            sd_id = text[pos + 1 : end_id]
            params: dict[str, str] = {}
            pos = end_id
            while text[pos] == " ":
                eq = text.index("=", pos)
                name = text[pos + 1 : eq]
                assert re.fullmatch(r'[^= \]"]{1,32}', name), name
                assert text[eq + 1] == '"'
                pos = eq + 2
                value: list[str] = []
                while text[pos] != '"':
                    if text[pos] == "\\" and text[pos + 1] in '"\\]':
                        value.append(text[pos + 1])
                        pos += 2
                    else:
                        assert text[pos] != "]", "unescaped ] in a PARAM-VALUE"
                        value.append(text[pos])
                        pos += 1
                params[name] = "".join(value)
                pos += 1
            assert text[pos] == "]"
            sd[sd_id] = params
            pos += 1
    msg = ""
    if pos < len(text):
        assert text[pos] == " "
        msg = text[pos + 1 :]
    return Message(
        facility=pri // 8,
        severity=pri % 8,
        timestamp=header["timestamp"],
        hostname=header["hostname"],
        app_name=header["app"],
        procid=header["procid"],
        msgid=header["msgid"],
        sd=sd,
        msg=msg,
    )


def json_body(message: Message) -> Any:
    assert message.msg.startswith(BOM), "UTF-8 MSG starts with a BOM (RFC 5424 §6.4)"
    return json.loads(message.msg[len(BOM) :])


# -- receivers ----------------------------------------------------------------------------


class UdpHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, _ = self.request
        self.server.received.put(data)  # type: ignore[attr-defined]  # set by the fixture


class OctetCountingHandler(socketserver.StreamRequestHandler):
    """Read ``MSG-LEN SP SYSLOG-MSG`` frames until the sender hangs up (RFC 6587 §3.4.1)."""

    def handle(self) -> None:
        self.server.connections.append(self.connection)  # type: ignore[attr-defined]  # set by the fixture
        while True:
            digits = b""
            while (byte := self.rfile.read(1)) not in (b" ", b""):
                assert byte.isdigit(), f"bad frame length byte {byte!r}"
                digits += byte
            if not digits:
                return
            self.server.received.put(self.rfile.read(int(digits)))  # type: ignore[attr-defined]  # set by the fixture


class ThreadingUdp(socketserver.ThreadingUDPServer):
    allow_reuse_address = True
    daemon_threads = True
    received: queue.Queue[bytes]


class ThreadingTcp(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    received: queue.Queue[bytes]
    connections: list[socket.socket]

    def server_close(self) -> None:
        """Hang up on connected senders too, as a collector that goes away does."""
        super().server_close()
        for connection in self.connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


@contextmanager
def receiver(
    transport: Transport, port: int = 0
) -> Iterator[tuple[SyslogTarget, queue.Queue[bytes]]]:
    server: ThreadingUdp | ThreadingTcp
    if transport is Transport.UDP:
        server = ThreadingUdp(("127.0.0.1", port), UdpHandler)
    else:
        server = ThreadingTcp(("127.0.0.1", port), OctetCountingHandler)
    server.received = queue.Queue()
    if isinstance(server, ThreadingTcp):
        server.connections = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield SyslogTarget(transport, "127.0.0.1", server.server_address[1]), server.received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def running(sink: SyslogSink) -> Iterator[SyslogSink]:
    sink.start()
    try:
        yield sink
    finally:
        sink.close(timeout_seconds=5)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def record(**changes: Any) -> SealedRecord:
    payload: dict[str, Any] = {
        "v": 1,
        "kind": "decision",
        "decision_id": "01JDEC",
        "at": "2026-11-25T14:03:22.418Z",
        "agent_id": "mail-assistant",
        "principal": {"id": "emma@corp.example"},
        "session_id": "run-42",
        "tool": "send_email",
        "outcome": "deny",
        "arguments": {"body": "line one\nline two"},
    }
    payload.update(changes)
    return seal(None, payload)


# -- format -------------------------------------------------------------------------------


def test_param_values_escape_quote_backslash_and_bracket() -> None:
    assert escape_param_value('a"b\\c]d') == 'a\\"b\\\\c\\]d'
    assert escape_param_value("plain [x") == "plain [x"


def test_message_has_rfc5424_header_sd_and_json() -> None:
    sealed = record()
    data = format_message(sealed, hostname="gw-1", procid="42", now=NOW)

    message = parse_rfc5424(data)

    assert (message.facility, message.severity) == (Facility.AUTHPRIV, Severity.WARNING)
    assert message.timestamp == "2026-11-25T14:03:22.418Z"
    assert (message.hostname, message.app_name, message.procid) == ("gw-1", "lictor", "42")
    assert message.msgid == "decision"
    assert message.sd == {
        SD_ID: {
            "kind": "decision",
            "decision_id": "01JDEC",
            "outcome": "deny",
            "agent": "mail-assistant",
            "tool": "send_email",
            "principal": "emma@corp.example",
            "session": "run-42",
            "seq": "0",
        }
    }
    assert SealedRecord.from_dict(json_body(message)) == sealed


@pytest.mark.parametrize(
    ("payload", "severity"),
    [
        ({"kind": "decision", "outcome": "allow"}, Severity.INFORMATIONAL),
        ({"kind": "decision", "outcome": "review"}, Severity.NOTICE),
        ({"kind": "decision", "outcome": "deny"}, Severity.WARNING),
        ({"kind": "rejected"}, Severity.WARNING),
        ({"kind": "result", "status": "error"}, Severity.NOTICE),
        ({"kind": "result", "status": "ok"}, Severity.INFORMATIONAL),
    ],
)
def test_severity_follows_the_outcome(payload: dict[str, Any], severity: Severity) -> None:
    message = parse_rfc5424(format_message(payload, hostname=None, now=NOW))
    assert message.severity == severity
    assert message.hostname == "-"
    assert message.timestamp == "2026-11-25T14:03:22.418Z"  # no "at": the given now


def test_header_fields_are_printable_ascii_and_bounded() -> None:
    data = format_message(
        {"kind": "dé cision" + "x" * 40, "at": "not a time"},
        hostname="host name",
        app_name="a" * 60,
        procid="",
        now=NOW,
    )
    message = parse_rfc5424(data)
    assert message.hostname == "host_name"
    assert message.app_name == "a" * 48
    assert message.procid == "-"
    assert message.msgid == "d__cision" + "x" * 23
    assert message.timestamp == "2026-11-25T14:03:22.418Z"


def test_oversized_message_keeps_a_parseable_summary() -> None:
    sealed = record(arguments={"blob": "x" * 20_000})
    data = format_message(sealed, hostname="h", now=NOW, max_bytes=2048)
    assert len(data) <= 2048
    body = json_body(parse_rfc5424(data))
    assert body["truncated"] is True
    assert body["record_hash"] == sealed.record_hash
    assert body["original_bytes"] > 20_000


def test_non_json_event_still_formats() -> None:
    body = json_body(parse_rfc5424(format_message({"at": NOW}, hostname="h", now=NOW)))
    assert body == {"at": str(NOW)}


def test_octet_counting_frame() -> None:
    assert frame_octet_counting("é".encode()) == b"2 \xc3\xa9"


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("udp://collector:5514", SyslogTarget(Transport.UDP, "collector", 5514)),
        ("tcp://collector", SyslogTarget(Transport.TCP, "collector", 514)),
        ("tcp://[::1]:601", SyslogTarget(Transport.TCP, "::1", 601)),
    ],
)
def test_target_urls(url: str, target: SyslogTarget) -> None:
    assert SyslogTarget.parse(url) == target
    assert SyslogTarget.parse(str(target)) == target


@pytest.mark.parametrize(
    "url", ["collector:514", "http://c:514", "udp://", "udp://c:x", "tcp://c/p"]
)
def test_bad_target_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        SyslogTarget.parse(url)


# -- over the wire --------------------------------------------------------------------------


@pytest.mark.parametrize("transport", list(Transport))
def test_messages_reach_a_real_receiver(transport: Transport) -> None:
    tricky = 'say "hi"] \\ now\nand then'
    with receiver(transport) as (target, received):
        sink = SyslogSink(target, hostname="gw-1", clock=FixedClock(NOW))
        with running(sink):
            for i in range(3):
                assert sink.publish(record(decision_id=f"d{i}", tool=tricky))
            assert sink.publish({"kind": "alert", "detail": "free-form event"})
            messages = [parse_rfc5424(received.get(timeout=5)) for _ in range(4)]
    assert [m.sd[SD_ID].get("decision_id") for m in messages] == ["d0", "d1", "d2", None]
    assert all(m.sd[SD_ID].get("tool") == tricky for m in messages[:3])
    assert json_body(messages[0])["payload"]["tool"] == tricky
    assert json_body(messages[3]) == {"kind": "alert", "detail": "free-form event"}
    assert messages[3].msgid == "alert"
    assert sink.sent == 4
    assert (sink.dropped, sink.errors) == (0, 0)


def test_dead_tcp_receiver_never_blocks_the_publisher() -> None:
    target = SyslogTarget(Transport.TCP, "127.0.0.1", free_port())
    sink = SyslogSink(target, queue_size=100, backoff_initial_seconds=0.01).start()
    started = time.monotonic()
    accepted = sum(sink.publish(record(decision_id=f"d{i}")) for i in range(5000))
    publishing = time.monotonic() - started
    sink.close(timeout_seconds=2)
    closing = time.monotonic() - started - publishing
    assert publishing < 1.0
    assert closing < 3.0
    assert accepted <= 101  # the queue, plus the one the sender holds
    assert sink.dropped >= 5000 - accepted
    assert sink.sent == 0
    assert sink.errors >= 1


def test_dead_udp_receiver_is_harmless() -> None:
    target = SyslogTarget(Transport.UDP, "127.0.0.1", free_port())
    with running(SyslogSink(target)) as sink:
        for i in range(50):
            sink.publish(record(decision_id=f"d{i}"))
    assert sink.dropped + sink.sent == 50


def test_stalled_tcp_receiver_never_blocks_the_publisher() -> None:
    """A collector that never reads fills the socket buffers; publish stays instant."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        target = SyslogTarget(Transport.TCP, "127.0.0.1", listener.getsockname()[1])
        sink = SyslogSink(target, queue_size=50, timeout_seconds=0.2).start()
        big = record(arguments={"blob": "x" * 60_000})
        started = time.monotonic()
        for _ in range(500):
            sink.publish(big)
        assert time.monotonic() - started < 1.0
        sink.close(timeout_seconds=1)
    assert sink.dropped > 0


def test_tcp_sender_reconnects_when_the_receiver_comes_back() -> None:
    port = free_port()
    target = SyslogTarget(Transport.TCP, "127.0.0.1", port)
    sink = SyslogSink(target, backoff_initial_seconds=0.02, backoff_max_seconds=0.1)
    failed = threading.Event()
    watcher = EventOnLog(failed)
    logging.getLogger("lictor.notify.syslog").addHandler(watcher)
    try:
        with running(sink):
            sink.publish(record(decision_id="early"))
            assert failed.wait(5), "the first connection attempt should fail"
            assert_reconnects(sink, port)
    finally:
        logging.getLogger("lictor.notify.syslog").removeHandler(watcher)


class EventOnLog(logging.Handler):
    """Sets an event when the sink logs a failed delivery: a wait with no sleep."""

    def __init__(self, event: threading.Event) -> None:
        super().__init__()
        self._event = event

    def emit(self, record: logging.LogRecord) -> None:
        if "failed" in record.getMessage():
            self._event.set()


def assert_reconnects(sink: SyslogSink, port: int) -> None:
    """Receive the queued message, then survive the receiver hanging up and coming back."""
    with receiver(Transport.TCP, port) as (_, received):
        first = parse_rfc5424(received.get(timeout=5))
        assert first.sd[SD_ID]["decision_id"] == "early"
    # The receiver is gone again; the sink notices the hang-up and reconnects later.
    with receiver(Transport.TCP, port) as (_, received):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            sink.publish(record(decision_id="late"))
            try:
                message = parse_rfc5424(received.get(timeout=0.2))
            except queue.Empty:
                continue
            assert message.sd[SD_ID]["decision_id"] == "late"
            break
        else:
            pytest.fail("no message after the receiver came back")


def test_publish_after_close_is_dropped() -> None:
    sink = SyslogSink(SyslogTarget(Transport.UDP, "127.0.0.1", free_port()))
    sink.publish(record())
    sink.close()
    assert sink.publish(record()) is False
    assert sink.dropped == 2  # the queued one (never started) and the late one
