"""The MCP gateway's streams: upstream connections, the MCP server it serves, stdio and HTTP.

Every decision about a message is made in :mod:`lictor.mcp_proxy.translate` and
:mod:`lictor.mcp_proxy.pins`; this module moves messages and keeps connections alive.

Invariants:

1. **Nothing reaches an upstream without ``allow``.** ``tools/call`` is forwarded only
   after Lictor answered ``allow`` for exactly this agent, tool and arguments. A decision
   that cannot be had (Lictor unreachable, the request malformed) refuses the call.
2. **The gateway outlives its upstreams.** An upstream that crashes or hangs costs the
   calls in flight an error answer (and an ``error`` result report); the next call
   reconnects. Nothing an upstream or a client sends stops the gateway.
3. **Every refusal is on record.** Decisions are audited by Lictor; what the gateway
   refuses by itself (unknown tool, oversized arguments, malformed message, a blocked
   tool definition, an unavailable upstream) is written to the Governor's audit trail
   as a ``rejected`` entry with an ``event`` field; in remote mode they go to
   ``POST /v1/events`` of ``lictor serve``, which writes the same entry.
4. **Results pass through; reports follow the answer.** An upstream's result is checked
   against the MCP schema and forwarded as it came (its output schema is the client's
   to check: the gateway lists it unchanged). Its result report is made after the
   answer has gone out, and every report queued is sent before the gateway stops.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import os
import select
import socket
import stat
import sys
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Protocol, TextIO

import anyio
import anyio.abc
import anyio.lowlevel
import anyio.to_thread
import httpx2
import mcp.types as types
from mcp import Client, StdioServerParameters
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from mcp_types import (
    CONNECTION_CLOSED,
    HEADER_MISMATCH,
    INVALID_PARAMS,
    INVALID_REQUEST,
    JSONRPCError,
)
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lictor.core.agents import Agent
from lictor.core.decisions import Decision, Outcome, ResultReport, format_time
from lictor.errors import (
    ConfigError,
    InvalidToolCall,
    LictorError,
    ReviewDenied,
    ReviewExpired,
    ReviewTimeout,
    UpstreamError,
)
from lictor.mcp_proxy import translate
from lictor.mcp_proxy.config import IdentityConfig, Mode, ProxyConfig, UpstreamConfig
from lictor.mcp_proxy.pins import (
    Assessment,
    Manifest,
    PinEvent,
    load_manifest,
    save_manifest,
    tool_digest,
)
from lictor.mcp_proxy.pins import scan as scan_tool
from lictor.mcp_proxy.translate import Caller
from lictor.sdk.client import AsyncLictorClient
from lictor.sdk.deciders import (
    AsyncDecider,
    AsyncReviewWaiter,
    RequestLike,
    await_verdict_async,
    to_async,
)
from lictor.service.governor import Governor
from lictor.service.ids import new_ulid
from lictor.service.memory import MemoryAgents, MemoryAudit, SystemClock
from lictor.service.policies import load_bundle, load_inventory
from lictor.service.ports import AgentDirectory, AuditLog, Clock

log = logging.getLogger("lictor.mcp_proxy")

MCP_SESSION_HEADER = "mcp-session-id"
_UNLABELLED = object()  # the in-flight key of reports that no later decision depends on
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
REMOTE_AGENT_CACHE_SECONDS = 30.0
_CONNECTION_ERRORS = (
    anyio.ClosedResourceError,
    anyio.BrokenResourceError,
    anyio.EndOfStream,
    OSError,
)


# -- where decisions come from ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Resolved:
    """A caller's identity and the decider that speaks for it."""

    agent_id: str | None
    principal: str | None
    decider: AsyncDecider


class DecisionSource(Protocol):
    """What the gateway needs from Lictor besides decisions: identity, visibility, audit."""

    def resolve(self, token: str | None) -> Resolved | None:
        """Return who a bearer token (None: no token) stands for, or None to refuse."""
        ...

    async def may_see(self, agent_id: str | None, tool: str, server: str) -> bool:
        """Return whether ``tools/list`` shows ``tool`` to the agent."""
        ...

    async def record(self, entry: Mapping[str, Any]) -> None:
        """Put one gateway event on the audit trail (never raises)."""
        ...


def _token_agent(identity: IdentityConfig, token: str) -> str | None:
    digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
    for binding in identity.tokens:
        if hmac.compare_digest(binding.sha256, digest):
            return binding.agent_id
    return None


class _EmbeddedDecider:
    """The Governor as an async decider, without a thread hop where none is needed.

    Decisions go through ``decide_async`` (the audit commit is awaited on the loop).
    Reports to an in-memory audit log are made inline (``inline_reports``): handing
    microseconds of work to a worker thread, or even to a task of its own, costs more
    than the work. Reports to a durable log, which blocks until its commit, run in a
    worker thread.
    """

    def __init__(self, governor: Governor) -> None:
        self.governor = governor
        self._bridged = to_async(governor)
        self.inline_reports = isinstance(governor.audit, MemoryAudit)

    async def decide(self, request: RequestLike) -> Decision:
        return await self.governor.decide_async(request)

    async def report(self, result: ResultReport) -> None:
        if self.inline_reports:
            self.governor.report(result)
        else:
            await self._bridged.report(result)


