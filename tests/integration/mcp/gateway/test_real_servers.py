"""The gateway as a real process in front of real MCP servers nobody here wrote.

Upstreams: ``mcp-server-time`` (PyPI, a dev dependency) and
``@modelcontextprotocol/server-filesystem`` (npm, installed pinned into
``<repo>/.cache/npm`` by a session fixture). The client is the MCP SDK's, over stdio
(it starts ``lictor mcp-proxy serve``) and over streamable HTTP (``--transport http``).
What a denied call would have done is checked on the upstream's side: the file system.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import mcp.types as types
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from lictor.service.audit_ops import verify_trail
from lictor.store import open_store

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

REPO = Path(__file__).resolve().parents[4]
DATA = Path(__file__).resolve().parent / "data"
FILESYSTEM_PACKAGE = "@modelcontextprotocol/server-filesystem"
FILESYSTEM_VERSION = "2026.8.31"
NPM_CACHE = REPO / ".cache" / "npm"


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the real-server tests are mandatory)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def filesystem_entry() -> Path:
    """The pinned filesystem server's entry point, installed once into the repo cache."""
    npm = shutil.which("npm")
    node = shutil.which("node")
    if npm is None or node is None:
        _missing("npm and node are needed for @modelcontextprotocol/server-filesystem")
    package = NPM_CACHE / "node_modules" / FILESYSTEM_PACKAGE
    manifest = package / "package.json"
    installed = json.loads(manifest.read_text())["version"] if manifest.exists() else None
    if installed != FILESYSTEM_VERSION:
        subprocess.run(  # noqa: S603 - fixed arguments
            [
                str(npm),
                "install",
                "--prefix",
                str(NPM_CACHE),
                "--no-audit",
                "--no-fund",
                f"{FILESYSTEM_PACKAGE}@{FILESYSTEM_VERSION}",
            ],
            check=True,
            timeout=300,
            capture_output=True,
        )
    return package / "dist" / "index.js"


@pytest.fixture(scope="session")
def time_server() -> Path:
    found = shutil.which("mcp-server-time", path=str(Path(sys.executable).parent))
    if found is None:
        _missing("mcp-server-time is not installed (pip install -e '.[dev]')")
    return Path(str(found))


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, filesystem_entry: Path, time_server: Path
) -> dict[str, Path]:
    """A sandbox directory and a gateway config fronting both real servers."""
    root = tmp_path_factory.mktemp("gateway")
    sandbox = root / "sandbox"
    (sandbox / "protected").mkdir(parents=True)
    (sandbox / "readme.txt").write_text("hello from the sandbox\n")
    config = root / "gateway.toml"
    token_digest = hashlib.sha256(b"clock-token").hexdigest()
    config.write_text(
        f"""
[gateway]
call_timeout_seconds = 20
connect_timeout_seconds = 60

[identity]
agent_id = "notes-agent"
[[identity.tokens]]
agent_id = "clock-only"
sha256 = "{token_digest}"

[lictor]
policies = {json.dumps(str(DATA / "policies"))}
agents = {json.dumps(str(DATA / "agents.yaml"))}
audit_store = {json.dumps("sqlite:///" + str(root / "audit.db"))}

[[upstreams]]
name = "time"
command = {json.dumps(str(time_server))}
args = ["--local-timezone", "UTC"]
labels = ["public"]

[[upstreams]]
name = "fs"
command = {json.dumps(shutil.which("node") or "node")}
args = [{json.dumps(str(filesystem_entry))}, {json.dumps(str(sandbox))}]
"""
    )
    return {"config": config, "sandbox": sandbox, "audit": root / "audit.db"}


def gateway_command(config: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "lictor.cli.mcp", "serve", "--config", str(config), *extra]


@pytest.fixture(scope="module")
def http_gateway(deployment: dict[str, Path]) -> Iterator[str]:
    """``lictor mcp-proxy serve --transport http`` on a free loopback port."""
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        gateway_command(deployment["config"], "--transport", "http", "--port", "0"),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert line.startswith("listening on "), line
        yield line.removeprefix("listening on ").strip()
    finally:
        process.terminate()
        process.wait(timeout=20)
        if process.stderr is not None:
            process.stderr.close()


@asynccontextmanager
async def http_client(url: str, token: str | None = None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http), read_timeout_seconds=60) as client,
    ):
        yield client


