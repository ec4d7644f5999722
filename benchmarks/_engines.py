"""The engines the decision benchmark compares, each loaded from the same workload.

Every engine is a ``load(workload) -> decide`` pair, where ``decide(request, facts)``
returns an :class:`Outcome`. ``load`` turns the rules into the engine's own source
first (not timed: that is us writing the policy) and then parses and compiles it
(timed: that is the engine's load).

* **Lictor**: ``parse_rules`` on the YAML-equivalent dicts, ``compile_policy``,
  ``evaluate``.
* **Cedar** (``cedarpy``), in its best form: one small pre-parsed policy set per
  (agent, tool), a pre-parsed entity handle per agent, so Cedar only ever sees the
  policies that can apply. Cedar has permit and forbid only, so a review rule is a
  ``permit`` annotated ``@effect("review")``; an Allow decision whose determining
  policies include one is a review. The agent's status and the inventory grant are
  ``forbid`` policies, like Lictor's built-in checks.
* **Rego** (``regorus``), also per (agent, tool): one compiled RVM program per pair,
  ``decision`` chaining ``else`` in Lictor's order.
* **Plain**: :func:`benchmarks._workload.oracle`, no index, no CEL.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cedarpy
import regorus  # type: ignore[import-untyped]  # ships no type information

from benchmarks._workload import TOOLS, RuleSpec, Verdict, Workload, oracle
from lictor.core.agents import Agent
from lictor.core.decisions import Outcome
from lictor.core.policy import Facts, compile_policy, evaluate, parse_rules
from lictor.core.requests import ActionRequest

Decide = Callable[[ActionRequest, Facts], Outcome]
Explain = Callable[[ActionRequest, Facts], Verdict]


@dataclass(frozen=True, slots=True)
class Loaded:
    """A loaded engine: ``decide`` is what is timed; ``explain`` (if the engine reports
    which rules decided) is what the correctness pass compares rule ids with."""

    decide: Decide
    explain: Explain | None = None


@dataclass(frozen=True, slots=True)
class Engine:
    """How to write the policy for an engine and how to load it."""

    name: str
    write: Callable[[Workload], Any]
    load: Callable[[Workload, Any], Loaded]


# --- Lictor -----------------------------------------------------------------------------


def _lictor_write(workload: Workload) -> list[dict[str, Any]]:
    return workload.rule_dicts()


def _lictor_load(workload: Workload, rules: list[dict[str, Any]]) -> Loaded:
    policy = compile_policy(parse_rules(rules), version="bench", timezone=workload.timezone)

    def decide(request: ActionRequest, facts: Facts) -> Outcome:
        return evaluate(policy, request, facts).outcome

    def explain(request: ActionRequest, facts: Facts) -> Verdict:
        verdict = evaluate(policy, request, facts)
        return Verdict(verdict.outcome, verdict.rule_ids)

    return Loaded(decide, explain)


# --- partitions shared by Cedar and Rego ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Partition:
    """The rules that can apply to one (agent, tool), and whether the inventory grants it."""

    agent: Agent
    tool: str
    rules: tuple[RuleSpec, ...]
    in_inventory: bool


def partitions(workload: Workload) -> list[Partition]:
    """Pre-partition the rules per (agent, tool): the best form for engines without an index."""
    out = []
    for agent in workload.agents.values():
        for tool in TOOLS:
            rules = tuple(r for r in workload.rules if r.selects(tool, agent))
            granted = any(fnmatch.fnmatchcase(tool, p) for p in agent.allowed_tools)
            out.append(Partition(agent, tool, rules, granted))
    return out


def _local_time(workload: Workload, facts: Facts) -> dict[str, int]:
    local = facts.now.astimezone(workload.zone)
    return {"hour": local.hour, "weekday": local.isoweekday()}


# --- Cedar ------------------------------------------------------------------------------


def cedar_policies(part: Partition) -> tuple[str, frozenset[str]]:
    """Cedar source for one partition, and the ids (``policyN``) of its review permits."""
    texts: list[str] = []
    reviews: set[str] = set()

    def add(text: str, *, review: bool = False) -> None:
        if review:
            reviews.add(f"policy{len(texts)}")
        texts.append(text)

    scope = "(principal, action, resource)"
    add(f'@id("lictor/agent-status")\nforbid{scope} unless {{ principal.status == "active" }};')
    if not part.in_inventory:
        grants = [r for r in part.rules if r.is_grant]
        if not grants:
            add(f'@id("lictor/tool-not-in-inventory")\nforbid{scope};')
        elif all(r.when is not None for r in grants):
            either = " || ".join(f"({r.when.cedar()})" for r in grants if r.when is not None)
            add(f'@id("lictor/tool-not-in-inventory")\nforbid{scope} unless {{ {either} }};')
    for rule in part.rules:
        when = f" when {{ {rule.when.cedar()} }}" if rule.when is not None else ""
        head = f'@id("{rule.id}")\n@effect("{rule.effect.value}")\n'
        if rule.effect is Outcome.DENY:
            add(f"{head}forbid{scope}{when};")
        else:
            add(f"{head}permit{scope}{when};", review=rule.effect is Outcome.REVIEW)
    return "\n".join(texts), frozenset(reviews)


def _cedar_entity(agent: Agent) -> str:
    attrs = {
        "status": agent.status.value,
        "payee_allowlist": list(agent.attributes.get("payee_allowlist", [])),
    }
    return json.dumps([{"uid": {"type": "Agent", "id": agent.id}, "attrs": attrs, "parents": []}])


def _cedar_write(workload: Workload) -> dict[str, Any]:
    return {
        "partitions": {(p.agent.id, p.tool): cedar_policies(p) for p in partitions(workload)},
        "entities": {a.id: _cedar_entity(a) for a in workload.agents.values()},
    }


_CEDAR_ACTION = {"type": "Action", "id": "call"}


def _cedar_load(workload: Workload, source: dict[str, Any]) -> Loaded:
    sets = {
        key: (cedarpy.PolicySet.from_str(text), reviews)
        for key, (text, reviews) in source["partitions"].items()
    }
    entities = {
        agent_id: cedarpy.Entities.from_json_str(text)
        for agent_id, text in source["entities"].items()
    }
    allow = cedarpy.Decision.Allow

    def decide(request: ActionRequest, facts: Facts) -> Outcome:
        found = sets.get((request.agent_id, request.tool))
        if found is None:  # unknown agent or tool: no policy can permit
            return Outcome.DENY
        policies, reviews = found
        context = {
            "arguments": dict(request.arguments),
            "purpose": request.context.purpose,
            "session": {
                "labels": list(facts.session.labels),
                "counters": dict(facts.session.counters),
            },
            "time": _local_time(workload, facts),
            "resource": {"labels": list(request.resource.labels) if request.resource else []},
        }
        result = cedarpy.is_authorized(
            {
                "principal": {"type": "Agent", "id": request.agent_id},
                "action": _CEDAR_ACTION,
                "resource": {"type": "Tool", "id": request.tool},
                "context": context,
            },
            policies,
            entities[request.agent_id],
        )
        if result.decision is not allow or result.diagnostics.errors:
            return Outcome.DENY  # errors fail closed, as in Lictor
        if reviews.intersection(result.diagnostics.reasons):
            return Outcome.REVIEW
        return Outcome.ALLOW

    return Loaded(decide)


# --- Rego -------------------------------------------------------------------------------


def rego_module(part: Partition, package: str) -> str:
    """Rego source for one partition: boolean rules and Lictor's order in ``decision``."""
    lines = [f"package {package}", "import rego.v1", ""]
    defined: set[str] = set()

    def define(name: str, rule: RuleSpec) -> None:
        defined.add(name)
        if rule.when is None:
            lines.append(f"{name} if true")
            return
        lines.extend(f"{name} if {{ " + "; ".join(body) + " }" for body in rule.when.rego())

    for rule in part.rules:
        define(rule.effect.value, rule)
        if not part.in_inventory and rule.is_grant:
            define("grant", rule)
    chain = ['"deny" if { data.agents[input.agent_id].status != "active" }']
    if "deny" in defined:
        chain.append('"deny" if { deny }')
    if not part.in_inventory:
        chain.append('"deny" if { not grant }' if "grant" in defined else '"deny" if true')
    if "review" in defined:
        chain.append('"review" if { review }')
    if "allow" in defined:
        chain.append('"allow" if { allow }')
    chain.append('"deny"')
    lines.append("decision := " + " else := ".join(chain))
    return "\n".join(lines) + "\n"


