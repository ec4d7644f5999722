"""Dashboard pages and actions, mounted under ``/ui`` by :func:`ui_routes`.

Reads go straight to the runtime's stores (in a worker thread, like the API); every
handler authenticates the session cookie and checks the role first. Forms are
``application/x-www-form-urlencoded``, parsed here with the standard library (bounded
size), and each carries the session's CSRF token.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import parse_qs, quote

import anyio.to_thread
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from lictor.core.agents import Agent, RiskTier
from lictor.core.decisions import format_time, parse_time
from lictor.core.risk.arguments import find_destinations
from lictor.core.risk.session import SessionState
from lictor.errors import AuthError, Conflict, Forbidden, LictorError, NotFound, PolicyError
from lictor.identity.keys import verifier_from_public_pem
from lictor.server.auth import ADMIN_ONLY, AUDITORS, READERS, REVIEWERS
from lictor.server.problems import HTTPProblem
from lictor.server.runtime import Runtime
from lictor.server.ui.charts import stacked_bars
from lictor.server.ui.feed import FeedHub, Subscription
from lictor.server.ui.session import (
    COOKIE_NAME,
    csrf_token,
    csrf_valid,
    same_origin,
    session_cookie,
)
from lictor.service.audit_ops import (
    VerifyReport,
    announce_verification_failure,
    verify_trail,
)
from lictor.service.exports import iter_records, ocsf_event
from lictor.service.inventory import Inventory
from lictor.service.policies import Bundle
from lictor.service.policy_tests import TestResult, collect_cases, run_cases
from lictor.service.ports import AuditQuery, Credential, Role
from lictor.service.reviews import ReviewService, ReviewStatus, Verdict

__all__ = ["ui_routes"]

log = logging.getLogger("lictor.ui")

CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
MAX_FORM_BYTES: Final = 16_384
SCAN_LIMIT: Final = 50_000  # decision records read for one overview or inventory page
OUTCOMES: Final = ("allow", "review", "deny")
FEED_HEARTBEAT_SECONDS: Final = 15.0
REVIEW_PAGE: Final = frozenset({Role.ADMIN, Role.REVIEWER})


class _Redirect(Exception):
    def __init__(self, location: str) -> None:
        self.location = location


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking: their credential and the CSRF token their forms must carry."""

    credential: Credential
    csrf: str
    token: str

    @property
    def role(self) -> str:
        """The role's name, for templates."""
        return self.credential.role.value

    def can(self, *roles: Role) -> bool:
        """Whether this person holds one of ``roles``."""
        return self.credential.role in roles


Handler = Callable[[Request, Viewer], Awaitable[Response]]


