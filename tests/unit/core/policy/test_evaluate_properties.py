"""Property tests: evaluate is total, deterministic, order-free, and matches a reference.

The reference below is written from the combination rules in the docstring of
``lictor/core/policy/evaluate.py``, without the index, the candidate cache or the
combined fast path: every rule is matched by hand and its condition evaluated alone.
An evaluation error denies at the stage where its rule's effect is considered (deny,
then the inventory grant, then review, then allow), as the docstring orders them: an
allow condition that errors does not matter once a review rule has fired.
"""

from __future__ import annotations

import fnmatch
import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from lictor.core.agents import Agent, AgentStatus, RiskTier
from lictor.core.decisions import Outcome
from lictor.core.policy import CompiledPolicy, Evaluation, Facts, SessionFacts, compile_policy
from lictor.core.policy import evaluate as evaluate_policy
from lictor.core.policy.functions import environment
from lictor.core.policy.parse import parse_rules
from lictor.core.requests import ActionRequest, AgentId, parse_request

# Valid CEL; several error or yield a non-boolean for some requests (missing or mistyped
# arguments), which must deny. The comment one cannot be spliced into the combined list.
CONDITIONS = (
    "true",
    "false",
    "arguments.n > 10",
    "has(arguments.n) && type(arguments.n) == int && arguments.n > 100",
    "arguments.n",
    "'secret' in session.labels",
    "mentions(context.task, arguments.n)",
    "glob(tool, 'pay*')",
    "glob(tool, ['read', 'write'])",
    "in_domain(arguments.to, 'corp.example')",
    "has(arguments.to) && domain(arguments.to) == 'evil.example'",
    "time.hour >= 9 && time.hour < 17 && time.weekday <= 5",
    "now > timestamp('2026-01-05T12:00:00Z')",
    "principal.id == 'p1' || 'admins' in principal.groups",
    "resource.labels.exists(l, l == 'confidential')",
    "'fin' in agent.tags",
    "session.counters.?pay.orValue(0) >= 2",
    "request.server == 'bank'",
    "arguments.n > 10 // a trailing comment",
    "size(delegation) > 1",
    "context.task.contains('urgent')",
    "arguments.n == 5 || arguments.n == 12.5",
    "arguments.n in [5, 50, 500]",
    "arguments.n - 1 >= 49",
    "arguments.n * 2 > 100",
    "arguments.n < 12.6 && arguments.n > 12.4",
    "!(arguments.n > 10) && tool != 'write'",
    "arguments.?n.orValue(0) > 10",
    "type(arguments.n) == string || type(arguments.n) == double",
    "arguments.n > 10 ? 'secret' in session.labels : principal.id == 'p1'",
    "arguments.to.startsWith('bob') || arguments.to.endsWith('.example')",
    "size(arguments) > 1 && 'to' in arguments",
    "in_cidr(arguments.to, '10.0.0.0/8')",
    "'fin' in agent.tags && agent.risk_tier == 'high'",
    "resource.labels[0] == 'confidential'",
)
TOOLS = ("read", "write", "pay", "pay.refund", "delete")
TOOL_PATTERNS: tuple[tuple[str, ...], ...] = (
    (),
    ("read",),
    ("pay*",),
    ("*",),
    ("write", "read"),
    ("pay.refund",),
    ("pay?refund",),
    ("delete",),
)
SERVER_PATTERNS: tuple[tuple[str, ...], ...] = ((), ("bank",), ("ba*",))
AGENT_SELECTORS: tuple[dict[str, tuple[str, ...]], ...] = (
    {},
    {"ids": ("a1",)},
    {"ids": ("a*",)},
    {"tags": ("fin",)},
    {"tiers": ("high", "low")},
    {"tags": ("ro",), "tiers": ("low",)},
)
INVENTORY = {
    "a1": Agent(
        id=AgentId("a1"), allowed_tools=("read", "pay*"), tags=("fin",), risk_tier=RiskTier.HIGH
    ),
    "a2": Agent(id=AgentId("a2"), allowed_tools=("read",), tags=("ro",), risk_tier=RiskTier.LOW),
    "a3": Agent(
        id=AgentId("a3"), allowed_tools=("*",), tags=("fin", "ro"), risk_tier=RiskTier.MEDIUM
    ),
}
TIMES = (
    datetime(2026, 1, 5, 10, 0, tzinfo=UTC),  # Monday 10:00 UTC, 11:00 Berlin
    datetime(2026, 1, 5, 15, 30, tzinfo=UTC),  # Monday 15:30 UTC, 16:30 Berlin
    datetime(2026, 1, 10, 8, 0, tzinfo=UTC),  # Saturday
)


