"""The gateway waits for a reviewer's verdict, over real HTTP on loopback to ``lictor serve``."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from mcp import Client

from lictor.mcp_proxy.config import parse_config
from lictor.mcp_proxy.proxy import Gateway, RemoteSource, UpstreamLink
from lictor.sdk import AsyncLictorClient
from lictor.server.app import create_app
from lictor.server.runtime import Runtime
from lictor.service.memory import FixedClock
from lictor.service.ports import CredentialKind, Role
from lictor.service.reviews import ReviewStatus, Verdict
from lictor.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

DATA = Path(__file__).resolve().parent / "data"


@contextmanager
def served(app: Any) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.005)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(
        data_dir=tmp_path / "data",
        store_url=f"sqlite:///{(tmp_path / 'lictor.db').as_posix()}",
        policies=DATA / "policies",
        agents=DATA / "agents.yaml",
        checkpoint_seconds=3600,
    )
    opened = Runtime.open(settings, clock=FixedClock(datetime(2026, 11, 25, 9, tzinfo=UTC)))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
async def gateway(runtime: Runtime, tmp_path: Path, stub: Any) -> AsyncIterator[Gateway]:
    token = runtime.credentials.issue(CredentialKind.AGENT, "notes-agent", Role.AGENT).token
    with served(create_app(runtime)) as url:
        config = parse_config(
            {
                "gateway": {
                    "manifest": str(tmp_path / "pins.json"),
                    "call_timeout_seconds": 2,
                    "review_timeout_seconds": 10,
                },
                "identity": {"agent_id": "notes-agent"},
                "lictor": {"mode": "remote", "url": url, "token": token},
                "upstreams": [{"name": "stub", "command": "unused"}],
            }
        )
        async with AsyncLictorClient(url, token) as client:
            source = RemoteSource(client, config.identity)
            link = UpstreamLink(
                config.upstreams[0], lambda: Client(stub.server()), connect_timeout=5
            )
            made = Gateway(config, source, links={"stub": link})
            async with made.running():
                yield made


@contextmanager
def reviewer(runtime: Runtime, verdict: Verdict) -> Iterator[None]:
    reviews = runtime.reviews
    assert reviews is not None

    def work() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pending = reviews.store.list(status=ReviewStatus.PENDING)
            if pending:
                reviews.resolve(pending[0].review_id, verdict, reviewer="rick", comment="looked")
                return
            time.sleep(0.02)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join(timeout=10)


async def test_an_approved_call_is_forwarded_once(
    gateway: Gateway, runtime: Runtime, stub: Any
) -> None:
    async with Client(gateway.server()) as client:
        with reviewer(runtime, Verdict.APPROVE):
            result = await client.call_tool("stub.held", {"text": "go"})
    assert not result.is_error, result
    assert stub.called("held") == [{"text": "go"}]
    assert runtime.reviews is not None
    assert [r.status for r in runtime.reviews.store.list(status=None)] == [ReviewStatus.CONSUMED]


async def test_a_denied_call_is_an_error_result_and_never_forwarded(
    gateway: Gateway, runtime: Runtime, stub: Any
) -> None:
    async with Client(gateway.server()) as client:
        with reviewer(runtime, Verdict.DENY):
            result = await client.call_tool("stub.held", {"text": "go"})
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]  # the gateway answers in text
    assert "reviewer denied" in text
    assert "looked" in text
    assert stub.called("held") == []
