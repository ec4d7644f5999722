"""Decide one request against a compiled policy: total, deterministic, fail closed.

Combination (docs/policy.md): an unknown or non-active agent is denied first; then any
firing ``deny`` rule denies; a tool outside the agent's inventory grant is denied unless
an enforcing ``allow`` rule that names the tool fires; then any firing ``review`` rule
holds; then any firing ``allow`` rule allows; nothing allows → deny. A condition that
errors (missing field, type mismatch, non-boolean) denies with code
``evaluation_error``. Shadow rules are evaluated and reported, never enforced.

Most requests take a fast path that gives the same :class:`Evaluation`: when every
candidate condition has a native program and every variable those programs read is
plain, it builds just those variables, runs the programs into a bit mask, and looks the
verdict up per (request shape, mask, inventory grant); the first request of each such
key computes it the long way (``_decide``). Anything else goes the long way, with CEL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from lictor.core.agents import Agent, AgentStatus
from lictor.core.decisions import Outcome, Reason, ReasonCode
from lictor.core.policy.compile import Candidates, CompiledPolicy, CompiledRule
from lictor.core.policy.functions import SessionFunctions, bind_session, environment
from lictor.core.policy.native import has_plain_values, is_plain
from lictor.core.requests import ActionRequest, Context, Principal, Resource

_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
#: Variables that ``_Run._data`` builds from ints and ASCII strings only.
_BUILT_PLAIN = frozenset({"time"})
_EMPTY_PRINCIPAL: Mapping[str, Any] = {"id": "", "groups": [], "attributes": {}}
_EMPTY_RESOURCE: Mapping[str, Any] = {"type": "", "id": "", "labels": []}


@dataclass(frozen=True, slots=True)
class SessionFacts:
    """What the session has done so far: data labels touched and per-tool call counts.

    With risk state on (docs/risk.md) it also carries the provenance of this call's
    destination and amount arguments, and ``functions``, which answer ``provenance()``
    and ``window_count()`` / ``window_sum()`` in conditions.
    """

    id: str = ""
    labels: frozenset[str] = frozenset()
    counters: Mapping[str, int] = field(default_factory=dict)
    calls: int = 0
    provenance: Mapping[str, list[str]] = field(default_factory=dict)
    value_sources: Mapping[str, list[str]] = field(default_factory=dict)
    untrusted_destinations: Sequence[str] = ()
    side_effecting: bool = False
    functions: SessionFunctions | None = field(default=None, compare=False)
    #: ``to_cel()`` and whether it is plain, kept by the evaluator's fast path: the stores
    #: hand out one object per session state, so the same facts recur call after call,
    #: and converting and checking them again would cost more than most conditions.
    #: Their mappings, like every fact's, are not changed once given to this record.
    _plain_cel: tuple[dict[str, Any], bool] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def to_cel(self) -> dict[str, Any]:
        """Return the value CEL sees as ``session``."""
        return {
            "id": self.id,
            "labels": sorted(self.labels),
            "counters": dict(self.counters),
            "calls": self.calls,
            "provenance": dict(self.provenance),
            "value_sources": dict(self.value_sources),
            "untrusted_destinations": list(self.untrusted_destinations),
            "side_effecting": self.side_effecting,
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
    runs = cands.native_runs
    if runs is not None:
        data = _native_data(cands.native_names, request, facts, policy.zone)
        if data is not None:
            mask = _holding(runs, data)
            # The inventory reason names ``agent.id``; the shape key has the request's.
            if mask >= 0 and agent.id == request.agent_id:
                key = mask << 1 | _in_inventory(agent, request.tool)
                found: Evaluation | None = cands.decided.get(key)
                if found is None:
                    run = _Run(policy, request, facts, cands)
                    run.data = data
                    run.plain = dict.fromkeys(data, True)
                    found = _decide(run, agent, request)
                    if len(cands.decided) >= _DECIDED_LIMIT:
                        cands.decided.clear()
                    cands.decided[key] = found
                return found
    return _decide(_Run(policy, request, facts, cands), agent, request)


def _decide(run: _Run, agent: Agent, request: ActionRequest) -> Evaluation:
    """Combine the candidate rules' answers (module docstring) into the verdict."""
    cands = run.cands
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
    return Evaluation(Outcome.DENY, (_DEFAULT_DENY,), shadow, run.count)


_DEFAULT_DENY = Reason(
    "lictor/default-deny",
    Outcome.DENY,
    "no rule allows this action",
    ReasonCode.DEFAULT_DENY,
)
#: Verdicts memoised per request shape: at most one per (mask, inventory) pair, so
#: this only bounds shapes with many conditions.
_DECIDED_LIMIT = 256


def _holding(runs: tuple[Callable[[Mapping[str, Any]], Any], ...], data: dict[str, Any]) -> int:
    """Bit ``i`` set when condition ``i`` holds; ``-1`` if any is not a boolean: ask CEL."""
    mask = 0
    bit = 1
    try:
        for run in runs:
            value = run(data)
            if value is True:
                mask |= bit
            elif value is not False:
                return -1
            bit <<= 1
    except Exception:  # noqa: BLE001 - an optimisation never decides on a surprise; CEL does
        return -1
    return mask


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


