"""``guard``: govern any Python tool function, sync or async.

Before the function runs, Lictor decides on a request built from the function's name
and bound arguments. ``deny`` raises :class:`~lictor.errors.ToolCallDenied`; ``review``
raises :class:`~lictor.errors.ReviewRequired` unless the guard waits for the verdict
(``review_timeout_seconds``, or a custom waiter) and the reviewer approves; ``allow``
runs the function and reports its result (``ok`` with the output, or ``error`` with the
exception) without the caller doing anything. A decision that cannot be obtained
raises too: the function never runs unless Lictor said ``allow``.

The decider is anything with ``decide`` and ``report`` (:mod:`lictor.sdk.deciders`): an
in-process Governor, a :class:`~lictor.sdk.LictorClient`, or an
:class:`~lictor.sdk.AsyncLictorClient` for async functions.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, ParamSpec, TypeVar, cast

from lictor.core.decisions import Decision, Outcome, ResultReport, ResultStatus
from lictor.core.requests import (
    ActionRequest,
    AgentId,
    Context,
    Principal,
    Resource,
    SessionId,
)
from lictor.errors import Blocked, ConfigError, ReviewRequired, ToolCallDenied
from lictor.sdk.deciders import (
    AsyncDecider,
    AsyncReviewWaiter,
    Decider,
    RequestLike,
    ReviewWaiter,
    await_verdict,
    await_verdict_async,
    is_async_decider,
    to_async,
)

__all__ = ["Guard", "guard", "jsonable", "raise_if_blocked", "refusal_message"]

log = logging.getLogger("lictor.sdk.guard")

P = ParamSpec("P")
T = TypeVar("T")

MAX_JSON_DEPTH = 32
DEFAULT_OUTPUT_LIMIT_CHARS = 16_384


def jsonable(value: object, *, _depth: int = 0) -> Any:
    """Return a JSON-ready copy of ``value`` for a request's arguments or a result's output.

    Tool functions take and return arbitrary Python objects, but Lictor's wire form and
    audit trail are JSON: pydantic models and dataclasses become objects, sequences
    become lists, and anything else becomes its ``str``. Nesting deeper than the core's
    limit is cut (the core would refuse the whole request).
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if _depth >= MAX_JSON_DEPTH:
        return "..."
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, _depth=_depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v, _depth=_depth + 1) for v in value]
    dump = getattr(value, "model_dump", None)
    if callable(dump):  # a pydantic model
        try:
            return jsonable(dump(mode="json"), _depth=_depth + 1)
        except Exception:  # noqa: BLE001 - a foreign object's dump failing must not break a call
            return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value), _depth=_depth + 1)
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    return str(value)


