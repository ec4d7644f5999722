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
from lictor.core.policy.native import is_plain
from lictor.core.requests import ActionRequest

_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
#: Variables that ``_Run._data`` builds from ints and ASCII strings only.
_BUILT_PLAIN = frozenset({"time"})
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

    if not _in_inventory(agent, request.tool):
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
    if len(reasons) == 1:
        return (reasons[0],)
    return tuple(sorted(reasons, key=_reason_order))


def _reason_order(reason: Reason) -> tuple[str, str]:
    return (reason.rule, reason.code.value)


def _in_inventory(agent: Agent, tool: str) -> bool:
    """``agent.is_tool_allowed(tool)``, memoised on (allowed tools, tool).

    Matching a tool against glob patterns costs a few microseconds per decision; the
    answer depends only on the pattern tuple and the tool name. Subclasses of
    :class:`Agent` may decide differently, so they are asked every time.
    """
    if type(agent) is not Agent:
        return agent.is_tool_allowed(tool)
    key = (agent.allowed_tools, tool)
    found = _INVENTORY.get(key)
    if found is None:
        found = agent.is_tool_allowed(tool)
        if len(_INVENTORY) >= _INVENTORY_LIMIT:
            _INVENTORY.clear()
        _INVENTORY[key] = found
    return found


_INVENTORY: dict[tuple[tuple[str, ...], str], bool] = {}
_INVENTORY_LIMIT = 65_536


def _agent_json(agent: Agent) -> tuple[dict[str, Any], bool]:
    """``agent.to_json()`` and whether it is plain, memoised per inventory record.

    Agents are frozen records that live as long as the inventory, so the same object
    comes back for every request of that agent; converting and checking it again would
    cost more than most conditions. The cache holds the object itself, so its ``id``
    cannot be reused while the entry exists. Neither CEL nor the native programs modify
    the value they are given.
    """
    entry = _AGENTS.get(id(agent))
    if entry is not None and entry[0] is agent:
        return entry[1], entry[2]
    value = agent.to_json()
    plain = is_plain(value)
    if len(_AGENTS) >= _AGENTS_LIMIT:
        _AGENTS.clear()
    _AGENTS[id(agent)] = (agent, value, plain)
    return value, plain


_AGENTS: dict[int, tuple[Agent, dict[str, Any], bool]] = {}
_AGENTS_LIMIT = 4096


class _Run:
    """One request's evaluation: builds the variables lazily, counts evaluations.

    Each condition is first tried natively (:mod:`lictor.core.policy.native`), on the
    same plain values CEL would see; only what the native subset cannot answer exactly
    goes to CEL, whose activation (the expensive part) is then built once. ``count``
    follows the CEL-only algorithm exactly — one for the combined list, one per
    condition evaluated alone — whichever engine produced the value, so
    ``Evaluation.evaluated`` does not depend on this optimisation.
    """

    __slots__ = (
        "activation",
        "cands",
        "count",
        "data",
        "facts",
        "flags",
        "plain",
        "policy",
        "request",
    )

    def __init__(
        self, policy: CompiledPolicy, request: ActionRequest, facts: Facts, cands: Candidates
    ) -> None:
        self.policy = policy
        self.request = request
        self.facts = facts
        self.cands = cands
        self.activation: Any = None
        self.data: dict[str, Any] | None = None
        self.plain: dict[str, bool] = {}
        self.flags: dict[int, bool] | None = None
        self.count = 0

    def check(self, compiled: CompiledRule) -> Reason | None:
        """Return the rule's reason if it fires, an error reason if it fails, else None."""
        rule = compiled.rule
        if compiled.program is not None:
            if self.flags is None:
                self.flags = self._combined()
            fired = self.flags.get(compiled.order)
            if fired is None:
                self.count += 1
                fired = self._native(compiled)
            if fired is None:
                try:
                    value = compiled.program.eval(self._activation()).value()
                except Exception as exc:  # noqa: BLE001 - foreign runtime; any failure denies
                    return _error_reason(rule.id, f"{type(exc).__name__}: {exc}")
                if value is not True and value is not False:
                    detail = value if isinstance(value, str) else f"non-boolean result {value!r}"
                    return _error_reason(rule.id, str(detail))
                fired = value
            if not fired:
                return None
        if compiled.fired is not None:
            return compiled.fired
        return Reason(rule.id, rule.effect, rule.message, ReasonCode.RULE)

    def _combined(self) -> dict[int, bool]:
        """Evaluate all candidate conditions at once; empty if any errs or is not bool."""
        program = self.cands.combined
        if program is None:
            return {}
        self.count += 1
        flags = self._all_native()
        if flags is not None:
            return flags
        try:
            values = program.eval(self._activation()).plain_value()
        except Exception:  # noqa: BLE001 - foreign runtime; the slow path finds the culprit
            return {}
        if not isinstance(values, list) or len(values) != len(self.cands.conditional):
            return {}
        if not all(v is True or v is False for v in values):
            return {}
        return dict(zip(self.cands.conditional, values, strict=True))

    def _all_native(self) -> dict[int, bool] | None:
        """Every candidate condition natively, or ``None`` if any needs CEL."""
        names = self.cands.native_variables
        if names is None or not self._is_plain(names):
            return None
        data = self._variables()
        flags: dict[int, bool] = {}
        for compiled in self.cands.conditional_rules:
            try:
                value = compiled.native.run(data)  # type: ignore[union-attr]  # all native
            except Exception:  # noqa: BLE001 - an optimisation never decides on a surprise
                return None
            if value is not True and value is not False:
                return None
            flags[compiled.order] = value
        return flags

    def _native(self, compiled: CompiledRule) -> bool | None:
        """The condition's value from its native program, or ``None``: ask CEL."""
        native = compiled.native
        if native is None or not self._is_plain(native.variables):
            return None
        try:
            value = native.run(self._variables())
        except Exception:  # noqa: BLE001 - an optimisation never decides on a surprise; CEL does
            return None
        return value if value is True or value is False else None

    def _is_plain(self, names: frozenset[str]) -> bool:
        """Whether CEL would see these variables exactly as the native programs do."""
        data = self._variables()
        plain = self.plain
        for name in names:
            if name in _BUILT_PLAIN:
                continue
            known = plain.get(name)
            if known is None:
                known = plain[name] = name in data and is_plain(data[name])
            if not known:
                return False
        return True

    def _variables(self) -> dict[str, Any]:
        if self.data is None:
            self.data = self._data()
        return self.data

    def _activation(self) -> Any:
        if self.activation is None:
            self.activation = environment().Activation(self._variables())
        return self.activation

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
            if facts.agent is None:
                data["agent"] = {}
            else:
                data["agent"], self.plain["agent"] = _agent_json(facts.agent)
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
