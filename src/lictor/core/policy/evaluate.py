"""Decide one request against a compiled policy: total, deterministic, fail closed.

Combination (docs/policy.md): an unknown or non-active agent is denied first; then any
firing ``deny`` rule denies; a tool outside the agent's inventory grant is denied unless
an enforcing ``allow`` rule that names the tool fires; then any firing ``review`` rule
holds; then any firing ``allow`` rule allows; nothing allows → deny. A condition that
errors (missing field, type mismatch, non-boolean) denies with code
``evaluation_error``. Shadow rules are evaluated and reported, never enforced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lictor.core.agents import Agent, AgentStatus
from lictor.core.decisions import Outcome, Reason, ReasonCode
from lictor.core.policy.compile import Candidates, CompiledPolicy, CompiledRule
from lictor.core.policy.functions import environment
from lictor.core.requests import ActionRequest

_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_EMPTY_PRINCIPAL: Mapping[str, Any] = {"id": "", "groups": [], "attributes": {}}
_EMPTY_RESOURCE: Mapping[str, Any] = {"type": "", "id": "", "labels": []}


@dataclass(frozen=True, slots=True)
class SessionFacts:
    """What the session has done so far: data labels touched and per-tool call counts."""

    id: str = ""
    labels: frozenset[str] = frozenset()
    counters: Mapping[str, int] = field(default_factory=dict)
    calls: int = 0

    def to_cel(self) -> dict[str, Any]:
        """Return the value CEL sees as ``session``."""
        return {
            "id": self.id,
            "labels": sorted(self.labels),
            "counters": dict(self.counters),
            "calls": self.calls,
        }


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything besides the request that a decision depends on, supplied by the caller."""

    agent: Agent | None
    now: datetime
    session: SessionFacts = field(default_factory=SessionFacts)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The policy's verdict before risk: outcome, deciding reasons, shadow findings."""

    outcome: Outcome
    reasons: tuple[Reason, ...]
    shadow: tuple[Reason, ...] = ()
    evaluated: int = 0

    @property
    def rule_ids(self) -> tuple[str, ...]:
        """Ids of the rules that decided."""
        return tuple(r.rule for r in self.reasons)


def evaluate(policy: CompiledPolicy, request: ActionRequest, facts: Facts) -> Evaluation:
    """Return the policy's verdict on ``request``. Never raises for any request."""
    agent = facts.agent
    if agent is None:
        return _deny(
            "lictor/unknown-agent",
            f"agent {request.agent_id!r} is not in the inventory",
            ReasonCode.UNKNOWN_AGENT,
        )
    if agent.status is not AgentStatus.ACTIVE:
        return _deny(
            f"lictor/agent-{agent.status.value}",
            f"agent {agent.id!r} is {agent.status.value}",
            ReasonCode.AGENT_STATUS,
        )
    cands = policy.candidates(request.tool, request.server, request.agent_id, agent)
    run = _Run(policy, request, facts, cands)

    shadow = tuple(r for c in cands.shadow if (r := run.check(c)) is not None)

    denied = [r for c in cands.deny if (r := run.check(c)) is not None]
    if denied:
        return Evaluation(Outcome.DENY, _sorted(denied), shadow, run.count)

    if not agent.is_tool_allowed(request.tool):
        granted = [r for c in cands.granting if (r := run.check(c)) is not None]
        if any(r.effect is not Outcome.ALLOW for r in granted):  # an evaluation error
            return Evaluation(Outcome.DENY, _sorted(_errors(granted)), shadow, run.count)
        if not granted:
            reason = Reason(
                "lictor/tool-not-in-inventory",
                Outcome.DENY,
                f"tool {request.tool!r} is not among the tools agent {agent.id!r} "
                "is registered for, and no rule explicitly allows it",
                ReasonCode.INVENTORY,
            )
            return Evaluation(Outcome.DENY, (reason,), shadow, run.count)

    held = [r for c in cands.review if (r := run.check(c)) is not None]
    if held:
        errors = _errors(held)
        if errors:
            return Evaluation(Outcome.DENY, _sorted(errors), shadow, run.count)
        return Evaluation(Outcome.REVIEW, _sorted(held), shadow, run.count)

    allowed = [r for c in cands.allow if (r := run.check(c)) is not None]
    errors = _errors(allowed)
    if errors:
        return Evaluation(Outcome.DENY, _sorted(errors), shadow, run.count)
    if allowed:
        return Evaluation(Outcome.ALLOW, _sorted(allowed), shadow, run.count)
    reason = Reason(
        "lictor/default-deny",
        Outcome.DENY,
        "no rule allows this action",
        ReasonCode.DEFAULT_DENY,
    )
    return Evaluation(Outcome.DENY, (reason,), shadow, run.count)


