"""A seeded agent-governance workload, and the plain un-indexed evaluator that checks it.

The workload is what ``benchmarks/decide.py`` measures and what the oracle test
(``tests/unit/core/policy/test_oracle.py``) replays: agents with five tools each, and
per (agent, tool) the kinds of rules people write for agents — purpose checks, amount
limits, destination allowlists, time windows, session-label flow rules, call budgets —
plus a few global rules selected by tag, tier or glob. Every condition is a small
object that renders itself as CEL (Lictor), Cedar and Rego and also decides itself in
plain Python, so the oracle shares no code with any engine under test.

Everything is deterministic for a given seed: same rules, same requests, same order.
"""

from __future__ import annotations

import fnmatch
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from lictor.core.agents import Agent, AgentStatus, RiskTier
from lictor.core.decisions import Outcome
from lictor.core.policy import Facts, SessionFacts
from lictor.core.requests import ActionRequest, AgentId, Context, Resource, SessionId

TIMEZONE = "Europe/Berlin"
INTERNAL_DOMAIN = "corp.example"

#: Tool catalogue by family; the family decides the arguments and the rule kinds.
FAMILIES: dict[str, tuple[str, ...]] = {
    "pay": ("send_money", "payments.refund", "payments.payout", "invoices.pay"),
    "mail": ("send_email", "slack.post", "sms.send"),
    "http": ("http.post", "webhook.call"),
    "read": ("crm.read", "db.query", "files.read", "invoices.get", "kb.search"),
    "write": ("crm.update", "tickets.create", "files.write", "calendar.create"),
}
TOOLS: tuple[str, ...] = tuple(t for tools in FAMILIES.values() for t in tools)
FAMILY_OF: dict[str, str] = {t: fam for fam, tools in FAMILIES.items() for t in tools}
PAY_TOOLS = FAMILIES["pay"]
EGRESS_TOOLS = FAMILIES["mail"] + FAMILIES["http"]

PURPOSES = (
    "invoice-payment",
    "refund",
    "payroll",
    "customer-support",
    "reporting",
    "incident-response",
    "sales-outreach",
    "maintenance",
)
HOSTS = (
    "api.stripe.example",
    "hooks.slack.example",
    "api.partner.example",
    "status.corp.example",
    "api.github.example",
    "paste.evil.example",
    "upload.files.example",
    "api.crm.example",
)
EXTERNAL_DOMAINS = ("gmail.example", "partner.example", "evil.example")
TAGS = ("finance", "support", "sales", "ops", "engineering")
SESSION_LABELS = (("confidential", 0.12), ("pii", 0.2), ("financial", 0.3), ("public", 0.4))
RESOURCE_LABELS = (("restricted", 0.1), ("secret", 0.04), ("internal", 0.3))
IBANS = tuple(f"DE{10 + i:02d}3704004405320{i:05d}" for i in range(24))


def _cel_str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _cel_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(_cel_str(v) for v in values) + "]"


def _q(value: str) -> str:
    """A string literal for Cedar or Rego (both accept JSON's escapes for ASCII)."""
    return json.dumps(value)


@dataclass(frozen=True, slots=True)
class View:
    """The facts a condition reads, taken plainly from the request (the oracle's input)."""

    arguments: Mapping[str, Any]
    purpose: str
    session_labels: frozenset[str]
    counters: Mapping[str, int]
    hour: int
    weekday: int
    resource_labels: tuple[str, ...]
    agent: Agent


class Condition:
    """A rule condition, rendered for each engine and decidable in plain Python.

    ``rego()`` returns alternatives (a disjunction), each a list of body statements
    (a conjunction), because a Rego rule body cannot say "or".
    """

    def cel(self) -> str:
        raise NotImplementedError

    def cedar(self) -> str:
        raise NotImplementedError

    def rego(self) -> list[list[str]]:
        raise NotImplementedError

    def holds(self, view: View) -> bool:
        raise NotImplementedError


def _number(value: object) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