@dataclass(frozen=True)
class RuleSpec:
    effect: str
    mode: str
    tools: tuple[str, ...]
    servers: tuple[str, ...]
    agents: int  # index into AGENT_SELECTORS
    when: str | None

    def to_dict(self, rule_id: str) -> dict[str, Any]:
        data: dict[str, Any] = {"id": rule_id, "effect": self.effect, "mode": self.mode}
        match: dict[str, Any] = {}
        if self.tools:
            match["tools"] = list(self.tools)
        if self.servers:
            match["servers"] = list(self.servers)
        selector = AGENT_SELECTORS[self.agents]
        if selector:
            match["agents"] = {key: list(value) for key, value in selector.items()}
        if match:
            data["match"] = match
        if self.when is not None:
            data["when"] = self.when
        return data


Named = tuple[tuple[str, RuleSpec], ...]


def mostly(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any]) -> Any:
    """``common`` about four times in five: keeps most generated rules relevant."""
    return st.tuples(st.integers(0, 4), common, rare).map(lambda t: t[2] if t[0] == 2 else t[1])


rule_specs = st.builds(
    RuleSpec,
    effect=st.sampled_from(["allow", "review", "deny", "allow", "review"]),
    mode=st.sampled_from(["enforce", "enforce", "enforce", "shadow"]),
    tools=mostly(st.just(()), st.sampled_from(TOOL_PATTERNS)),
    servers=mostly(st.just(()), st.sampled_from(SERVER_PATTERNS)),
    agents=mostly(st.just(0), st.integers(0, len(AGENT_SELECTORS) - 1)),
    when=st.sampled_from((None, *CONDITIONS)),
)
policies = st.lists(rule_specs, min_size=1, max_size=6).map(
    lambda specs: tuple((f"r{i}", spec) for i, spec in enumerate(specs))
)
timezones = st.sampled_from(["UTC", "Europe/Berlin"])


@lru_cache(maxsize=4096)
def compiled(named: Named, timezone: str) -> CompiledPolicy:
    """Compile once per distinct policy: hypothesis revisits the same small policies."""
    rules = parse_rules([spec.to_dict(rule_id) for rule_id, spec in named])
    return compile_policy(rules, version="sha256:prop", timezone=timezone)


@dataclass(frozen=True)
class Case:
    """A request with the facts it is decided on."""

    request: ActionRequest
    agent: Agent | None
    now: datetime
    session: SessionFacts

    @property
    def facts(self) -> Facts:
        return Facts(agent=self.agent, now=self.now, session=self.session)


n_values = st.sampled_from(
    [
        0,
        5,
        50,
        500,
        -1,
        12.5,
        5.0,
        -0.0,
        1e300,
        2**53 + 1,
        2**63,
        2**64,
        "5",
        True,
        None,
        [5],
        {"x": 1},
    ]
)
to_values = st.sampled_from(
    ["bob@corp.example", "x@evil.example", "https://evil.example/", "10.1.2.3", "", 5]
)
raw_requests = st.fixed_dictionaries(
    {
        "agent_id": mostly(st.sampled_from(["a1", "a3"]), st.sampled_from(["a2", "ghost"])),
        "tool": mostly(st.sampled_from(TOOLS[:4]), st.sampled_from(TOOLS)),
        "arguments": st.fixed_dictionaries({}, optional={"n": n_values, "to": to_values}),
        "delegation": st.sampled_from([[], ["p1"], ["p1", "a1"]]),
    },
    optional={
        "server": st.sampled_from(["bank", "shop"]),
        "context": st.sampled_from(["", "pay 50 now", "urgent: send 500 to bob@corp.example"]).map(
            lambda task: {"task": task}
        ),
        "principal": st.fixed_dictionaries(
            {
                "id": st.sampled_from(["p1", "p2"]),
                "groups": st.sampled_from([[], ["admins"], ["sales"]]),
            }
        ),
        "resource": st.sampled_from([[], ["confidential"], ["public"]]).map(
            lambda labels: {"labels": labels}
        ),
    },
)
sessions = st.builds(
    SessionFacts,
    id=st.just("s1"),
    labels=st.sampled_from([frozenset(), frozenset({"secret"}), frozenset({"secret", "pii"})]),
    counters=st.sampled_from([{}, {"pay": 1}, {"pay": 3, "read": 1}]),
    calls=st.integers(0, 5),
)