class InProcessSource:
    """Decisions from an embedded Governor; the gateway's events go to its audit log."""

    def __init__(self, governor: Governor, agents: AgentDirectory, identity: IdentityConfig):
        self.governor = governor
        self.agents = agents
        self.identity = identity
        self._decider = _EmbeddedDecider(governor)
        agent, principal = identity.agent_id, identity.principal
        self._configured = None if agent is None else Resolved(agent, principal, self._decider)

    def resolve(self, token: str | None) -> Resolved | None:
        """A token is looked up by its SHA-256; no token means the configured agent."""
        if token is None:
            return self._configured
        agent = _token_agent(self.identity, token)
        if agent is None:
            return None
        return Resolved(agent, self.identity.principal, self._decider)

    async def may_see(self, agent_id: str | None, tool: str, server: str) -> bool:
        """Static visibility against the live policy and inventory (translate rule 2)."""
        agent = self.agents.get(agent_id) if agent_id else None
        return translate.is_visible(self.governor.policy, agent, agent_id or "", tool, server)

    async def record(self, entry: Mapping[str, Any]) -> None:
        """Submit to a group-commit writer without waiting, or append to a plain log."""
        audit: AuditLog = self.governor.audit
        submit = getattr(audit, "submit", None)
        try:
            if submit is not None:
                submit(entry)
            else:
                audit.append(entry)
        except LictorError:
            log.critical("audit store unavailable; gateway event not recorded: %s", entry)


class RemoteSource:
    """Decisions from ``lictor serve``; each HTTP client asks with its own bearer token.

    With a reader credential (an auditor's or admin's token) and a configured agent,
    ``tools/list`` is filtered by the agent's inventory grant; the server publishes no
    rule matches, so rule-based hiding is in-process only. Without one every pinned
    tool is listed, and each call is still decided.
    """

    def __init__(
        self,
        client: AsyncLictorClient,
        identity: IdentityConfig,
        *,
        reader: AsyncLictorClient | None = None,
        has_token: bool = True,
    ):
        self.client = client
        self.identity = identity
        self.reader = reader
        self._has_token = has_token
        self._clients: dict[str, AsyncLictorClient] = {}
        self._agents: dict[str, tuple[Agent | None, float]] = {}

    def resolve(self, token: str | None) -> Resolved | None:
        """No token: the configured credential; a token: that credential (checked by Lictor)."""
        if token is None:
            if not self._has_token:
                return None
            return Resolved(self.identity.agent_id, self.identity.principal, self.client)
        client = self._clients.get(token)
        if client is None:
            if len(self._clients) >= 1024:
                self._clients.clear()
            client = self._clients[token] = self.client.with_token(token)
        # The server takes the agent from the token; only ask for it by name when given.
        return Resolved(None, self.identity.principal, client)

    async def may_see(self, agent_id: str | None, tool: str, server: str) -> bool:
        """Filter by the inventory grant when a reader credential is configured."""
        agent_id = agent_id or self.identity.agent_id
        if self.reader is None or agent_id is None:
            return True
        now = anyio.current_time()
        cached = self._agents.get(agent_id)
        if cached is None or cached[1] < now:
            try:
                agent: Agent | None = await self.reader.get_agent(agent_id)
            except LictorError as exc:
                log.warning("cannot read agent %s for tools/list: %s", agent_id, exc)
                agent = None
            cached = (agent, now + REMOTE_AGENT_CACHE_SECONDS)
            self._agents[agent_id] = cached
        agent = cached[0]
        return agent is not None and agent.is_tool_allowed(tool)

    async def record(self, entry: Mapping[str, Any]) -> None:
        """Send the event to ``POST /v1/events`` with the configured agent credential.

        The server files it under that credential's agent and answers after the audit
        commit. If it cannot be recorded there, it is logged at CRITICAL with the whole
        entry, so the log still holds it.
        """
        event = {
            name: entry.get(name)
            for name in ("event", "problem", "tool", "server", "session_id", "detail")
        }
        try:
            await self.client.record_event(event)
        except LictorError as exc:
            log.critical("gateway event not on the remote audit trail (%s): %s", exc, dict(entry))


@asynccontextmanager
async def open_source(
    config: ProxyConfig, *, clock: Clock | None = None
) -> AsyncIterator[DecisionSource]:
    """Build the decision source the configuration names; close it on exit.

    Raises:
        ConfigError, PolicyError: the policies, inventory or store cannot be loaded.
    """
    lictor = config.lictor
    if lictor.mode is Mode.REMOTE:
        if lictor.url is None:
            raise ConfigError("lictor.url is required in remote mode")
        client = AsyncLictorClient(lictor.url, lictor.token)
        reader = client.with_token(lictor.reader_token) if lictor.reader_token is not None else None
        try:
            yield RemoteSource(
                client, config.identity, reader=reader, has_token=lictor.token is not None
            )
        finally:
            await client.aclose()
        return
    if lictor.policies is None:
        raise ConfigError("lictor.policies is required in in-process mode")
    clock = clock if clock is not None else SystemClock()
    bundle = load_bundle(lictor.policies)
    agents = MemoryAgents(load_inventory(lictor.agents) if lictor.agents is not None else [])
    async with AsyncExitStack() as stack:
        audit: AuditLog = MemoryAudit()
        if lictor.audit_store is not None:
            from lictor.service.audit_writer import AuditWriter
            from lictor.store import open_store

            store = open_store(lictor.audit_store)
            stack.callback(store.close)
            store.migrate()
            writer = AuditWriter(store.audit, clock).start()
            stack.callback(writer.close)
            audit = writer
        governor = Governor(bundle.policy, agents, audit=audit, clock=clock)
        yield InProcessSource(governor, agents, config.identity)


# -- upstream connections --------------------------------------------------------------------

Opener = Callable[[], AbstractAsyncContextManager[Client]]
"""Opens one upstream session (a connected ``mcp.Client``)."""