@pytest.fixture(params=["stdio", "http"])
def session(request: pytest.FixtureRequest, deployment: dict[str, Path]) -> Any:
    """Open a client session to the gateway over stdio or streamable HTTP."""
    if request.param == "stdio":
        command = gateway_command(deployment["config"])
        params = StdioServerParameters(command=command[0], args=command[1:])
        return lambda: Client(params, read_timeout_seconds=60)
    url = request.getfixturevalue("http_gateway")
    return lambda: http_client(url)


def text_of(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def test_real_servers_through_the_gateway(session: Any, deployment: dict[str, Path]) -> None:
    sandbox = deployment["sandbox"]
    transport = "stdio" if "stdio" in repr(session) else "http"
    note = sandbox / f"note-{transport}.txt"
    protected = sandbox / "protected" / f"evil-{transport}.txt"
    async with session() as client:
        listed = {t.name for t in (await client.list_tools()).tools}
        assert {
            "time.get_current_time",
            "fs.read_text_file",
            "fs.write_file",
            "fs.list_directory",
        } <= listed
        # Denied outright or never allowed: not offered to the model.
        assert "time.convert_time" not in listed
        assert "fs.edit_file" not in listed

        now = await client.call_tool("time.get_current_time", {"timezone": "Europe/Amsterdam"})
        assert not now.is_error
        assert now.structured_content is not None
        assert now.structured_content["timezone"] == "Europe/Amsterdam"

        read = await client.call_tool("fs.read_text_file", {"path": str(sandbox / "readme.txt")})
        assert "hello from the sandbox" in text_of(read)

        wrote = await client.call_tool("fs.write_file", {"path": str(note), "content": "ok"})
        assert not wrote.is_error, text_of(wrote)
        assert note.read_text() == "ok"

        refused = await client.call_tool(
            "fs.write_file", {"path": str(protected), "content": "pwned"}
        )
        assert refused.is_error
        assert "read-only for agents" in text_of(refused)
        assert not protected.exists()

        held = await client.call_tool(
            "fs.move_file", {"source": str(note), "destination": str(sandbox / "moved.txt")}
        )
        assert held.is_error
        assert "review" in text_of(held)
        assert note.exists()

        denied = await client.call_tool(
            "time.convert_time",
            {"source_timezone": "UTC", "time": "10:00", "target_timezone": "Asia/Tokyo"},
        )
        assert denied.is_error
        assert "not part of this task" in text_of(denied)


async def test_http_clients_are_identified_by_bearer_token(http_gateway: str) -> None:
    async with http_client(http_gateway, token="clock-token") as client:  # noqa: S106 - a test token
        listed = {t.name for t in (await client.list_tools()).tools}
        assert listed == {"time.get_current_time"}
        refused = await client.call_tool("fs.list_allowed_directories", {})
        assert refused.is_error
        assert "not among the tools" in text_of(refused)
    async with httpx2.AsyncClient() as raw:
        response = await raw.post(
            http_gateway,
            headers={"Authorization": "Bearer wrong", "Accept": "application/json"},
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        )
        assert response.status_code == 401
        malformed = await raw.post(
            http_gateway,
            headers={
                "Accept": "application/json, text/event-stream",
                "Content-Type": "application/json",
            },
            content=b"{not json",
        )
        assert malformed.status_code == 400
        assert malformed.json()["error"]["code"] == -32700
    # The gateway keeps serving.
    async with http_client(http_gateway) as client:
        assert (
            await client.call_tool("time.get_current_time", {"timezone": "UTC"})
        ).is_error is False


def test_the_trail_of_the_real_sessions_verifies(deployment: dict[str, Path]) -> None:
    store = open_store("sqlite:///" + str(deployment["audit"]))
    try:
        records = list(store.audit.records())
        report = verify_trail(store.audit, None)
    finally:
        store.close()
    assert report.ok, report.error
    decided = {(r.payload.get("tool"), r.payload.get("outcome")) for r in records}
    assert ("fs.write_file", "deny") in decided
    assert ("fs.write_file", "allow") in decided
    assert ("fs.move_file", "review") in decided
    assert any(r.payload.get("kind") == "result" for r in records)
    events = {r.payload.get("event") for r in records if r.payload.get("kind") == "rejected"}
    assert {"unauthenticated", "malformed_request"} <= events
