"""The gateway in remote mode: decisions and reports go to a real ``lictor serve`` app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from lictor.mcp_proxy.config import parse_config
from lictor.mcp_proxy.proxy import Gateway, RemoteSource, UpstreamLink
from lictor.sdk import AsyncLictorClient
from lictor.server.app import create_app
from lictor.server.runtime import Runtime
from lictor.service.memory import FixedClock
from lictor.service.ports import CredentialKind, Role
from lictor.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

DATA = Path(__file__).resolve().parent / "data"


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
async def remote_gateway(
    runtime: Runtime, tmp_path: Path, stub: Any
) -> AsyncIterator[tuple[Gateway, Runtime]]:
    issue = runtime.credentials.issue
    agent_token = issue(CredentialKind.AGENT, "clock-only", Role.AGENT).token
    reader_token = issue(CredentialKind.ADMIN, "audrey", Role.AUDITOR).token
    config = parse_config(
        {
            "gateway": {"manifest": str(tmp_path / "pins.json"), "call_timeout_seconds": 2},
            "identity": {"agent_id": "clock-only"},
            "lictor": {"mode": "remote", "url": "http://lictor.test", "token": agent_token},
            "upstreams": [{"name": "stub", "command": "unused"}],
        }
    )
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://lictor.test") as http:
        client = AsyncLictorClient(token=agent_token, http=http)
        source = RemoteSource(client, config.identity, reader=client.with_token(reader_token))
        link = UpstreamLink(config.upstreams[0], lambda: Client(stub.server()), connect_timeout=5)
        gateway = Gateway(config, source, links={"stub": link})
        async with gateway.running():
            yield gateway, runtime


async def test_remote_decisions_govern_calls(remote_gateway: Any, stub: Any) -> None:
    gateway, runtime = remote_gateway
    async with Client(gateway.server()) as client:
        # clock-only's inventory grants no stub tool: the reader credential filters them.
        assert (await client.list_tools()).tools == []
        refused = await client.call_tool("stub.echo", {"text": "hi"})
    assert refused.is_error
    assert stub.called("echo") == []
    kinds = [
        (r.payload.get("kind"), r.payload.get("outcome")) for r in runtime.store.audit.records()
    ]
    assert ("decision", "deny") in kinds


async def test_remote_allow_is_forwarded_and_reported(
    remote_gateway: Any, stub: Any, runtime: Runtime
) -> None:
    gateway, runtime = remote_gateway
    notes_token = runtime.credentials.issue(CredentialKind.AGENT, "notes-agent", Role.AGENT).token
    resolved = gateway.source.resolve(notes_token)
    assert resolved is not None
    from lictor.mcp_proxy.translate import Caller

    result = await gateway.call_tool(
        Caller(None, "s-9"), resolved.decider, "stub.echo", {"text": "x"}
    )
    assert not result.is_error
    assert stub.called("echo") == [{"text": "x"}]
    await gateway.settle(every=True)
    payloads = [r.payload for r in runtime.store.audit.records()]
    [decision] = [p for p in payloads if p.get("kind") == "decision"]
    assert (decision["agent_id"], decision["session_id"], decision["outcome"]) == (
        "notes-agent",
        "s-9",
        "allow",
    )
    assert [p["status"] for p in payloads if p.get("kind") == "result"] == ["ok"]


async def test_gateway_events_reach_the_remote_trail(remote_gateway: Any, stub: Any) -> None:
    gateway, runtime = remote_gateway
    async with Client(gateway.server()) as client:
        with pytest.raises(MCPError):
            await client.call_tool("stub.no_such_tool", {})
    events = [
        r.payload for r in runtime.store.audit.records() if r.payload.get("event") == "unknown_tool"
    ]
    assert len(events) == 1
    assert events[0]["kind"] == "rejected"
    assert events[0]["agent_id"] == "clock-only"
    assert events[0]["tool"] == "stub.no_such_tool"