def _limit_output(value: Any, limit: int) -> Any:
    """Keep a report's output bounded: the audit trail is not a blob store."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if len(text) <= limit:
        return value
    return text[:limit] + f"... [truncated, {len(text)} characters]"


def raise_if_blocked(decision: Decision) -> None:
    """Raise :class:`ToolCallDenied` or :class:`ReviewRequired` unless ``decision`` allows.

    Raises:
        ToolCallDenied: the outcome is ``deny``.
        ReviewRequired: the outcome is ``review``.
    """
    if decision.outcome is Outcome.DENY:
        raise ToolCallDenied(decision)
    if decision.outcome is Outcome.REVIEW:
        raise ReviewRequired(decision)


def refusal_message(blocked: Blocked, tool: str) -> str:
    """Say to a model that a call was refused (or held) and why, without its arguments.

    Framework integrations return this as the tool's output, so the model can tell the
    user or choose another way instead of retrying the same call.
    """
    decision = blocked.decision
    reasons = "; ".join(dict.fromkeys(r.message or r.rule for r in decision.reasons))
    because = reasons or "no rule allows it"
    if isinstance(blocked, ReviewRequired):
        return (
            f"Lictor is holding this call to {tool} for human review: {because}. The tool was "
            f"not run; a reviewer must approve it first. (decision {decision.decision_id})"
        )
    return (
        f"Lictor refused this call to {tool}: {because}. The tool was not run. Do not retry "
        f"the same call. (decision {decision.decision_id})"
    )


class Guard:
    """Governs tool calls for one agent (and session) with one decider.

    One ``Guard`` can wrap many functions (:meth:`wrap`) and can govern calls that are
    not plain functions (:meth:`call`, :meth:`acall`, used by the framework
    integrations).

    Args:
        decider: An in-process Governor, a ``LictorClient`` or an ``AsyncLictorClient``.
        agent_id: The acting agent. Leave it out with a remote client: the server takes
            the identity from the client's credential.
        server: The ``server`` field of each request (which system the tools belong to).
        session_id: Groups calls into one session for session-aware rules.
        principal: The human on whose behalf the agent acts.
        delegation: principal -> agent -> sub-agent chain, oldest first.
        context: Business context (``task``, ``purpose``, ``ticket``, more keys).
        resource: What the calls touch, with data labels.
        labels: Data labels to report with every result (what the outputs contain).
        waiter: Called with a ``review`` decision; returns the final decision. Without
            one, ``review`` raises ``ReviewRequired``.
        async_waiter: The same for async functions.
        output_limit_chars: Longer outputs are truncated in the report.
        review_timeout_seconds: Without a waiter, wait this long for a reviewer's verdict
            on a ``review`` (the decider's ``wait_review``), then decide the identical
            call again: an approval makes it ``allow`` once. A denial raises
            ``ReviewDenied``, an expiry ``ReviewExpired``, a wait that runs out
            ``ReviewTimeout``. None (the default): ``review`` raises ``ReviewRequired``.
    """

    def __init__(
        self,
        decider: Decider | AsyncDecider,
        *,
        agent_id: str | None = None,
        server: str | None = None,
        session_id: str | None = None,
        principal: Principal | None = None,
        delegation: Iterable[str] = (),
        context: Context | Mapping[str, Any] | None = None,
        resource: Resource | None = None,
        labels: Iterable[str] = (),
        waiter: ReviewWaiter | None = None,
        async_waiter: AsyncReviewWaiter | None = None,
        output_limit_chars: int = DEFAULT_OUTPUT_LIMIT_CHARS,
        review_timeout_seconds: float | None = None,
    ) -> None:
        self.decider = decider
        self.review_timeout_seconds = review_timeout_seconds
        self.is_async_only = is_async_decider(decider)
        self._async = to_async(decider)
        self.agent_id = agent_id
        self.server = server
        self.session_id = session_id
        self.principal = principal
        self.delegation = tuple(delegation)
        self.context = _context(context)
        self.resource = resource
        self.labels = tuple(labels)
        self.waiter = waiter
        self.async_waiter = async_waiter
        self.output_limit_chars = output_limit_chars

    # -- requests and reports -------------------------------------------------------------

    def request_for(self, tool: str, arguments: Mapping[str, Any]) -> RequestLike:
        """Build the action request for one call of ``tool``.

        With an ``agent_id`` this is a typed :class:`ActionRequest`; without one it is the
        wire form without ``agent_id``, which a remote server fills from the credential.
        """
        args = jsonable(arguments)
        if self.agent_id is not None:
            return ActionRequest(
                agent_id=AgentId(self.agent_id),
                tool=tool,
                principal=self.principal,
                delegation=self.delegation,
                session_id=SessionId(self.session_id) if self.session_id else None,
                server=self.server,
                arguments=args,
                resource=self.resource,
                context=self.context,
            )
        wire = ActionRequest(
            agent_id=AgentId(""),
            tool=tool,
            principal=self.principal,
            delegation=self.delegation,
            session_id=SessionId(self.session_id) if self.session_id else None,
            server=self.server,
            arguments=args,
            resource=self.resource,
            context=self.context,
        ).to_json()
        del wire["agent_id"]
        return wire

    def report_for(
        self, decision: Decision, *, output: object = None, error: BaseException | None = None
    ) -> ResultReport:
        """Build the result report of an allowed call: ``ok`` with output, or ``error``."""
        if error is not None:
            return ResultReport(
                decision_id=decision.decision_id,
                status=ResultStatus.ERROR,
                output=f"{type(error).__name__}: {error}",
                labels=self.labels,
            )
        return ResultReport(
            decision_id=decision.decision_id,
            status=ResultStatus.OK,
            output=_limit_output(jsonable(output), self.output_limit_chars),
            labels=self.labels,
        )

    # -- sync -----------------------------------------------------------------------------

    def decide(self, tool: str, arguments: Mapping[str, Any]) -> Decision:
        """Ask for a decision and return it only if the call may run.

        Raises:
            ToolCallDenied: the decision is ``deny`` (or a waiter's verdict is).
            ReviewRequired: the decision is ``review`` and no waiter is configured
                (``ReviewTimeout`` when the wait for a verdict ran out).
            ReviewDenied, ReviewExpired: the wait ended in a denial or an expiry.
            ConfigError: this guard's decider is async-only.
        """
        decider = self._sync_decider()
        request = self.request_for(tool, arguments)
        decision = decider.decide(request)
        if decision.outcome is Outcome.REVIEW and self.waiter is not None:
            decision = self.waiter(decision)
        elif decision.outcome is Outcome.REVIEW and self.review_timeout_seconds is not None:
            decision = await_verdict(decider, request, decision, self.review_timeout_seconds)
        raise_if_blocked(decision)
        return decision

    def call(self, tool: str, arguments: Mapping[str, Any], run: Callable[[], T]) -> T:
        """Govern one call: decide, run ``run()`` only on allow, report its result.

        Raises:
            ToolCallDenied: the decision is ``deny``.
            ReviewRequired: the decision is ``review`` and no waiter allowed it.
        """
        decision = self.decide(tool, arguments)
        decider = self._sync_decider()
        try:
            output = run()
        except Exception as exc:  # reported, then re-raised unchanged
            self._report_quietly(decider.report, self.report_for(decision, error=exc))
            raise
        self._report_quietly(decider.report, self.report_for(decision, output=output))
        return output

    def _sync_decider(self) -> Decider:
        if self.is_async_only:
            raise ConfigError(
                "this guard's decider is async (AsyncLictorClient): use it for async "
                "functions, or pass a Governor or LictorClient to govern sync ones"
            )
        return cast(Decider, self.decider)

    @staticmethod
    def _report_quietly(report: Callable[[ResultReport], None], result: ResultReport) -> None:
        # The call has already run: a lost report must not turn its result into an error
        # (the decision is on record either way), but it must be visible.
        try:
            report(result)
        except Exception:  # noqa: BLE001 - see above; logged with the decision id
            log.warning("could not report the result of decision %s", result.decision_id)

    # -- async ----------------------------------------------------------------------------

    async def adecide(self, tool: str, arguments: Mapping[str, Any]) -> Decision:
        """The async form of :meth:`decide`.

        Raises:
            ToolCallDenied: the decision is ``deny`` (or a waiter's verdict is).
            ReviewRequired: the decision is ``review`` and no waiter is configured.
        """
        request = self.request_for(tool, arguments)
        decision = await self._async.decide(request)
        if decision.outcome is Outcome.REVIEW and self.async_waiter is not None:
            decision = await self.async_waiter(decision)
        elif decision.outcome is Outcome.REVIEW and self.review_timeout_seconds is not None:
            decision = await await_verdict_async(
                self._async, request, decision, self.review_timeout_seconds
            )
        raise_if_blocked(decision)
        return decision

    async def acall(
        self, tool: str, arguments: Mapping[str, Any], run: Callable[[], Awaitable[T]]
    ) -> T:
        """The async form of :meth:`call`.

        Raises:
            ToolCallDenied: the decision is ``deny``.
            ReviewRequired: the decision is ``review`` and no waiter allowed it.
        """
        decision = await self.adecide(tool, arguments)
        try:
            output = await run()
        except Exception as exc:  # reported, then re-raised (cancellation is not reported)
            await self._areport_quietly(self.report_for(decision, error=exc))
            raise
        await self._areport_quietly(self.report_for(decision, output=output))
        return output

    async def _areport_quietly(self, result: ResultReport) -> None:
        try:
            await self._async.report(result)
        except Exception:  # noqa: BLE001 - as in _report_quietly
            log.warning("could not report the result of decision %s", result.decision_id)

    # -- decorating -----------------------------------------------------------------------

    def wrap(self, fn: Callable[P, T], *, name: str | None = None) -> Callable[P, T]:
        """Return ``fn`` governed: every call is decided, run only on allow, reported.

        The tool name is ``name`` or the function's ``__name__``; the request's arguments
        are the bound arguments with defaults applied.

        Raises:
            ConfigError: ``fn`` is sync but the decider is async-only.
        """
        tool = name or fn.__name__
        signature = inspect.signature(fn)
        if inspect.iscoroutinefunction(fn):
            async_fn = cast(Callable[P, Awaitable[Any]], fn)

            @functools.wraps(fn)
            async def governed_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                arguments = _bound_arguments(signature, args, kwargs)
                return await self.acall(tool, arguments, lambda: async_fn(*args, **kwargs))

            return cast(Callable[P, T], governed_async)
        if self.is_async_only:
            self._sync_decider()  # raises ConfigError, at decoration time

        @functools.wraps(fn)
        def governed(*args: P.args, **kwargs: P.kwargs) -> T:
            arguments = _bound_arguments(signature, args, kwargs)
            return self.call(tool, arguments, lambda: fn(*args, **kwargs))

        return governed

    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]:
        """Decorate ``fn`` (see :meth:`wrap`)."""
        return self.wrap(fn)


def guard(
    decider: Decider | AsyncDecider,
    *,
    name: str | None = None,
    agent_id: str | None = None,
    server: str | None = None,
    session_id: str | None = None,
    principal: Principal | None = None,
    delegation: Iterable[str] = (),
    context: Context | Mapping[str, Any] | None = None,
    resource: Resource | None = None,
    labels: Iterable[str] = (),
    waiter: ReviewWaiter | None = None,
    async_waiter: AsyncReviewWaiter | None = None,
    review_timeout_seconds: float | None = None,
) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Return a decorator that governs a tool function; see :class:`Guard` for the options.

    Example::

        @guard(governor, agent_id="deploy-bot")
        def deploy(service: str, environment: str) -> str: ...

        deploy("checkout", "production")  # raises ToolCallDenied or ReviewRequired
    """
    policy = Guard(
        decider,
        agent_id=agent_id,
        server=server,
        session_id=session_id,
        principal=principal,
        delegation=delegation,
        context=context,
        resource=resource,
        labels=labels,
        waiter=waiter,
        async_waiter=async_waiter,
        review_timeout_seconds=review_timeout_seconds,
    )

    def decorate(fn: Callable[P, T]) -> Callable[P, T]:
        return policy.wrap(fn, name=name)

    return decorate


def _bound_arguments(
    signature: inspect.Signature, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """Name every argument as the function sees it; ``**kwargs`` are flattened in.

    A call that does not bind raises the ``TypeError`` Python would have raised,
    before anything is decided.
    """
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    arguments: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            arguments.update(value)
        elif name not in ("self", "cls"):
            arguments[name] = value
    return arguments


def _context(value: Context | Mapping[str, Any] | None) -> Context:
    if value is None:
        return Context()
    if isinstance(value, Context):
        return value
    extra = {
        k: v
        for k, v in value.items()
        if k not in ("task", "purpose", "ticket", "parent_decision_id")
    }
    return Context(
        task=str(value.get("task", "")),
        purpose=str(value.get("purpose", "")),
        ticket=str(value.get("ticket", "")),
        parent_decision_id=value.get("parent_decision_id"),
        extra=extra,
    )