def make_case(
    raw: dict[str, Any], status: AgentStatus, now: datetime, session: SessionFacts
) -> Case:
    agent = INVENTORY.get(raw["agent_id"])
    return Case(
        parse_request(raw),
        replace(agent, status=status) if agent is not None else None,
        now,
        session,
    )


def cases() -> st.SearchStrategy[Case]:
    return st.builds(
        make_case,
        raw_requests,
        mostly(st.just(AgentStatus.ACTIVE), st.sampled_from(AgentStatus)),
        st.sampled_from(TIMES),
        sessions,
    )


# --- the reference ----------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    outcome: Outcome
    rules: frozenset[tuple[str, bool]]  # (rule id, is an evaluation error)
    shadow: frozenset[tuple[str, bool]]


ERROR = "error"


@cache
def program(condition: str) -> Any:
    return environment().compile(condition)


def hits(patterns: tuple[str, ...], value: str) -> bool:
    return any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns)


def statically_selected(spec: RuleSpec, case: Case) -> bool:
    request, agent = case.request, case.agent
    if spec.tools and not hits(spec.tools, request.tool):
        return False
    if spec.servers and (request.server is None or not hits(spec.servers, request.server)):
        return False
    selector = AGENT_SELECTORS[spec.agents]
    if "ids" in selector and not hits(selector["ids"], request.agent_id):
        return False
    if "tags" in selector and (agent is None or not set(selector["tags"]) & set(agent.tags)):
        return False
    return not (
        "tiers" in selector and (agent is None or agent.risk_tier.value not in selector["tiers"])
    )


def variables(case: Case, timezone: str) -> dict[str, Any]:
    request, agent = case.request, case.agent
    assert agent is not None
    principal = {"id": "", "groups": [], "attributes": {}}
    if request.principal is not None:
        principal = {
            "id": request.principal.id,
            "groups": list(request.principal.groups),
            "attributes": dict(request.principal.attributes),
        }
    resource = {"type": "", "id": "", "labels": []}
    if request.resource is not None:
        resource = {
            "type": request.resource.type,
            "id": request.resource.id,
            "labels": list(request.resource.labels),
        }
    context = {
        **request.context.extra,
        "task": request.context.task,
        "purpose": request.context.purpose,
        "ticket": request.context.ticket,
        "parent_decision_id": request.context.parent_decision_id,
    }
    # ``request`` is the whole request, so a value CEL cannot hold anywhere in it (an
    # integer beyond 64 bits) makes every condition that reads ``request`` fail.
    whole = {
        "request_id": request.request_id or "",
        "agent_id": request.agent_id,
        "principal": principal,
        "delegation": list(request.delegation),
        "session_id": request.session_id or "",
        "tool": request.tool,
        "server": request.server or "",
        "arguments": dict(request.arguments),
        "resource": resource,
        "context": context,
    }
    local = case.now.astimezone(ZoneInfo(timezone))
    days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    return {
        "tool": request.tool,
        "server": request.server or "",
        "arguments": dict(request.arguments),
        "principal": principal,
        "resource": resource,
        "delegation": list(request.delegation),
        "context": context,
        "request": whole,
        "agent": agent.to_json(),  # documented as what CEL sees as ``agent``
        "session": {
            "id": case.session.id,
            "labels": sorted(case.session.labels),
            "counters": dict(case.session.counters),
            "calls": case.session.calls,
        },
        "time": {
            "hour": local.hour,
            "minute": local.minute,
            "weekday": local.isoweekday(),
            "day": days[local.weekday()],
            "date": local.date().isoformat(),
        },
        "now": case.now,
    }


