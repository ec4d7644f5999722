"""Real receivers on loopback for the sink tests: HTTP, syslog (UDP, TCP) and SMTP."""

from __future__ import annotations

import contextlib
import queue
import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

POLICY = """
rules:
  - id: ops/read
    match: {tools: [read]}
    effect: allow
  - id: ops/honeypot
    match: {tools: [honeypot]}
    effect: allow
  - id: ops/no-delete
    match: {tools: [delete]}
    effect: deny
    severity: high
    message: never delete
  - id: ops/no-print
    match: {tools: [print]}
    effect: deny
    severity: low
"""

INVENTORY = """
agents:
  - id: bot
    owner: ops@corp.example
    purpose: housekeeping
    allowed_tools: [read, delete, print, honeypot]
  - id: other
    owner: ops@corp.example
    purpose: housekeeping
    allowed_tools: [read, delete, print, honeypot]
"""


def write_bundle(root: Path) -> tuple[Path, Path]:
    """Write the test policy and inventory; return (policies dir, inventory file)."""
    policies = root / "policies"
    policies.mkdir()
    (policies / "ops.yaml").write_text(POLICY, encoding="utf-8")
    inventory = root / "agents.yaml"
    inventory.write_text(INVENTORY, encoding="utf-8")
    return policies, inventory


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpReceiver:
    """What the receiver got, and how it answers: ``status``, or hang until ``release``."""

    url: str
    requests: queue.Queue[Received] = field(default_factory=queue.Queue)
    status: int = 200
    hang: bool = False
    release: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)
    served: int = 0


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        receiver.requests.put(Received(self.path, dict(self.headers.items()), body))
        receiver.arrived.set()
        if receiver.hang:
            receiver.release.wait(30)
        receiver.served += 1
        self.send_response(receiver.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read the queue, not stderr."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: HttpReceiver


@contextmanager
def http_receiver(**options: Any) -> Iterator[HttpReceiver]:
    server = _Server(("127.0.0.1", 0), _Handler)
    receiver = HttpReceiver(url=f"http://127.0.0.1:{server.server_address[1]}/hook", **options)
    server.receiver = receiver
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def udp_receiver() -> Iterator[tuple[int, queue.Queue[bytes]]]:
    received: queue.Queue[bytes] = queue.Queue()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                received.put(sock.recvfrom(65535)[0])

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield sock.getsockname()[1], received
    finally:
        stop.set()
        thread.join(5)
        sock.close()


class _OctetCounting(socketserver.StreamRequestHandler):
    """Read ``MSG-LEN SP SYSLOG-MSG`` frames (RFC 6587 §3.4.1) until the sender hangs up."""

    def handle(self) -> None:
        while True:
            digits = b""
            while (byte := self.rfile.read(1)) not in (b" ", b""):
                digits += byte
            if not digits:
                return
            self.server.received.put(self.rfile.read(int(digits)))  # type: ignore[attr-defined]  # set below


class _Tcp(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    received: queue.Queue[bytes]


@contextmanager
def tcp_receiver() -> Iterator[tuple[int, queue.Queue[bytes]]]:
    server = _Tcp(("127.0.0.1", 0), _OctetCounting)
    server.received = queue.Queue()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.server_address[1], server.received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class Mailbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: queue.Queue[tuple[str, list[str], bytes]] = queue.Queue()
        self.reject_with: str | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.reject_with is not None:
            return self.reject_with
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        self.messages.put((str(envelope.mail_from), list(envelope.rcpt_tos), content))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def smtp_server() -> Iterator[tuple[int, Mailbox]]:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, mailbox
    finally:
        controller.stop()
