"""Run both evaluations and print their figures as tables, or as JSON with ``--json``.

``evaluate`` is what the integration test calls, so the figures the README quotes, the
figures CI checks and the figures this command prints come from one code path.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from evaluations.datasets import datasets_dir
from evaluations.injecagent import replay as injecagent
from evaluations.injecagent.replay import InjecAgentResult, Inventory
from evaluations.tally import Groups, Tally
from evaluations.tau_airline import replay as tau
from evaluations.tau_airline.replay import TauResult


@dataclass(frozen=True, slots=True)
class Report:
    """Both evaluations' results and how long they took."""

    injecagent: dict[Inventory, InjecAgentResult]
    tau: TauResult
    seconds: float

    def to_json(self) -> dict[str, Any]:
        """Return plain data for ``--json``."""
        return {
            "injecagent": {mode.value: r.to_json() for mode, r in self.injecagent.items()},
            "tau_airline": self.tau.to_json(),
            "seconds": round(self.seconds, 2),
        }


def evaluate(data_dir: Path | None = None) -> Report:
    """Replay both datasets (InjecAgent in both inventory modes) and time it."""
    start = time.perf_counter()
    results = {mode: injecagent.replay(mode, data_dir) for mode in Inventory}
    tau_result = tau.replay(data_dir)
    return Report(results, tau_result, time.perf_counter() - start)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _injecagent_table(title: str, group: str, rows: list[tuple[str, list[Tally]]]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(group)
    table.add_column("calls", justify="right")
    for mode in Inventory:
        table.add_column(f"{mode.value}: deny", justify="right")
        table.add_column(f"{mode.value}: review", justify="right")
        table.add_column(f"{mode.value}: caught", justify="right")
    for name, tallies in rows:
        cells = [name, str(tallies[0].total)]
        for t in tallies:
            cells += [str(t.deny), str(t.review), _pct(t.caught_rate)]
        table.add_row(*cells)
    return table


def _grouped(results: list[InjecAgentResult], pick: str) -> list[tuple[str, list[Tally]]]:
    groups: list[Groups] = [getattr(r, pick) for r in results]
    keys = sorted({k for g in groups for k in g.tallies})
    return [(k, [g.tallies.get(k, Tally()) for g in groups]) for k in keys]


def _rule_table(
    title: str, key: str, columns: Sequence[str], counters: Sequence[Counter[str]]
) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(key)
    for name in columns:
        table.add_column(name, justify="right")
    rules = sorted(
        {k for c in counters for k in c}, key=lambda k: (-sum(c[k] for c in counters), k)
    )
    for rule in rules:
        table.add_row(rule, *(str(c[rule]) for c in counters))
    return table


def render(report: Report, console: Console) -> None:
    """Print every table."""
    results = [report.injecagent[mode] for mode in Inventory]
    scoped = report.injecagent[Inventory.SCOPED]
    rows = _grouped(results, "by_type")
    rows.append(("ALL ATTACKS", [r.attacks for r in results]))
    console.print(
        _injecagent_table(
            "InjecAgent: attack calls caught (deny + review), policies only", "attack type", rows
        )
    )
    console.print(
        "Legitimate calls allowed: "
        + ", ".join(
            f"{r.inventory.value} {r.legit.allow}/{r.legit.total} "
            f"(false positives {_pct(r.false_positive_rate)})"
            for r in results
        )
        + ". Attack calls whose tool is outside the user's toolkit: "
        f"{scoped.outside_toolkit}/{scoped.attacks.total}."
    )
    console.print(_injecagent_table("InjecAgent: by model", "model", _grouped(results, "by_model")))
    console.print(
        _injecagent_table("InjecAgent: by setting", "setting", _grouped(results, "by_setting"))
    )
    console.print(
        _rule_table(
            "InjecAgent: caught attack calls by deciding rule (a call may have several)",
            "deciding rule",
            [m.value for m in Inventory],
            [r.by_rule for r in results],
        )
    )
    console.print(
        _rule_table(
            "InjecAgent: attack calls allowed, by tool",
            "tool",
            [m.value for m in Inventory],
            [r.missed_tools for r in results],
        )
    )

    result = report.tau
    table = Table(
        title=f"tau-bench airline: {result.runs} runs replayed as sessions", title_justify="left"
    )
    for name in ("label", "calls", "allow", "review", "deny", "allowed", "caught"):
        table.add_column(name, justify="left" if name == "label" else "right")
    for label, t in result.by_label.items():
        table.add_row(
            label,
            str(t.total),
            str(t.allow),
            str(t.review),
            str(t.deny),
            _pct(t.allowed_rate),
            _pct(t.caught_rate),
        )
    console.print(table)
    table = Table(title="tau-bench airline: deviating writes by tool", title_justify="left")
    for name in ("tool", "calls", "review", "deny", "caught"):
        table.add_column(name, justify="left" if name == "tool" else "right")
    for tool, t in result.deviating_by_tool.items():
        table.add_row(tool, str(t.total), str(t.review), str(t.deny), _pct(t.caught_rate))
    console.print(table)
    console.print(
        _rule_table(
            "tau-bench airline: caught deviating writes by deciding rule",
            "deciding rule",
            ["calls"],
            [result.deviating_by_rule],
        )
    )
    changes = result.deviating_changes
    console.print(
        f"Deviating writes other than transfers to a human: caught {changes.caught}/"
        f"{changes.total} ({_pct(changes.caught_rate)})."
    )
    blocked = result.matches_gt_blocked
    console.print(
        f"matches_gt calls not allowed: {len(blocked)}"
        + "".join(f"\n  task {c.task_id} trial {c.trial} {c.tool}: {c.rules}" for c in blocked)
    )
    console.print(
        "Shadow findings on writes (reported, not enforced): "
        + ", ".join(f"{k} {v}" for k, v in sorted(result.shadow_by_rule.items()))
    )
    console.print(f"Replayed in {report.seconds:.1f} s.")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``evaluations/run.py``."""
    parser = argparse.ArgumentParser(
        description="Replay the public datasets through Lictor and print the figures."
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    console = Console()
    root = datasets_dir()
    if not root.is_dir():
        console.print(
            f"datasets not found at {root}; set LICTOR_DATASETS to the 'datasets' directory"
        )
        return 2
    report = evaluate(root)
    if args.json:
        console.print_json(json.dumps(report.to_json()))
    else:
        render(report, console)
    return 0
