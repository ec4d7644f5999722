"""The Governor: decide on action requests and take result reports, in process.

This is the decision pipeline of ARCHITECTURE.md in order: identify the agent, check
its status, evaluate the policy in the session's context, then record. It never lets an
error become an allow: anything that goes wrong while deciding is a ``deny`` with reason
``evaluation_error``, and a decision whose audit entry cannot be made durable is a
``deny`` too (an allow that is not on disk was never given).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from lictor.core.agents import Agent, AgentStatus
from lictor.core.decisions import (
    Decision,
    Outcome,
    Reason,
    ReasonCode,
    ResultReport,
    parse_result,
)
from lictor.core.policy import CompiledPolicy, Facts, evaluate
from lictor.core.policy.evaluate import SessionFacts
from lictor.core.requests import ActionRequest, Context, parse_request
from lictor.errors import Conflict, InvalidToolCall, LictorError, NotFound
from lictor.service.identity import CallerIdentity, IdentityGate, identity_fields
from lictor.service.ids import new_ulid
from lictor.service.memory import MemoryAgents, MemoryAudit, MemorySessions, SystemClock
from lictor.service.policies import load_bundle, load_inventory
from lictor.service.ports import AgentDirectory, AuditLog, Clock, SessionStore
from lictor.service.records import decision_entry, rejected_entry, result_entry
from lictor.service.reviews import Review, ReviewService
from lictor.service.risk import RiskEngine, RiskSettings
from lictor.service.tracing import DecisionTracing, NoTracing

log = logging.getLogger("lictor.governor")

DecisionObserver = Callable[[ActionRequest, Decision], None]
"""Told of each recorded decision; see :meth:`Governor.add_observer`."""


class Governor:
    """Decides on agent actions. Thread-safe; policies swap atomically on reload.

    Build one with :meth:`from_paths` for embedded use, or pass ports for a service.
    """

    def __init__(
        self,
        policy: CompiledPolicy,
        agents: AgentDirectory,
        *,
        sessions: SessionStore | None = None,
        audit: AuditLog | None = None,
        clock: Clock | None = None,
        redact_arguments: bool = False,
        tracing: DecisionTracing | None = None,
        risk: RiskEngine | None = None,
    ) -> None:
        self._policy = policy
        #: Session context, budgets and baselines (docs/risk.md); None: policy only.
        self.risk = risk
        self._agents = agents
        self._sessions: SessionStore = sessions if sessions is not None else MemorySessions()
        self.audit: AuditLog = audit if audit is not None else MemoryAudit()
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._redact = redact_arguments
        self._tracing: DecisionTracing = tracing if tracing is not None else NoTracing()
        self._reload_lock = threading.Lock()
        self._observers: list[DecisionObserver] = []
        self.reviews: ReviewService | None = None
        self._gate: Callable[[ActionRequest], Reason | None] | None = None
        self._review_steps: dict[str, tuple[str, Review]] = {}
        #: Delegation scope and shadow agents (lictor.service.identity); None: neither.
        self.identity_gate: IdentityGate | None = None

    def add_observer(self, observer: DecisionObserver) -> None:
        """Call ``observer(request, decision)`` after every decision is on record.

        Observers feed alerts, reviews and live feeds. They run on the deciding thread,
        so they must only hand the event on (enqueue); an observer that raises is logged
        and never changes the decision.
        """
        self._observers.append(observer)

    @classmethod
    def from_paths(
        cls,
        policies: str | Path,
        agents: str | Path | Iterable[Agent] | None = None,
        *,
        clock: Clock | None = None,
        audit: AuditLog | None = None,
        risk: RiskSettings | None = RiskSettings(),  # noqa: B008 - frozen, shared safely
    ) -> Governor:
        """Build an embedded Governor from a policy directory and an inventory file.

        ``risk`` turns on session context, budgets and baseline scoring (the default;
        see docs/risk.md); ``None`` decides by policy alone.

        Raises:
            ConfigError: a path does not exist.
            PolicyError: a policy or inventory file is invalid.
        """
        bundle = load_bundle(policies)
        if agents is None:
            records: Iterable[Agent] = ()
        elif isinstance(agents, str | Path):
            records = load_inventory(agents)
        else:
            records = agents
        engine = RiskEngine(risk) if risk is not None else None
        return cls(bundle.policy, MemoryAgents(records), clock=clock, audit=audit, risk=engine)

    @property
    def policy(self) -> CompiledPolicy:
        """The policy that new decisions use."""
        return self._policy

    def swap_policy(self, policy: CompiledPolicy) -> CompiledPolicy:
        """Make ``policy`` live for new decisions; in-flight ones finish on the old one."""
        with self._reload_lock:
            old, self._policy = self._policy, policy
        return old

    def reload(self, policies: str | Path) -> str:
        """Load a bundle and make it live; on any error the old policy stays live.

        Raises:
            ConfigError, PolicyError: the new bundle was refused.
        """
        bundle = load_bundle(policies)
        self.swap_policy(bundle.policy)
        return bundle.version

    def decide(
        self,
        request: ActionRequest | Mapping[str, Any],
        *,
        credential_id: str | None = None,
        source: str | None = None,
        identity: CallerIdentity | None = None,
    ) -> Decision:
        """Decide on one action request and record it before answering.

        Raises:
            InvalidToolCall: the request is malformed (recorded as a rejected request).
        """
        parsed, decision, entry = self.prepare(
            request, credential_id=credential_id, source=source, identity=identity
        )
        try:
            self.audit.append(entry)
        except Exception as exc:  # noqa: BLE001 - fail closed: unrecorded means not given
            self._drop_review(decision)
            decision = _unrecorded(decision, exc)
        self._after(parsed, decision)
        return decision

    async def decide_async(
        self,
        request: ActionRequest | Mapping[str, Any],
        *,
        credential_id: str | None = None,
        source: str | None = None,
        timeout_seconds: float = 10.0,
        identity: CallerIdentity | None = None,
    ) -> Decision:
        """Like :meth:`decide`, but waits for the audit commit without blocking a loop.

        Used by the HTTP server: evaluation runs inline (tens of microseconds), the
        commit is awaited, so many requests share one group commit.
        """
        parsed, decision, entry = self.prepare(
            request, credential_id=credential_id, source=source, identity=identity
        )
        submit_async = getattr(self.audit, "submit_async", None)
        submit = getattr(self.audit, "submit", None)
        try:
            if submit_async is not None:
                await asyncio.wait_for(submit_async(entry), timeout_seconds)
            elif submit is None:
                self.audit.append(entry)
            else:
                await asyncio.wait_for(asyncio.wrap_future(submit(entry)), timeout_seconds)
        except Exception as exc:  # noqa: BLE001 - fail closed: unrecorded means not given
            self._drop_review(decision)
            decision = _unrecorded(decision, exc)
        self._after(parsed, decision)
        return decision

    def prepare(
        self,
        request: ActionRequest | Mapping[str, Any],
        *,
        credential_id: str | None = None,
        source: str | None = None,
        identity: CallerIdentity | None = None,
    ) -> tuple[ActionRequest, Decision, dict[str, Any]]:
        """Evaluate a request and build its audit entry, without recording anything.

        Raises:
            InvalidToolCall: the request is malformed (recorded as a rejected request).
        """
        now = self._clock.now()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if not isinstance(request, ActionRequest):
            try:
                request = parse_request(request)
            except InvalidToolCall as exc:
                self._record_rejection(request, exc, now, source)
                raise
        policy = self._policy
        decision_id = new_ulid(now)
        agent: Agent | None = None
        session: SessionFacts | None = None
        try:
            agent = self._agents.get(request.agent_id)
            if self.risk is not None:
                decision, session = self.risk.decide(policy, request, agent, now, decision_id)
            else:
                session = (
                    self._sessions.facts(request.session_id)
                    if request.session_id
                    else SessionFacts()
                )
                verdict = evaluate(policy, request, Facts(agent=agent, now=now, session=session))
                decision = Decision(
                    decision_id=decision_id,
                    outcome=verdict.outcome,
                    reasons=verdict.reasons,
                    policy_version=policy.version,
                    decided_at=now,
                    shadow=verdict.shadow,
                )
        except Exception as exc:
            log.exception("error while deciding %s; denying", decision_id)
            decision = Decision(
                decision_id=decision_id,
                outcome=Outcome.DENY,
                reasons=(
                    Reason(
                        "lictor/evaluation-error",
                        Outcome.DENY,
                        f"evaluation_error: {type(exc).__name__} while deciding",
                        ReasonCode.EVALUATION_ERROR,
                    ),
                ),
                policy_version=policy.version,
                decided_at=now,
            )
        if self.identity_gate is not None:
            decision = self.identity_gate.check(request, decision, identity, source=source)
        decision = monitored(decision, agent)
        decision = self._respond(request, decision)
        try:
            entry = decision_entry(
                request,
                decision,
                credential_id=credential_id,
                redact_arguments=self._redact,
                source=source,
                session=session if request.session_id else None,
            )
        except (TypeError, ValueError) as exc:
            # Only in-process callers can get here (parse_request rejects non-JSON input):
            # deny, and record the request without the values JSON cannot hold.
            decision = replace(
                decision,
                outcome=Outcome.DENY,
                reasons=(
                    Reason(
                        "lictor/unrecordable-request",
                        Outcome.DENY,
                        f"evaluation_error: the request cannot be recorded as JSON ({exc})",
                        ReasonCode.EVALUATION_ERROR,
                    ),
                ),
            )
            entry = decision_entry(
                replace(request, arguments={}, context=Context(), principal=None, resource=None),
                decision,
                credential_id=credential_id,
                source=source,
            )
        entry.update(identity_fields(identity))
        return request, decision, entry

    def _after(self, request: ActionRequest, decision: Decision) -> None:
        """Update session state once an allow is on record; trace the decision."""
        self._tracing.record(request, decision)
        self._review_recorded(decision)
        for observer in self._observers:
            try:
                observer(request, decision)
            except Exception:  # an observer never changes a decision
                log.exception("decision observer %r failed", observer)
        if self.risk is not None:
            self.risk.learn(request, decision)
        elif decision.outcome is Outcome.ALLOW and request.session_id:
            labels = frozenset(request.resource.labels) if request.resource else frozenset()
            self._sessions.record_call(request.session_id, request.tool, labels)

    def _record_rejection(
        self, raw: object, exc: InvalidToolCall, now: Any, source: str | None
    ) -> None:
        entry = rejected_entry(raw, exc.message, exc.pointer, at=now, source=source)
        submit = getattr(self.audit, "submit", None)
        try:
            if submit is not None:
                submit(entry)  # do not wait: the caller gets its 4xx either way
            else:
                self.audit.append(entry)
        except LictorError:
            log.critical("audit store unavailable; rejected request not recorded")

    def report(self, result: ResultReport | Mapping[str, Any]) -> None:
        """Record what happened after an allowed action ran.

        Raises:
            InvalidToolCall: the report is malformed.
            NotFound: no decision with that id was recorded.
            Conflict: the decision was not ``allow``, so nothing should have run.
        """
        if not isinstance(result, ResultReport):
            result = parse_result(result)
        entry = self.audit.find_decision(result.decision_id)
        if entry is None:
            raise NotFound("decision", result.decision_id)
        if entry.get("outcome") != Outcome.ALLOW.value:
            raise Conflict(
                "decision",
                result.decision_id,
                f"decision {result.decision_id} was {entry.get('outcome')}; "
                "a result can only be reported for an allowed action",
            )
        self.audit.append(result_entry(result, at=self._clock.now()))
        session_id = entry.get("session_id")
        if self.risk is not None:
            agent = self._agents.get(str(entry.get("agent_id") or ""))
            self.risk.observe(entry, result, agent, self._clock.now())
        elif session_id and result.labels:
            self._sessions.add_labels(str(session_id), frozenset(result.labels))

    # -- reviews and the incident-response gate (see lictor.service.reviews, .response) --

    def attach_reviews(
        self,
        reviews: ReviewService | None,
        gate: Callable[[ActionRequest], Reason | None] | None = None,
    ) -> None:
        """Open a pending review for each ``review`` decision; stop requests at ``gate``.

        ``gate`` runs in the status step: a reason it returns denies the request
        (emergency mode, a quarantined principal) whatever the policy says.
        """
        self.reviews = reviews
        self._gate = gate

    def wait_review(self, review_id: str, timeout_seconds: float) -> Review:
        """Block until a review has a verdict (or expired) or the timeout passes.

        Raises:
            NotFound: no such review, or this Governor keeps no reviews.
        """
        if self.reviews is None:
            raise NotFound("review", review_id)
        return self.reviews.wait(review_id, timeout_seconds)

    async def wait_review_async(self, review_id: str, timeout_seconds: float) -> Review:
        """The async form of :meth:`wait_review` (no thread is held while waiting)."""
        if self.reviews is None:
            raise NotFound("review", review_id)
        return await self.reviews.wait_async(review_id, timeout_seconds)

    def _respond(self, request: ActionRequest, decision: Decision) -> Decision:
        """Apply the gate, then turn a ``review`` into an approved retry or a new review.

        Fails closed: a store error here is an audited deny. It runs after monitor mode,
        so emergency mode and principal quarantines stop monitored agents too, and a
        monitored agent's would-be review opens nothing. An approval applies only when
        the fresh decision is ``review`` again, so a deny (quarantine, a changed
        session) always wins over it.
        """
        try:
            return self._respond_or_raise(request, decision)
        except Exception as exc:
            log.exception("error while settling %s; denying", decision.decision_id)
            self._drop_review(decision)
            return replace(
                decision,
                outcome=Outcome.DENY,
                review_id=None,
                reasons=(
                    Reason(
                        "lictor/evaluation-error",
                        Outcome.DENY,
                        f"evaluation_error: {type(exc).__name__} while deciding",
                        ReasonCode.EVALUATION_ERROR,
                    ),
                ),
            )

    def _respond_or_raise(self, request: ActionRequest, decision: Decision) -> Decision:
        blocked = self._gate(request) if self._gate is not None else None
        if blocked is not None:
            return replace(decision, outcome=Outcome.DENY, reasons=(blocked,))
        reviews = self.reviews
        if decision.outcome is not Outcome.REVIEW or reviews is None:
            return decision
        approved = reviews.claim(request, decision.policy_version, decision.decision_id)
        if approved is not None:
            self._review_steps[decision.decision_id] = ("consumed", approved)
            return replace(
                decision,
                outcome=Outcome.ALLOW,
                reasons=(
                    Reason(
                        "lictor/review-approved",
                        Outcome.ALLOW,
                        f"approved by {approved.reviewer} in review {approved.review_id}",
                        ReasonCode.REVIEW_VERDICT,
                    ),
                ),
            )
        decision = replace(decision, review_id=reviews.new_id(decision.decided_at))
        opened = reviews.open(request, decision, redact=self._redact)
        self._review_steps[decision.decision_id] = ("opened", opened)
        return decision

    def _review_recorded(self, decision: Decision) -> None:
        """Forget the review step of a decision that is now on record.

        The decision's own audit record is that step: a ``review`` decision names the
        review it opened (with the binding: agent, principal, tool, argument digest,
        policy version), and an approved retry names the review it consumed.
        """
        self._review_steps.pop(decision.decision_id, None)

    def _drop_review(self, decision: Decision) -> None:
        """The decision was never recorded: its new review must not stay pending."""
        step = self._review_steps.pop(decision.decision_id, None)
        if step is None or self.reviews is None or step[0] != "opened":
            return
        try:
            self.reviews.cancel(
                step[1].review_id, reason="its decision was not recorded", actor="lictor"
            )
        except Exception:  # the review then expires unused; nothing is allowed by it
            log.exception("review %s could not be cancelled", step[1].review_id)


#: Reason codes monitor mode may turn into an allow: what the policy (or risk) decided.
#: Every other code (evaluation errors, agent status, unknown agents, emergency mode, and
#: any code added later) stays as decided: monitor mode never overrides fail-closed.
_MONITORABLE = frozenset(
    {ReasonCode.RULE, ReasonCode.DEFAULT_DENY, ReasonCode.INVENTORY, ReasonCode.RISK}
)


def monitored(decision: Decision, agent: Agent | None) -> Decision:
    """Return an allow that records ``decision`` when ``agent`` is in monitor mode.

    An agent whose inventory record has ``attributes.monitor: true`` is being onboarded:
    its actions are decided and recorded as usual, but not blocked. The answer is
    ``allow`` with one reason of code ``monitor`` whose effect is the outcome the policy
    decided; the reasons that decided it move to ``shadow`` (evaluated, not enforced).
    Only active agents qualify, and only decisions made by rules, the inventory or risk;
    a quarantined, suspended or unknown agent and any error stay denied.
    """
    if (
        decision.outcome is Outcome.ALLOW
        or agent is None
        or agent.status is not AgentStatus.ACTIVE
        or agent.attributes.get("monitor") is not True
        or not decision.reasons
        or any(r.code not in _MONITORABLE for r in decision.reasons)
    ):
        return decision
    rules = ", ".join(r.rule for r in decision.reasons)
    reason = Reason(
        "lictor/monitor",
        decision.outcome,
        f"agent {agent.id!r} is in monitor mode: not enforced; would have been "
        f"{decision.outcome.value} ({rules})",
        ReasonCode.MONITOR,
    )
    return replace(
        decision,
        outcome=Outcome.ALLOW,
        reasons=(reason,),
        shadow=decision.reasons + decision.shadow,
    )


def _unrecorded(decision: Decision, exc: BaseException) -> Decision:
    """Turn a decision whose audit entry could not be committed into a deny."""
    log.critical("audit store unavailable (%s); denying decision %s", exc, decision.decision_id)
    return replace(
        decision,
        outcome=Outcome.DENY,
        review_id=None,
        reasons=(
            Reason(
                "lictor/audit-unavailable",
                Outcome.DENY,
                "the audit trail could not record this decision, so it is denied",
                ReasonCode.EVALUATION_ERROR,
            ),
        ),
    )
