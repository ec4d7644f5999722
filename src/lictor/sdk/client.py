"""Clients for the Lictor HTTP API (``lictor serve``): sync and async, typed, one error tree.

Each API operation is described once, sans-IO, as a :class:`Call`: what to send and how
to turn the answer into a typed value (:class:`~lictor.core.decisions.Decision`,
:class:`~lictor.core.agents.Agent`, ...). :class:`LictorClient` and
:class:`AsyncLictorClient` only move calls over httpx, so the two cannot drift apart.

Errors come back as ``application/problem+json`` with a stable ``type``; they are raised
as the matching :mod:`lictor.errors` class (the table is :data:`PROBLEM_ERRORS`).
A server that cannot be reached, or that fails with a 5xx other than a store outage,
raises :class:`~lictor.errors.UpstreamError`: for the client, Lictor is the upstream.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Generic, Literal, NoReturn, TypeVar
from urllib.parse import quote

import httpx

from lictor.core.agents import Agent, parse_agent
from lictor.core.audit.chain import SealedRecord
from lictor.core.decisions import Decision, ResultReport, format_time
from lictor.core.requests import ActionRequest
from lictor.errors import (
    AuthError,
    Conflict,
    Forbidden,
    InvalidToolCall,
    LictorError,
    NotFound,
    StoreError,
    UpstreamError,
)
from lictor.sdk.deciders import RequestLike
from lictor.service.audit_ops import VerifyReport
from lictor.service.reviews import MAX_WAIT_SECONDS, Review, ReviewStatus

__all__ = [
    "PROBLEM_ERRORS",
    "AsyncLictorClient",
    "AuditPage",
    "Call",
    "Health",
    "LictorClient",
    "PolicyRuleInfo",
    "PolicySummary",
]

T = TypeVar("T")

PROBLEM_TYPE_PREFIX: Final = "urn:lictor:problem:"
DEFAULT_TIMEOUT_SECONDS: Final = 10.0
ExportFormat = Literal["jsonl", "ocsf"]

PROBLEM_ERRORS: Final[Mapping[str, type[LictorError]]] = {
    "unauthorized": AuthError,
    "forbidden": Forbidden,
    "agent-mismatch": Forbidden,
    "not-found": NotFound,
    "conflict": Conflict,
    "malformed-json": InvalidToolCall,
    "invalid-request": InvalidToolCall,
    "payload-too-large": InvalidToolCall,
    "unsupported-media-type": InvalidToolCall,
    "store-unavailable": StoreError,
}
"""Problem ``type`` slug -> the error raised. Anything else raises ``UpstreamError``."""


# -- typed answers ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditPage:
    """One page of ``GET /v1/audit``; pass ``next`` as ``after`` for the following page."""

    records: tuple[SealedRecord, ...]
    next: str | None


@dataclass(frozen=True, slots=True)
class PolicyRuleInfo:
    """One rule of the active bundle as the API shows it (no conditions)."""

    id: str
    effect: str
    mode: str
    severity: str
    source: str | None


@dataclass(frozen=True, slots=True)
class PolicySummary:
    """``GET /v1/policies``: the active bundle's version and its rules."""

    version: str
    rule_count: int
    timezone: str
    rules: tuple[PolicyRuleInfo, ...]


@dataclass(frozen=True, slots=True)
class Health:
    """``GET /readyz``: whether the server can decide now, and each check behind that."""

    ready: bool
    checks: Mapping[str, bool] = field(default_factory=dict)


