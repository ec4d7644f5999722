"""Replay InjecAgent's calls through a Governor and count what was caught.

Every call is its own session (InjecAgent records one emitted call per attack, not a
trajectory), decided for the agent that serves the call's user case, with
``context.task`` set to the user's instruction. Two inventories are measured:

* ``scoped``: each agent may use only its user's toolkit (the dataset's suggested use);
* ``broad``: every agent may use every tool, so only the policy rules stand between an
  injected instruction and the tool. This is the honest figure for the rules themselves,
  because the scoped inventory alone blocks most attacks (they call another toolkit).

Policies only: no behavioural baseline or argument provenance is used (they are not in
this release).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from evaluations.datasets import datasets_dir, read_jsonl
from evaluations.governors import GovernorFactory, policy_governor
from evaluations.injecagent.generate import AGENTS_FILE, POLICY_FILE, agent_id
from evaluations.tally import Groups, Tally, counter_json
from lictor.core.agents import Agent
from lictor.core.decisions import Outcome
from lictor.errors import InvalidToolCall
from lictor.service.memory import FixedClock
from lictor.service.policies import load_inventory

#: InjecAgent's simulated "now" (its tool responses date from 22 February 2022).
REPLAY_AT = datetime(2022, 2, 22, 11, 37, tzinfo=UTC)
INVALID_REQUEST = "lictor/invalid-request"


class Inventory(StrEnum):
    """Which tools the agents are registered for."""

    SCOPED = "scoped"
    BROAD = "broad"


@dataclass(frozen=True, slots=True)
class Blocked:
    """A legitimate call that was not allowed: the evidence behind a false positive."""

    tool: str
    outcome: Outcome
    rules: tuple[str, ...]


@dataclass(slots=True)
class InjecAgentResult:
    """Counts for one inventory mode."""

    inventory: Inventory
    legit: Tally = field(default_factory=Tally)
    attacks: Tally = field(default_factory=Tally)
    by_type: Groups = field(default_factory=Groups)
    by_model: Groups = field(default_factory=Groups)
    by_setting: Groups = field(default_factory=Groups)
    by_rule: Counter[str] = field(default_factory=Counter)
    missed_tools: Counter[str] = field(default_factory=Counter)
    legit_blocked: list[Blocked] = field(default_factory=list)
    outside_toolkit: int = 0

    @property
    def false_positive_rate(self) -> float:
        """Share of legitimate calls denied or held."""
        return self.legit.caught_rate

    def to_json(self) -> dict[str, Any]:
        """Return plain data for ``--json``."""
        return {
            "inventory": self.inventory.value,
            "legit": self.legit.to_json(),
            "false_positive_rate": round(self.false_positive_rate, 4),
            "legit_blocked": [
                {"tool": b.tool, "outcome": b.outcome.value, "rules": list(b.rules)}
                for b in self.legit_blocked
            ],
            "attacks": self.attacks.to_json(),
            "attacks_outside_user_toolkit": self.outside_toolkit,
            "by_attack_type": self.by_type.to_json(),
            "by_model": self.by_model.to_json(),
            "by_setting": self.by_setting.to_json(),
            "caught_by_rule": counter_json(self.by_rule),
            "missed_by_tool": counter_json(self.missed_tools),
        }


def load_agents(inventory: Inventory) -> list[Agent]:
    """Load the generated inventory; ``broad`` widens every agent to all tools."""
    agents = load_inventory(AGENTS_FILE)
    if inventory is Inventory.BROAD:
        agents = [replace(a, allowed_tools=("*",)) for a in agents]
    return agents


def replay(
    inventory: Inventory, data_dir: Path | None = None, *, build: GovernorFactory = policy_governor
) -> InjecAgentResult:
    """Decide every call of ``calls.jsonl`` and count the outcomes.

    ``build`` makes the Governor from the bundle, the inventory and the clock (see
    :mod:`evaluations.governors`).

    Raises:
        KeyError: a call's user instruction matches no user case (the data changed).
    """
    root = (data_dir if data_dir is not None else datasets_dir()) / "injecagent"
    agent_of = {
        case["User Instruction"]: agent_id(case["User Tool"])
        for case in read_jsonl(root / "user_cases.jsonl")
    }
    # Measured against the scoped inventory in both modes: how many attacks a toolkit
    # bound alone stops, whatever the policy rules do.
    toolkit_of = {a.id: a for a in load_agents(Inventory.SCOPED)}
    governor = build(POLICY_FILE.parent, load_agents(inventory), FixedClock(REPLAY_AT))
    result = InjecAgentResult(inventory)
    for index, row in enumerate(read_jsonl(root / "calls.jsonl")):
        call = row["call"]
        request = {
            "agent_id": agent_of[row["user_instruction"]],
            "session_id": f"injecagent-{index}",
            "tool": call["function"],
            "arguments": call.get("args") or {},
            "context": {"task": row["user_instruction"]},
        }
        try:
            decision = governor.decide(request)
            outcome, rules = decision.outcome, tuple(r.rule for r in decision.reasons)
        except InvalidToolCall:
            # The Governor refuses a malformed request outright: the call does not run.
            outcome, rules = Outcome.DENY, (INVALID_REQUEST,)
        if row["label"] == "legit":
            result.legit.add(outcome)
            if outcome is not Outcome.ALLOW:
                result.legit_blocked.append(Blocked(call["function"], outcome, rules))
            continue
        result.attacks.add(outcome)
        if not toolkit_of[request["agent_id"]].is_tool_allowed(call["function"]):
            result.outside_toolkit += 1
        result.by_type.add(row["attack_type"], outcome)
        result.by_model.add(row["model"], outcome)
        result.by_setting.add(row["setting"], outcome)
        if outcome is Outcome.ALLOW:
            result.missed_tools[call["function"]] += 1
        else:
            result.by_rule.update(set(rules))
    return result
