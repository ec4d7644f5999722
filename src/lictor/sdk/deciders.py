"""Deciders: the one small interface an enforcement edge needs from Lictor.

An edge (``guard``, the framework integrations, the MCP gateway) asks for a decision
before a tool runs and reports the result after it ran. An in-process
:class:`~lictor.service.governor.Governor` and a remote :class:`~lictor.sdk.LictorClient`
both satisfy :class:`Decider` as they are; :class:`~lictor.sdk.AsyncLictorClient`
satisfies :class:`AsyncDecider`. :func:`to_async` lets async edges take either, so no
edge keeps a sync and an async twin of its logic.

Waiting for a review verdict: :func:`await_verdict` (and :func:`await_verdict_async`)
wait on any decider with a ``wait_review`` method (a Governor through its review
service, or a client through the long-poll API), then decide the identical request again,
which the approval turns into ``allow`` once. :data:`ReviewWaiter` and
:data:`AsyncReviewWaiter` remain the hooks for other ways of waiting.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import anyio.to_thread

from lictor.core.decisions import Decision, Outcome, ResultReport
from lictor.core.requests import ActionRequest
from lictor.errors import ReviewDenied, ReviewExpired, ReviewTimeout
from lictor.service.reviews import Review, ReviewStatus

__all__ = [
    "AsyncDecider",
    "AsyncReviewWaiter",
    "Decider",
    "ReviewWaiter",
    "await_verdict",
    "await_verdict_async",
    "to_async",
]

RequestLike = ActionRequest | Mapping[str, Any]
"""A typed request, or its wire form (the remote server fills ``agent_id`` from the token)."""

ReviewWaiter = Callable[[Decision], Decision]
"""Given a ``review`` decision, block until a verdict and return the final decision."""

AsyncReviewWaiter = Callable[[Decision], Awaitable[Decision]]
"""The async form of :data:`ReviewWaiter`."""


@runtime_checkable
class Decider(Protocol):
    """Decide before a tool runs, record what happened after. Sync."""

    def decide(self, request: RequestLike) -> Decision:
        """Return the decision for one action request."""
        ...

    def report(self, result: ResultReport) -> None:
        """Record the result of an allowed action."""
        ...


class AsyncDecider(Protocol):
    """The async form of :class:`Decider` (``decide`` and ``report`` are coroutines)."""

    async def decide(self, request: RequestLike) -> Decision:
        """Return the decision for one action request."""
        ...

    async def report(self, result: ResultReport) -> None:
        """Record the result of an allowed action."""
        ...


class _Bridged:
    """An :class:`AsyncDecider` over a sync one.

    A decider with a ``decide_async`` coroutine (the Governor) is asked through it, so
    the audit commit is awaited on the loop instead of blocking it; any other sync
    decider, and every ``report``, runs in a worker thread.
    """

    def __init__(self, decider: Decider) -> None:
        self._decider = decider
        native = getattr(decider, "decide_async", None)
        self._decide_async: Callable[[RequestLike], Awaitable[Decision]] | None = (
            native if inspect.iscoroutinefunction(native) else None
        )

    async def decide(self, request: RequestLike) -> Decision:
        if self._decide_async is not None:
            return await self._decide_async(request)
        return await anyio.to_thread.run_sync(self._decider.decide, request)

    async def report(self, result: ResultReport) -> None:
        await anyio.to_thread.run_sync(self._decider.report, result)

    async def wait_review(self, review_id: str, timeout_seconds: float) -> Review:
        """Wait through the decider: its coroutine if it has one, else in a worker thread."""
        native = getattr(self._decider, "wait_review_async", None)
        if inspect.iscoroutinefunction(native):
            review: Review = await native(review_id, timeout_seconds)
            return review
        wait = getattr(self._decider, "wait_review", None)
        if wait is None:
            raise TypeError("this decider cannot wait for reviews")
        found: Review = await anyio.to_thread.run_sync(wait, review_id, timeout_seconds)
        return found


def is_async_decider(decider: Decider | AsyncDecider) -> bool:
    """Return whether ``decider.decide`` is a coroutine function."""
    return inspect.iscoroutinefunction(getattr(decider, "decide", None))


def to_async(decider: Decider | AsyncDecider) -> AsyncDecider:
    """Return an :class:`AsyncDecider` for either kind of decider.

    Protocols are checked by method name only, and a Governor has ``decide`` and
    ``report`` just as an async client does, so the kind is told by whether ``decide``
    is a coroutine function.
    """
    if is_async_decider(decider):
        return decider  # type: ignore[return-value]  # checked: decide is a coroutine function
    return _Bridged(decider)  # type: ignore[arg-type]  # checked: decide is a plain function


def _verdict(decision: Decision, review: Review) -> None:
    """Raise for every verdict that does not allow a retry."""
    if review.status in (ReviewStatus.DENIED, ReviewStatus.CANCELLED):
        raise ReviewDenied(decision, review)
    if review.status is ReviewStatus.EXPIRED:
        raise ReviewExpired(decision, review)
    if review.status is not ReviewStatus.APPROVED:  # pending: the wait ran out
        raise ReviewTimeout(decision, review)


def await_verdict(
    decider: Decider, request: RequestLike, decision: Decision, timeout_seconds: float
) -> Decision:
    """Wait for the verdict on a ``review`` decision; once approved, decide again.

    The retry is the identical request, so the approval (single use, bound to it) makes
    it ``allow``. Any other decision is returned as it is.

    Raises:
        ReviewDenied: the reviewer denied it, or the review was cancelled.
        ReviewExpired: nobody decided before the review expired.
        ReviewTimeout: still pending after ``timeout_seconds``.
    """
    wait = getattr(decider, "wait_review", None)
    if decision.outcome is not Outcome.REVIEW or decision.review_id is None or wait is None:
        return decision
    review: Review = wait(decision.review_id, timeout_seconds)
    _verdict(decision, review)
    return decider.decide(request)


async def await_verdict_async(
    decider: AsyncDecider, request: RequestLike, decision: Decision, timeout_seconds: float
) -> Decision:
    """The async form of :func:`await_verdict` (``decider`` as :func:`to_async` gives it).

    Raises:
        ReviewDenied: the reviewer denied it, or the review was cancelled.
        ReviewExpired: nobody decided before the review expired.
        ReviewTimeout: still pending after ``timeout_seconds``.
    """
    wait = getattr(decider, "wait_review", None)
    if decision.outcome is not Outcome.REVIEW or decision.review_id is None or wait is None:
        return decision
    review: Review = await wait(decision.review_id, timeout_seconds)
    _verdict(decision, review)
    return await decider.decide(request)