# -- calls: each API operation, sans-IO ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One API operation: the HTTP request to send and the parser of its answer.

    ``subject`` names what the call is about (``("agent", "deploy-bot")``) so a 404
    becomes ``NotFound(kind, id)`` with fields a caller can use. ``accept`` lists the
    statuses that are answers rather than errors.
    """

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    body: Any = None
    params: Sequence[tuple[str, str]] = ()
    subject: tuple[str, str] | None = None
    accept: frozenset[int] = frozenset({200, 201, 204})
    timeout_seconds: float | None = None
    extra_headers: tuple[tuple[str, str], ...] = ()

    def build(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        """Build the httpx request on ``http`` (its base URL, headers and auth)."""
        content = None
        headers = dict(self.extra_headers)
        if self.body is not None:
            content = json.dumps(self.body, ensure_ascii=False, allow_nan=False).encode()
            headers["Content-Type"] = "application/json"
        if self.timeout_seconds is not None:  # a long-poll outlasts the client's default
            return http.build_request(
                self.method,
                self.path,
                params=list(self.params),
                content=content,
                headers=headers,
                timeout=self.timeout_seconds,
            )
        return http.build_request(
            self.method, self.path, params=list(self.params), content=content, headers=headers
        )

    def answer(self, response: httpx.Response) -> T:
        """Return the typed answer, or raise the error the response stands for."""
        if response.status_code not in self.accept:
            raise_problem(response, self.subject)
        try:
            return self.parse(response)
        except (ValueError, KeyError, TypeError, LictorError) as exc:
            raise UpstreamError(
                f"Lictor sent an answer this client cannot read ({self.method} {self.path}): {exc}"
            ) from exc


def raise_problem(response: httpx.Response, subject: tuple[str, str] | None = None) -> NoReturn:
    """Raise the Lictor error for a problem+json (or any non-success) response.

    Raises:
        LictorError: always; the subclass from :data:`PROBLEM_ERRORS`, else UpstreamError.
    """
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if not isinstance(problem, Mapping):
        problem = {}
    slug = str(problem.get("type", "")).removeprefix(PROBLEM_TYPE_PREFIX)
    detail = str(problem.get("detail") or response.reason_phrase or response.status_code)
    error = PROBLEM_ERRORS.get(slug)
    if error is NotFound:
        kind, ident = subject or ("resource", response.request.url.path)
        raise NotFound(kind, ident)
    if error is Conflict:
        kind, ident = subject or ("resource", response.request.url.path)
        raise Conflict(kind, ident, detail)
    if error is InvalidToolCall:
        raise InvalidToolCall(detail, pointer=str(problem.get("pointer") or ""))
    if error is not None:
        raise error(detail)
    raise UpstreamError(f"Lictor answered {response.status_code}: {detail}")


def _json(response: httpx.Response) -> Any:
    return response.json()


def _nothing(response: httpx.Response) -> None:
    return None


def _decision(response: httpx.Response) -> Decision:
    return Decision.from_json(response.json())


def _agent(response: httpx.Response) -> Agent:
    return parse_agent(response.json())


def _review(response: httpx.Response) -> Review:
    return Review.from_json(response.json())


def _reviews(response: httpx.Response) -> list[Review]:
    return [Review.from_json(item) for item in response.json()["reviews"]]


def _agents(response: httpx.Response) -> list[Agent]:
    return [parse_agent(item) for item in response.json()["agents"]]


def _audit_page(response: httpx.Response) -> AuditPage:
    data = response.json()
    return AuditPage(
        records=tuple(SealedRecord.from_dict(r) for r in data["records"]),
        next=data.get("next"),
    )


def _verify_report(response: httpx.Response) -> VerifyReport:
    data = response.json()
    return VerifyReport(
        ok=bool(data["ok"]),
        size=int(data["size"]),
        head_hash=str(data["head_hash"]),
        root_hash=str(data["root_hash"]),
        checkpoints_total=int(data["checkpoints_total"]),
        checkpoints_checked=int(data["checkpoints_checked"]),
        signatures_verified=bool(data["signatures_verified"]),
        latest_checkpoint=data.get("latest_checkpoint"),
        error=data.get("error"),
        error_index=data.get("error_index"),
        bad_record=data.get("bad_record"),
    )


def _policies(response: httpx.Response) -> PolicySummary:
    data = response.json()
    return PolicySummary(
        version=str(data["version"]),
        rule_count=int(data["rule_count"]),
        timezone=str(data["timezone"]),
        rules=tuple(
            PolicyRuleInfo(
                id=str(r["id"]),
                effect=str(r["effect"]),
                mode=str(r["mode"]),
                severity=str(r["severity"]),
                source=r.get("source"),
            )
            for r in data["rules"]
        ),
    )


def _health(response: httpx.Response) -> Health:
    data = response.json()
    checks = data.get("checks") or {}
    return Health(ready=data.get("status") == "ready", checks=dict(checks))


def _segment(value: str) -> str:
    """Quote one path segment: an id must never change which route is called."""
    return quote(value, safe="")


def _request_body(request: RequestLike) -> dict[str, Any]:
    if isinstance(request, ActionRequest):
        body = request.to_json()
        if not body["agent_id"]:
            del body["agent_id"]  # the server takes the identity from the credential
        return body
    return dict(request)


def _audit_params(filters: Mapping[str, str | int | datetime | None]) -> list[tuple[str, str]]:
    params = []
    for key, value in filters.items():
        if value is None:
            continue
        text = format_time(value) if isinstance(value, datetime) else str(value)
        params.append((key, text))
    return params


class Calls:
    """The API's operations as :class:`Call` values (shared by both clients)."""

    @staticmethod
    def decide(request: RequestLike, delegation_token: str | None = None) -> Call[Decision]:
        """``POST /v1/decide``; a delegation token (from /v1/token) names the principal."""
        headers = (("Lictor-Delegation", delegation_token),) if delegation_token else ()
        return Call(
            "POST", "/v1/decide", _decision, body=_request_body(request), extra_headers=headers
        )

    @staticmethod
    def report(result: ResultReport) -> Call[None]:
        """``POST /v1/decisions/{id}/result``."""
        return Call(
            "POST",
            f"/v1/decisions/{_segment(result.decision_id)}/result",
            _nothing,
            body=result.to_json(),
            subject=("decision", result.decision_id),
        )

    @staticmethod
    def record_event(event: Mapping[str, Any]) -> Call[None]:
        """``POST /v1/events``."""
        return Call("POST", "/v1/events", _nothing, body=dict(event))

    @staticmethod
    def list_agents() -> Call[list[Agent]]:
        """``GET /v1/agents``."""
        return Call("GET", "/v1/agents", _agents)

    @staticmethod
    def get_agent(agent_id: str) -> Call[Agent]:
        """``GET /v1/agents/{id}``."""
        return Call("GET", f"/v1/agents/{_segment(agent_id)}", _agent, subject=("agent", agent_id))

    @staticmethod
    def put_agent(agent: Agent) -> Call[Agent]:
        """``PUT /v1/agents/{id}``.

        A record read from the server is written only over its ``version`` (else
        ``Conflict``); a new ``Agent(...)`` (version 0) is written unconditionally.
        """
        body = agent.to_json()
        if not agent.version:
            del body["version"]
        return Call(
            "PUT",
            f"/v1/agents/{_segment(agent.id)}",
            _agent,
            body=body,
            subject=("agent", agent.id),
        )

    @staticmethod
    def delete_agent(agent_id: str) -> Call[None]:
        """``DELETE /v1/agents/{id}``."""
        return Call(
            "DELETE", f"/v1/agents/{_segment(agent_id)}", _nothing, subject=("agent", agent_id)
        )

    @staticmethod
    def query_audit(filters: Mapping[str, str | int | datetime | None]) -> Call[AuditPage]:
        """``GET /v1/audit``."""
        return Call("GET", "/v1/audit", _audit_page, params=_audit_params(filters))

    @staticmethod
    def verify_audit() -> Call[VerifyReport]:
        """``GET /v1/audit/verify``."""
        return Call("GET", "/v1/audit/verify", _verify_report)

    @staticmethod
    def export_audit(
        fmt: ExportFormat, filters: Mapping[str, str | int | datetime | None]
    ) -> Call[None]:
        """``GET /v1/audit/export`` (the body is streamed by the client, not parsed here)."""
        params = [("format", fmt), *_audit_params(filters)]
        return Call("GET", "/v1/audit/export", _nothing, params=params)

    @staticmethod
    def prove(decision_id: str) -> Call[dict[str, Any]]:
        """``GET /v1/audit/proof/{decision_id}``."""
        return Call(
            "GET",
            f"/v1/audit/proof/{_segment(decision_id)}",
            _json,
            subject=("decision", decision_id),
        )

    @staticmethod
    def policies() -> Call[PolicySummary]:
        """``GET /v1/policies``."""
        return Call("GET", "/v1/policies", _policies)

    @staticmethod
    def get_review(review_id: str, wait_seconds: float = 0.0) -> Call[Review]:
        """``GET /v1/reviews/{id}[?wait=SECONDS]`` (a long-poll when ``wait_seconds`` > 0)."""
        params = [("wait", f"{wait_seconds:g}")] if wait_seconds > 0 else []
        return Call(
            "GET",
            f"/v1/reviews/{_segment(review_id)}",
            _review,
            params=params,
            subject=("review", review_id),
            timeout_seconds=wait_seconds + DEFAULT_TIMEOUT_SECONDS if wait_seconds > 0 else None,
        )

    @staticmethod
    def list_reviews(
        status: str | None = None, agent_id: str | None = None, limit: int = 100
    ) -> Call[list[Review]]:
        """``GET /v1/reviews``."""
        params = [("limit", str(limit))]
        if status is not None:
            params.append(("status", status))
        if agent_id is not None:
            params.append(("agent", agent_id))
        return Call("GET", "/v1/reviews", _reviews, params=params)

    @staticmethod
    def resolve_review(
        review_id: str, verdict: Literal["approve", "deny"], comment: str
    ) -> Call[Review]:
        """``POST /v1/reviews/{id}/approve`` or ``.../deny``."""
        return Call(
            "POST",
            f"/v1/reviews/{_segment(review_id)}/{verdict}",
            _review,
            body={"comment": comment},
            subject=("review", review_id),
        )

    @staticmethod
    def quarantine(agent_id: str, reason: str) -> Call[Agent]:
        """``POST /v1/agents/{id}/quarantine``."""
        return Call(
            "POST",
            f"/v1/agents/{_segment(agent_id)}/quarantine",
            _agent,
            body={"reason": reason},
            subject=("agent", agent_id),
        )

    @staticmethod
    def release(agent_id: str, reason: str) -> Call[Agent]:
        """``POST /v1/agents/{id}/release``."""
        return Call(
            "POST",
            f"/v1/agents/{_segment(agent_id)}/release",
            _agent,
            body={"reason": reason},
            subject=("agent", agent_id),
        )

    @staticmethod
    def principal(
        principal_id: str, action: Literal["quarantine", "release"], reason: str
    ) -> Call[Any]:
        """``POST /v1/principals/{id}/quarantine`` or ``.../release``."""
        return Call(
            "POST",
            f"/v1/principals/{_segment(principal_id)}/{action}",
            _json,
            body={"reason": reason},
            subject=("principal quarantine", principal_id),
        )

    @staticmethod
    def emergency(on: bool | None = None, reason: str = "") -> Call[Any]:
        """``GET /v1/emergency``, or ``POST`` it with ``on`` to turn the mode on or off."""
        if on is None:
            return Call("GET", "/v1/emergency", _json)
        return Call("POST", "/v1/emergency", _json, body={"on": on, "reason": reason})

    @staticmethod
    def health() -> Call[Health]:
        """``GET /readyz``: 503 is an answer (not ready), not an error."""
        return Call("GET", "/readyz", _health, accept=frozenset({200, 503}))