@dataclass(frozen=True, slots=True)
class Over(Condition):
    """Amount (or row count) limit: ``arguments.<field> > limit``."""

    field: str
    limit: int

    def cel(self) -> str:
        return f"has(arguments.{self.field}) && arguments.{self.field} > {self.limit}"

    def cedar(self) -> str:
        f = self.field
        return f"context.arguments has {f} && context.arguments.{f} > {self.limit}"

    def rego(self) -> list[list[str]]:
        return [[f"input.arguments.{self.field} > {self.limit}"]]

    def holds(self, view: View) -> bool:
        value = _number(view.arguments.get(self.field))
        return value is not None and value > self.limit


@dataclass(frozen=True, slots=True)
class PurposeIn(Condition):
    """Purpose check: the declared purpose of the task is one of a few."""

    purposes: tuple[str, ...]

    def cel(self) -> str:
        return f"context.purpose in {_cel_list(self.purposes)}"

    def cedar(self) -> str:
        return f"[{', '.join(_q(p) for p in self.purposes)}].contains(context.purpose)"

    def rego(self) -> list[list[str]]:
        return [[f"input.context.purpose in {{{', '.join(_q(p) for p in self.purposes)}}}"]]

    def holds(self, view: View) -> bool:
        return view.purpose in self.purposes


@dataclass(frozen=True, slots=True)
class NotOnAgentAllowlist(Condition):
    """Destination allowlist kept in the inventory: ``agent.attributes.<list>``."""

    field: str
    allowlist: str = "payee_allowlist"

    def cel(self) -> str:
        f = self.field
        return f"has(arguments.{f}) && !(arguments.{f} in agent.attributes.{self.allowlist})"

    def cedar(self) -> str:
        f = self.field
        return (
            f"context.arguments has {f} && "
            f"!principal.{self.allowlist}.contains(context.arguments.{f})"
        )

    def rego(self) -> list[list[str]]:
        var = f"v_{self.field}"
        return [
            [
                f"{var} := input.arguments.{self.field}",
                f"not {var} in data.agents[input.agent_id].{self.allowlist}",
            ]
        ]

    def holds(self, view: View) -> bool:
        if self.field not in view.arguments:
            return False
        allowed = view.agent.attributes[self.allowlist]
        return view.arguments[self.field] not in allowed


@dataclass(frozen=True, slots=True)
class NotInList(Condition):
    """Destination allowlist written into the rule: ``!(arguments.host in [...])``."""

    field: str
    values: tuple[str, ...]

    def cel(self) -> str:
        f = self.field
        return f"has(arguments.{f}) && !(arguments.{f} in {_cel_list(self.values)})"

    def cedar(self) -> str:
        f = self.field
        listed = ", ".join(_q(v) for v in self.values)
        return f"context.arguments has {f} && ![{listed}].contains(context.arguments.{f})"

    def rego(self) -> list[list[str]]:
        var = f"v_{self.field}"
        listed = ", ".join(_q(v) for v in self.values)
        return [[f"{var} := input.arguments.{self.field}", f"not {var} in {{{listed}}}"]]

    def holds(self, view: View) -> bool:
        return self.field in view.arguments and view.arguments[self.field] not in self.values


@dataclass(frozen=True, slots=True)
class ExternalRecipient(Condition):
    """The recipient address is outside the company's domain."""

    field: str
    domain: str = INTERNAL_DOMAIN

    def cel(self) -> str:
        f = self.field
        return f"has(arguments.{f}) && !arguments.{f}.endsWith({_cel_str('@' + self.domain)})"

    def cedar(self) -> str:
        f = self.field
        return f'context.arguments has {f} && !(context.arguments.{f} like "*@{self.domain}")'

    def rego(self) -> list[list[str]]:
        var = f"v_{self.field}"
        return [
            [
                f"{var} := input.arguments.{self.field}",
                f"not endswith({var}, {_q('@' + self.domain)})",
            ]
        ]

    def holds(self, view: View) -> bool:
        value = view.arguments.get(self.field)
        return isinstance(value, str) and not value.endswith("@" + self.domain)