def default_opener(upstream: UpstreamConfig, errlog: TextIO | None = None) -> Opener:
    """Return the opener for a configured upstream: a stdio subprocess or an HTTP URL."""
    if upstream.command is not None:
        params = StdioServerParameters(
            command=upstream.command,
            args=list(upstream.args),
            env=dict(upstream.env) if upstream.env is not None else None,
            cwd=upstream.cwd,
        )

        def open_stdio() -> AbstractAsyncContextManager[Client]:
            # The response cache is off: a rug pull must show on the next tools/list.
            return Client(params, cache=None)

        return open_stdio

    url = upstream.url
    if url is None:
        raise ConfigError(f"upstream {upstream.name!r} has neither a command nor a url")

    @asynccontextmanager
    async def open_http() -> AsyncIterator[Client]:
        from mcp.client.streamable_http import streamable_http_client

        async with (
            httpx2.AsyncClient(headers=dict(upstream.headers)) as http,
            Client(streamable_http_client(url, http_client=http), cache=None) as client,
        ):
            yield client

    return open_http


class UpstreamLink:
    """One upstream MCP server, connected on demand and reconnected after a failure.

    ``supervise`` runs for the gateway's lifetime and owns the connection (anyio
    requires a context manager to be exited by the task that entered it); callers
    borrow the connected client through :meth:`client`.
    """

    def __init__(self, config: UpstreamConfig, opener: Opener, *, connect_timeout: float = 30.0):
        self.config = config
        self.name = config.name
        self._opener = opener
        self._connect_timeout = connect_timeout
        self._client: Client | None = None
        self._wanted = anyio.Event()
        self._drop = anyio.Event()
        self._attempt = anyio.Event()
        self.last_error: str | None = None

    async def supervise(self) -> None:
        """Connect whenever asked, until cancelled. Never raises (but for cancellation)."""
        while True:
            await self._wanted.wait()
            self._wanted = anyio.Event()
            connected = False
            deadline = anyio.current_time() + self._connect_timeout
            with anyio.CancelScope(deadline=deadline) as scope:
                try:
                    async with self._opener() as client:
                        scope.deadline = math.inf
                        self._client = client
                        self.last_error = None
                        connected = True
                        self._settle()
                        log.info("upstream %s connected", self.name)
                        await self._drop.wait()
                except Exception as exc:  # noqa: BLE001 - one upstream's top-level handler
                    self.last_error = _describe(exc)
                    log.warning("upstream %s failed: %s", self.name, self.last_error)
            self._client = None
            self._drop = anyio.Event()
            if not connected:
                if scope.cancelled_caught:
                    self.last_error = f"no connection within {self._connect_timeout:g} s"
                    log.warning("upstream %s: %s", self.name, self.last_error)
                self._settle()  # wake the callers waiting for this attempt

    def _settle(self) -> None:
        done, self._attempt = self._attempt, anyio.Event()
        done.set()

    def connect_soon(self) -> None:
        """Ask for a connection without waiting for it."""
        if self._client is None:
            self._wanted.set()

    async def client(self) -> Client:
        """Return the connected client, connecting first if needed.

        Raises:
            UpstreamError: the upstream cannot be reached or started.
        """
        client = self.current()
        if client is not None:
            return client
        attempt = self._attempt
        self._wanted.set()
        with anyio.move_on_after(self._connect_timeout + 1):
            await attempt.wait()
        client = self.current()
        if client is None:
            raise UpstreamError(
                f"upstream {self.name!r} is unavailable: {self.last_error or 'not connected'}"
            )
        return client

    def current(self) -> Client | None:
        """The connected client, if there is one now."""
        return self._client

    def drop(self, reason: str) -> None:
        """Tear the connection down (it broke); the next call reconnects.

        The client is forgotten at once, so no new call borrows a connection that is
        being closed (closing a stdio upstream can take a while: it is asked to exit,
        then terminated).
        """
        if self._client is not None:
            self._client = None
            self.last_error = reason
            self._drop.set()

    async def list_tools(self, timeout: float) -> list[types.Tool]:
        """Return every tool the upstream lists (all pages).

        Raises:
            UpstreamError: the upstream failed or did not answer in time.
        """
        tools: list[types.Tool] = []
        try:
            client = await self.client()
            with anyio.fail_after(timeout):
                cursor: str | None = None
                for _ in range(100):  # a paginator that never ends cannot hang the gateway
                    page = await client.list_tools(cursor=cursor)
                    tools.extend(page.tools)
                    cursor = page.next_cursor
                    if cursor is None:
                        break
        except TimeoutError:
            raise UpstreamError(f"upstream {self.name!r} did not list its tools in time") from None
        except MCPError as exc:
            self._drop_if_closed(exc)
            raise UpstreamError(f"upstream {self.name!r} failed to list tools: {exc}") from exc
        except _CONNECTION_ERRORS as exc:
            self.drop(_describe(exc))
            raise UpstreamError(f"upstream {self.name!r} is unavailable: {exc!r}") from exc
        return tools

    async def call_tool(
        self, name: str, arguments: Mapping[str, Any] | None, timeout: float
    ) -> types.CallToolResult:
        """Call one tool on the upstream and return its result as the upstream sent it.

        The result is checked against the MCP schema of the negotiated protocol version
        (a malformed answer is an :class:`UpstreamError`), but not against the tool's
        output schema. The gateway forwards the result and the tool's definition
        (``outputSchema`` included) unchanged, so the client that asked checks the one
        against the other (spec 2025-11-25, "Output Schema": clients SHOULD validate),
        and nothing the gateway enforces depends on that check. The SDK's
        ``Client.call_tool`` would check it here a second time, and would also re-list
        and resend after a header mismatch; the gateway re-lists itself, through its
        pins (see :meth:`Gateway.call_tool`).

        Raises:
            MCPError: the upstream answered with a JSON-RPC error (passed on as it is).
            UpstreamError: the upstream is unavailable, broke, timed out, or sent a
                malformed result.
        """
        client = await self.client()
        request = types.CallToolRequest(
            params=types.CallToolRequestParams(
                name=name, arguments=dict(arguments) if arguments is not None else None
            )
        )
        try:
            with anyio.fail_after(timeout):
                return await client.session.send_request(request, types.CallToolResult)
        except TimeoutError:
            # A stdio server that stopped answering usually stays stuck (it is single
            # threaded, or deadlocked): restart it rather than fail every later call.
            self.drop(f"no answer within {timeout:g} s")
            raise UpstreamError(
                f"upstream {self.name!r} did not answer within {timeout:g} s"
            ) from None
        except MCPError as exc:
            self._drop_if_closed(exc)
            if exc.code == CONNECTION_CLOSED:
                raise UpstreamError(f"upstream {self.name!r} closed the connection") from exc
            raise
        except _CONNECTION_ERRORS as exc:
            self.drop(_describe(exc))
            raise UpstreamError(f"upstream {self.name!r} broke: {exc!r}") from exc
        except ValidationError as exc:
            # Not a tools/call result (an input request the gateway cannot relay, or junk).
            raise UpstreamError(
                f"upstream {self.name!r} sent an invalid result ({exc.error_count()} errors)"
            ) from exc

    def _drop_if_closed(self, exc: MCPError) -> None:
        if exc.code == CONNECTION_CLOSED:
            self.drop(exc.message)


