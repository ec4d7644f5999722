"""The ASGI app: HTTP requests in, Governor and store calls, JSON or problem+json out.

Rules this module keeps:

1. ``/v1/decide`` stays lean: the body is read once (bounded while streaming), parsed
   once with :func:`json.loads`, and validated only by the core's ``parse_request``.
2. Routes come from :data:`lictor.server.auth.ENDPOINTS`, the one route-to-roles table;
   authentication and the role check run before a handler sees the request.
3. Blocking store calls run in worker threads; the decision itself runs on the loop
   and awaits its group commit, so concurrent decisions share one fsync.
4. Nothing escapes: Lictor errors map to problems through ``problems.error_response``,
   and anything else becomes a logged 500. A decision that could not be made is a deny
   (the Governor's rule) or a 500, never an allow.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, Final

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lictor.core.decisions import Outcome, parse_result, parse_time
from lictor.errors import Forbidden, LictorError, NotFound
from lictor.identity.keys import verifier_from_public_pem
from lictor.server import policies_api
from lictor.server.auth import ENDPOINTS, Endpoint, authorize
from lictor.server.identity_api import IdentityApi
from lictor.server.openapi import build_openapi
from lictor.server.problems import HTTPProblem, error_response, problem_response, slug_for
from lictor.server.reviews_api import ReviewsApi
from lictor.server.runtime import Runtime
from lictor.server.ui import ui_routes
from lictor.service.audit_ops import (
    announce_verification_failure,
    inclusion_proof_for,
    verify_trail,
)
from lictor.service.events import Event, EventKind, Severity
from lictor.service.exports import iter_records, ocsf_event
from lictor.service.gateway_events import gateway_event_entry, parse_gateway_event
from lictor.service.ports import AuditQuery, AuditStore, Credential, Role
from lictor.service.records import rejected_entry

log = logging.getLogger("lictor.server")

JSON_MEDIA_TYPE: Final = "application/json"
MAX_AUDIT_PAGE: Final = 1000
DEFAULT_AUDIT_PAGE: Final = 100
EXPORT_CHUNK_BYTES: Final = 64 * 1024
READY_TIMEOUT_SECONDS: Final = 5.0

# Query parameter -> AuditQuery field, for the exact-match filters of /v1/audit.
_AUDIT_FILTERS: Final = {
    "agent": "agent_id",
    "principal": "principal_id",
    "tool": "tool",
    "outcome": "outcome",
    "session": "session_id",
    "decision_id": "decision_id",
    "kind": "kind",
}
_OUTCOMES: Final = frozenset(o.value for o in Outcome)

Protected = Callable[[Request, Credential], Awaitable[Response]]
Open = Callable[[Request], Awaitable[Response]]


def json_response(data: Any, status: int = 200) -> Response:
    """Serialise ``data`` once, compactly, as an ``application/json`` response."""
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return Response(body.encode(), status_code=status, media_type=JSON_MEDIA_TYPE)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on which duplicate wins; a policy must not see one value while a
    # tool or a later reader sees another, so duplicates are refused outright.
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return result


async def read_json(request: Request, max_bytes: int) -> Any:
    """Read and parse a JSON body, refusing it as early as possible.

    The size limit is enforced while the stream is read, so an oversized body costs at
    most ``max_bytes`` of memory whatever its ``Content-Length`` claims.

    Raises:
        HTTPProblem: 415 not ``application/json``, 413 too large, 400 not JSON.
    """
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != JSON_MEDIA_TYPE:
        raise HTTPProblem(
            "unsupported-media-type",
            f"send the body as {JSON_MEDIA_TYPE} (the request said {media_type or 'nothing'})",
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise HTTPProblem("payload-too-large", f"the body may be at most {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise HTTPProblem("payload-too-large", f"the body may be at most {max_bytes} bytes")
        chunks.append(chunk)
    try:
        return json.loads(
            b"".join(chunks), parse_constant=_reject_constant, object_pairs_hook=_unique_keys
        )
    except (ValueError, RecursionError) as exc:
        raise HTTPProblem("malformed-json", f"the body is not valid JSON: {exc}") from None


# Gateway events that mean a tool's definition changed under the agent: alerted.
_ALERTED_GATEWAY_EVENTS: Final = frozenset(
    {"tool_definition_changed", "tool_description_suspicious"}
)


def _client(request: Request) -> str | None:
    return request.client.host if request.client is not None else None


class Api:
    """The handlers, each bound to one :class:`Runtime`."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._verify_signature = verifier_from_public_pem(runtime.signer.public_key_pem())
        self._openapi = json.dumps(build_openapi(), separators=(",", ":")).encode()
        self.identity = IdentityApi(runtime)

    def protected(self) -> dict[str, Protected]:
        """Handlers that run after authentication and the role check, by endpoint name."""
        return {
            "decide": self.decide,
            "report_result": self.report_result,
            "record_event": self.record_event,
            "query_audit": self.query_audit,
            "verify_audit": self.verify_audit,
            "export_audit": self.export_audit,
            "prove_decision": self.prove_decision,
            "get_policies": self.get_policies,
            "upload_policy": partial(policies_api.upload_policy, self.runtime),
            "reload_policies": partial(policies_api.reload_policies, self.runtime),
            "metrics": self.metrics,
            "openapi": self.openapi,
            **ReviewsApi(self.runtime).handlers(),
            **self.identity.protected(),
        }

    def open(self) -> dict[str, Open]:
        """Handlers anyone may call, by endpoint name."""
        return {"healthz": self.healthz, "readyz": self.readyz, **self.identity.open()}

    # -- decisions ----------------------------------------------------------------------

    async def decide(self, request: Request, caller: Credential) -> Response:
        """``POST /v1/decide``: the agent's identity is its credential's subject."""
        runtime = self.runtime
        source = _client(request)
        try:
            body = await read_json(request, runtime.settings.max_body_bytes)
        except HTTPProblem as exc:
            # A decision was asked for and could not even be read: that is on the record
            # too, as the Governor records requests that fail validation.
            self._record_rejection(None, exc.detail, "", caller, source)
            raise
        if isinstance(body, dict):
            claimed = body.get("agent_id")
            if claimed is None:
                body["agent_id"] = caller.subject
            elif isinstance(claimed, str) and claimed != caller.subject:
                self._record_rejection(
                    body,
                    f"credential of agent {caller.subject!r} asked for another agent",
                    "/agent_id",
                    caller,
                    source,
                )
                runtime.events.emit(
                    Event(
                        kind=EventKind.CREDENTIAL_MISUSE,
                        at=runtime.clock.now(),
                        severity=Severity.HIGH,
                        summary=f"credential {caller.id} of agent {caller.subject} "
                        f"asked to act as agent {claimed}",
                        agent_id=caller.subject,
                        details={"credential_id": caller.id, "claimed": claimed, "source": source},
                    )
                )
                raise HTTPProblem(
                    "agent-mismatch",
                    f"this credential acts for agent {caller.subject!r}, not {claimed!r}",
                    pointer="/agent_id",
                )
        # The principal and chain come from a verified Lictor-Delegation token, if any.
        identity = await self.identity.bind_delegation(
            request, body, caller, source, self._record_rejection
        )
        started = time.perf_counter()
        decision = await runtime.governor.decide_async(
            body,
            credential_id=caller.id,
            source=source,
            timeout_seconds=runtime.settings.audit_timeout_seconds,
            identity=identity,
        )
        runtime.metrics.observe_decision(decision.outcome, time.perf_counter() - started)
        return json_response(decision.to_json())

    def _record_rejection(
        self,
        body: Mapping[str, Any] | None,
        problem: str,
        pointer: str,
        caller: Credential,
        source: str | None,
    ) -> None:
        """Audit a refused decision request, without waiting for the commit."""
        entry = rejected_entry(body, problem, pointer, at=self.runtime.clock.now(), source=source)
        entry["credential_id"] = caller.id
        if entry["agent_id"] is None:
            entry["agent_id"] = caller.subject
        try:
            self.runtime.audit.submit(entry)
        except LictorError:
            log.critical("audit store unavailable; refused decision request not recorded")

    async def report_result(self, request: Request, caller: Credential) -> Response:
        """``POST /v1/decisions/{decision_id}/result``: only for the caller's own decisions."""
        runtime = self.runtime
        decision_id = request.path_params["decision_id"]
        body = await read_json(request, runtime.settings.max_body_bytes)
        found = await anyio.to_thread.run_sync(runtime.audit.find_decision, decision_id)
        if found is None:
            raise NotFound("decision", decision_id)
        if found.get("agent_id") != caller.subject:
            raise Forbidden(f"decision {decision_id} was made for another agent")
        report = parse_result(body, decision_id=decision_id)
        await anyio.to_thread.run_sync(runtime.governor.report, report)
        return Response(status_code=204)

    async def record_event(self, request: Request, caller: Credential) -> Response:
        """``POST /v1/events``: a gateway's event about the calling agent, on the record.

        Answered after the audit commit, like a decision: a 204 means it is on disk.
        """
        runtime = self.runtime
        body = await read_json(request, runtime.settings.max_body_bytes)
        fields = parse_gateway_event(body)
        entry = gateway_event_entry(
            fields,
            agent_id=caller.subject,
            at=runtime.clock.now(),
            source=_client(request),
            credential_id=caller.id,
        )
        await asyncio.wait_for(
            asyncio.wrap_future(runtime.audit.submit(entry)),
            runtime.settings.audit_timeout_seconds,
        )
        if fields["event"] in _ALERTED_GATEWAY_EVENTS:
            runtime.events.emit(
                Event(
                    kind=EventKind.TOOL_DEFINITION_CHANGED,
                    at=runtime.clock.now(),
                    severity=Severity.HIGH,
                    summary=f"gateway of agent {caller.subject}: {fields['problem']}",
                    agent_id=caller.subject,
                    details={"event": fields["event"], "tool": fields["tool"]},
                )
            )
        return Response(status_code=204)

    # -- audit --------------------------------------------------------------------------

    async def query_audit(self, request: Request, caller: Credential) -> Response:
        """``GET /v1/audit``: one page of records; ``next`` is the cursor for ``after``."""
        query = audit_query(request.query_params.multi_items(), paged=True)
        page = await anyio.to_thread.run_sync(self.runtime.store.audit.query, query)
        next_cursor = str(page.next_after_seq) if page.next_after_seq is not None else None
        return json_response({"records": [r.to_dict() for r in page.records], "next": next_cursor})

    async def verify_audit(self, request: Request, caller: Credential) -> Response:
        """``GET /v1/audit/verify``: the whole trail and every checkpoint, with signatures."""
        _no_parameters(request)
        report = await anyio.to_thread.run_sync(
            verify_trail, self.runtime.store.audit, self._verify_signature
        )
        if not report.ok:
            announce_verification_failure(self.runtime.events, report, self.runtime.clock.now())
        return json_response(report.to_json())

    async def export_audit(self, request: Request, caller: Credential) -> Response:
        """``GET /v1/audit/export?format=jsonl|ocsf``: streamed as JSON Lines."""
        items = list(request.query_params.multi_items())
        formats = [v for k, v in items if k == "format"]
        if len(formats) > 1:
            raise HTTPProblem("invalid-request", "given more than once", parameter="format")
        fmt = formats[0] if formats else "jsonl"
        if fmt not in ("jsonl", "ocsf"):
            raise HTTPProblem("invalid-request", "must be 'jsonl' or 'ocsf'", parameter="format")
        query = audit_query([(k, v) for k, v in items if k != "format"], paged=False)
        store = self.runtime.store.audit
        lines = _jsonl_lines(store, query) if fmt == "jsonl" else _ocsf_lines(store, query)
        return StreamingResponse(
            _chunked(lines),
            media_type="application/x-ndjson",
            headers={"Content-Disposition": f'attachment; filename="lictor-audit.{fmt}.jsonl"'},
        )

    async def prove_decision(self, request: Request, caller: Credential) -> Response:
        """``GET /v1/audit/proof/{decision_id}``: an RFC 9162 inclusion proof.

        When no signed checkpoint covers the decision yet, one is signed first, so an
        auditor never has to wait for the periodic checkpoint.
        """
        decision_id = request.path_params["decision_id"]
        runtime = self.runtime

        def prove() -> dict[str, Any]:
            if runtime.store.audit.find_decision(decision_id) is None:
                raise NotFound("decision", decision_id)
            try:
                return inclusion_proof_for(runtime.store.audit, decision_id)
            except NotFound:
                runtime.writer.checkpoint_now()
                return inclusion_proof_for(runtime.store.audit, decision_id)

        return json_response(await anyio.to_thread.run_sync(prove))

    # -- policies, metrics, docs, health ------------------------------------------------

    async def get_policies(self, request: Request, caller: Credential) -> Response:
        """``GET /v1/policies``: the active bundle's version and rules."""
        policy = self.runtime.governor.policy.policy
        root = self.runtime.bundle.root
        rules = [
            {
                "id": r.id,
                "effect": r.effect.value,
                "mode": r.mode.value,
                "severity": r.severity.value,
                "source": _rule_source(root, r.source, r.line),
            }
            for r in policy.rules
        ]
        return json_response(
            {
                "version": policy.version,
                "rule_count": len(rules),
                "timezone": policy.timezone,
                "rules": rules,
            }
        )

    async def metrics(self, request: Request, caller: Credential) -> Response:
        """``GET /metrics``: Prometheus text exposition."""
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(
            self.runtime.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def openapi(self, request: Request, caller: Credential) -> Response:
        """``GET /openapi.json``: this API's OpenAPI 3.1 document."""
        return Response(self._openapi, media_type=JSON_MEDIA_TYPE)

    async def healthz(self, request: Request) -> Response:
        """``GET /healthz``: the process is up and serving (nothing else is checked)."""
        return json_response({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        """``GET /readyz``: 200 when the store answers and the audit writer runs, else 503."""
        checks: dict[str, bool]
        with anyio.move_on_after(READY_TIMEOUT_SECONDS) as scope:
            checks = await anyio.to_thread.run_sync(self.runtime.is_ready, abandon_on_cancel=True)
        if scope.cancelled_caught:
            checks = {"store": False, "audit_writer": False}
        ready = all(checks.values())
        return json_response(
            {"status": "ready" if ready else "not_ready", "checks": checks},
            status=200 if ready else 503,
        )


def audit_query(items: Iterable[tuple[str, str]], *, paged: bool) -> AuditQuery:
    """Build an :class:`AuditQuery` from query parameters, refusing unknown or repeated ones.

    Unknown parameters are an error, not ignored: a typo such as ``agent_id=`` for
    ``agent=`` would otherwise return the unfiltered trail to an auditor who believes it
    is filtered.

    Raises:
        HTTPProblem: 422 with ``parameter`` naming the bad one.
    """
    allowed = set(_AUDIT_FILTERS) | {"since", "until"} | ({"after", "limit"} if paged else set())
    values: dict[str, str] = {}
    for key, value in items:
        if key not in allowed:
            raise HTTPProblem(
                "invalid-request",
                f"unknown parameter; allowed: {', '.join(sorted(allowed))}",
                parameter=key,
            )
        if key in values:
            raise HTTPProblem("invalid-request", "given more than once", parameter=key)
        values[key] = value
    fields: dict[str, Any] = {
        _AUDIT_FILTERS[k]: v for k, v in values.items() if k in _AUDIT_FILTERS
    }
    if "outcome" in values and values["outcome"] not in _OUTCOMES:
        raise HTTPProblem(
            "invalid-request", f"must be one of {', '.join(sorted(_OUTCOMES))}", parameter="outcome"
        )
    for name in ("since", "until"):
        if name in values:
            try:
                fields[name] = parse_time(values[name])
            except ValueError:
                raise HTTPProblem(
                    "invalid-request", "must be an RFC 3339 time with an offset", parameter=name
                ) from None
    fields["limit"] = _int_parameter(values, "limit", DEFAULT_AUDIT_PAGE, 1, MAX_AUDIT_PAGE)
    if "after" in values:
        fields["after_seq"] = _int_parameter(values, "after", 0, 0, 2**62)
    if not paged:
        fields["limit"] = MAX_AUDIT_PAGE  # the export's page size, streamed page by page
    return AuditQuery(**fields)


def _int_parameter(values: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = values.get(name)
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise HTTPProblem(
            "invalid-request", f"must be an integer from {low} to {high}", parameter=name
        )
    return int(text)


def _no_parameters(request: Request) -> None:
    for key in request.query_params:
        raise HTTPProblem("invalid-request", "this endpoint takes no parameters", parameter=key)


def _rule_source(root: Path, source: str | None, line: int | None) -> str | None:
    """``file:line`` of a rule, the file relative to the bundle (no server paths leak)."""
    if source is None:
        return None
    path = Path(source)
    base = root if root.is_dir() else root.parent
    try:
        shown = path.relative_to(base).as_posix()
    except ValueError:
        shown = path.name
    return f"{shown}:{line}" if line is not None else shown


def _jsonl_lines(store: AuditStore, query: AuditQuery) -> Iterator[str]:
    for record in iter_records(store, query):
        yield record.to_json() + "\n"


def _ocsf_lines(store: AuditStore, query: AuditQuery) -> Iterator[str]:
    # The loop of exports.export_ocsf, as an iterator so it can stream: results repeat
    # their decision's actor and API, so recent decisions are kept to spare a lookup.
    decisions: OrderedDict[str, Mapping[str, Any]] = OrderedDict()
    for record in iter_records(store, query):
        payload = record.payload
        decision: Mapping[str, Any] | None = None
        if payload.get("kind") == "decision":
            decisions[str(payload.get("decision_id"))] = payload
            if len(decisions) > 10_000:
                decisions.popitem(last=False)
        elif payload.get("kind") == "result":
            decision_id = str(payload.get("decision_id"))
            decision = decisions.get(decision_id)
            if decision is None:
                found = store.find_decision(decision_id)
                decision = found.payload if found is not None else None
        event = ocsf_event(record, decision=decision)
        if event is not None:
            yield json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n"


def _chunked(lines: Iterator[str]) -> Iterator[bytes]:
    """Group lines into ~64 KiB chunks.

    Starlette runs each step of a sync iterator in a worker thread, so one step per
    line would cost a thread hop per record.
    """
    buffer: list[bytes] = []
    size = 0
    for line in lines:
        data = line.encode()
        buffer.append(data)
        size += len(data)
        if size >= EXPORT_CHUNK_BYTES:
            yield b"".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield b"".join(buffer)


def _guarded(runtime: Runtime, roles: frozenset[Role], handler: Protected) -> Open:
    """Wrap a handler with authentication and the role check of its endpoint."""

    async def run(request: Request) -> Response:
        caller = await runtime.authenticator.authenticate(request.headers.get("authorization"))
        authorize(caller, roles)
        return await handler(request, caller)

    return run


def _route(api: Api, path: str, endpoints: list[Endpoint]) -> Route:
    """One route per path, dispatching by method, so 405 answers carry the full Allow list."""
    runtime = api.runtime
    protected = api.protected()
    opened = api.open()
    by_method: dict[str, Open] = {
        e.method: opened[e.name]
        if e.roles is None
        else _guarded(runtime, e.roles, protected[e.name])
        for e in endpoints
    }

    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        try:
            return await by_method[method](request)
        except LictorError as exc:
            slug = slug_for(exc)
            if slug == "internal-error":
                log.error("unmapped error on %s %s", request.method, path, exc_info=exc)
            runtime.metrics.problems.labels(type=slug).inc()
            return error_response(exc)

    return Route(path, dispatch, methods=[e.method for e in endpoints], name=path)


async def _http_exception(request: Request, exc: Exception) -> Response:
    """Routing errors (no such route, wrong method) as problems."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else None
    if status == 404:
        return problem_response("not-found", f"no route for {request.url.path}")
    if status == 405:
        return problem_response(
            "method-not-allowed", f"{request.method} is not allowed here", headers=headers
        )
    log.error("unexpected HTTP exception %s on %s", status, request.url.path)
    return problem_response("internal-error", "an internal error occurred; it was logged")


class LastResort:
    """Outermost handler: any exception that escaped becomes a logged 500 problem.

    If the response had already started (a stream broke half-way) there is nothing left
    to send; the exception is logged and the connection is left for the server to close.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app; turn an escaped exception into a 500 if nothing was sent yet."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:  # the edge's top-level handler (STYLE §3.4)
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                return
            response = problem_response(
                "internal-error", "an internal error occurred; it was logged"
            )
            await response(scope, receive, send)


def create_app(runtime: Runtime, *, close_on_shutdown: bool = False) -> Starlette:
    """Build the ASGI app for a runtime.

    Args:
        runtime: What the handlers run on. The caller owns it and closes it...
        close_on_shutdown: ...unless this is set: then the ASGI lifespan shutdown closes
            it (flushes the audit writer, signs a final checkpoint, closes the store).
            ``lictor serve`` needs that, because uvicorn re-raises SIGTERM once it has
            drained requests, ending the process before any code after ``run()``.
    """
    api = Api(runtime)
    by_path: dict[str, list[Endpoint]] = {}
    for endpoint in ENDPOINTS:
        by_path.setdefault(endpoint.path, []).append(endpoint)
    routes: list[BaseRoute] = [_route(api, path, endpoints) for path, endpoints in by_path.items()]
    routes.extend(ui_routes(runtime))
    return Starlette(
        routes=routes,
        middleware=[Middleware(LastResort)],
        exception_handlers={HTTPException: _http_exception},
        lifespan=_closing(runtime) if close_on_shutdown else None,
    )


def _closing(runtime: Runtime) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(runtime.close)

    return lifespan