def condition(spec: RuleSpec, activation: Any) -> bool | str:
    """True, False or ERROR: what one condition gives, evaluated on its own."""
    if spec.when is None:
        return True
    try:
        value = program(spec.when).eval(activation).value()
    except Exception:  # noqa: BLE001 - the CEL runtime raises assorted errors; all are ERROR
        return ERROR
    return value if isinstance(value, bool) else ERROR


def reference(named: Named, timezone: str, case: Case) -> Expected:
    """Decide ``case`` the slow and obvious way."""
    agent = case.agent
    if agent is None:
        return Expected(Outcome.DENY, frozenset({("lictor/unknown-agent", False)}), frozenset())
    if agent.status is not AgentStatus.ACTIVE:
        built_in = f"lictor/agent-{agent.status.value}"
        return Expected(Outcome.DENY, frozenset({(built_in, False)}), frozenset())

    activation = environment().Activation(variables(case, timezone))
    results = [
        (rule_id, spec, condition(spec, activation))
        for rule_id, spec in named
        if statically_selected(spec, case)
    ]

    def firing(effect: str, grant_only: bool = False) -> set[tuple[str, bool]]:
        return {
            (rule_id, value == ERROR)
            for rule_id, spec, value in results
            if spec.mode == "enforce"
            and spec.effect == effect
            and value is not False
            and (not grant_only or (spec.tools and "*" not in spec.tools))
        }

    shadow = frozenset(
        (rule_id, value == ERROR)
        for rule_id, spec, value in results
        if spec.mode == "shadow" and value is not False
    )

    def decided(outcome: Outcome, rules: set[tuple[str, bool]]) -> Expected:
        return Expected(outcome, frozenset(rules), shadow)

    denied = firing("deny")
    if denied:
        return decided(Outcome.DENY, denied)
    if not hits(agent.allowed_tools, case.request.tool):
        granted = firing("allow", grant_only=True)
        if any(is_error for _, is_error in granted):
            return decided(Outcome.DENY, {r for r in granted if r[1]})
        if not granted:
            return decided(Outcome.DENY, {("lictor/tool-not-in-inventory", False)})
    for effect, outcome in (("review", Outcome.REVIEW), ("allow", Outcome.ALLOW)):
        fired = firing(effect)
        errors = {r for r in fired if r[1]}
        if errors:
            return decided(Outcome.DENY, errors)
        if fired:
            return decided(outcome, fired)
    return decided(Outcome.DENY, {("lictor/default-deny", False)})


def observed(verdict: Evaluation) -> Expected:
    def key(reasons: Any) -> frozenset[tuple[str, bool]]:
        return frozenset((r.rule, r.code.value == "evaluation_error") for r in reasons)

    return Expected(verdict.outcome, key(verdict.reasons), key(verdict.shadow))


# --- properties -------------------------------------------------------------------------


def at_most(examples: int) -> settings:
    """The profile's example count, capped: the file stays under 30 s with ``ci``."""
    return settings(max_examples=min(settings().max_examples, examples))


@at_most(400)
@given(policies, timezones, cases())
def test_evaluate_agrees_with_the_reference_implementation(
    named: Named, timezone: str, case: Case
) -> None:
    verdict = evaluate_policy(compiled(named, timezone), case.request, case.facts)

    assert observed(verdict) == reference(named, timezone, case)


@at_most(200)
@given(policies, timezones, cases())
def test_evaluate_is_total_and_deterministic(named: Named, timezone: str, case: Case) -> None:
    policy = compiled(named, timezone)

    first = evaluate_policy(policy, case.request, case.facts)
    again = evaluate_policy(policy, case.request, case.facts)
    fresh = evaluate_policy(compiled.__wrapped__(named, timezone), case.request, case.facts)

    assert first == again == fresh
    assert first.reasons
    if first.outcome is not Outcome.DENY:
        assert all(r.effect is first.outcome for r in first.reasons)