# -- the two clients -------------------------------------------------------------------------


def _headers(token: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _unreachable(base_url: object, exc: httpx.HTTPError) -> UpstreamError:
    return UpstreamError(f"cannot reach Lictor at {base_url}: {type(exc).__name__}: {exc}")


AuditFilter = str | int | datetime | None


class LictorClient:
    """Sync client for one Lictor server and one credential. Satisfies ``Decider``.

    Args:
        base_url: The server, e.g. ``http://127.0.0.1:8470``.
        token: A bearer credential: an agent's for ``decide``/``report``, an admin's or
            auditor's for the inventory and the audit trail.
        timeout_seconds: Per request.
        http: An ``httpx.Client`` to use instead of a new one (tests, custom transports);
            its base URL is used as is and it is not closed by :meth:`close`.
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8470",
        token: str | None = None,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        http: httpx.Client | None = None,
    ) -> None:
        self._owns_http = http is None
        self.http = (
            http if http is not None else httpx.Client(base_url=base_url, timeout=timeout_seconds)
        )
        self._headers = _headers(token)

    def __enter__(self) -> LictorClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool (only if this client created it)."""
        if self._owns_http:
            self.http.close()

    def run(self, call: Call[T]) -> T:
        """Send one :class:`Call` and return its typed answer.

        Raises:
            LictorError: the server refused (mapped from problem+json) or is unreachable.
        """
        request = call.build(self.http)
        request.headers.update(self._headers)
        try:
            response = self.http.send(request)
            response.read()
        except httpx.HTTPError as exc:
            raise _unreachable(self.http.base_url, exc) from exc
        return call.answer(response)

    def decide(self, request: RequestLike, *, delegation_token: str | None = None) -> Decision:
        """Ask for a decision. The agent is the credential's; ``agent_id`` may be left out.

        With ``delegation_token`` (from ``POST /v1/token``) the server takes the
        principal and delegation chain from the token, not from the request.

        Raises:
            InvalidToolCall: the request is malformed.
            AuthError: the credential or the delegation token is missing or invalid.
            Forbidden: not an agent credential, or it acts for another agent.
        """
        return self.run(Calls.decide(request, delegation_token))

    def report(self, result: ResultReport) -> None:
        """Report the result of an allowed action.

        Raises:
            NotFound: no such decision.
            Conflict: the decision was not ``allow``.
            Forbidden: the decision was made for another agent.
        """
        self.run(Calls.report(result))

    def record_event(self, event: Mapping[str, Any]) -> None:
        """Put a gateway event about this credential's agent on the audit trail.

        ``event`` holds ``event`` (a lower-case name) and ``problem`` (what happened),
        and optionally ``tool``, ``server``, ``session_id`` and ``detail``.

        Raises:
            InvalidToolCall: the event is malformed.
        """
        self.run(Calls.record_event(event))

    def list_agents(self) -> list[Agent]:
        """Return every inventory record, sorted by id."""
        return self.run(Calls.list_agents())

    def get_agent(self, agent_id: str) -> Agent:
        """Return one inventory record.

        Raises:
            NotFound: no such agent.
        """
        return self.run(Calls.get_agent(agent_id))

    def put_agent(self, agent: Agent) -> Agent:
        """Create or replace an inventory record (admin)."""
        return self.run(Calls.put_agent(agent))

    def delete_agent(self, agent_id: str) -> None:
        """Delete an inventory record (admin).

        Raises:
            NotFound: no such agent.
        """
        self.run(Calls.delete_agent(agent_id))

    def query_audit(self, **filters: AuditFilter) -> AuditPage:
        """Return one page of audit records.

        Filters are the API's query parameters: ``agent``, ``principal``, ``tool``,
        ``outcome``, ``session``, ``decision_id``, ``kind``, ``since``, ``until`` (aware
        datetimes or RFC 3339), ``after`` (a page's ``next``) and ``limit``.
        """
        return self.run(Calls.query_audit(filters))

    def verify_audit(self) -> VerifyReport:
        """Verify the whole trail and its checkpoints on the server."""
        return self.run(Calls.verify_audit())

    def export_audit(self, fmt: ExportFormat = "jsonl", **filters: AuditFilter) -> Iterator[Any]:
        """Stream the trail (``jsonl`` records or ``ocsf`` events), one parsed line at a time."""
        request = Calls.export_audit(fmt, filters).build(self.http)
        request.headers.update(self._headers)
        try:
            response = self.http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise _unreachable(self.http.base_url, exc) from exc
        try:
            if response.status_code != 200:
                response.read()
                raise_problem(response)
            for line in response.iter_lines():
                if line.strip():
                    yield json.loads(line)
        except httpx.HTTPError as exc:
            raise _unreachable(self.http.base_url, exc) from exc
        finally:
            response.close()

    def prove(self, decision_id: str) -> dict[str, Any]:
        """Return an RFC 9162 inclusion proof of a decision's audit record.

        Raises:
            NotFound: no such decision.
        """
        return self.run(Calls.prove(decision_id))

    def policies(self) -> PolicySummary:
        """Return the active policy bundle's version and rules."""
        return self.run(Calls.policies())

    def health(self) -> Health:
        """Return whether the server is ready to decide (no credential needed)."""
        return self.run(Calls.health())

    def get_review(self, review_id: str) -> Review:
        """Return a review (an agent sees only its own).

        Raises:
            NotFound: no such review.
        """
        return self.run(Calls.get_review(review_id))

    def wait_review(self, review_id: str, timeout_seconds: float) -> Review:
        """Long-poll until the review leaves ``pending`` or ``timeout_seconds`` pass.

        Returns the review either way; a still-pending one means the wait ran out.

        Raises:
            NotFound: no such review.
        """
        deadline = time.monotonic() + max(0.0, timeout_seconds)
        while True:
            left = deadline - time.monotonic()
            review = self.run(Calls.get_review(review_id, min(max(left, 0.0), MAX_WAIT_SECONDS)))
            if review.status is not ReviewStatus.PENDING or deadline - time.monotonic() <= 0:
                return review

    def list_reviews(
        self, status: str | None = None, agent_id: str | None = None, limit: int = 100
    ) -> list[Review]:
        """Return reviews, oldest first (reviewer, admin or auditor)."""
        return self.run(Calls.list_reviews(status, agent_id, limit))

    def approve_review(self, review_id: str, comment: str) -> Review:
        """Approve a pending review (reviewer role; never one's own request).

        Raises:
            Forbidden: not a reviewer, or the request's own agent or principal.
            Conflict: the review is no longer pending.
        """
        return self.run(Calls.resolve_review(review_id, "approve", comment))

    def deny_review(self, review_id: str, comment: str) -> Review:
        """Deny a pending review (see :meth:`approve_review`)."""
        return self.run(Calls.resolve_review(review_id, "deny", comment))

    def quarantine(self, agent_id: str, reason: str) -> Agent:
        """Quarantine an agent (admin): deny everything, revoke its credentials."""
        return self.run(Calls.quarantine(agent_id, reason))

    def release(self, agent_id: str, reason: str = "") -> Agent:
        """Release a quarantined or suspended agent (admin)."""
        return self.run(Calls.release(agent_id, reason))

    def quarantine_principal(self, principal_id: str, reason: str) -> None:
        """Deny every request made for a principal (admin)."""
        self.run(Calls.principal(principal_id, "quarantine", reason))

    def release_principal(self, principal_id: str, reason: str = "") -> None:
        """Lift a principal quarantine (admin)."""
        self.run(Calls.principal(principal_id, "release", reason))

    def set_emergency(self, on: bool, reason: str) -> dict[str, Any]:
        """Turn emergency mode on or off (admin); return the new state."""
        state: dict[str, Any] = self.run(Calls.emergency(on, reason))
        return state

    def emergency(self) -> dict[str, Any]:
        """Return the emergency mode state."""
        state: dict[str, Any] = self.run(Calls.emergency())
        return state


class AsyncLictorClient:
    """Async client for one Lictor server and one credential. Satisfies ``AsyncDecider``.

    The same operations and errors as :class:`LictorClient`; see there.
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8470",
        token: str | None = None,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._owns_http = http is None
        self.http = (
            http
            if http is not None
            else httpx.AsyncClient(base_url=base_url, timeout=timeout_seconds)
        )
        self._headers = _headers(token)

    def with_token(self, token: str) -> AsyncLictorClient:
        """Return a client for another credential that shares this one's connection pool.

        The MCP gateway uses this to ask with each HTTP client's own bearer token.
        """
        return AsyncLictorClient(token=token, http=self.http)

    async def __aenter__(self) -> AsyncLictorClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (only if this client created it)."""
        if self._owns_http:
            await self.http.aclose()

    async def run(self, call: Call[T]) -> T:
        """Send one :class:`Call` and return its typed answer.

        Raises:
            LictorError: the server refused (mapped from problem+json) or is unreachable.
        """
        request = call.build(self.http)
        request.headers.update(self._headers)
        try:
            response = await self.http.send(request)
            await response.aread()
        except httpx.HTTPError as exc:
            raise _unreachable(self.http.base_url, exc) from exc
        return call.answer(response)

    async def decide(
        self, request: RequestLike, *, delegation_token: str | None = None
    ) -> Decision:
        """Ask for a decision (see :meth:`LictorClient.decide`)."""
        return await self.run(Calls.decide(request, delegation_token))

    async def report(self, result: ResultReport) -> None:
        """Report the result of an allowed action (see :meth:`LictorClient.report`)."""
        await self.run(Calls.report(result))

    async def record_event(self, event: Mapping[str, Any]) -> None:
        """Record a gateway event (see :meth:`LictorClient.record_event`)."""
        await self.run(Calls.record_event(event))

    async def list_agents(self) -> list[Agent]:
        """Return every inventory record, sorted by id."""
        return await self.run(Calls.list_agents())

    async def get_agent(self, agent_id: str) -> Agent:
        """Return one inventory record."""
        return await self.run(Calls.get_agent(agent_id))

    async def put_agent(self, agent: Agent) -> Agent:
        """Create or replace an inventory record (admin)."""
        return await self.run(Calls.put_agent(agent))

    async def delete_agent(self, agent_id: str) -> None:
        """Delete an inventory record (admin)."""
        await self.run(Calls.delete_agent(agent_id))

    async def query_audit(self, **filters: AuditFilter) -> AuditPage:
        """Return one page of audit records (see :meth:`LictorClient.query_audit`)."""
        return await self.run(Calls.query_audit(filters))

    async def verify_audit(self) -> VerifyReport:
        """Verify the whole trail and its checkpoints on the server."""
        return await self.run(Calls.verify_audit())

    async def export_audit(
        self, fmt: ExportFormat = "jsonl", **filters: AuditFilter
    ) -> AsyncIterator[Any]:
        """Stream the trail, one parsed line at a time."""
        request = Calls.export_audit(fmt, filters).build(self.http)
        request.headers.update(self._headers)
        try:
            response = await self.http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise _unreachable(self.http.base_url, exc) from exc
        try:
            if response.status_code != 200:
                await response.aread()
                raise_problem(response)
            async for line in response.aiter_lines():
                if line.strip():
                    yield json.loads(line)
        except httpx.HTTPError as exc:
            raise _unreachable(self.http.base_url, exc) from exc
        finally:
            await response.aclose()

    async def prove(self, decision_id: str) -> dict[str, Any]:
        """Return an RFC 9162 inclusion proof of a decision's audit record."""
        return await self.run(Calls.prove(decision_id))

    async def policies(self) -> PolicySummary:
        """Return the active policy bundle's version and rules."""
        return await self.run(Calls.policies())

    async def health(self) -> Health:
        """Return whether the server is ready to decide (no credential needed)."""
        return await self.run(Calls.health())

    async def get_review(self, review_id: str) -> Review:
        """Return a review (see :meth:`LictorClient.get_review`)."""
        return await self.run(Calls.get_review(review_id))

    async def wait_review(self, review_id: str, timeout_seconds: float) -> Review:
        """Long-poll until the review leaves ``pending`` (see :meth:`LictorClient.wait_review`)."""
        deadline = time.monotonic() + max(0.0, timeout_seconds)
        while True:
            left = deadline - time.monotonic()
            review = await self.run(
                Calls.get_review(review_id, min(max(left, 0.0), MAX_WAIT_SECONDS))
            )
            if review.status is not ReviewStatus.PENDING or deadline - time.monotonic() <= 0:
                return review

    async def list_reviews(
        self, status: str | None = None, agent_id: str | None = None, limit: int = 100
    ) -> list[Review]:
        """Return reviews, oldest first (reviewer, admin or auditor)."""
        return await self.run(Calls.list_reviews(status, agent_id, limit))

    async def approve_review(self, review_id: str, comment: str) -> Review:
        """Approve a pending review (see :meth:`LictorClient.approve_review`)."""
        return await self.run(Calls.resolve_review(review_id, "approve", comment))

    async def deny_review(self, review_id: str, comment: str) -> Review:
        """Deny a pending review (see :meth:`LictorClient.approve_review`)."""
        return await self.run(Calls.resolve_review(review_id, "deny", comment))
