"""HTTP handlers for human review and incident response.

Reviews: ``GET /v1/reviews``, ``GET /v1/reviews/{id}`` (with ``?wait=SECONDS`` as a
long-poll that holds no worker thread), ``POST /v1/reviews/{id}/approve|deny``. Incident
response: ``POST /v1/agents/{id}/quarantine|release``, ``POST
/v1/principals/{id}/quarantine|release``, ``GET|POST /v1/emergency``.

Which role may call each route is :data:`lictor.server.auth.ENDPOINTS`; this module adds
the checks that depend on the record: an agent reads only its own reviews, and nobody
reviews an action taken by or for themselves (:class:`~lictor.service.reviews.ReviewService`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from lictor.core.decisions import format_time
from lictor.errors import Forbidden, NotFound
from lictor.server.problems import HTTPProblem
from lictor.server.runtime import Runtime
from lictor.service.ports import Credential, Role
from lictor.service.reviews import MAX_WAIT_SECONDS, ReviewStatus, Verdict

__all__ = ["ReviewsApi"]

MAX_TEXT_CHARS: Final = 4096
MAX_REVIEW_PAGE: Final = 1000
_STATUSES: Final = frozenset(s.value for s in ReviewStatus)


class ReviewsApi:
    """The review and incident-response handlers, bound to one :class:`Runtime`."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def handlers(self) -> dict[str, Any]:
        """Handlers by endpoint name (merged into ``Api.protected()``)."""
        return {
            "list_reviews": self.list_reviews,
            "get_review": self.get_review,
            "approve_review": self.approve_review,
            "deny_review": self.deny_review,
            "quarantine_agent": self.quarantine_agent,
            "release_agent": self.release_agent,
            "quarantine_principal": self.quarantine_principal,
            "release_principal": self.release_principal,
            "get_emergency": self.get_emergency,
            "set_emergency": self.set_emergency,
        }

    def _reviews(self) -> Any:
        reviews = self.runtime.reviews
        if reviews is None:  # a Runtime assembled by hand without reviews
            raise HTTPProblem("not-found", "this server keeps no reviews")
        return reviews

    # -- reviews ------------------------------------------------------------------------------

    async def list_reviews(self, request: Request, caller: Credential) -> Response:
        """``GET /v1/reviews?status=pending&agent=ID&limit=N``: oldest first."""
        values = _parameters(request, {"status", "agent", "limit"})
        status = values.get("status")
        if status is not None and status not in _STATUSES:
            raise HTTPProblem(
                "invalid-request",
                f"must be one of {', '.join(sorted(_STATUSES))}",
                parameter="status",
            )
        limit_text = values.get("limit", "100")
        if not limit_text.isascii() or not limit_text.isdigit():
            raise HTTPProblem("invalid-request", "must be an integer", parameter="limit")
        limit = int(limit_text)
        if not 1 <= limit <= MAX_REVIEW_PAGE:
            raise HTTPProblem(
                "invalid-request", f"must be from 1 to {MAX_REVIEW_PAGE}", parameter="limit"
            )
        reviews = self._reviews()
        found = await anyio.to_thread.run_sync(
            lambda: reviews.list(
                status=ReviewStatus(status) if status is not None else None,
                agent_id=values.get("agent"),
                limit=limit,
            )
        )
        return _json({"reviews": [r.to_json() for r in found]})

    async def get_review(self, request: Request, caller: Credential) -> Response:
        """``GET /v1/reviews/{id}[?wait=SECONDS]``: answer once it leaves pending, or at the end.

        An agent may read only the reviews of its own requests; the answer is the same
        404 as for an unknown id, so an agent cannot probe for other agents' reviews.
        """
        review_id = request.path_params["review_id"]
        values = _parameters(request, {"wait"})
        wait = _seconds(values.get("wait"))
        reviews = self._reviews()
        review = await anyio.to_thread.run_sync(reviews.get, review_id)
        if caller.role is Role.AGENT and review.agent_id != caller.subject:
            raise NotFound("review", review_id)
        if wait > 0 and review.is_pending:
            review = await reviews.wait_async(review_id, wait)
        return _json(review.to_json())

    async def approve_review(self, request: Request, caller: Credential) -> Response:
        """``POST /v1/reviews/{id}/approve`` with ``{"comment": ...}`` (reviewer role)."""
        return await self._resolve(request, caller, Verdict.APPROVE)

    async def deny_review(self, request: Request, caller: Credential) -> Response:
        """``POST /v1/reviews/{id}/deny`` with ``{"comment": ...}`` (reviewer role)."""
        return await self._resolve(request, caller, Verdict.DENY)

    async def _resolve(self, request: Request, caller: Credential, verdict: Verdict) -> Response:
        if caller.role is not Role.REVIEWER:  # the route table says so too; never rely on one
            raise Forbidden("only the reviewer role may approve or deny reviews")
        review_id = request.path_params["review_id"]
        body = await _body(request, self.runtime, required={"comment"}, optional=set())
        comment = _text(body, "comment", allow_empty=True)
        reviews = self._reviews()
        done = await anyio.to_thread.run_sync(
            lambda: reviews.resolve(
                review_id,
                verdict,
                reviewer=caller.subject,
                comment=comment,
                credential_id=caller.id,
            )
        )
        return _json(done.to_json())

    # -- incident response --------------------------------------------------------------------

    async def quarantine_agent(self, request: Request, caller: Credential) -> Response:
        """``POST /v1/agents/{id}/quarantine`` with ``{"reason": ...}`` (admin)."""
        agent_id = request.path_params["agent_id"]
        body = await _body(request, self.runtime, required={"reason"}, optional=set())
        reason = _text(body, "reason")
        runtime = self.runtime
        await anyio.to_thread.run_sync(
            lambda: runtime.response.quarantine(agent_id, reason=reason, actor=caller.subject)
        )
        runtime.authenticator.forget(agent_id)
        return await self._agent(agent_id)

    async def release_agent(self, request: Request, caller: Credential) -> Response:
        """``POST /v1/agents/{id}/release`` with ``{"reason": ...}`` (optional; admin)."""
        agent_id = request.path_params["agent_id"]
        body = await _body(request, self.runtime, required=set(), optional={"reason"})
        reason = _text(body, "reason", allow_empty=True) if "reason" in body else ""
        runtime = self.runtime
        await anyio.to_thread.run_sync(
            lambda: runtime.response.release(agent_id, reason=reason, actor=caller.subject)
        )
        return await self._agent(agent_id)

    async def _agent(self, agent_id: str) -> Response:
        agent = await anyio.to_thread.run_sync(self.runtime.agents.store.get, agent_id)
        return _json(agent.to_json() if agent is not None else {"id": agent_id})

    async def quarantine_principal(self, request: Request, caller: Credential) -> Response:
        """``POST /v1/principals/{id}/quarantine`` with ``{"reason": ...}`` (admin)."""
        principal_id = request.path_params["principal_id"]
        body = await _body(request, self.runtime, required={"reason"}, optional=set())
        reason = _text(body, "reason")
        response = self.runtime.response
        await anyio.to_thread.run_sync(
            lambda: response.quarantine_principal(principal_id, reason=reason, actor=caller.subject)
        )
        return _json({"principal_id": principal_id, "quarantined": True, "reason": reason})

    async def release_principal(self, request: Request, caller: Credential) -> Response:
        """``POST /v1/principals/{id}/release`` (admin); 404 if it was not quarantined."""
        principal_id = request.path_params["principal_id"]
        body = await _body(request, self.runtime, required=set(), optional={"reason"})
        reason = _text(body, "reason", allow_empty=True) if "reason" in body else ""
        response = self.runtime.response
        await anyio.to_thread.run_sync(
            lambda: response.release_principal(principal_id, reason=reason, actor=caller.subject)
        )
        return _json({"principal_id": principal_id, "quarantined": False})

    async def get_emergency(self, request: Request, caller: Credential) -> Response:
        """``GET /v1/emergency``: whether emergency mode is on, since when, and why."""
        _parameters(request, set())
        state = await anyio.to_thread.run_sync(self.runtime.response.emergency)
        return _json(_emergency(state))

    async def set_emergency(self, request: Request, caller: Credential) -> Response:
        """``POST /v1/emergency`` with ``{"on": true|false, "reason": ...}`` (admin)."""
        body = await _body(request, self.runtime, required={"on", "reason"}, optional=set())
        on = body["on"]
        if not isinstance(on, bool):
            raise HTTPProblem("invalid-request", "expected true or false", pointer="/on")
        reason = _text(body, "reason")
        response = self.runtime.response
        await anyio.to_thread.run_sync(
            lambda: response.set_emergency(on, reason=reason, actor=caller.subject)
        )
        state = await anyio.to_thread.run_sync(response.emergency)
        return _json(_emergency(state))


