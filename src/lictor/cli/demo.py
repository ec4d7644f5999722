"""``lictor demo``: a scripted run of example agents through an embedded Governor.

Each example directory holds ``agents.yaml``, ``policies/`` and ``scenario.jsonl``: one
step per line, ``{"say": ..., "request": {...}}`` to ask for a decision, or
``{"say": ..., "report": {...}}`` to report the result of the previous decision. The
clock is fixed (Monday 2026-01-05 10:00 UTC) so the demo prints the same every time.
Everything runs in process; the audit trail is hash-chained in memory and verified at
the end.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from lictor.core.audit.chain import verify_chain
from lictor.core.decisions import Decision, Outcome
from lictor.errors import ConfigError, LictorError
from lictor.service.audit_writer import AuditWriter
from lictor.service.governor import Governor
from lictor.service.memory import FixedClock, MemoryAuditStore
from lictor.service.policies import load_inventory

DEMO_TIME = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
STYLE = {Outcome.ALLOW: "bold green", Outcome.DENY: "bold red", Outcome.REVIEW: "bold yellow"}


def find_examples(explicit: Path | None) -> Path:
    """Return the examples directory: the given one, or the repository's."""
    candidates = [explicit] if explicit is not None else [Path("examples"), _repo_examples()]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise ConfigError("examples directory not found; run from the repository or pass --examples")


def _repo_examples() -> Path:
    return Path(__file__).resolve().parents[3] / "examples"


def run_demo(out: Console, examples: Path | None) -> dict[str, int]:
    """Run every example's scenario and print each decision with its reasons.

    Returns the count of each outcome, for tests.
    """
    root = find_examples(examples)
    scenarios = sorted(p.parent for p in root.glob("*/scenario.jsonl"))
    if not scenarios:
        raise ConfigError(f"no */scenario.jsonl under {root}")
    totals = {o.value: 0 for o in Outcome}
    out.print(
        Panel.fit(
            "Lictor checks every agent action before it runs: [green]allow[/], "
            "[red]deny[/] or [yellow]review[/] (held for a person).\n"
            "Each step below is one tool call an agent proposes, decided by the example "
            "policies in [bold]examples/[/].",
            title="Lictor demo",
        )
    )
    for directory in scenarios:
        counts = _run_one(out, directory)
        for key, value in counts.items():
            totals[key] += value
    table = Table(title="All scenarios")
    for name in ("allow", "review", "deny"):
        table.add_column(name, justify="right")
    table.add_row(*(str(totals[name]) for name in ("allow", "review", "deny")))
    out.print(table)
    return totals


def _run_one(out: Console, directory: Path) -> dict[str, int]:
    agents = load_inventory(directory / "agents.yaml")
    clock = FixedClock(DEMO_TIME)
    store = MemoryAuditStore()
    writer = AuditWriter(store, clock).start()
    governor = Governor.from_paths(directory / "policies", agents, clock=clock, audit=writer)
    out.rule(f"[bold]{directory.name}[/]  policy {governor.policy.version[:19]}…")
    for agent in agents:
        out.print(
            f"  [cyan]{agent.id}[/] ({agent.status.value}, {agent.risk_tier.value} risk): "
            f"{agent.purpose}",
            markup=True,
        )
    counts = {o.value: 0 for o in Outcome}
    last: Decision | None = None
    steps = (directory / "scenario.jsonl").read_text(encoding="utf-8").splitlines()
    number = 0
    for line_no, line in enumerate(steps, start=1):
        if not line.strip():
            continue
        step: dict[str, Any] = json.loads(line)
        if "request" in step:
            number += 1
            out.print(f"\n[bold]{number:2}.[/] {escape(str(step.get('say', '')))}", markup=True)
            request = step["request"]
            args = json.dumps(request.get("arguments", {}), ensure_ascii=False)
            if len(args) > 110:
                args = args[:107] + "..."
            out.print(
                f"    [dim]{escape(str(request.get('agent_id')))} → "
                f"{escape(str(request.get('tool')))} {escape(args)}[/]"
            )
            last = governor.decide(request)
            counts[last.outcome.value] += 1
            style = STYLE[last.outcome]
            out.print(f"    [{style}]{last.outcome.value.upper()}[/]", markup=True)
            for reason in last.reasons:
                message = f"  {reason.message}" if reason.message else ""
                out.print(f"      [dim]{escape(reason.rule)}[/]{escape(message)}", markup=True)
        elif "report" in step:
            if last is None or last.outcome is not Outcome.ALLOW:
                raise ConfigError(f"{directory}/scenario.jsonl:{line_no}: report after no allow")
            out.print(
                f"    [dim]↳ {escape(str(step.get('say', 'result reported')))}[/]", markup=True
            )
            try:
                governor.report({"decision_id": last.decision_id, **step["report"]})
            except LictorError as exc:
                raise ConfigError(f"{directory}/scenario.jsonl:{line_no}: {exc}") from exc
    writer.close()
    summary = verify_chain(store.records())
    out.print(
        f"\n  audit trail: {summary.size} records, hash chain verified, "
        f"Merkle root {summary.merkle_root[:16]}…",
    )
    return counts
