"""Fixtures for the SDK against the real HTTP app: a Runtime on SQLite, tokens, clients.

``client`` is parametrized over the two clients (sync over Starlette's TestClient,
async over httpx's ASGI transport), so each test body runs against both; ``ask`` calls
a client method and awaits it when the client is async.
"""

from __future__ import annotations

import inspect
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from lictor.sdk import AsyncLictorClient, LictorClient
from lictor.server.app import create_app
from lictor.server.runtime import Runtime
from lictor.service.memory import FixedClock
from lictor.service.ports import CredentialKind, Role
from lictor.settings import Settings

REPO = Path(__file__).resolve().parents[3]
SUPPORT = REPO / "examples" / "support"
# A Wednesday, 10:00 in London: inside the support policy's hours.
NOW = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)
MARIA = {"id": "maria@corp.example", "groups": ["support"], "attributes": {}}


@pytest.fixture
def anyio_backend() -> str:
    # The Governor awaits its group commit with asyncio.wrap_future.
    return "asyncio"


@dataclass(frozen=True)
class Tokens:
    agent: str
    admin: str
    auditor: str


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(
        data_dir=tmp_path / "data",
        store_url=f"sqlite:///{(tmp_path / 'lictor.db').as_posix()}",
        policies=SUPPORT / "policies",
        agents=SUPPORT / "agents.yaml",
        checkpoint_seconds=3600,
    )
    opened = Runtime.open(settings, clock=FixedClock(NOW))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def tokens(runtime: Runtime) -> Tokens:
    issue = runtime.credentials.issue
    return Tokens(
        agent=issue(CredentialKind.AGENT, "support-agent", Role.AGENT).token,
        admin=issue(CredentialKind.ADMIN, "alice", Role.ADMIN).token,
        auditor=issue(CredentialKind.ADMIN, "audrey", Role.AUDITOR).token,
    )


ClientFactory = Any  # (token: str | None) -> LictorClient | AsyncLictorClient


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port, in a thread (httpx's pattern)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:  # uvicorn offers a flag, not an event, across threads
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.005)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(params=["sync", "async"])
async def client_for(
    request: pytest.FixtureRequest, runtime: Runtime
) -> AsyncIterator[ClientFactory]:
    """Return a factory of clients for a token, over one of the two clients.

    The sync client talks real HTTP to uvicorn on loopback; the async one goes through
    httpx's in-process ASGI transport.
    """
    app = create_app(runtime)
    if request.param == "sync":
        opened: list[LictorClient] = []
        with serve_in_thread(app) as url:

            def make_sync(token: str | None) -> LictorClient:
                made = LictorClient(url, token)
                opened.append(made)
                return made

            yield make_sync
            for made in opened:
                made.close()
        return
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://lictor.test") as ahttp:

        def make_async(token: str | None) -> AsyncLictorClient:
            return AsyncLictorClient(token=token, http=ahttp)

        yield make_async


async def ask(client: Any, method: str, *args: Any, **kwargs: Any) -> Any:
    """Call ``client.method``; await the result if the client is async."""
    result = getattr(client, method)(*args, **kwargs)
    if inspect.isawaitable(result):
        return await result
    if inspect.isasyncgen(result):
        return [item async for item in result]
    if inspect.isgenerator(result):
        return list(result)
    return result


@pytest.fixture
def call() -> Any:
    return ask