def _emergency(state: Any) -> dict[str, Any]:
    if state is None:
        return {"on": False, "reason": None, "actor": None, "since": None}
    return {
        "on": True,
        "reason": state.reason,
        "actor": state.actor,
        "since": format_time(state.since),
    }


def _json(data: Any) -> Response:
    from lictor.server.app import json_response

    return json_response(data)


def _parameters(request: Request, allowed: set[str]) -> dict[str, str]:
    """Return the query parameters, refusing unknown and repeated ones (422)."""
    values: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise HTTPProblem(
                "invalid-request", f"unknown parameter; allowed: {known}", parameter=key
            )
        if key in values:
            raise HTTPProblem("invalid-request", "given more than once", parameter=key)
        values[key] = value
    return values


def _seconds(text: str | None) -> float:
    """Parse ``wait``: a number of seconds from 0 to :data:`MAX_WAIT_SECONDS`."""
    if text is None:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 <= value <= MAX_WAIT_SECONDS:
        raise HTTPProblem(
            "invalid-request",
            f"must be a number of seconds from 0 to {MAX_WAIT_SECONDS:g}",
            parameter="wait",
        )
    return value


async def _body(
    request: Request, runtime: Runtime, *, required: set[str], optional: set[str]
) -> Mapping[str, Any]:
    """Read a JSON object body with exactly the given fields (an empty body is ``{}``)."""
    from lictor.server.app import read_json

    if not required and not await request.body():
        return {}
    body = await read_json(request, runtime.settings.max_body_bytes)
    if not isinstance(body, dict):
        raise HTTPProblem("invalid-request", "expected a JSON object", pointer="")
    for key in body:
        if key not in required | optional:
            raise HTTPProblem("invalid-request", "unknown field", pointer=f"/{key}")
    for key in sorted(required):
        if key not in body:
            raise HTTPProblem("invalid-request", "required", pointer=f"/{key}")
    return body


def _text(body: Mapping[str, Any], key: str, *, allow_empty: bool = False) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise HTTPProblem("invalid-request", "expected a string", pointer=f"/{key}")
    if not allow_empty and not value.strip():
        raise HTTPProblem("invalid-request", "must not be empty", pointer=f"/{key}")
    if len(value) > MAX_TEXT_CHARS:
        raise HTTPProblem(
            "invalid-request", f"at most {MAX_TEXT_CHARS} characters", pointer=f"/{key}"
        )
    return value