def _native_data(
    names: tuple[str, ...], request: ActionRequest, facts: Facts, zone: tzinfo
) -> dict[str, Any] | None:
    """The variables ``names`` as ``_Run._data`` builds them, or ``None`` if one is not plain.

    The fast path's variables: only those the candidate native programs read, each
    checked plain (native invariant 2) as it is built, so a request whose values CEL
    would convert differently goes the whole way through ``_Run`` instead.
    """
    data: dict[str, Any] = {}
    for name in names:
        build = _PLAIN_VARIABLES.get(name)
        if build is None:
            return None
        value = build(request, facts, zone)
        if value is _NOT_PLAIN:
            return None
        data[name] = value
    return data


_NOT_PLAIN = object()
#: Sets the memo on a frozen :class:`SessionFacts` (it is not one of its values).
_SET_PLAIN_CEL = SessionFacts.__dict__["_plain_cel"].__set__


def _plain_or_not(value: Any) -> Any:
    return value if is_plain(value) else _NOT_PLAIN


def _plain_arguments(request: ActionRequest, facts: Facts, zone: tzinfo) -> Any:
    return _plain_or_not(request.arguments)


def _plain_context(request: ActionRequest, facts: Facts, zone: tzinfo) -> Any:
    context = request.context
    if type(context) is Context and not context.extra:
        value = context.to_json()  # its own field names only: plain keys
        return value if has_plain_values(value) else _NOT_PLAIN
    return _plain_or_not(context.to_json())


def _plain_resource(request: ActionRequest, facts: Facts, zone: tzinfo) -> Any:
    resource = request.resource
    if resource is None:
        return dict(_EMPTY_RESOURCE)
    value = resource.to_json()
    if type(resource) is Resource:
        return value if has_plain_values(value) else _NOT_PLAIN
    return _plain_or_not(value)


def _plain_principal(request: ActionRequest, facts: Facts, zone: tzinfo) -> Any:
    principal = request.principal
    if principal is None:
        return dict(_EMPTY_PRINCIPAL)
    value = principal.to_json()
    if type(principal) is Principal:
        return value if has_plain_values(value) else _NOT_PLAIN
    return _plain_or_not(value)


def _plain_session(request: ActionRequest, facts: Facts, zone: tzinfo) -> Any:
    session = facts.session
    if type(session) is not SessionFacts:  # a subclass may convert differently each time
        return _plain_or_not(session.to_cel())
    found = session._plain_cel
    if found is None:
        value = session.to_cel()
        found = (value, has_plain_values(value))  # to_cel's keys are its field names
        _SET_PLAIN_CEL(session, found)
    # Neither CEL nor the native programs modify the value they are given.
    return found[0] if found[1] else _NOT_PLAIN


def _plain_agent(request: ActionRequest, facts: Facts, zone: tzinfo) -> Any:
    if facts.agent is None:
        return {}
    value, plain = _agent_json(facts.agent)
    return value if plain else _NOT_PLAIN


def _plain_time(request: ActionRequest, facts: Facts, zone: tzinfo) -> Any:
    return _local_time(facts.now, zone)


def _plain_tool(request: ActionRequest, facts: Facts, zone: tzinfo) -> Any:
    return _plain_or_not(request.tool)


def _plain_server(request: ActionRequest, facts: Facts, zone: tzinfo) -> Any:
    return _plain_or_not(request.server or "")


def _plain_delegation(request: ActionRequest, facts: Facts, zone: tzinfo) -> Any:
    return _plain_or_not(list(request.delegation))


#: How the fast path builds each variable; ``request`` (the whole wire form, rare) is
#: left to ``_Run``. A test checks each against ``_Run._data``.
_PLAIN_VARIABLES: dict[str, Callable[[ActionRequest, Facts, tzinfo], Any]] = {
    "arguments": _plain_arguments,
    "context": _plain_context,
    "resource": _plain_resource,
    "principal": _plain_principal,
    "session": _plain_session,
    "agent": _plain_agent,
    "time": _plain_time,
    "tool": _plain_tool,
    "server": _plain_server,
    "delegation": _plain_delegation,
}


def _local_time(now: datetime, zone: tzinfo) -> dict[str, Any]:
    """The ``time`` variable: the caller's clock in the policy's time zone."""
    local = now.astimezone(zone)
    weekday = local.weekday()
    return {
        "hour": local.hour,
        "minute": local.minute,
        "weekday": weekday + 1,
        "day": _DAYS[weekday],
        "date": local.date().isoformat(),
    }


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
            # Only CEL calls provenance() and window_*(); bind this call's session first.
            bind_session(self.facts.session.functions)
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
            data["time"] = _local_time(facts.now, self.policy.zone)
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
