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

from lictor.core.agents import Agent
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
from lictor.service.ids import new_ulid
from lictor.service.memory import MemoryAgents, MemoryAudit, MemorySessions, SystemClock
from lictor.service.policies import load_bundle, load_inventory
from lictor.service.ports import AgentDirectory, AuditLog, Clock, SessionStore
from lictor.service.records import decision_entry, rejected_entry, result_entry
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
    ) -> None:
        self._policy = policy
        self._agents = agents
        self._sessions: SessionStore = sessions if sessions is not None else MemorySessions()
        self.audit: AuditLog = audit if audit is not None else MemoryAudit()
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._redact = redact_arguments
        self._tracing: DecisionTracing = tracing if tracing is not None else NoTracing()
        self._reload_lock = threading.Lock()
        self._observers: list[DecisionObserver] = []

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
    ) -> Governor:
        """Build an embedded Governor from a policy directory and an inventory file.

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
        return cls(bundle.policy, MemoryAgents(records), clock=clock, audit=audit)

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
    ) -> Decision:
        """Decide on one action request and record it before answering.

        Raises:
            InvalidToolCall: the request is malformed (recorded as a rejected request).
        """
        parsed, decision, entry = self.prepare(request, credential_id=credential_id, source=source)
        try:
            self.audit.append(entry)
        except Exception as exc:  # noqa: BLE001 - fail closed: unrecorded means not given
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
    ) -> Decision:
        """Like :meth:`decide`, but waits for the audit commit without blocking a loop.

        Used by the HTTP server: evaluation runs inline (tens of microseconds), the
        commit is awaited, so many requests share one group commit.
        """
        parsed, decision, entry = self.prepare(request, credential_id=credential_id, source=source)
        submit = getattr(self.audit, "submit", None)
        try:
            if submit is None:
                self.audit.append(entry)
            else:
                await asyncio.wait_for(asyncio.wrap_future(submit(entry)), timeout_seconds)
        except Exception as exc:  # noqa: BLE001 - fail closed: unrecorded means not given
            decision = _unrecorded(decision, exc)
        self._after(parsed, decision)
        return decision

    def prepare(
        self,
        request: ActionRequest | Mapping[str, Any],
        *,
        credential_id: str | None = None,
        source: str | None = None,
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
        try:
            agent = self._agents.get(request.agent_id)
            session = (
                self._sessions.facts(request.session_id) if request.session_id else SessionFacts()
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
        try:
            entry = decision_entry(
                request,
                decision,
                credential_id=credential_id,
                redact_arguments=self._redact,
                source=source,
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
        return request, decision, entry

    def _after(self, request: ActionRequest, decision: Decision) -> None:
        """Update session state once an allow is on record; trace the decision."""
        self._tracing.record(request, decision)
        for observer in self._observers:
            try:
                observer(request, decision)
            except Exception:  # an observer never changes a decision
                log.exception("decision observer %r failed", observer)
        if decision.outcome is Outcome.ALLOW and request.session_id:
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
        if session_id and result.labels:
            self._sessions.add_labels(str(session_id), frozenset(result.labels))


def _unrecorded(decision: Decision, exc: BaseException) -> Decision:
    """Turn a decision whose audit entry could not be committed into a deny."""
    log.critical("audit store unavailable (%s); denying decision %s", exc, decision.decision_id)
    return replace(
        decision,
        outcome=Outcome.DENY,
        reasons=(
            Reason(
                "lictor/audit-unavailable",
                Outcome.DENY,
                "the audit trail could not record this decision, so it is denied",
                ReasonCode.EVALUATION_ERROR,
            ),
        ),
    )
