"""Replay the tau-bench airline runs through a Governor, one session per run.

Runs are ``(task_id, trial)`` pairs; their calls are decided in recorded order in one
session, so "has the agent read the reservation yet?" rules see the run's history. The
clock is fixed at policy.md's "2024-05-15 15:00:00 EST".

The principal (the authenticated customer) is the user id of the run's first
``get_user_details`` call. An airline front end knows whom it is talking to; the recorded
runs do not say, and this is the closest stand-in. Runs that never read a profile have
no principal, so the "other customer" rule cannot fire in them.

The recorded runs hold calls only, not what the tools returned: a call the agent made
after a failed call is replayed as if the failed call had succeeded (and an allowed call
counts in the session even if the real API then rejected it).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evaluations.datasets import datasets_dir, read_jsonl
from evaluations.governors import GovernorFactory, policy_governor
from evaluations.tally import Groups, Tally, counter_json
from lictor.core.decisions import Outcome
from lictor.service.memory import FixedClock

HERE = Path(__file__).resolve().parent
POLICY_DIR = HERE / "policies"
AGENTS_FILE = HERE / "agents.yaml"
AGENT_ID = "airline-agent"
TRANSFER = "transfer_to_human_agents"
#: policy.md: "The current time is 2024-05-15 15:00:00 EST" (UTC-5).
REPLAY_AT = datetime(2024, 5, 15, 20, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Replayed:
    """One decided call, kept for the table of caught writes and for hand inspection."""

    task_id: int
    trial: int
    index: int
    label: str
    tool: str
    arguments: dict[str, Any]
    outcome: Outcome
    rules: tuple[str, ...]
    shadow: tuple[str, ...]


@dataclass(slots=True)
class TauResult:
    """Counts per label, and the decided calls themselves."""

    runs: int = 0
    by_label: Groups = field(default_factory=Groups)
    deviating_by_tool: Groups = field(default_factory=Groups)
    deviating_by_rule: Counter[str] = field(default_factory=Counter)
    shadow_by_rule: Counter[str] = field(default_factory=Counter)
    calls: list[Replayed] = field(default_factory=list)

    def label(self, name: str) -> Tally:
        """The tally of one label (empty if the label never occurs)."""
        return self.by_label.tallies.get(name, Tally())

    @property
    def deviating_changes(self) -> Tally:
        """Deviating writes other than hand-overs to a human (which the policy always allows)."""
        tally = Tally()
        for c in self.calls:
            if c.label == "deviating_write" and c.tool != TRANSFER:
                tally.add(c.outcome)
        return tally

    @property
    def matches_gt_blocked(self) -> list[Replayed]:
        """Ground-truth writes that were not allowed: each is a false positive."""
        return [c for c in self.calls if c.label == "matches_gt" and c.outcome is not Outcome.ALLOW]

    def to_json(self) -> dict[str, Any]:
        """Return plain data for ``--json``."""
        return {
            "runs": self.runs,
            "by_label": self.by_label.to_json(),
            "matches_gt_allowed_rate": round(self.label("matches_gt").allowed_rate, 4),
            "read_allowed_rate": round(self.label("read").allowed_rate, 4),
            "deviating_caught_rate": round(self.label("deviating_write").caught_rate, 4),
            "deviating_changes_excluding_transfers": self.deviating_changes.to_json(),
            "deviating_by_tool": self.deviating_by_tool.to_json(),
            "deviating_caught_by_rule": counter_json(self.deviating_by_rule),
            "shadow_findings_on_writes": counter_json(self.shadow_by_rule),
            "matches_gt_blocked": [
                {"task_id": c.task_id, "trial": c.trial, "tool": c.tool, "rules": list(c.rules)}
                for c in self.matches_gt_blocked
            ],
            "deviating_caught": [
                {
                    "task_id": c.task_id,
                    "trial": c.trial,
                    "index": c.index,
                    "tool": c.tool,
                    "outcome": c.outcome.value,
                    "rules": list(c.rules),
                }
                for c in self.calls
                if c.label == "deviating_write" and c.outcome is not Outcome.ALLOW
            ],
        }


def load_runs(data_dir: Path | None = None) -> dict[tuple[int, int], list[dict[str, Any]]]:
    """Group the calls by ``(task_id, trial)``, keeping file order within and across runs."""
    root = data_dir if data_dir is not None else datasets_dir()
    runs: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for row in read_jsonl(root / "tau-bench-airline" / "trajectory_calls.jsonl"):
        runs.setdefault((int(row["task_id"]), int(row["trial"])), []).append(row)
    return runs


def customer_of(calls: list[dict[str, Any]]) -> str | None:
    """The run's customer: the user id of its first profile lookup, if any."""
    for row in calls:
        if row["call"]["function"] == "get_user_details":
            user_id = row["call"]["args"].get("user_id")
            return str(user_id) if user_id else None
    return None


def replay(data_dir: Path | None = None, *, build: GovernorFactory = policy_governor) -> TauResult:
    """Decide every call of every run and count the outcomes per label.

    ``build`` makes the Governor (see :mod:`evaluations.governors`).
    """
    governor = build(POLICY_DIR, AGENTS_FILE, FixedClock(REPLAY_AT))
    result = TauResult()
    for (task_id, trial), calls in load_runs(data_dir).items():
        result.runs += 1
        customer = customer_of(calls)
        for index, row in enumerate(calls):
            call = row["call"]
            request: dict[str, Any] = {
                "agent_id": AGENT_ID,
                "session_id": f"tau-airline-{task_id}-{trial}",
                "tool": call["function"],
                "arguments": call.get("args") or {},
            }
            if customer is not None:
                request["principal"] = {"id": customer}
            decision = governor.decide(request)
            replayed = Replayed(
                task_id=task_id,
                trial=trial,
                index=index,
                label=row["label"],
                tool=call["function"],
                arguments=dict(request["arguments"]),
                outcome=decision.outcome,
                rules=tuple(r.rule for r in decision.reasons),
                shadow=tuple(r.rule for r in decision.shadow),
            )
            result.calls.append(replayed)
            result.by_label.add(replayed.label, replayed.outcome)
            if replayed.label != "read":
                result.shadow_by_rule.update(set(replayed.shadow))
            if replayed.label == "deviating_write":
                result.deviating_by_tool.add(replayed.tool, replayed.outcome)
                if replayed.outcome is not Outcome.ALLOW:
                    result.deviating_by_rule.update(set(replayed.rules))
    return result