@lru_cache(maxsize=4096)
def cel_only(named: Named, timezone: str) -> CompiledPolicy:
    """The same policy with no native programs: every condition goes through CEL."""
    policy = compiled.__wrapped__(named, timezone)
    rules = [replace(rule, native=None) for rule in policy.rules]
    return CompiledPolicy(policy.policy, rules, policy.zone)


@at_most(300)
@given(policies, timezones, st.lists(cases(), min_size=1, max_size=4))
def test_native_programs_and_memoised_verdicts_change_no_evaluation(
    named: Named, timezone: str, batch: list[Case]
) -> None:
    # Several requests against one compiled policy: later ones may meet verdicts the
    # earlier ones memoised for their request shape.
    policy = compiled(named, timezone)
    for case in batch:
        expected = evaluate_policy(cel_only(named, timezone), case.request, case.facts)

        assert evaluate_policy(policy, case.request, case.facts) == expected


@at_most(200)
@given(policies, timezones, cases(), st.randoms(use_true_random=False))
def test_shuffling_rules_changes_neither_outcome_nor_deciding_rules(
    named: Named, timezone: str, case: Case, rng: random.Random
) -> None:
    shuffled = list(named)
    rng.shuffle(shuffled)

    before = evaluate_policy(compiled(named, timezone), case.request, case.facts)
    after = evaluate_policy(compiled(tuple(shuffled), timezone), case.request, case.facts)

    assert after.outcome is before.outcome
    assert set(after.reasons) == set(before.reasons)
    assert set(after.shadow) == set(before.shadow)


@at_most(250)
@given(policies, timezones, cases(), st.booleans())
def test_adding_a_matching_unconditional_deny_never_allows(
    named: Named, timezone: str, case: Case, by_name: bool
) -> None:
    tools = (case.request.tool,) if by_name else ()
    deny = RuleSpec("deny", "enforce", tools, (), 0, None)

    verdict = evaluate_policy(
        compiled((*named, ("zz-deny", deny)), timezone), case.request, case.facts
    )

    assert verdict.outcome is Outcome.DENY
    if case.agent is not None and case.agent.status is AgentStatus.ACTIVE:
        assert "zz-deny" in verdict.rule_ids


@at_most(200)
@given(timezones, cases())
def test_empty_policy_denies_everything(timezone: str, case: Case) -> None:
    verdict = evaluate_policy(compiled((), timezone), case.request, case.facts)

    assert verdict.outcome is Outcome.DENY
    assert len(verdict.rule_ids) == 1
    assert verdict.rule_ids[0].startswith("lictor/")


@at_most(50)
@given(st.lists(st.sampled_from(CONDITIONS), min_size=2, max_size=8), cases())
def test_combined_and_per_rule_evaluation_agree_for_shadow_rules(
    conditions: list[str], case: Case
) -> None:
    named = tuple(
        (f"s{i}", RuleSpec("deny", "shadow", (), (), 0, when)) for i, when in enumerate(conditions)
    )
    together = evaluate_policy(compiled(named, "UTC"), case.request, case.facts)
    alone = [evaluate_policy(compiled((rule,), "UTC"), case.request, case.facts) for rule in named]

    assert set(together.shadow) == {r for verdict in alone for r in verdict.shadow}


def test_reference_decides_a_known_case_like_evaluate() -> None:
    named: Named = (("r0", RuleSpec("allow", "enforce", ("read",), (), 0, "arguments.n > 10")),)
    case = Case(
        parse_request({"agent_id": "a1", "tool": "read", "arguments": {"n": 11}}),
        INVENTORY["a1"],
        TIMES[0],
        SessionFacts(),
    )

    expected = Expected(Outcome.ALLOW, frozenset({("r0", False)}), frozenset())
    assert reference(named, "UTC", case) == expected
    assert observed(evaluate_policy(compiled(named, "UTC"), case.request, case.facts)) == expected