def _rego_write(workload: Workload) -> dict[tuple[str, str], tuple[str, str, str]]:
    out: dict[tuple[str, str], tuple[str, str, str]] = {}
    for index, part in enumerate(partitions(workload)):
        package = f"lictor.p{index}"
        agent = part.agent
        data = {
            "agents": {
                agent.id: {
                    "status": agent.status.value,
                    "payee_allowlist": list(agent.attributes.get("payee_allowlist", [])),
                }
            }
        }
        out[(agent.id, part.tool)] = (rego_module(part, package), package, json.dumps(data))
    return out


def _rego_load(workload: Workload, source: dict[tuple[str, str], tuple[str, str, str]]) -> Loaded:
    machines: dict[tuple[str, str], Any] = {}
    for key, (module, package, data) in source.items():
        program = regorus.Program.compile_from_modules(
            data, [(f"{package}.rego", module)], [f"data.{package}.decision"]
        )
        vm = regorus.Rvm()
        vm.load_program(program)
        vm.set_data_json(data)
        machines[key] = vm
    dumps = json.dumps

    def decide(request: ActionRequest, facts: Facts) -> Outcome:
        vm = machines.get((request.agent_id, request.tool))
        if vm is None:
            return Outcome.DENY
        resource = request.resource
        vm.set_input_json(
            dumps(
                {
                    "agent_id": request.agent_id,
                    "arguments": request.arguments,
                    "context": {"purpose": request.context.purpose},
                    "session": {
                        "labels": list(facts.session.labels),
                        "counters": facts.session.counters,
                    },
                    "time": _local_time(workload, facts),
                    "resource": {"labels": list(resource.labels) if resource else []},
                }
            )
        )
        return Outcome(json.loads(vm.execute()))

    return Loaded(decide)


# --- plain ------------------------------------------------------------------------------


def _plain_write(workload: Workload) -> None:
    return None


def _plain_load(workload: Workload, source: None) -> Loaded:
    def decide(request: ActionRequest, facts: Facts) -> Outcome:
        return oracle(workload, request, facts).outcome

    return Loaded(decide, lambda request, facts: oracle(workload, request, facts))


ENGINES = (
    Engine("lictor", _lictor_write, _lictor_load),
    Engine("cedar", _cedar_write, _cedar_load),
    Engine("rego", _rego_write, _rego_load),
    Engine("plain", _plain_write, _plain_load),
)