@dataclass(frozen=True, slots=True)
class OutsideHours(Condition):
    """Time window: weekends, or before ``start`` / from ``end`` o'clock (policy zone)."""

    start: int
    end: int

    def cel(self) -> str:
        return f"time.weekday > 5 || time.hour < {self.start} || time.hour >= {self.end}"

    def cedar(self) -> str:
        t = "context.time"
        return f"{t}.weekday > 5 || {t}.hour < {self.start} || {t}.hour >= {self.end}"

    def rego(self) -> list[list[str]]:
        return [
            ["input.time.weekday > 5"],
            [f"input.time.hour < {self.start}"],
            [f"input.time.hour >= {self.end}"],
        ]

    def holds(self, view: View) -> bool:
        return view.weekday > 5 or view.hour < self.start or view.hour >= self.end


@dataclass(frozen=True, slots=True)
class SessionHas(Condition):
    """Flow rule: the session has already touched data with this label."""

    label: str

    def cel(self) -> str:
        return f"{_cel_str(self.label)} in session.labels"

    def cedar(self) -> str:
        return f"context.session.labels.contains({_q(self.label)})"

    def rego(self) -> list[list[str]]:
        return [[f"{_q(self.label)} in input.session.labels"]]

    def holds(self, view: View) -> bool:
        return self.label in view.session_labels


@dataclass(frozen=True, slots=True)
class ResourceHas(Condition):
    """The resource the action touches carries this data label."""

    label: str

    def cel(self) -> str:
        return f"{_cel_str(self.label)} in resource.labels"

    def cedar(self) -> str:
        return f"context.resource.labels.contains({_q(self.label)})"

    def rego(self) -> list[list[str]]:
        return [[f"{_q(self.label)} in input.resource.labels"]]

    def holds(self, view: View) -> bool:
        return self.label in view.resource_labels


@dataclass(frozen=True, slots=True)
class CallsAtLeast(Condition):
    """Call budget: this session already called ``tool`` at least ``count`` times."""

    tool: str
    count: int

    def cel(self) -> str:
        return f"session.counters[?{_cel_str(self.tool)}].orValue(0) >= {self.count}"

    def cedar(self) -> str:
        c = "context.session.counters"
        return f"{c} has {_q(self.tool)} && {c}[{_q(self.tool)}] >= {self.count}"

    def rego(self) -> list[list[str]]:
        return [[f"object.get(input.session.counters, {_q(self.tool)}, 0) >= {self.count}"]]

    def holds(self, view: View) -> bool:
        return view.counters.get(self.tool, 0) >= self.count


