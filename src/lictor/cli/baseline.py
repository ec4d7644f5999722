"""``lictor agents baseline``: inspect an agent's behavioural baseline, or rebuild it.

``--bootstrap`` replays the audit trail (oldest first) into a fresh baseline, as online
learning would have built it from the same allowed calls and result reports, and stores
it where every replica reads it (docs/risk.md). It reads the whole trail: run it when
risk is first turned on, or after a baseline was lost.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from lictor.cli.credentials import opened_store
from lictor.cli.serve import ConfigOpt, DataDirOpt, JsonOpt, StoreOpt, load_cli_settings

__all__ = ["register_baseline"]


def register_baseline(agents: typer.Typer) -> None:
    """Add ``baseline`` to the ``lictor agents`` group."""
    agents.command("baseline")(baseline)


def baseline(
    agent_id: Annotated[str, typer.Argument(help="The agent id.")],
    bootstrap: Annotated[
        bool,
        typer.Option("--bootstrap", help="Rebuild it from the audit trail and store it."),
    ] = False,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show what is normal for one agent; with --bootstrap, learn it from the audit trail."""
    from lictor.cli.main import errors_mapped, out
    from lictor.core.risk.baseline import Baseline
    from lictor.core.risk.replay import replay_audit
    from lictor.server.runtime import risk_store
    from lictor.service.memory import SystemClock
    from lictor.service.risk import RiskEngine, RiskSettings

    with errors_mapped():
        settings = load_cli_settings(config, store_url=store, data_dir=data_dir)
        risk = RiskSettings(
            learning_observations=settings.risk_learning_observations,
            learning_seconds=settings.risk_learning_seconds,
        )
        with opened_store(config, store, data_dir) as opened:
            engine = RiskEngine(risk, risk_store(settings, opened))  # Redis when configured
            if bootstrap:
                payloads = (record.payload for record in opened.audit.records())
                learned = replay_audit(Baseline.empty(risk.config()), payloads, agent_id)
                engine.put_baseline(agent_id, learned, SystemClock().now())
            summary = _summary(agent_id, engine.baseline(agent_id), SystemClock().now())
    if as_json:
        out.print_json(data=summary)
        return
    out.print(
        f"{agent_id}: {summary['observations']} calls, {summary['results']} results observed"
        f"{' (learning: signals only annotate)' if summary['learning'] else ''}"
    )
    for key in ("tools", "destinations", "resources", "labels", "transitions"):
        out.print(f"  {key}: {summary[key]}")
    if summary["top_tools"]:
        out.print("  most used: " + ", ".join(f"{t} ({n})" for t, n in summary["top_tools"]))


def _summary(agent_id: str, learned: Any, now: Any) -> dict[str, Any]:
    return {
        "agent_id": agent_id,
        "observations": learned.observations,
        "results": learned.results,
        "learning": learned.is_learning(now),
        "first_seen_at": learned.to_json()["first_seen_at"],
        "tools": len(learned.tools),
        "destinations": len(learned.destinations),
        "resources": len(learned.resources),
        "labels": len(learned.labels),
        "transitions": len(learned.transitions),
        "top_tools": [[tool, count] for tool, count in learned.tools.top(5)],
    }