def _deny(rule: str, message: str, code: ReasonCode) -> Evaluation:
    return Evaluation(Outcome.DENY, (Reason(rule, Outcome.DENY, message, code),))


def _errors(reasons: list[Reason]) -> list[Reason]:
    return [r for r in reasons if r.code is ReasonCode.EVALUATION_ERROR]


def _sorted(reasons: list[Reason]) -> tuple[Reason, ...]:
    # Reasons are a set: sort them so the answer does not depend on rule order.
    return tuple(sorted(reasons, key=lambda r: (r.rule, r.code.value)))


class _Run:
    """One request's evaluation: builds the CEL activation lazily, counts evaluations."""

    __slots__ = ("activation", "cands", "count", "facts", "flags", "policy", "request")

    def __init__(
        self, policy: CompiledPolicy, request: ActionRequest, facts: Facts, cands: Candidates
    ) -> None:
        self.policy = policy
        self.request = request
        self.facts = facts
        self.cands = cands
        self.activation: Any = None
        self.flags: dict[int, bool] | None = None
        self.count = 0

    def check(self, compiled: CompiledRule) -> Reason | None:
        """Return the rule's reason if it fires, an error reason if it fails, else None."""
        rule = compiled.rule
        if compiled.program is not None:
            if self.activation is None:
                self.activation = environment().Activation(self._data())
                self.flags = self._combined()
            fired = self.flags.get(compiled.order) if self.flags is not None else None
            if fired is None:
                self.count += 1
                try:
                    value = compiled.program.eval(self.activation).value()
                except Exception as exc:  # noqa: BLE001 - foreign runtime; any failure denies
                    return _error_reason(rule.id, f"{type(exc).__name__}: {exc}")
                if value is not True and value is not False:
                    detail = value if isinstance(value, str) else f"non-boolean result {value!r}"
                    return _error_reason(rule.id, str(detail))
                fired = value
            if not fired:
                return None
        return Reason(rule.id, rule.effect, rule.message, ReasonCode.RULE)

    def _combined(self) -> dict[int, bool] | None:
        """Evaluate all candidate conditions at once; ``None`` if any errs or is not bool."""
        program = self.cands.combined
        if program is None:
            return None
        self.count += 1
        try:
            values = program.eval(self.activation).plain_value()
        except Exception:  # noqa: BLE001 - foreign runtime; the slow path finds the culprit
            return None
        if not isinstance(values, list) or len(values) != len(self.cands.conditional):
            return None
        if not all(v is True or v is False for v in values):
            return None
        return dict(zip(self.cands.conditional, values, strict=True))

    def _data(self) -> dict[str, Any]:
        """Build only the CEL variables that the candidate conditions read."""
        wanted = self.cands.variables
        request = self.request
        facts = self.facts
        data: dict[str, Any] = {}
        if "arguments" in wanted:
            data["arguments"] = request.arguments
        if "tool" in wanted:
            data["tool"] = request.tool
        if "server" in wanted:
            data["server"] = request.server or ""
        if "principal" in wanted:
            data["principal"] = (
                request.principal.to_json() if request.principal else dict(_EMPTY_PRINCIPAL)
            )
        if "delegation" in wanted:
            data["delegation"] = list(request.delegation)
        if "context" in wanted:
            data["context"] = request.context.to_json()
        if "resource" in wanted:
            data["resource"] = (
                request.resource.to_json() if request.resource else dict(_EMPTY_RESOURCE)
            )
        if "request" in wanted:
            wire = request.to_json()
            wire["principal"] = wire["principal"] or dict(_EMPTY_PRINCIPAL)
            wire["resource"] = wire["resource"] or dict(_EMPTY_RESOURCE)
            for key in ("server", "session_id", "request_id"):
                wire[key] = wire[key] or ""
            data["request"] = wire
        if "agent" in wanted:
            data["agent"] = facts.agent.to_json() if facts.agent else {}
        if "session" in wanted:
            data["session"] = facts.session.to_cel()
        if "time" in wanted:
            local = facts.now.astimezone(self.policy.zone)
            data["time"] = {
                "hour": local.hour,
                "minute": local.minute,
                "weekday": local.isoweekday(),
                "day": _DAYS[local.weekday()],
                "date": local.date().isoformat(),
            }
        if "now" in wanted:
            data["now"] = facts.now
        return data


def _error_reason(rule_id: str, detail: str) -> Reason:
    return Reason(
        rule_id,
        Outcome.DENY,
        f"evaluation_error: condition of rule {rule_id!r} failed: {detail}",
        ReasonCode.EVALUATION_ERROR,
    )