@dataclass(frozen=True, slots=True)
class All(Condition):
    """Conjunction of conditions."""

    parts: tuple[Condition, ...]

    def cel(self) -> str:
        return " && ".join(f"({p.cel()})" for p in self.parts)

    def cedar(self) -> str:
        return " && ".join(f"({p.cedar()})" for p in self.parts)

    def rego(self) -> list[list[str]]:
        bodies: list[list[str]] = [[]]
        for part in self.parts:
            bodies = [
                body + [s for s in alt if s not in body] for body in bodies for alt in part.rego()
            ]
        return bodies

    def holds(self, view: View) -> bool:
        return all(p.holds(view) for p in self.parts)


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """One rule, in the terms of a Lictor policy file."""

    id: str
    effect: Outcome
    tools: tuple[str, ...] = ()
    agents: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    when: Condition | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the rule as it would be written in YAML (what ``parse_rules`` takes)."""
        match: dict[str, Any] = {}
        if self.tools:
            match["tools"] = list(self.tools)
        selector: dict[str, Any] = {}
        if self.agents:
            selector["ids"] = list(self.agents)
        if self.tags:
            selector["tags"] = list(self.tags)
        if self.tiers:
            selector["tiers"] = list(self.tiers)
        if selector:
            match["agents"] = selector
        out: dict[str, Any] = {"id": self.id, "effect": self.effect.value}
        if match:
            out["match"] = match
        if self.when is not None:
            out["when"] = self.when.cel()
        return out

    def selects(self, tool: str, agent: Agent) -> bool:
        """Static selection, written out plainly (tools may be globs)."""
        if self.tools and not any(fnmatch.fnmatchcase(tool, t) for t in self.tools):
            return False
        if self.agents and agent.id not in self.agents:
            return False
        if self.tags and not set(self.tags) & set(agent.tags):
            return False
        return not (self.tiers and agent.risk_tier.value not in self.tiers)

    @property
    def is_grant(self) -> bool:
        """An allow rule naming tools may grant a tool the agent's inventory lacks."""
        return self.effect is Outcome.ALLOW and bool(self.tools) and "*" not in self.tools


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a plain evaluation decides: the outcome and the deciding rule ids."""

    outcome: Outcome
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Workload:
    """Agents, rules and requests for one scale."""

    agents: Mapping[str, Agent]
    rules: tuple[RuleSpec, ...]
    requests: tuple[tuple[ActionRequest, Facts], ...]
    timezone: str = TIMEZONE
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo(TIMEZONE))

    def rule_dicts(self) -> list[dict[str, Any]]:
        """The rules as a Lictor ``rules:`` list."""
        return [r.to_dict() for r in self.rules]


def _global_rules() -> list[RuleSpec]:
    """Rules that apply across agents: by tag, by tier, by glob, or to every tool."""
    return [
        RuleSpec(
            "global/read-only-never-pays",
            Outcome.DENY,
            tools=("payments.*", "send_money", "invoices.pay"),
            tags=("read-only",),
        ),
        RuleSpec(
            "global/no-egress-after-confidential",
            Outcome.DENY,
            tools=EGRESS_TOOLS,
            when=SessionHas("confidential"),
        ),
        RuleSpec(
            "global/critical-tier-payments",
            Outcome.REVIEW,
            tools=("payments.*", "send_money", "invoices.pay"),
            tiers=("critical",),
            when=Over("amount", 500),
        ),
        RuleSpec("global/support-kb", Outcome.ALLOW, tools=("kb.search",), tags=("support",)),
        RuleSpec("global/secret-resources", Outcome.REVIEW, when=ResourceHas("secret")),
        RuleSpec(
            "global/high-tier-egress-at-night",
            Outcome.REVIEW,
            tools=EGRESS_TOOLS,
            tiers=("high", "critical"),
            when=OutsideHours(6, 22),
        ),
    ]


def _pair_rules(rng: random.Random, agent: str, tool: str) -> list[RuleSpec]:
    """The rules one (agent, tool) pair gets; which ones and their limits are random."""
    family = FAMILY_OF[tool]
    base = f"{agent}/{tool}"
    out: list[RuleSpec] = []

    def add(kind: str, effect: Outcome, when: Condition | None) -> None:
        out.append(RuleSpec(f"{base}/{kind}", effect, tools=(tool,), agents=(agent,), when=when))

    def purpose(chance: float) -> Condition | None:
        if rng.random() >= chance:
            return None
        return PurposeIn(tuple(rng.sample(PURPOSES, rng.randint(2, 4))))

    def hours() -> OutsideHours:
        return OutsideHours(rng.choice((6, 7, 8)), rng.choice((18, 19, 20)))

    if family == "pay":
        add("allow", Outcome.ALLOW, purpose(0.8))
        add("hard-limit", Outcome.DENY, Over("amount", rng.randrange(10_000, 200_001, 5_000)))
        if rng.random() < 0.9:
            add("soft-limit", Outcome.REVIEW, Over("amount", rng.randrange(500, 10_001, 250)))
        if rng.random() < 0.9:
            add("payee-allowlist", Outcome.DENY, NotOnAgentAllowlist("to_account"))
        if rng.random() < 0.6:
            add("business-hours", Outcome.REVIEW, hours())
        if rng.random() < 0.4:
            add("velocity", Outcome.REVIEW, CallsAtLeast(tool, rng.randint(3, 6)))
        if rng.random() < 0.3:
            add("after-confidential", Outcome.DENY, SessionHas("confidential"))
    elif family == "mail":
        add("allow", Outcome.ALLOW, purpose(0.5))
        if rng.random() < 0.9:
            add("external-recipient", Outcome.REVIEW, ExternalRecipient("to"))
        if rng.random() < 0.8:
            flow = All((SessionHas("pii"), ExternalRecipient("to")))
            add("pii-egress", Outcome.DENY, flow)
        if rng.random() < 0.3:
            add("business-hours", Outcome.REVIEW, hours())
        if rng.random() < 0.3:
            add("velocity", Outcome.REVIEW, CallsAtLeast(tool, rng.randint(10, 20)))
    elif family == "http":
        add("allow", Outcome.ALLOW, purpose(0.4))
        hosts = tuple(rng.sample(HOSTS, rng.randint(3, 5)))
        add("host-allowlist", Outcome.DENY, NotInList("host", hosts))
        if rng.random() < 0.7:
            add("after-confidential", Outcome.DENY, SessionHas("confidential"))
    elif family == "read":
        add("allow", Outcome.ALLOW, purpose(0.7))
        if rng.random() < 0.6:
            add("bulk-read", Outcome.REVIEW, Over("limit", rng.randrange(500, 10_001, 500)))
        if rng.random() < 0.6:
            add("restricted", Outcome.DENY, ResourceHas("restricted"))
        if rng.random() < 0.3:
            add("business-hours", Outcome.REVIEW, hours())
    else:
        add("allow", Outcome.ALLOW, purpose(0.5))
        if rng.random() < 0.5:
            add("business-hours", Outcome.REVIEW, hours())
        if rng.random() < 0.4:
            add("restricted", Outcome.DENY, ResourceHas("restricted"))
        if rng.random() < 0.3:
            add("pii-write", Outcome.REVIEW, All((SessionHas("pii"), ResourceHas("internal"))))
    return out


def _agent(rng: random.Random, index: int) -> tuple[Agent, tuple[str, ...]]:
    """One inventory record and the five tools it has rules for."""
    tools = tuple(rng.sample(TOOLS, 5))
    allowed = list(tools)
    if rng.random() < 0.15:
        # The inventory lacks one tool; the pair's allow rule grants it explicitly.
        allowed.remove(rng.choice(tools))
    tags = tuple(rng.sample(TAGS, rng.randint(1, 2)))
    if rng.random() < 0.1:
        tags += ("read-only",)
    agent = Agent(
        id=AgentId(f"agent-{index:04d}"),
        name=f"Agent {index}",
        owner=f"team-{index % 17}@{INTERNAL_DOMAIN}",
        purpose="benchmark agent",
        allowed_tools=tuple(allowed),
        tags=tags,
        risk_tier=rng.choices(list(RiskTier), weights=(3, 4, 2, 1))[0],
        status=AgentStatus.ACTIVE if rng.random() < 0.95 else AgentStatus.SUSPENDED,
        attributes={"payee_allowlist": sorted(rng.sample(IBANS, 3))},
    )
    return agent, tools


def generate(rules: int, requests: int, seed: int = 7) -> Workload:
    """Build a workload with exactly ``rules`` rules and ``requests`` requests."""
    rng = random.Random(seed)
    specs = _global_rules()
    agents: dict[str, Agent] = {}
    tools_of: dict[str, tuple[str, ...]] = {}
    index = 0
    while len(specs) < rules:
        agent, tools = _agent(rng, index)
        index += 1
        agents[agent.id] = agent
        tools_of[agent.id] = tools
        for tool in tools:
            specs.extend(_pair_rules(rng, agent.id, tool))
    del specs[rules:]
    zone = ZoneInfo(TIMEZONE)
    req_rng = random.Random(seed * 7919 + rules)
    made = tuple(_request(req_rng, i, agents, tools_of) for i in range(requests))
    return Workload(agents=agents, rules=tuple(specs), requests=made, zone=zone)


def _request(
    rng: random.Random, index: int, agents: Mapping[str, Agent], tools_of: Mapping[str, Any]
) -> tuple[ActionRequest, Facts]:
    ids = list(agents)
    if rng.random() < 0.01:
        agent_id, agent = f"ghost-{index}", None
        tool = rng.choice(TOOLS)
    else:
        agent_id = rng.choice(ids)
        agent = agents[agent_id]
        tool = rng.choice(tools_of[agent_id]) if rng.random() < 0.88 else rng.choice(TOOLS)
    family = FAMILY_OF[tool]
    args: dict[str, Any]
    task = "help with this task"
    if family == "pay":
        amount = int(10 ** rng.uniform(1, 5.2))
        known = agent.attributes["payee_allowlist"] if agent else []
        account = rng.choice(known) if known and rng.random() < 0.75 else rng.choice(IBANS)
        args = {"amount": amount, "currency": "EUR", "to_account": account, "memo": f"inv-{index}"}
        task = f"Pay invoice {index} over {amount} EUR to {account}"
    elif family == "mail":
        domain = INTERNAL_DOMAIN if rng.random() < 0.6 else rng.choice(EXTERNAL_DOMAINS)
        args = {"to": f"user{rng.randint(1, 99)}@{domain}", "subject": "Status", "body": "..."}
        task = f"Send the weekly status to {args['to']}"
    elif family == "http":
        args = {"host": rng.choice(HOSTS), "path": "/v1/events", "method": "POST"}
    elif family == "read":
        args = {"table": rng.choice(("customers", "invoices", "tickets")), "query": "open"}
        if rng.random() < 0.8:
            args["limit"] = int(10 ** rng.uniform(0, 4.2))
    else:
        args = {"record": f"R-{rng.randint(1000, 9999)}", "fields": {"status": "done"}}
    labels = frozenset(name for name, chance in SESSION_LABELS if rng.random() < chance)
    counters = {t: rng.randint(0, 12) for t in rng.sample(TOOLS, rng.randint(0, 3))}
    if agent_id in tools_of and rng.random() < 0.5:
        counters[tool] = rng.randint(0, 8)
    session = SessionFacts(
        id=f"s-{index}", labels=labels, counters=counters, calls=sum(counters.values())
    )
    resource = None
    if rng.random() < 0.7:
        resource = Resource(
            type="record",
            id=f"r-{index}",
            labels=tuple(n for n, chance in RESOURCE_LABELS if rng.random() < chance),
        )
    start = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
    now = start + timedelta(days=rng.randint(0, 13), minutes=rng.randint(0, 24 * 60 - 1))
    request = ActionRequest(
        agent_id=AgentId(agent_id),
        tool=tool,
        request_id=f"req-{index}",
        session_id=SessionId(session.id),
        arguments=args,
        resource=resource,
        context=Context(task=task, purpose=rng.choice(PURPOSES)),
    )
    return request, Facts(agent=agent, now=now, session=session)


def oracle(workload: Workload, request: ActionRequest, facts: Facts) -> Verdict:
    """Decide plainly: scan every rule, no index, no CEL. Lictor's combination order.

    Unknown or non-active agent → deny; any firing deny → deny; a tool outside the
    inventory → deny unless a firing allow rule names it; any firing review → review;
    any firing allow → allow; otherwise deny.
    """
    agent = facts.agent
    if agent is None:
        return Verdict(Outcome.DENY, ("lictor/unknown-agent",))
    if agent.status is not AgentStatus.ACTIVE:
        return Verdict(Outcome.DENY, (f"lictor/agent-{agent.status.value}",))
    local = facts.now.astimezone(workload.zone)
    view = View(
        arguments=request.arguments,
        purpose=request.context.purpose,
        session_labels=facts.session.labels,
        counters=facts.session.counters,
        hour=local.hour,
        weekday=local.isoweekday(),
        resource_labels=request.resource.labels if request.resource else (),
        agent=agent,
    )
    fired = [
        rule
        for rule in workload.rules
        if rule.selects(request.tool, agent) and (rule.when is None or rule.when.holds(view))
    ]

    def ids(effect: Outcome) -> tuple[str, ...]:
        return tuple(sorted(r.id for r in fired if r.effect is effect))

    if denied := ids(Outcome.DENY):
        return Verdict(Outcome.DENY, denied)
    in_inventory = any(fnmatch.fnmatchcase(request.tool, p) for p in agent.allowed_tools)
    if not in_inventory and not any(r.is_grant for r in fired):
        return Verdict(Outcome.DENY, ("lictor/tool-not-in-inventory",))
    if held := ids(Outcome.REVIEW):
        return Verdict(Outcome.REVIEW, held)
    if allowed := ids(Outcome.ALLOW):
        return Verdict(Outcome.ALLOW, allowed)
    return Verdict(Outcome.DENY, ("lictor/default-deny",))