def _verdict_text(exc: ReviewDenied | ReviewExpired, tool: str) -> str:
    """Tell the model that a held call was denied by a person, or expired unreviewed."""
    review = exc.review
    if isinstance(exc, ReviewExpired):
        what = "nobody reviewed it before the review expired"
    elif review.status.value == "cancelled":
        what = f"the review was cancelled ({review.comment or 'no reason given'})"
    else:
        what = f"the reviewer denied it ({review.comment or 'no comment'})"
    return (
        f"Lictor refused this call to {tool}: {what}. The tool was not run. Do not retry "
        f"the same call. (decision {exc.decision.decision_id}, review {review.review_id})"
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


# -- result reports --------------------------------------------------------------------------


class _ReportQueue:
    """Result reports, sent after the answers they follow, off the calls' latency path.

    One worker takes the reports in order. A report to the embedded Governor with an
    in-memory audit log is a few microseconds of work, which the worker does itself
    (a task per report would cost more than the report); any other report (a thread
    hop to a durable log, an HTTP round trip) gets a task of its own, so a slow one
    never holds up the rest.
    """

    def __init__(self, send: Callable[[AsyncDecider, ResultReport], Awaitable[None]]) -> None:
        self._send = send
        self._backlog: deque[tuple[object, AsyncDecider, Callable[[], ResultReport]]] = deque()
        self._unsent: dict[object, int] = {}  # queued or in flight, by key
        self._wake: anyio.Event | None = None  # the idle worker waits on it
        self._done: anyio.Event | None = None  # made only when someone waits in settle
        self._closed = False

    def put(self, key: object, decider: AsyncDecider, make: Callable[[], ResultReport]) -> None:
        """Queue the report ``make()`` will build; :meth:`settle` can wait for a ``key``."""
        self._unsent[key] = self._unsent.get(key, 0) + 1
        self._backlog.append((key, decider, make))
        self._wake_worker()

    def close(self) -> None:
        """Let the worker return once everything queued has been sent."""
        self._closed = True
        self._wake_worker()

    def _wake_worker(self) -> None:
        wake, self._wake = self._wake, None
        if wake is not None:
            wake.set()

    async def run(self, group: anyio.abc.TaskGroup) -> None:
        """Send queued reports until closed and drained (slow ones as tasks in ``group``)."""
        while True:
            if not self._backlog:
                if self._closed:
                    return
                wake = self._wake = anyio.Event()
                await wake.wait()
                continue
            # The answer a report follows is being sent in this same turn of the event
            # loop; yielding first lets it go out before the report's work starts, and
            # yielding between reports lets a burst of them interleave with new calls.
            await anyio.lowlevel.checkpoint()
            key, decider, make = self._backlog.popleft()
            if isinstance(decider, _EmbeddedDecider) and decider.inline_reports:
                await self._send_one(key, decider, make)
            else:
                group.start_soon(self._send_one, key, decider, make)

    async def _send_one(
        self, key: object, decider: AsyncDecider, make: Callable[[], ResultReport]
    ) -> None:
        try:
            await self._send(decider, make())
        except Exception:  # the top-level handler of a background report
            # A report that cannot even be built (a result the audit cannot encode) must
            # not stop the gateway, which has already answered the call.
            log.exception("a result report could not be made")
        finally:
            left = self._unsent[key] - 1
            if left:
                self._unsent[key] = left
            else:
                del self._unsent[key]
            done, self._done = self._done, None
            if done is not None:
                done.set()

    async def settle(self, key: object, *, every: bool = False) -> None:
        """Wait until no report under ``key`` (or, with ``every``, none at all) is unsent."""
        while self._unsent if every else key in self._unsent:
            if self._done is None:
                self._done = anyio.Event()
            await self._done.wait()


# -- the gateway -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One tool the gateway knows: the upstream serving it and its upstream definition."""

    name: str
    upstream: UpstreamConfig
    tool: types.Tool
    digest: str


class Gateway:
    """Fronts the configured upstreams as one MCP server; every call is governed.

    Args:
        config: The gateway configuration.
        source: Where decisions, identities and audit entries go.
        links: Upstream connections by name (default: from the configuration).
        clock: For audit timestamps and pins.
        review_waiter: Called with a ``review`` decision to wait for a verdict. Without
            one, the gateway waits up to ``config.review_timeout_seconds`` through the
            decider (then decides the identical call again), or, when that is 0, answers
            the call as held for review.
    """

    def __init__(
        self,
        config: ProxyConfig,
        source: DecisionSource,
        *,
        links: Mapping[str, UpstreamLink] | None = None,
        clock: Clock | None = None,
        review_waiter: AsyncReviewWaiter | None = None,
        errlog: TextIO | None = None,
    ) -> None:
        self.config = config
        self.source = source
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.links: dict[str, UpstreamLink] = (
            dict(links)
            if links is not None
            else {
                u.name: UpstreamLink(
                    u, default_opener(u, errlog), connect_timeout=config.connect_timeout_seconds
                )
                for u in config.upstreams
            }
        )
        self.review_waiter = review_waiter
        self.run_session = f"mcp-{new_ulid(self.clock.now())}"
        self.catalog: dict[str, CatalogEntry] = {}
        self.verdicts: dict[str, Assessment] = {}
        self._listed: dict[str, list[types.Tool]] = {}
        # Read on first use, not here: constructors do no I/O (STYLE 7.4).
        self._manifest = Manifest()
        self._manifest_stamp: tuple[int, int] | None = None
        self._refresh_lock = anyio.Lock()
        self._reports: _ReportQueue | None = None

    # -- lifecycle ------------------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Gateway]:
        """Run the upstream supervisors (connecting eagerly) until the block exits.

        Result reports still in flight when the block exits are waited for, so a
        gateway that is stopped (stdin closed, SIGTERM) leaves no decision without its
        result on record.
        """
        async with anyio.create_task_group() as group:
            for link in self.links.values():
                group.start_soon(link.supervise)
                link.connect_soon()
            try:
                async with anyio.create_task_group() as sending:
                    reports = self._reports = _ReportQueue(self._report)
                    sending.start_soon(reports.run, sending)
                    try:
                        yield self
                    finally:
                        self._reports = None
                        reports.close()
            finally:
                group.cancel_scope.cancel()

    # -- events ---------------------------------------------------------------------------

    def _now(self) -> datetime:
        return self.clock.now()

    async def audit_event(
        self,
        event: str,
        problem: str,
        *,
        caller: Caller | None = None,
        tool: str | None = None,
        server: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Log a gateway event and put it on the audit trail."""
        log.warning("%s: %s (tool %s, agent %s)", event, problem, tool, caller and caller.agent_id)
        entry = translate.event_entry(
            event,
            problem,
            at=format_time(self._now()),
            agent_id=caller.agent_id if caller else None,
            tool=tool,
            server=server,
            session_id=caller.session_id if caller else None,
            detail=detail,
        )
        await self.source.record(entry)

    # -- the catalog and its pins -----------------------------------------------------------

    def _stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.config.manifest.stat()
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def _reload_manifest_if_changed(self) -> None:
        """Pick up approvals made while running (``lictor mcp-proxy approve`` or an edit)."""
        stamp = self._stamp()
        if stamp != self._manifest_stamp:
            self._manifest = load_manifest(self.config.manifest)
            self._manifest_stamp = stamp

    async def refresh(self) -> None:
        """List every upstream, pin and assess its tools, and rebuild the catalog.

        An upstream that cannot list keeps its last known tools (its calls will fail
        and say why); the failure is audited.
        """
        async with self._refresh_lock:
            failures: list[tuple[str, str]] = []

            async def fetch(link: UpstreamLink) -> None:
                try:
                    self._listed[link.name] = await link.list_tools(self._timeout_for(link.config))
                except UpstreamError as exc:
                    failures.append((link.name, str(exc)))

            async with anyio.create_task_group() as group:
                for link in self.links.values():
                    group.start_soon(fetch, link)
            for name, problem in failures:
                await self.audit_event("upstream_unavailable", problem, server=name)
            await self._assess_all()

    async def _assess_all(self) -> None:
        self._reload_manifest_if_changed()
        manifest = self._manifest
        catalog: dict[str, CatalogEntry] = {}
        verdicts: dict[str, Assessment] = {}
        events: list[tuple[Assessment, CatalogEntry]] = []
        for upstream in self.config.upstreams:
            for tool in self._listed.get(upstream.name, ()):
                name = translate.namespaced(upstream.name, tool.name, self.config.separator)
                schema = dict(tool.input_schema or {})
                digest = tool_digest(tool.name, tool.description, schema)
                entry = CatalogEntry(name, upstream, tool, digest)
                manifest, verdict = manifest.assess(
                    name,
                    digest,
                    scan_tool(tool.description, schema, tool.title),
                    trust_on_first_use=self.config.trust_on_first_use,
                    now=self._now(),
                )
                catalog[name] = entry
                verdicts[name] = verdict
                if verdict.event is not None:
                    events.append((verdict, entry))
        self.catalog, self.verdicts = catalog, verdicts
        if manifest is not self._manifest:
            self._manifest = manifest
            await anyio.to_thread.run_sync(save_manifest, self.config.manifest, manifest)
            self._manifest_stamp = self._stamp()
        for verdict, entry in events:
            event = verdict.event
            if event is None or event in (PinEvent.PINNED, PinEvent.RESTORED):
                log.info("%s: %s %s", event, entry.name, entry.digest)
                continue
            await self.audit_event(
                event.value,
                f"tool {entry.name} blocked: {verdict.reason}",
                tool=entry.name,
                server=entry.upstream.name,
                detail={
                    "digest": entry.digest,
                    "findings": [f.to_json() for f in verdict.findings],
                },
            )

    @property
    def manifest(self) -> Manifest:
        """The pins as the gateway holds them now."""
        return self._manifest

    def _timeout_for(self, upstream: UpstreamConfig) -> float:
        return upstream.call_timeout_seconds or self.config.call_timeout_seconds

    # -- the two governed operations ---------------------------------------------------------

    async def list_tools(self, caller: Caller) -> list[types.Tool]:
        """Return the tools this caller may see: pinned, approved and possibly allowed."""
        await self.refresh()
        visible = []
        for name, entry in self.catalog.items():
            if not self.verdicts[name].visible:
                continue
            if await self.source.may_see(caller.agent_id, name, entry.upstream.name):
                visible.append(translate.exposed(entry.tool, name))
        return visible

    async def call_tool(
        self,
        caller: Caller,
        decider: AsyncDecider,
        name: str,
        arguments: Mapping[str, Any] | None,
        meta: Mapping[str, Any] | None = None,
    ) -> types.CallToolResult:
        """Govern one ``tools/call``: refuse, hold, or forward and report.

        Raises:
            MCPError: the tool is unknown, or the upstream answered with a JSON-RPC error.
        """
        entry = self.catalog.get(name)
        if entry is None:
            await self.refresh()
            entry = self.catalog.get(name)
        if entry is None:
            await self.audit_event("unknown_tool", f"no tool {name!r}", caller=caller, tool=name)
            raise MCPError(INVALID_PARAMS, f"Unknown tool: {name}")
        server = entry.upstream.name
        if not self.verdicts[name].visible:
            await self._assess_all()  # an approval may have landed since
            if not self.verdicts[name].visible:
                reason = self.verdicts[name].reason
                await self.audit_event(
                    "tool_blocked", reason, caller=caller, tool=name, server=server
                )
                return translate.failed_result(
                    f"The gateway blocks {name}: {reason}. The tool was not run; an operator "
                    "must review and approve its definition (lictor mcp-proxy approve)."
                )
        size = translate.argument_bytes(arguments)
        if size > self.config.max_argument_bytes:
            problem = (
                f"arguments of {size} bytes exceed the limit of {self.config.max_argument_bytes}"
            )
            await self.audit_event(
                "argument_too_large", problem, caller=caller, tool=name, server=server
            )
            return translate.failed_result(
                f"The call to {name} was refused: its {problem}. The tool was not run."
            )
        request = translate.action_request(caller, name, server, arguments, meta)
        await self.settle(caller.session_id)
        try:
            decision = await decider.decide(request)
        except InvalidToolCall as exc:
            return translate.failed_result(
                f"The call to {name} was refused: the request is malformed ({exc}). "
                "The tool was not run."
            )
        except LictorError as exc:
            log.error("no decision for %s (%s); refusing", name, exc)
            return translate.failed_result(
                f"The call to {name} was refused: Lictor could not decide ({type(exc).__name__}). "
                "The tool was not run."
            )
        if decision.outcome is Outcome.REVIEW and self.review_waiter is not None:
            decision = await self.review_waiter(decision)
        elif decision.outcome is Outcome.REVIEW and self.config.review_timeout_seconds > 0:
            # Wait for the verdict, then decide the identical call again: the approval
            # (single use, bound to these arguments) makes that decision an allow.
            try:
                decision = await await_verdict_async(
                    decider, request, decision, self.config.review_timeout_seconds
                )
            except (ReviewDenied, ReviewExpired) as exc:
                return translate.failed_result(_verdict_text(exc, name))
            except ReviewTimeout as exc:
                return translate.held_result(exc.decision, name)
            except LictorError as exc:
                log.error("no verdict for %s (%s); refusing", name, exc)
                return translate.failed_result(
                    f"The call to {name} was refused: Lictor could not tell the review's "
                    f"verdict ({type(exc).__name__}). The tool was not run."
                )
        if decision.outcome is Outcome.DENY:
            return translate.refused_result(decision, name)
        if decision.outcome is Outcome.REVIEW:
            return translate.held_result(decision, name)
        labels = entry.upstream.labels

        def error_report(problem: str) -> Callable[[], ResultReport]:
            return partial(translate.error_report, decision, problem, labels)

        try:
            result = await self._forward(entry, arguments)
        except MCPError as exc:
            problem = f"MCP error {exc.code}: {exc}"
            await self._report_soon(caller, decider, labels, error_report(problem))
            raise
        except UpstreamError as exc:
            await self._report_soon(caller, decider, labels, error_report(str(exc)))
            await self.audit_event(
                "upstream_failed", str(exc), caller=caller, tool=name, server=server
            )
            return translate.failed_result(f"The call to {name} failed: {exc}.")
        if result is None:
            verdict = self.verdicts.get(name)
            reason = verdict.reason if verdict is not None else "the upstream no longer lists it"
            problem = f"not run: definition blocked ({reason})"
            await self._report_soon(caller, decider, labels, error_report(problem))
            return translate.failed_result(
                f"The gateway blocks {name}: {reason}. The tool was not run; an operator "
                "must review and approve its definition (lictor mcp-proxy approve)."
            )
        # Even the report's output (the result cut to size) is made after the answer.
        report = partial(translate.result_report, decision, result, labels)
        await self._report_soon(caller, decider, labels, report)
        return result

    async def _forward(
        self, entry: CatalogEntry, arguments: Mapping[str, Any] | None
    ) -> types.CallToolResult | None:
        """Call the upstream; after a header mismatch, re-list through the pins and resend once.

        A 2026-07-28 server refuses a call with ``HEADER_MISMATCH`` when the listing the
        request was built from is stale, and the spec's remedy is to re-list and resend.
        The gateway re-lists with :meth:`refresh`, so a changed definition is assessed
        (and blocked, and audited) before anything is resent. Returns None, having sent
        nothing more, when the tool is no longer listed or no longer approved.

        Raises:
            MCPError, UpstreamError: as :meth:`UpstreamLink.call_tool`.
        """
        link = self.links[entry.upstream.name]
        timeout = self._timeout_for(entry.upstream)
        try:
            return await link.call_tool(entry.tool.name, arguments, timeout)
        except MCPError as exc:
            if exc.code != HEADER_MISMATCH:
                raise
        await self.refresh()
        verdict = self.verdicts.get(entry.name)
        if entry.name not in self.catalog or verdict is None or not verdict.visible:
            return None
        return await link.call_tool(entry.tool.name, arguments, timeout)

    async def _report(self, decider: AsyncDecider, report: ResultReport) -> None:
        try:
            await decider.report(report)
        except LictorError as exc:
            # The call has run: its result goes back to the client either way.
            log.error("result of decision %s not reported: %s", report.decision_id, exc)

    async def _report_soon(
        self,
        caller: Caller,
        decider: AsyncDecider,
        labels: tuple[str, ...],
        make: Callable[[], ResultReport],
    ) -> None:
        """Report ``make()`` after the answer, off the call's latency path.

        A report can cost a thread hop (in process, durable audit) or an HTTP round
        trip and a durable commit (remote); even in memory it is work the caller does
        not wait for. Only a report with data labels changes what later decisions see
        (the session's labels), so the next decision in the same session waits for
        those (see :meth:`settle`); unlabelled reports never hold a call up.

        A report is never dropped silently: :meth:`running` sends every queued report
        before it returns, a report that fails is logged with its decision id, and the
        decision itself was audited before the upstream call, so an ``allow`` without
        a result on the trail shows a call whose outcome is not known (the gateway was
        killed between answering and reporting).
        """
        reports = self._reports
        if reports is None:  # not running(): nothing would send it later
            await self._report(decider, make())
            return
        reports.put(caller.session_id if labels else _UNLABELLED, decider, make)

    async def settle(self, session_id: str | None = None, *, every: bool = False) -> None:
        """Wait for the reports in flight: a session's labelled ones, or ``every`` one."""
        if self._reports is not None:
            await self._reports.settle(session_id, every=every)

    # -- the MCP server -------------------------------------------------------------------

    def caller_for(self, ctx: ServerRequestContext[Any, Any]) -> tuple[Caller, AsyncDecider]:
        """Who is asking: a bearer token over HTTP, the configured agent otherwise.

        The Lictor session is the configured ``session_id`` if set; else the MCP session
        (``Mcp-Session-Id``) over streamable HTTP; else, for stdio and in-process
        clients (one connection per process), this gateway run's own id. A
        2026-07-28 HTTP client has no MCP session, so its calls carry none.

        Raises:
            MCPError: the request carries no usable credential.
        """
        headers = getattr(ctx.request, "headers", None)
        token = bearer_token(headers.get("authorization") if headers is not None else None)
        resolved = self.source.resolve(token)
        if resolved is None:
            raise MCPError(INVALID_REQUEST, "authenticate with a valid bearer token")
        if self.config.session_id:
            session: str | None = self.config.session_id
        elif headers is not None:
            session = headers.get(MCP_SESSION_HEADER)
        else:
            session = self.run_session
        return Caller(resolved.agent_id, session, resolved.principal), resolved.decider

    def server(self) -> Server[Any]:
        """Return the MCP server object to serve over any transport."""

        async def on_list_tools(
            ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
        ) -> types.ListToolsResult:
            caller, _ = self.caller_for(ctx)
            return types.ListToolsResult(tools=await self.list_tools(caller))

        async def on_call_tool(
            ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
        ) -> types.CallToolResult:
            caller, decider = self.caller_for(ctx)
            meta = params.meta if isinstance(params.meta, Mapping) else None
            return await self.call_tool(caller, decider, params.name, params.arguments, meta)

        server: Server[Any] = Server(
            self.config.name,
            version="lictor",
            instructions=(
                "Every tool call through this gateway is governed by Lictor: a refused call "
                "returns an error result saying why, and the tool was not run."
            ),
            on_list_tools=on_list_tools,
            on_call_tool=on_call_tool,
        )
        server.middleware.append(self._audit_protocol_errors)
        return server

    async def _audit_protocol_errors(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        """Audit requests the SDK refuses before our handlers see them (bad params)."""
        try:
            return await call_next(ctx)
        except ValidationError as exc:
            await self.audit_event(
                "malformed_request", f"{ctx.method}: invalid params ({exc.error_count()} errors)"
            )
            raise
        except MCPError as exc:
            if exc.code in (INVALID_PARAMS, INVALID_REQUEST) and ctx.method != "tools/call":
                await self.audit_event("malformed_request", f"{ctx.method}: {exc.message}")
            raise


def bearer_token(authorization: str | None) -> str | None:
    """Return the token of an ``Authorization: Bearer`` header (RFC 6750), else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


# -- stdio -----------------------------------------------------------------------------------


class ByteSource(Protocol):
    """Where stdio bytes come from (stdin, or a memory stream in tests)."""

    async def receive(self) -> bytes:
        """Return the next chunk; raise ``anyio.EndOfStream`` at the end."""
        ...


class ByteSink(Protocol):
    """Where stdio bytes go (stdout, or a memory stream in tests)."""

    async def send(self, item: bytes) -> None:
        """Write all of ``item``, after everything sent before it."""
        ...


class _FdSource:
    """Reads a file descriptor, returning whatever one read gives.

    A pipe, socket or terminal is waited on by the event loop and then read at once
    (it has data, so the read does not block): no thread hop per message. A regular
    file (stdin redirected from one), which cannot be polled, is read in a worker
    thread. Reads are unbuffered: a buffered ``read(n)`` would wait for ``n`` bytes,
    and an interactive pipe needs each chunk as it arrives.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        mode = os.fstat(fd).st_mode
        polled = stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(fd)
        self._polled = polled and os.name == "posix"  # Windows polls sockets only

    async def receive(self) -> bytes:
        if self._polled:
            await anyio.wait_readable(self._fd)
            data = os.read(self._fd, 65536)
        else:
            data = await anyio.to_thread.run_sync(os.read, self._fd, 65536, abandon_on_cancel=True)
        if not data:
            raise anyio.EndOfStream
        return data


class _FdSink:
    """Writes to a file descriptor without blocking the event loop.

    A message of at most ``PIPE_BUF`` bytes is written at once when the descriptor is
    a pipe or a socket that polls writable: a pipe then has a free buffer page, which
    takes such a write whole (POSIX makes it atomic), and a local stream socket has at
    least half its send buffer free. That is the common case (the client reads as fast
    as the gateway answers; Node.js clients connect stdio through a socket pair).
    Anything else (a longer message, a full pipe, a file or a terminal) is written in a
    worker thread, so a slow reader never stalls the loop.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._poll: select.poll | None = None
        mode = os.fstat(fd).st_mode
        if (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)) and hasattr(select, "poll"):
            self._poll = select.poll()
            self._poll.register(fd, select.POLLOUT)

    async def send(self, item: bytes) -> None:
        if self._poll is not None and len(item) <= select.PIPE_BUF and self._poll.poll(0):
            written = os.write(self._fd, item)
            if written == len(item):
                return
            item = item[written:]  # cut short by a signal: the rest as a slow write
        await anyio.to_thread.run_sync(_write_all, self._fd, item)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


async def serve_lines(
    gateway: Gateway,
    source: ByteSource,
    sink: ByteSink,
    *,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
) -> None:
    """Serve MCP over newline-delimited JSON-RPC until the input ends.

    Malformed lines get a JSON-RPC error answer and an audit entry, and the session
    goes on: one bad message must not end a client's session (or the gateway).
    Each outgoing line is sent to ``sink`` in order, one at a time.
    """
    server = gateway.server()
    inbound_send, inbound = anyio.create_memory_object_stream[SessionMessage | Exception](16)
    outbound, outbound_receive = anyio.create_memory_object_stream[SessionMessage](16)
    framer = translate.LineFramer(max_message_bytes)
    errors_out = outbound.clone()

    async def refuse(error: JSONRPCError, problem: str) -> None:
        await errors_out.send(SessionMessage(error))
        await gateway.audit_event("malformed_request", problem)

    async def read() -> None:
        async with inbound_send, errors_out:
            while True:
                try:
                    chunk = await source.receive()
                except (anyio.EndOfStream, anyio.ClosedResourceError):
                    items = framer.close()
                    chunk = b""
                else:
                    items = framer.feed(chunk)
                for item in items:
                    if isinstance(item, translate.Oversized):
                        await refuse(
                            translate.oversized_error(item.size, max_message_bytes),
                            f"message of {item.size} bytes dropped",
                        )
                        continue
                    parsed = translate.parse_line(item)
                    if parsed is None:
                        continue
                    if isinstance(parsed, JSONRPCError):
                        await refuse(parsed, parsed.error.message[:200])
                    else:
                        await inbound_send.send(parsed)
                if not chunk:
                    return

    async def emit() -> None:
        async with outbound_receive:
            async for message in outbound_receive:
                data = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                await sink.send(data.encode() + b"\n")

    async with anyio.create_task_group() as group:
        group.start_soon(read)
        group.start_soon(emit)
        await server.run(inbound, outbound, server.create_initialization_options())


async def serve_stdio(gateway: Gateway) -> None:
    """Serve MCP on this process's stdin and stdout until stdin closes."""
    sys.stdout.flush()  # the lines go to the descriptor from here on, past this buffer
    async with gateway.running():
        await serve_lines(gateway, _FdSource(sys.stdin.fileno()), _FdSink(sys.stdout.fileno()))


# -- streamable HTTP -------------------------------------------------------------------------


class BearerGate:
    """ASGI wrapper: refuse unauthenticated HTTP clients with 401, audit malformed posts.

    Refusing before the MCP layer means an unknown caller never opens a session. In
    remote mode a token is checked by Lictor on the first decision instead.
    """

    def __init__(self, app: ASGIApp, gateway: Gateway) -> None:
        self.app = app
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the credential, then pass the request on."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        token = bearer_token(headers.get("authorization"))
        if self.gateway.source.resolve(token) is None:
            await self.gateway.audit_event(
                "unauthenticated",
                f"{scope.get('method')} {scope.get('path')} without a valid token",
            )
            await _unauthorized(send)
            return

        async def observe(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 400:
                await self.gateway.audit_event(
                    "malformed_request", f"{scope.get('method')} {scope.get('path')} answered 400"
                )
            await send(message)

        await self.app(scope, receive, observe)


async def _unauthorized(send: Send) -> None:
    body = (
        b'{"jsonrpc":"2.0","id":null,"error":{"code":-32001,'
        b'"message":"authenticate with a valid bearer token"}}'
    )
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"www-authenticate", b'Bearer realm="lictor-gateway"'),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def http_app(gateway: Gateway, *, path: str = "/mcp", host: str = "127.0.0.1") -> ASGIApp:
    """Return the gateway as a streamable HTTP ASGI app (its lifespan runs the sessions)."""
    app = gateway.server().streamable_http_app(streamable_http_path=path, host=host)
    return BearerGate(app, gateway)


async def serve_http(
    gateway: Gateway,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    path: str = "/mcp",
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve streamable HTTP on ``host:port`` (port 0: any free port) until cancelled."""
    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    bound = sock.getsockname()[1]
    display = f"[{host}]" if family == socket.AF_INET6 else host
    server = uvicorn.Server(
        uvicorn.Config(http_app(gateway, path=path, host=host), log_level="warning", lifespan="on")
    )
    async with gateway.running():
        if on_ready is not None:
            on_ready(f"http://{display}:{bound}{path}")
        await server.serve(sockets=[sock])
