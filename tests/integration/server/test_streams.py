"""Committed audit records reach syslog, and decisions reach the tracer, from the server."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest

from lictor.core.decisions import Decision
from lictor.core.requests import ActionRequest
from lictor.server.app import create_app
from lictor.server.runtime import Runtime
from lictor.service.memory import FixedClock
from lictor.service.ports import CredentialKind, Role
from lictor.settings import Settings

from .support import FINANCE, bearer

pytestmark = pytest.mark.anyio


class RecordingTracer:
    def __init__(self) -> None:
        self.spans: list[tuple[str, str]] = []

    def record(
        self, request: ActionRequest, decision: Decision, *, start_time_ns: int | None = None
    ) -> None:
        self.spans.append((request.tool, decision.outcome.value))

    def shutdown(self) -> None:
        return None


async def test_a_decision_is_streamed_to_a_real_syslog_receiver(
    tmp_path: Path, clock: FixedClock
) -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    port = receiver.getsockname()[1]
    settings = Settings(
        data_dir=tmp_path / "data",
        policies=FINANCE / "policies",
        agents=FINANCE / "agents.yaml",
        syslog=f"udp://127.0.0.1:{port}",
        checkpoint_seconds=3600,
    )
    runtime = Runtime.open(settings, clock=clock)
    try:
        token = runtime.credentials.issue(CredentialKind.AGENT, "payments-bot", Role.AGENT).token
        transport = httpx.ASGITransport(app=create_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://lictor.test") as http:
            response = await http.post(
                "/v1/decide", json={"tool": "get_invoice"}, headers=bearer(token)
            )
        decision_id = response.json()["decision_id"]
        message = ""
        while f'decision_id="{decision_id}"' not in message:  # start-up records come first
            message = receiver.recv(65536).decode("utf-8")
        body = json.loads(message.split("\ufeff", 1)[1])
        assert body["payload"]["tool"] == "get_invoice"
        assert body["payload"]["outcome"] == "allow"
    finally:
        runtime.close()
        receiver.close()


async def test_every_decision_is_traced(runtime: Runtime, tokens: object) -> None:
    tracer = RecordingTracer()
    runtime.governor._tracing = tracer  # swap the tracer the runtime built
    token = runtime.credentials.issue(CredentialKind.AGENT, "payments-bot", Role.AGENT).token
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://lictor.test") as http:
        await http.post("/v1/decide", json={"tool": "get_invoice"}, headers=bearer(token))
        await http.post("/v1/decide", json={"tool": "delete_all"}, headers=bearer(token))
    assert tracer.spans == [("get_invoice", "allow"), ("delete_all", "deny")]
