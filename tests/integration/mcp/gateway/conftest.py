"""Fixtures for the MCP gateway: a stub upstream, an in-process gateway, downstream transports.

The ``connect`` fixture is the MCP SDK's pattern: each test body is written once and
runs over every downstream transport (in-process dispatch, JSON-RPC over memory
streams, and the gateway's own newline-framed stdio server over a memory pipe).
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest
from mcp import Client
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.shared.message import SessionMessage

from lictor.mcp_proxy.config import ProxyConfig, parse_config
from lictor.mcp_proxy.proxy import (
    Gateway,
    InProcessSource,
    UpstreamLink,
    default_opener,
    open_source,
    serve_lines,
)
from lictor.service.memory import MemoryAudit

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
STUB_SCRIPT = HERE / "stub_server.py"


@pytest.fixture
def anyio_backend() -> str:
    # The Governor awaits its group commit with asyncio.wrap_future.
    return "asyncio"


@dataclass
class StubUpstream:
    """An in-process upstream MCP server that records every call it receives."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    descriptions: dict[str, str] = field(
        default_factory=lambda: {
            "echo": "Return the text it is given.",
            "secret": "Read the deployment secret.",
            "held": "Do something a person must approve.",
            "hang": "Never answer.",
            "big": "Return a large text.",
            "fail": "Always fail.",
        }
    )

    def server(self) -> Server[Any]:
        async def list_tools(
            ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
        ) -> types.ListToolsResult:
            schema = {"type": "object", "properties": {"text": {"type": "string"}}}
            return types.ListToolsResult(
                tools=[
                    types.Tool(name=name, description=text, input_schema=schema)
                    for name, text in self.descriptions.items()
                ]
            )

        async def call_tool(
            ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
        ) -> types.CallToolResult:
            arguments = dict(params.arguments or {})
            self.calls.append((params.name, arguments))
            if params.name == "hang":
                await anyio.sleep_forever()
            if params.name == "fail":
                return types.CallToolResult(
                    content=[types.TextContent(type="text", text="it failed")], is_error=True
                )
            text = "x" * 100_000 if params.name == "big" else json.dumps(arguments)
            return types.CallToolResult(content=[types.TextContent(type="text", text=text)])

        return Server("stub", on_list_tools=list_tools, on_call_tool=call_tool)

    def called(self, name: str) -> list[dict[str, Any]]:
        return [arguments for tool, arguments in self.calls if tool == name]


def gateway_config(tmp_path: Path, labels: tuple[str, ...] = (), **gateway: Any) -> ProxyConfig:
    return parse_config(
        {
            "gateway": {
                "manifest": str(tmp_path / "pins.json"),
                "call_timeout_seconds": 1,
                "connect_timeout_seconds": 10,
                **gateway,
            },
            "identity": {
                "agent_id": "notes-agent",
                "tokens": [
                    {"agent_id": "clock-only", "sha256": _sha256("clock-token")},
                ],
            },
            "lictor": {
                "policies": str(DATA / "policies"),
                "agents": str(DATA / "agents.yaml"),
            },
            "upstreams": [
                {
                    "name": "stub",
                    "command": sys.executable,
                    "args": [str(STUB_SCRIPT)],
                    "labels": list(labels),
                },
            ],
        }
    )