async def _read_form(request: Request) -> dict[str, str]:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise _Refused(415, "forms are sent as application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise _Refused(413, "form too large")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise _Refused(400, "form is not UTF-8") from None
    return {key: values[-1] for key, values in parsed.items()}


def _scan(runtime: Runtime, query: AuditQuery, limit: int = SCAN_LIMIT) -> list[dict[str, Any]]:
    """Payloads matching ``query``, oldest first, at most ``limit`` (newest kept)."""
    payloads: list[dict[str, Any]] = []
    for record in iter_records(runtime.store.audit, query):
        payload = dict(record.payload)
        payload["_seq"] = record.seq
        payloads.append(payload)
        if len(payloads) > limit:
            del payloads[: len(payloads) - limit]
    return payloads


def _since(value: str | None, now: datetime, default: timedelta) -> datetime:
    """Parse ``7d``, ``12h``, ``30m`` or an RFC 3339 time; fall back to ``default``."""
    if value:
        units = {"d": "days", "h": "hours", "m": "minutes"}
        if value[:-1].isdigit() and value[-1] in units:
            return now - timedelta(**{units[value[-1]]: int(value[:-1])})
        try:
            return parse_time(value)
        except LictorError:
            raise _Refused(400, f"not a time or a duration like 7d: {value!r}") from None
    return now - default


class Ui:
    """The dashboard, bound to one runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.env = Environment(
            loader=PackageLoader("lictor.server.ui", "templates"),
            autoescape=select_autoescape(("html",)),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["tojson_pretty"] = lambda value: json.dumps(
            value, indent=2, ensure_ascii=False, sort_keys=True, default=str
        )
        self.hub = FeedHub()
        runtime.writer.add_listener(self.hub.publish)
        self._verify_signature = verifier_from_public_pem(runtime.signer.public_key_pem())
        self.last_verify: tuple[datetime, VerifyReport] | None = None
        self._tests_by_version: dict[str, dict[str, str]] = {}

    # -- plumbing ----------------------------------------------------------------------

    def render(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        """Render a template with the security headers every page carries."""
        html = self.env.get_template(name).render(**context)
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    async def viewer(self, request: Request) -> Viewer:
        """Authenticate the session cookie; redirect to the log-in page without one."""
        token = request.cookies.get(COOKIE_NAME)
        if not token:
            raise _Redirect("/ui/login?next=" + quote(request.url.path))
        try:
            credential = await self.runtime.authenticator.authenticate(f"Bearer {token}")
        except (AuthError, HTTPProblem):
            raise _Redirect("/ui/login?expired=1") from None
        if credential.role not in READERS:
            raise _Refused(403, "the dashboard is for admins, reviewers and auditors")
        return Viewer(credential, csrf_token(token), token)

    def page(self, handler: Handler, roles: frozenset[Role] = READERS) -> Callable[..., Any]:
        """Wrap a GET handler: session, role, then the page."""

        async def run(request: Request) -> Response:
            try:
                viewer = await self.viewer(request)
                if viewer.credential.role not in roles:
                    raise _Refused(403, "your role may not open this page")
                return await handler(request, viewer)
            except _Redirect as redirect:
                return RedirectResponse(redirect.location, 303, headers=SECURITY_HEADERS)
            except _Refused as refused:
                return self.render(
                    "error.html", refused.status, message=refused.message, viewer=None
                )

        return run

    def action(self, handler: Handler, roles: frozenset[Role]) -> Callable[..., Any]:
        """Wrap a POST handler: session, role, origin and CSRF checks, then the action."""

        async def run(request: Request) -> Response:
            try:
                viewer = await self.viewer(request)
                if viewer.credential.role not in roles:
                    raise _Refused(403, "your role may not do this")
                if not same_origin(request.headers, request.headers.get("host")):
                    raise _Refused(403, "cross-origin form refused")
                form = await _read_form(request)
                if not csrf_valid(viewer.token, form.get("csrf")):
                    raise _Refused(403, "the form's CSRF token is missing or wrong; reload")
                request.state.form = form
                return await handler(request, viewer)
            except _Redirect as redirect:
                return RedirectResponse(redirect.location, 303, headers=SECURITY_HEADERS)
            except _Refused as refused:
                return self.render(
                    "error.html", refused.status, message=refused.message, viewer=None
                )

        return run

    # -- log in / out -------------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        """The log-in form."""
        return self.render(
            "login.html",
            viewer=None,
            expired=request.query_params.get("expired") == "1",
            next=request.query_params.get("next", "/ui"),
            error=None,
        )

    async def login(self, request: Request) -> Response:
        """Check the token like the API does; start a session for people only."""
        try:
            if not same_origin(request.headers, request.headers.get("host")):
                raise _Refused(403, "cross-origin form refused")
            form = await _read_form(request)
        except _Refused as refused:
            return self.render("error.html", refused.status, message=refused.message, viewer=None)
        token = form.get("token", "").strip()
        target = form.get("next", "/ui")
        if not target.startswith("/ui") or target.startswith("//"):
            target = "/ui"
        error = None
        try:
            credential = await self.runtime.authenticator.authenticate(f"Bearer {token}")
        except (AuthError, HTTPProblem):
            error = "That token is not valid (unknown, revoked or mistyped)."
        else:
            if credential.role not in READERS:
                error = "Agent credentials cannot open the dashboard; use a person's token."
        if error is not None:
            return self.render(
                "login.html", 401, viewer=None, expired=False, next=target, error=error
            )
        response = RedirectResponse(target, 303, headers=SECURITY_HEADERS)
        response.headers.append("Set-Cookie", session_cookie(token))
        return response

    async def logout(self, request: Request, viewer: Viewer) -> Response:
        """End the session (the token itself stays valid: revoke it with the CLI)."""
        response = RedirectResponse("/ui/login", 303, headers=SECURITY_HEADERS)
        response.headers.append("Set-Cookie", session_cookie("", max_age=0))
        return response

    # -- overview -----------------------------------------------------------------------

    async def overview(self, request: Request, viewer: Viewer) -> Response:
        """Decisions per minute, top denials, agents by status, audit status."""
        runtime = self.runtime
        now = runtime.clock.now()
        start = (now - timedelta(minutes=59)).replace(second=0, microsecond=0)
        decisions = await anyio.to_thread.run_sync(
            _scan, runtime, AuditQuery(kind="decision", since=start, limit=1000)
        )
        minutes = [start + timedelta(minutes=i) for i in range(60)]
        counts: dict[str, Counter[str]] = {format_time(m)[:16]: Counter() for m in minutes}
        denied_tools: Counter[str] = Counter()
        denied_agents: Counter[str] = Counter()
        for payload in decisions:
            bucket = counts.get(str(payload.get("at", ""))[:16])
            outcome = str(payload.get("outcome"))
            if bucket is not None:
                bucket[outcome] += 1
            if outcome == "deny":
                denied_tools[str(payload.get("tool"))] += 1
                denied_agents[str(payload.get("agent_id"))] += 1
        chart = stacked_bars(
            [(label[11:16], dict(c)) for label, c in counts.items()], ("allow", "review", "deny")
        )
        agents = await anyio.to_thread.run_sync(runtime.agents.list)
        by_status = Counter(a.status.value for a in agents)
        shadow = [a for a in agents if a.status.value == "shadow"]
        size = await anyio.to_thread.run_sync(runtime.store.audit.size)
        return self.render(
            "overview.html",
            viewer=viewer,
            active="overview",
            chart=chart,
            totals=Counter(str(p.get("outcome")) for p in decisions),
            denied_tools=denied_tools.most_common(5),
            denied_agents=denied_agents.most_common(5),
            by_status=sorted(by_status.items()),
            shadow=shadow,
            trail_size=size,
            last_verify=self.last_verify,
            extras=await anyio.to_thread.run_sync(_extras, runtime),
        )

    # -- inventory ----------------------------------------------------------------------

    async def agents(self, request: Request, viewer: Viewer) -> Response:
        """Every agent with its last-24-hour activity; filters by status and text."""
        runtime = self.runtime
        status = request.query_params.get("status") or None
        text = (request.query_params.get("q") or "").strip().lower()
        agents: list[Agent] = await anyio.to_thread.run_sync(runtime.agents.list)
        since = runtime.clock.now() - timedelta(hours=24)
        recent = await anyio.to_thread.run_sync(
            _scan, runtime, AuditQuery(kind="decision", since=since, limit=1000)
        )
        activity: Counter[str] = Counter(str(p.get("agent_id")) for p in recent)
        last_seen: dict[str, str] = {}
        for payload in recent:
            last_seen[str(payload.get("agent_id"))] = str(payload.get("at"))
        rows = [
            a
            for a in agents
            if (status is None or a.status.value == status)
            and (
                not text
                or text in a.id.lower()
                or text in a.owner.lower()
                or text in a.purpose.lower()
                or text in a.name.lower()
            )
        ]
        return self.render(
            "agents.html",
            viewer=viewer,
            active="agents",
            agents=rows,
            activity=activity,
            last_seen=last_seen,
            status_filter=status or "",
            q=text,
            statuses=sorted({a.status.value for a in agents}),
        )

    async def agent(self, request: Request, viewer: Viewer) -> Response:
        """One agent: profile, usual tools and hours, and its timeline."""
        runtime = self.runtime
        agent_id = request.path_params["agent_id"]
        agent = await anyio.to_thread.run_sync(runtime.store.agents.get, agent_id)
        since = _since(request.query_params.get("since"), runtime.clock.now(), timedelta(days=7))
        records = await anyio.to_thread.run_sync(
            lambda: _scan(runtime, AuditQuery(agent_id=agent_id, since=since, limit=1000), 500)
        )
        if agent is None and not records:
            return self.render("error.html", 404, message=f"no agent {agent_id!r}", viewer=viewer)
        decisions = [p for p in records if p.get("kind") == "decision"]
        tools = Counter(str(p.get("tool")) for p in decisions).most_common(10)
        destinations: Counter[str] = Counter()
        for payload in decisions:
            arguments = payload.get("arguments")
            if isinstance(arguments, Mapping):
                for found in find_destinations(arguments):
                    destinations[f"{found.kind.value}: {found.value}"] += 1
        hours: Counter[str] = Counter(str(p.get("at", ""))[11:13] for p in decisions)
        hour_chart = stacked_bars(
            [(f"{h:02d}h", {"calls": hours.get(f"{h:02d}", 0)}) for h in range(24)],
            ("calls",),
            width=480,
            height=80,
        )
        credentials = []
        if viewer.can(Role.ADMIN, Role.AUDITOR):
            credentials = await anyio.to_thread.run_sync(
                lambda: runtime.store.credentials.list(agent_id)
            )
        return self.render(
            "agent.html",
            viewer=viewer,
            active="agents",
            agent=agent,
            agent_id=agent_id,
            timeline=list(reversed(records)),
            tools=tools,
            destinations=destinations.most_common(10),
            hour_chart=hour_chart,
            credentials=credentials,
            since=format_time(since),
        )

    # -- live feed ----------------------------------------------------------------------

    async def feed(self, request: Request, viewer: Viewer) -> Response:
        """The live-feed page (the stream itself is :meth:`feed_stream`)."""
        return self.render(
            "feed.html",
            viewer=viewer,
            active="feed",
            agent=request.query_params.get("agent", ""),
            outcome=request.query_params.get("outcome", ""),
        )

    async def feed_stream(self, request: Request, viewer: Viewer) -> Response:
        """Server-sent events: one ``decision`` event per committed decision."""
        subscription = Subscription(
            asyncio.get_running_loop(),
            agent=request.query_params.get("agent") or None,
            outcome=request.query_params.get("outcome") or None,
        )
        self.hub.subscribe(subscription)

        async def events() -> AsyncIterator[bytes]:
            try:
                yield b"retry: 2000\n\n"
                while True:
                    try:
                        item = await asyncio.wait_for(
                            subscription.queue.get(), FEED_HEARTBEAT_SECONDS
                        )
                    except TimeoutError:
                        yield b": keep-alive\n\n"
                        continue
                    if subscription.missed:
                        item = {**item, "missed": subscription.missed}
                        subscription.missed = 0
                    data = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
                    yield f"event: decision\nid: {item['seq']}\ndata: {data}\n\n".encode()
            finally:
                self.hub.unsubscribe(subscription)

        headers = {**SECURITY_HEADERS, "X-Accel-Buffering": "no"}
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    # -- audit --------------------------------------------------------------------------

    async def audit(self, request: Request, viewer: Viewer) -> Response:
        """Search the trail with the API's filters, page by page."""
        params = request.query_params
        filters = {
            name: (params.get(name) or "").strip() or None
            for name in ("agent_id", "principal_id", "tool", "outcome", "session_id", "kind")
        }
        after = params.get("after", "-1")
        since_text = (params.get("since") or "").strip()
        now = self.runtime.clock.now()
        try:
            since = _since(since_text, now, timedelta(0)) if since_text else None
        except _Refused as refused:
            return self.render("error.html", 400, message=refused.message, viewer=viewer)
        query = AuditQuery(
            agent_id=filters["agent_id"],
            principal_id=filters["principal_id"],
            tool=filters["tool"],
            outcome=filters["outcome"],
            session_id=filters["session_id"],
            kind=filters["kind"],
            since=since,
            after_seq=int(after) if after.lstrip("-").isdigit() else -1,
            limit=50,
        )
        page = await anyio.to_thread.run_sync(self.runtime.store.audit.query, query)
        return self.render(
            "audit.html",
            viewer=viewer,
            active="audit",
            records=page.records,
            next_after=page.next_after_seq,
            filters=filters,
            since=since_text,
            last_verify=self.last_verify,
            query_string=str(request.query_params),
        )

    async def record(self, request: Request, viewer: Viewer) -> Response:
        """One audit record in full: who, what, why, and its result reports."""
        seq = request.path_params["seq"]
        store = self.runtime.store.audit
        found = await anyio.to_thread.run_sync(lambda: list(store.records(seq, seq + 1)))
        if not found:
            return self.render("error.html", 404, message=f"no record {seq}", viewer=viewer)
        record = found[0]
        results: list[Any] = []
        decision_id = record.payload.get("decision_id")
        if record.payload.get("kind") == "decision" and isinstance(decision_id, str):
            page = await anyio.to_thread.run_sync(
                store.query, AuditQuery(kind="result", decision_id=decision_id)
            )
            results = list(page.records)
        return self.render(
            "record.html",
            viewer=viewer,
            active="audit",
            record=record,
            payload=record.payload,
            results=results,
        )

    async def verify(self, request: Request, viewer: Viewer) -> Response:
        """Verify the whole trail now and show the result."""
        report = await anyio.to_thread.run_sync(
            verify_trail, self.runtime.store.audit, self._verify_signature
        )
        self.last_verify = (self.runtime.clock.now(), report)
        if not report.ok:
            log.critical("audit verification failed from the dashboard: %s", report.error)
            announce_verification_failure(self.runtime.events, report, self.runtime.clock.now())
        return RedirectResponse("/ui/audit", 303, headers=SECURITY_HEADERS)

    async def export(self, request: Request, viewer: Viewer) -> Response:
        """Download the trail (or the filtered part) as JSON Lines or OCSF."""
        fmt = request.query_params.get("format", "jsonl")
        if fmt not in ("jsonl", "ocsf"):
            return self.render("error.html", 400, message="format is jsonl or ocsf", viewer=viewer)
        agent_id = request.query_params.get("agent_id") or None
        store = self.runtime.store.audit

        def lines() -> Iterator[bytes]:
            for record in iter_records(store, AuditQuery(agent_id=agent_id, limit=1000)):
                if fmt == "jsonl":
                    item: Mapping[str, Any] | None = {
                        "seq": record.seq,
                        "record_hash": record.record_hash,
                        "payload": record.payload,
                    }
                else:
                    item = ocsf_event(record)
                if item is not None:
                    yield (json.dumps(item, ensure_ascii=False, default=str) + "\n").encode()

        headers = {
            **SECURITY_HEADERS,
            "Content-Disposition": f'attachment; filename="lictor-audit.{fmt}.jsonl"',
        }
        return StreamingResponse(
            _in_thread(lines()), media_type="application/x-ndjson", headers=headers
        )

    # -- reviews ------------------------------------------------------------------------

    def _reviews(self) -> ReviewService:
        service = self.runtime.reviews
        if service is None:
            raise _Refused(404, "reviews are not set up on this server")
        return service

    async def reviews(self, request: Request, viewer: Viewer) -> Response:
        """The pending queue (and the last resolved ones), with what a reviewer needs."""
        service = self._reviews()
        pending = await anyio.to_thread.run_sync(
            lambda: service.list(status=ReviewStatus.PENDING, limit=200)
        )
        decided = await anyio.to_thread.run_sync(lambda: service.list(limit=1000))
        recent = [r for r in decided if not r.is_pending][-20:]
        store = self.runtime.store.audit
        risks: dict[str, Any] = {}
        provenance: dict[str, dict[str, list[str]]] = {}
        for review in pending:
            record = await anyio.to_thread.run_sync(store.find_decision, review.decision_id)
            if record is not None:
                risks[review.review_id] = record.payload.get("risk")
            provenance[review.review_id] = await anyio.to_thread.run_sync(
                self._provenance, review.request
            )
        return self.render(
            "reviews.html",
            viewer=viewer,
            active="reviews",
            pending=pending,
            recent=list(reversed(recent)),
            risks=risks,
            provenance=provenance,
            may_decide=viewer.can(Role.REVIEWER),
            notice=request.query_params.get("done"),
        )

    def _provenance(self, request: Mapping[str, Any]) -> dict[str, list[str]]:
        """Where each destination-like or amount argument of a held call came from.

        Traced now against the session's recorded tool outputs, the task text and the
        agent's inventory attributes, as the risk engine traces them while deciding.
        """
        arguments = request.get("arguments")
        if not isinstance(arguments, Mapping):
            return {}
        session_id = request.get("session_id")
        risk = self.runtime.governor.risk
        sessions = risk.store if risk is not None else self.runtime.store.risk  # Redis or SQL
        state = sessions.session(session_id) if isinstance(session_id, str) else None
        agent_id = request.get("agent_id")
        agent = self.runtime.agents.get(agent_id) if isinstance(agent_id, str) else None
        index = (state or SessionState()).index(agent.attributes if agent is not None else None)
        context = request.get("context")
        task = context.get("task") if isinstance(context, Mapping) else None
        traced = index.trace(arguments, task=task if isinstance(task, str) else "")
        return {path: sources or ["nowhere"] for path, sources in traced.to_cel().items()}

    async def resolve_review(self, request: Request, viewer: Viewer) -> Response:
        """Approve or deny one review with a comment (the reviewer role only)."""
        form: dict[str, str] = request.state.form
        verdict = form.get("verdict")
        if verdict not in (Verdict.APPROVE.value, Verdict.DENY.value):
            raise _Refused(400, "verdict must be approve or deny")
        comment = form.get("comment", "").strip()
        if not comment:
            raise _Refused(400, "say why in the comment; it goes on the audit trail")
        review_id = request.path_params["review_id"]
        try:
            await anyio.to_thread.run_sync(
                lambda: self._reviews().resolve(
                    review_id,
                    Verdict(verdict),
                    reviewer=viewer.credential.subject,
                    comment=comment,
                    credential_id=viewer.credential.id,
                )
            )
        except (Forbidden, Conflict, NotFound) as exc:
            raise _Refused(409 if isinstance(exc, Conflict) else 403, str(exc)) from None
        return RedirectResponse(f"/ui/reviews?done={quote(verdict)}", 303, headers=SECURITY_HEADERS)

    # -- incident response --------------------------------------------------------------

    async def agent_action(self, request: Request, viewer: Viewer) -> Response:
        """Suspend, quarantine or release an agent from its page (admins only)."""
        form: dict[str, str] = request.state.form
        action = form.get("action")
        reason = form.get("reason", "").strip()
        agent_id = request.path_params["agent_id"]
        if not reason:
            raise _Refused(400, "give a reason; it goes on the audit trail")
        response = self.runtime.response
        steps = {
            "quarantine": response.quarantine,
            "suspend": response.suspend,
            "release": response.release,
        }
        step = steps.get(action or "")
        if step is None:
            raise _Refused(400, "action must be quarantine, suspend or release")
        try:
            await anyio.to_thread.run_sync(
                lambda: step(agent_id, reason=reason, actor=viewer.credential.subject)
            )
        except (NotFound, Conflict) as exc:
            raise _Refused(409, str(exc)) from None
        return RedirectResponse(f"/ui/agents/{quote(agent_id)}", 303, headers=SECURITY_HEADERS)

    async def adopt(self, request: Request, viewer: Viewer) -> Response:
        """Register a shadow agent: give it an owner, a purpose and tools (admins only)."""
        form: dict[str, str] = request.state.form
        agent_id = request.path_params["agent_id"]
        owner = form.get("owner", "").strip()
        purpose = form.get("purpose", "").strip()
        tools = tuple(t.strip() for t in form.get("tools", "").split(",") if t.strip())
        if not owner or not purpose:
            raise _Refused(400, "an adopted agent needs an owner and a purpose")
        try:
            tier = RiskTier(form.get("tier", "medium"))
        except ValueError:
            raise _Refused(400, "risk tier must be low, medium, high or critical") from None
        agent = Agent(
            id=agent_id, owner=owner, purpose=purpose, allowed_tools=tools, risk_tier=tier
        )
        inventory = Inventory(self.runtime.agents, self.runtime.audit, self.runtime.clock)
        try:
            await anyio.to_thread.run_sync(
                lambda: inventory.register(
                    agent,
                    actor=viewer.credential.subject,
                    credential_id=viewer.credential.id,
                    reason=form.get("reason") or "adopted from the dashboard",
                )
            )
        except (Conflict, PolicyError) as exc:
            raise _Refused(409, str(exc)) from None
        return RedirectResponse(f"/ui/agents/{quote(agent_id)}", 303, headers=SECURITY_HEADERS)

    async def credential_action(self, request: Request, viewer: Viewer) -> Response:
        """Revoke or rotate one of an agent's credentials (admins only).

        A rotated token is shown once, on the page that answers the form, and never again.
        """
        form: dict[str, str] = request.state.form
        agent_id = request.path_params["agent_id"]
        credential_id = request.path_params["credential_id"]
        credentials = self.runtime.credentials
        found = await anyio.to_thread.run_sync(
            lambda: self.runtime.store.credentials.list(agent_id)
        )
        if credential_id not in {c.id for c in found}:
            raise _Refused(404, f"agent {agent_id!r} has no credential {credential_id!r}")
        action = form.get("action")
        if action == "revoke":
            await anyio.to_thread.run_sync(lambda: credentials.revoke(credential_id))
            self.runtime.authenticator.forget(agent_id)
            return RedirectResponse(f"/ui/agents/{quote(agent_id)}", 303, headers=SECURITY_HEADERS)
        if action == "rotate":
            issued = await anyio.to_thread.run_sync(lambda: credentials.rotate(credential_id))
            self.runtime.authenticator.forget(agent_id)
            return self.render(
                "rotated.html",
                viewer=viewer,
                active="agents",
                agent_id=agent_id,
                issued=issued,
            )
        raise _Refused(400, "action must be revoke or rotate")

    # -- policies -----------------------------------------------------------------------

    def _rule_tests(self, bundle: Bundle) -> dict[str, str]:
        """Run the bundle's own test cases; memoised per version (a bundle never changes)."""
        cached = self._tests_by_version.get(bundle.version)
        if cached is None:
            agents: dict[str, Agent] = {str(a.id): a for a in self.runtime.agents.list()}
            try:
                results = run_cases(bundle, agents, collect_cases(bundle.documents))
            except LictorError as exc:
                log.warning("policy tests of %s could not run: %s", bundle.version, exc)
                results = []
            cached = self._tests_by_version[bundle.version] = _rule_test_status(results)
        return cached

    async def policies(self, request: Request, viewer: Viewer) -> Response:
        """The active version and its rules, with hits over the last 24 hours."""
        runtime = self.runtime
        policy = runtime.governor.policy
        since = runtime.clock.now() - timedelta(hours=24)
        recent = await anyio.to_thread.run_sync(
            _scan, runtime, AuditQuery(kind="decision", since=since, limit=1000)
        )
        hits: Counter[str] = Counter()
        for payload in recent:
            for reason in payload.get("reasons") or []:
                if isinstance(reason, Mapping):
                    hits[str(reason.get("rule"))] += 1
        bundle = runtime.lifecycle.current
        tests = await anyio.to_thread.run_sync(self._rule_tests, bundle)
        history = await anyio.to_thread.run_sync(runtime.lifecycle.versions.history)
        return self.render(
            "policies.html",
            tests=tests,
            history=list(reversed(history))[:20],
            viewer=viewer,
            active="policies",
            version=policy.version,
            timezone=policy.policy.timezone,
            rules=policy.policy.rules,
            hits=hits,
            root=str(runtime.bundle.root),
        )


def _rule_test_status(results: list[TestResult]) -> dict[str, str]:
    """Per rule: ``passing`` if every case exercising it passes, ``failing`` otherwise."""
    status: dict[str, str] = {}
    for result in results:
        passed = not result.diff
        for rule in result.exercised:
            if not passed:
                status[rule] = "failing"
            else:
                status.setdefault(rule, "passing")
    return status


async def _in_thread(lines: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Drive a blocking iterator (store reads) from a worker thread, chunk by chunk."""
    while True:
        chunk: bytes | None = await anyio.to_thread.run_sync(next, lines, None)
        if chunk is None:
            return
        yield chunk


def _extras(runtime: Runtime) -> dict[str, Any]:
    """Open reviews and the alerts of the last 24 hours (from the audit trail)."""
    extras: dict[str, Any] = {}
    if runtime.reviews is not None:
        extras["open_reviews"] = len(runtime.reviews.list(status=ReviewStatus.PENDING, limit=1000))
    since = runtime.clock.now() - timedelta(hours=24)
    alerts = _scan(runtime, AuditQuery(kind="alert", since=since, limit=1000), 200)
    extras["alerts"] = list(reversed(alerts))[:8]
    extras["alert_count"] = len(alerts)
    return extras


def ui_routes(runtime: Runtime) -> list[BaseRoute]:
    """The dashboard's routes, all under ``/ui``."""
    ui = Ui(runtime)
    return [
        Route("/ui", ui.page(ui.overview), methods=["GET"]),
        Route("/ui/login", ui.login_page, methods=["GET"]),
        Route("/ui/login", ui.login, methods=["POST"]),
        Route("/ui/logout", ui.action(ui.logout, READERS), methods=["POST"]),
        Route("/ui/agents", ui.page(ui.agents), methods=["GET"]),
        Route("/ui/agents/{agent_id}", ui.page(ui.agent), methods=["GET"]),
        Route("/ui/feed", ui.page(ui.feed), methods=["GET"]),
        Route("/ui/feed/stream", ui.page(ui.feed_stream), methods=["GET"]),
        Route("/ui/audit", ui.page(ui.audit, AUDITORS), methods=["GET"]),
        Route("/ui/audit/records/{seq:int}", ui.page(ui.record, AUDITORS), methods=["GET"]),
        Route("/ui/audit/verify", ui.action(ui.verify, AUDITORS), methods=["POST"]),
        Route("/ui/audit/export", ui.page(ui.export, AUDITORS), methods=["GET"]),
        Route("/ui/policies", ui.page(ui.policies), methods=["GET"]),
        Route("/ui/reviews", ui.page(ui.reviews, REVIEW_PAGE), methods=["GET"]),
        Route(
            "/ui/reviews/{review_id}",
            ui.action(ui.resolve_review, REVIEWERS),
            methods=["POST"],
        ),
        Route("/ui/agents/{agent_id}/adopt", ui.action(ui.adopt, ADMIN_ONLY), methods=["POST"]),
        Route(
            "/ui/agents/{agent_id}/credentials/{credential_id}",
            ui.action(ui.credential_action, ADMIN_ONLY),
            methods=["POST"],
        ),
        Route(
            "/ui/agents/{agent_id}/status",
            ui.action(ui.agent_action, ADMIN_ONLY),
            methods=["POST"],
        ),
        Mount("/ui/static", StaticFiles(packages=[("lictor.server.ui", "static")]), name="static"),
    ]
