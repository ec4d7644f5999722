"""Human review: a ``review`` decision held for a person, bound to the exact action.

Invariants:

1. A review is bound to one action: agent, principal id, tool, the digest of the
   canonical arguments, and the policy version that asked for it. Only a retry with the
   same binding can use its approval; a retry with other arguments is a new decision.
2. An approval is used at most once. Using it is one conditional ``UPDATE`` in the store
   (``WHERE status = 'approved' AND consumed_at IS NULL``), so two replicas racing for
   the same approval cannot both win.
3. Only a pending review can be approved, denied, expired or cancelled, each by one
   conditional ``UPDATE`` from ``pending``: the first verdict stands.
4. Separation of duties: nobody approves or denies an action taken by or for
   themselves (the request's agent or principal). Which role may review is the edge's
   check (the HTTP route table); this module refuses the self-review in every edge.
5. Every step is an audit record. Opening and consuming happen while deciding, so
   their record is the decision's own (a ``review`` decision names its ``review_id``;
   an approved retry's reason names the review it used); approved, denied, expired
   and cancelled are records of kind ``review``.

The durable store is :class:`lictor.store.reviews.SqlReviews`; :class:`MemoryReviews` is
the in-process one (embedded Governors and tests).
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from lictor.core.decisions import Decision
from lictor.core.requests import ActionRequest
from lictor.core.reviews import Review, ReviewStatus, Verdict
from lictor.errors import Conflict, Forbidden, NotFound
from lictor.service.events import Event, EventBus, EventKind, Severity
from lictor.service.ids import new_ulid
from lictor.service.ports import AuditLog, Clock
from lictor.service.records import digest, review_entry

__all__ = [
    "DEFAULT_APPROVAL_SECONDS",
    "DEFAULT_REVIEW_SECONDS",
    "MAX_WAIT_SECONDS",
    "MemoryReviews",
    "Review",
    "ReviewService",
    "ReviewStatus",
    "ReviewStore",
    "Verdict",
]

log = logging.getLogger("lictor.reviews")

DEFAULT_REVIEW_SECONDS = 900.0
"""How long a review stays pending before it expires (and the action is denied)."""

DEFAULT_APPROVAL_SECONDS = 900.0
"""How long an approval may wait for the agent's retry before it is worth nothing."""

MAX_WAIT_SECONDS = 60.0
"""The longest a single long-poll may wait; callers loop for longer waits."""

POLL_SECONDS = 0.2
"""How often a waiter re-reads the store (a verdict may come from another replica)."""


class ReviewStore(Protocol):
    """Durable reviews. Every state change is conditional on the current state."""

    def add(self, review: Review) -> None:
        """Store a new (pending) review."""
        ...

    def get(self, review_id: str) -> Review | None:
        """Return the review, or None."""
        ...

    def list(
        self, *, status: ReviewStatus | None = None, agent_id: str | None = None, limit: int = 100
    ) -> list[Review]:
        """Return reviews, oldest first, filtered by status and agent."""
        ...

    def settle(
        self,
        review_id: str,
        status: ReviewStatus,
        *,
        at: datetime,
        reviewer: str | None = None,
        comment: str | None = None,
        approved_until: datetime | None = None,
    ) -> Review | None:
        """Move a *pending* review to ``status``; None if it was not pending (or absent)."""
        ...

    def approved_for(
        self,
        *,
        agent_id: str,
        principal_id: str | None,
        tool: str,
        arguments_digest: str,
        policy_version: str,
        now: datetime,
    ) -> builtins.list[Review]:
        """Return approved, unconsumed, still valid reviews with exactly this binding."""
        ...

    def consume(self, review_id: str, *, decision_id: str, at: datetime) -> Review | None:
        """Mark an approved, unconsumed review consumed; None if someone else did first."""
        ...


def binding_of(request: ActionRequest) -> tuple[str, str | None, str, str]:
    """Return (agent, principal id, tool, argument digest): what a review is bound to."""
    principal = request.principal.id if request.principal is not None else None
    return request.agent_id, principal, request.tool, digest(request.to_json()["arguments"])