def _sha256(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Harness:
    """A running gateway over the stub, and what the tests look at."""

    gateway: Gateway
    stub: StubUpstream
    audit: MemoryAudit

    def events(self, event: str) -> list[Mapping[str, Any]]:
        return [e for e in self.audit.entries if e.get("event") == event]

    def decisions(self, tool: str) -> list[Mapping[str, Any]]:
        return [e for e in self.audit.entries if e.get("kind") == "decision" and e["tool"] == tool]

    async def results(self) -> list[Mapping[str, Any]]:
        await self.gateway.settle(every=True)  # reports are sent in the background
        return [e for e in self.audit.entries if e.get("kind") == "result"]


@pytest.fixture
def stub() -> StubUpstream:
    return StubUpstream()


@pytest.fixture
def make_harness(
    tmp_path: Path, stub: StubUpstream
) -> Callable[..., AbstractAsyncContextManager[Harness]]:
    """Build and run a gateway over the in-process stub (options override [gateway])."""

    @asynccontextmanager
    async def build(**gateway: Any) -> AsyncIterator[Harness]:
        config = gateway_config(tmp_path, **gateway)
        link = UpstreamLink(config.upstreams[0], lambda: Client(stub.server()), connect_timeout=5)
        async with open_source(config) as source:
            assert isinstance(source, InProcessSource)
            audit = source.governor.audit
            assert isinstance(audit, MemoryAudit)
            gw = Gateway(config, source, links={"stub": link})
            async with gw.running():
                yield Harness(gw, stub, audit)

    return build


@pytest.fixture
async def harness(
    make_harness: Callable[..., AbstractAsyncContextManager[Harness]],
) -> AsyncIterator[Harness]:
    async with make_harness() as running:
        yield running


@pytest.fixture
def crashable_link(tmp_path: Path) -> Callable[[ProxyConfig], UpstreamLink]:
    """A link to the wire-level stub process (starts in milliseconds, can crash and hang)."""
    log = tmp_path / "upstream-calls.jsonl"

    def build(config: ProxyConfig) -> UpstreamLink:
        upstream = config.upstreams[0]
        upstream = type(upstream)(
            name=upstream.name, command=sys.executable, args=(str(STUB_SCRIPT), str(log))
        )
        return UpstreamLink(upstream, default_opener(upstream), connect_timeout=10)

    return build


# -- downstream transports ---------------------------------------------------------------------


@asynccontextmanager
async def line_transport(
    gateway: Gateway, max_message_bytes: int = 4 * 1024 * 1024
) -> AsyncIterator[tuple[Any, Any, Callable[[bytes], Any]]]:
    """Client streams over the gateway's newline-framed server, through a memory pipe.

    Also yields ``raw``: an awaitable sender of arbitrary bytes into the pipe, for
    malformed-input tests.
    """
    to_gateway, gateway_input = anyio.create_memory_object_stream[bytes](64)
    from_gateway_send, from_gateway = anyio.create_memory_object_stream[bytes](64)
    client_read_send, client_read = anyio.create_memory_object_stream[SessionMessage | Exception](
        64
    )
    client_write, client_write_receive = anyio.create_memory_object_stream[SessionMessage](64)

    async def gateway_side() -> None:
        async with gateway_input, from_gateway_send:
            await serve_lines(
                gateway, gateway_input, from_gateway_send, max_message_bytes=max_message_bytes
            )

    async def pump_out() -> None:
        async with client_write_receive, to_gateway:
            async for message in client_write_receive:
                line = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                await to_gateway.send(line.encode() + b"\n")

    async def pump_in() -> None:
        async with client_read_send, from_gateway:
            async for line in from_gateway:
                parsed = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                await client_read_send.send(SessionMessage(parsed))

    async with anyio.create_task_group() as group:
        group.start_soon(gateway_side)
        group.start_soon(pump_out)
        group.start_soon(pump_in)
        async with client_read, client_write:
            yield client_read, client_write, to_gateway.send
        # Closing the client's write side ends the pipe, so the gateway sees end of input.


@asynccontextmanager
async def _line_client(gateway: Gateway) -> AsyncIterator[Client]:
    @asynccontextmanager
    async def transport() -> AsyncIterator[tuple[Any, Any]]:
        async with line_transport(gateway) as (read, write, _raw):
            yield read, write

    async with Client(transport(), mode="legacy") as client:
        yield client


Connect = Callable[[Gateway], AbstractAsyncContextManager[Client]]


@pytest.fixture(params=["direct", "streams", "lines"])
def connect(request: pytest.FixtureRequest) -> Connect:
    """Open an MCP client session to a gateway over one downstream transport."""
    if request.param == "direct":
        return lambda gateway: Client(gateway.server())
    if request.param == "streams":
        return lambda gateway: Client(gateway.server(), mode="legacy")
    return _line_client


@pytest.fixture
def lines() -> Callable[..., AbstractAsyncContextManager[tuple[Any, Any, Any]]]:
    """:func:`line_transport`, for tests that send raw bytes."""
    return line_transport