class ReviewService:
    """Opens, resolves, expires, consumes and cancels reviews, auditing every step.

    Thread-safe. The Governor calls :meth:`open` and :meth:`claim` while deciding; the
    edges call the rest.
    """

    def __init__(
        self,
        store: ReviewStore,
        audit: AuditLog,
        clock: Clock,
        *,
        review_seconds: float = DEFAULT_REVIEW_SECONDS,
        approval_seconds: float = DEFAULT_APPROVAL_SECONDS,
    ) -> None:
        self.store = store
        self._audit = audit
        self._clock = clock
        self.review_seconds = review_seconds
        self.approval_seconds = approval_seconds
        # Where settled reviews are announced (live feed, alert rules on review_resolved).
        self.events: EventBus | None = None

    # -- while deciding ---------------------------------------------------------------------

    def new_id(self, now: datetime) -> str:
        """Return a fresh review id (a ULID, so ids sort by creation)."""
        return new_ulid(now)

    def open(self, request: ActionRequest, decision: Decision, *, redact: bool) -> Review:
        """Store a pending review for a ``review`` decision that names its ``review_id``.

        Called before the decision's audit entry is written, so the review exists by the
        time the agent hears its id; if the entry then cannot be written, the Governor
        cancels the review (:meth:`cancel`).
        """
        if decision.review_id is None:
            raise ValueError("a review decision must name its review_id")
        agent, principal, tool, arguments_digest = binding_of(request)
        wire = request.to_json()
        if redact:
            wire["arguments"] = None
        review = Review(
            review_id=decision.review_id,
            decision_id=decision.decision_id,
            agent_id=agent,
            principal_id=principal,
            tool=tool,
            arguments_digest=arguments_digest,
            policy_version=decision.policy_version,
            status=ReviewStatus.PENDING,
            created_at=decision.decided_at,
            expires_at=decision.decided_at + timedelta(seconds=self.review_seconds),
            request=wire,
            reasons=decision.reasons,
        )
        self.store.add(review)
        return review

    def claim(self, request: ActionRequest, policy_version: str, decision_id: str) -> Review | None:
        """Use an approval for exactly this action, if there is one; None otherwise.

        The approval is consumed before the new decision is recorded: if that record then
        fails, the decision is a deny and the approval is spent. That errs the safe way.
        """
        agent, principal, tool, arguments_digest = binding_of(request)
        now = self._clock.now()
        for candidate in self.store.approved_for(
            agent_id=agent,
            principal_id=principal,
            tool=tool,
            arguments_digest=arguments_digest,
            policy_version=policy_version,
            now=now,
        ):
            consumed = self.store.consume(candidate.review_id, decision_id=decision_id, at=now)
            if consumed is not None:
                return consumed
        return None

    # -- reading ------------------------------------------------------------------------------

    def get(self, review_id: str) -> Review:
        """Return a review, expiring it first if its time is up.

        Raises:
            NotFound: no such review.
        """
        review = self.store.get(review_id)
        if review is None:
            raise NotFound("review", review_id)
        return self._expire_if_due(review)

    def list(
        self, *, status: ReviewStatus | None = None, agent_id: str | None = None, limit: int = 100
    ) -> list[Review]:
        """Return reviews, oldest first; pending ones whose time is up are expired first."""
        self.expire_due()
        return self.store.list(status=status, agent_id=agent_id, limit=limit)

    def expire_due(self) -> builtins.list[Review]:
        """Expire every pending review whose time is up; return those this call expired."""
        now = self._clock.now()
        expired = []
        for review in self.store.list(status=ReviewStatus.PENDING, limit=10_000):
            if review.expires_at <= now:
                done = self._settle(review.review_id, ReviewStatus.EXPIRED, "expired", at=now)
                if done is not None:
                    expired.append(done)
        return expired

    # -- verdicts -------------------------------------------------------------------------------

    def resolve(
        self,
        review_id: str,
        verdict: Verdict,
        *,
        reviewer: str,
        comment: str,
        credential_id: str | None = None,
    ) -> Review:
        """Approve or deny a pending review.

        Raises:
            NotFound: no such review.
            Forbidden: the reviewer is the request's agent or principal.
            Conflict: the review is no longer pending (resolved, expired or cancelled).
        """
        review = self.get(review_id)
        if reviewer in (review.agent_id, review.principal_id):
            raise Forbidden(
                f"{reviewer!r} is the agent or principal of review {review_id}; "
                "another person must review it"
            )
        if not review.is_pending:
            raise Conflict("review", review_id, f"review {review_id} is {review.status.value}")
        now = self._clock.now()
        status = ReviewStatus.APPROVED if verdict is Verdict.APPROVE else ReviewStatus.DENIED
        until = (
            now + timedelta(seconds=self.approval_seconds)
            if status is ReviewStatus.APPROVED
            else None
        )
        done = self._settle(
            review_id,
            status,
            status.value,
            at=now,
            reviewer=reviewer,
            comment=comment,
            approved_until=until,
            credential_id=credential_id,
        )
        if done is None:
            current = self.store.get(review_id)
            state = current.status.value if current is not None else "gone"
            raise Conflict("review", review_id, f"review {review_id} is {state}")
        return done

    def cancel(self, review_id: str, *, reason: str, actor: str) -> Review | None:
        """Cancel a pending review (quarantine, or its decision was never recorded)."""
        return self._settle(
            review_id,
            ReviewStatus.CANCELLED,
            "cancelled",
            at=self._clock.now(),
            reviewer=actor,
            comment=reason,
        )

    def cancel_for_agent(self, agent_id: str, *, reason: str, actor: str) -> builtins.list[Review]:
        """Cancel every pending review of one agent; return those cancelled."""
        cancelled = []
        for review in self.store.list(status=ReviewStatus.PENDING, agent_id=agent_id, limit=10_000):
            done = self.cancel(review.review_id, reason=reason, actor=actor)
            if done is not None:
                cancelled.append(done)
        return cancelled

    # -- waiting --------------------------------------------------------------------------------

    def wait(self, review_id: str, timeout_seconds: float) -> Review:
        """Block until the review leaves ``pending`` or the timeout passes; return it.

        For in-process callers (an embedded Governor); the server uses :meth:`wait_async`.

        Raises:
            NotFound: no such review.
        """
        deadline = time.monotonic() + max(0.0, timeout_seconds)
        while True:
            review = self.get(review_id)
            left = deadline - time.monotonic()
            if not review.is_pending or left <= 0:
                return review
            time.sleep(min(POLL_SECONDS, left))

    async def wait_async(self, review_id: str, timeout_seconds: float) -> Review:
        """Like :meth:`wait`, without holding a thread between polls.

        Each poll reads the store in a worker thread and the wait between polls is an
        ``asyncio.sleep``, so a thousand waiting agents cost no threads.

        Raises:
            NotFound: no such review.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout_seconds)
        while True:
            review = await asyncio.to_thread(self.get, review_id)
            left = deadline - loop.time()
            if not review.is_pending or left <= 0:
                return review
            await asyncio.sleep(min(POLL_SECONDS, left))

    # -- internals ------------------------------------------------------------------------------

    def _expire_if_due(self, review: Review) -> Review:
        now = self._clock.now()
        if not review.is_pending or review.expires_at > now:
            return review
        done = self._settle(review.review_id, ReviewStatus.EXPIRED, "expired", at=now)
        if done is not None:
            return done
        current = self.store.get(review.review_id)
        return current if current is not None else review

    def _settle(
        self,
        review_id: str,
        status: ReviewStatus,
        action: str,
        *,
        at: datetime,
        reviewer: str | None = None,
        comment: str | None = None,
        approved_until: datetime | None = None,
        credential_id: str | None = None,
    ) -> Review | None:
        """Audit the step, then make it.

        The trail may hold a step that then lost a race (another replica settled the
        review first), but never lacks one that was made.
        """
        current = self.store.get(review_id)
        if current is None or not current.is_pending:
            return None
        intended = replace(
            current,
            status=status,
            resolved_at=at,
            reviewer=reviewer,
            comment=comment,
            approved_until=approved_until,
        )
        entry = review_entry(action, intended, at=at)
        entry["credential_id"] = credential_id
        self._audit.append(entry)
        settled = self.store.settle(
            review_id,
            status,
            at=at,
            reviewer=reviewer,
            comment=comment,
            approved_until=approved_until,
        )
        if settled is not None and self.events is not None:
            self.events.emit(_resolved_event(settled))
        return settled


def _resolved_event(review: Review) -> Event:
    """The ``review_resolved`` event of a settled review (approved, denied, expired, cancelled)."""
    by = f" by {review.reviewer}" if review.reviewer else ""
    return Event(
        kind=EventKind.REVIEW_RESOLVED,
        at=review.resolved_at or review.created_at,
        # A person's verdict is routine; a request nobody looked at in time is worth a look.
        severity=Severity.LOW if review.status is ReviewStatus.EXPIRED else Severity.INFO,
        summary=f"review {review.review_id} of {review.agent_id} calling {review.tool}: "
        f"{review.status.value}{by}",
        agent_id=review.agent_id,
        principal_id=review.principal_id,
        decision_id=review.decision_id,
        details={
            "review_id": review.review_id,
            "status": review.status.value,
            "reviewer": review.reviewer,
            "comment": review.comment,
            "tool": review.tool,
        },
    )


class MemoryReviews:
    """Reviews held in a dict: the in-process :class:`ReviewStore`. Thread-safe."""

    def __init__(self) -> None:
        self._reviews: dict[str, Review] = {}
        self._lock = threading.Lock()

    def add(self, review: Review) -> None:
        """Store a new review.

        Raises:
            Conflict: the id exists.
        """
        with self._lock:
            if review.review_id in self._reviews:
                raise Conflict("review", review.review_id)
            self._reviews[review.review_id] = review

    def get(self, review_id: str) -> Review | None:
        """Return the review, or None."""
        return self._reviews.get(review_id)

    def list(
        self, *, status: ReviewStatus | None = None, agent_id: str | None = None, limit: int = 100
    ) -> list[Review]:
        """Return matching reviews, oldest first (ids are ULIDs)."""
        found = [
            r
            for r in self._reviews.values()
            if (status is None or r.status is status)
            and (agent_id is None or r.agent_id == agent_id)
        ]
        return sorted(found, key=lambda r: (r.created_at, r.review_id))[:limit]

    def settle(
        self,
        review_id: str,
        status: ReviewStatus,
        *,
        at: datetime,
        reviewer: str | None = None,
        comment: str | None = None,
        approved_until: datetime | None = None,
    ) -> Review | None:
        """Move a pending review to ``status``; None if it was not pending."""
        with self._lock:
            review = self._reviews.get(review_id)
            if review is None or not review.is_pending:
                return None
            done = replace(
                review,
                status=status,
                resolved_at=at,
                reviewer=reviewer,
                comment=comment,
                approved_until=approved_until,
            )
            self._reviews[review_id] = done
            return done

    def approved_for(
        self,
        *,
        agent_id: str,
        principal_id: str | None,
        tool: str,
        arguments_digest: str,
        policy_version: str,
        now: datetime,
    ) -> builtins.list[Review]:
        """Return approved, unconsumed, valid reviews with exactly this binding."""
        return [
            r
            for r in self.list(status=ReviewStatus.APPROVED, agent_id=agent_id, limit=10_000)
            if r.principal_id == principal_id
            and r.tool == tool
            and r.arguments_digest == arguments_digest
            and r.policy_version == policy_version
            and r.consumed_at is None
            and r.approved_until is not None
            and r.approved_until > now
        ]

    def consume(self, review_id: str, *, decision_id: str, at: datetime) -> Review | None:
        """Mark an approved review consumed; None if it was not approved and unconsumed."""
        with self._lock:
            review = self._reviews.get(review_id)
            if review is None or review.status is not ReviewStatus.APPROVED:
                return None
            if review.consumed_at is not None:
                return None
            done = replace(
                review, status=ReviewStatus.CONSUMED, consumed_at=at, consumed_by=decision_id
            )
            self._reviews[review_id] = done
            return done


def review_json(text: str) -> dict[str, Any]:
    """Parse a JSON object stored by a review store (the request column)."""
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value
