"""``lictor policy history|diff|backtest`` and ``lictor agents review-access``.

These read the store (the versions table and the audit trail) and never write to it;
``review-access --output`` writes a suggested inventory file for ``lictor agents apply``.
Exit codes follow the table in :mod:`lictor.cli.main`; ``policy check`` lint findings
exit 0 unless ``--strict`` (then 1).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from lictor.cli.serve import existing_store, load_cli_settings
from lictor.core.agents import Agent
from lictor.core.decisions import parse_time
from lictor.errors import ConfigError
from lictor.service.lifecycle import (
    Finding,
    PolicyDiff,
    PolicyDiffSide,
    PolicyVersionStore,
    backtest,
    decision_records,
    diff_policies,
    resolve_bundle,
)
from lictor.settings import Settings

if TYPE_CHECKING:
    from lictor.store import Store

__all__ = ["parse_since", "print_findings", "register"]

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="Settings file (default: lictor.toml here).")
]
StoreOpt = Annotated[
    str | None,
    typer.Option("--store", help="Store URL (default: sqlite:///<data-dir>/lictor.db)."),
]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="Data directory.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
AgentsOpt = Annotated[
    Path | None,
    typer.Option("--agents", "-a", help="Inventory file (default: the store's inventory)."),
]

_DURATION = re.compile(r"\A(\d+)\s*([smhdw])\Z")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: datetime) -> datetime:
    """``7d``, ``12h``, ``30m``, ``2w`` before ``now``, or an RFC 3339 time.

    Raises:
        ConfigError: neither form.
    """
    found = _DURATION.match(text.strip())
    if found:
        return now - timedelta(seconds=int(found.group(1)) * _UNIT_SECONDS[found.group(2)])
    try:
        return parse_time(text)
    except ValueError:
        raise ConfigError(
            f"--since {text!r}: give a duration such as 7d, 12h, 30m, or an RFC 3339 time"
        ) from None


def _settings(config: Path | None, store: str | None, data_dir: Path | None) -> Settings:
    return load_cli_settings(config, store_url=store, data_dir=data_dir)


_opened = existing_store


def _inventory(store: Store, agents: Path | None) -> list[Agent]:
    from lictor.service.policies import load_inventory

    return load_inventory(agents) if agents is not None else store.agents.list()


def history(
    config: ConfigOpt = None,
    store: StoreOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List every policy version loaded, oldest first; the active one is marked."""
    from lictor.cli.main import errors_mapped, out

    with errors_mapped():
        settings = _settings(config, store, data_dir)
        with _opened(settings) as opened:
            versions = opened.policies.history()
            pointer = opened.policies.active()
    active = pointer.digest if pointer is not None else None
    if as_json:
        out.print_json(
            data={
                "active": active,
                "versions": [{**v.to_json(), "active": v.digest == active} for v in versions],
            }
        )
        return
    table = Table(title=f"{len(versions)} policy versions")
    for column in ("", "version", "loaded at", "author", "rules", "message"):
        table.add_column(column)
    for v in versions:
        table.add_row(
            "*" if v.digest == active else "",
            v.digest[:19],
            v.loaded_at.strftime("%Y-%m-%d %H:%M:%S"),
            escape(v.author),
            str(v.rule_count),
            escape(v.message),
        )
    out.print(table)


def diff(
    old: Annotated[str, typer.Argument(help="Directory, or stored version (digest prefix).")],
    new: Annotated[str, typer.Argument(help="Directory, or stored version (digest prefix).")],
    config: ConfigOpt = None,
    store: StoreOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rule-level diff of two bundles: added, removed and changed rules. Exit 0."""
    from lictor.cli.main import errors_mapped

    opened: list[Any] = []

    def versions() -> PolicyVersionStore:
        if not opened:
            from lictor.store import open_store

            opened.append(open_store(_settings(config, store, data_dir).resolved_store_url))
        return opened[0].policies  # type: ignore[no-any-return]  # a Store

    with errors_mapped():
        try:
            result = diff_policies(
                PolicyDiffSide.of(resolve_bundle(old, versions)),
                PolicyDiffSide.of(resolve_bundle(new, versions)),
            )
        finally:
            for handle in opened:
                handle.close()
    print_diff(result, as_json)


def print_diff(result: PolicyDiff, as_json: bool) -> None:
    """Print a diff as a table, or as JSON."""
    from lictor.cli.main import out

    if as_json:
        out.print_json(data=result.to_json())
        return
    out.print(f"{result.old_version[:19]} -> {result.new_version[:19]}", markup=False)
    if result.is_empty:
        out.print("no rule changed", markup=False)
        return
    table = Table()
    for column in ("change", "rule", "field", "old", "new"):
        table.add_column(column, no_wrap=column in ("change", "rule", "field"))
    for rule in result.added:
        table.add_row("[green]added[/]", escape(rule.id), "effect", "", rule.effect.value)
    for rule in result.removed:
        table.add_row("[red]removed[/]", escape(rule.id), "effect", rule.effect.value, "")
    for change in result.changed:
        for name, (before, after) in change.fields.items():
            table.add_row(
                "[yellow]changed[/]", escape(change.rule_id), name, _cell(before), _cell(after)
            )
    out.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return escape(", ".join(f"{k}: {v}" for k, v in value.items()) or "(any)")
    return escape(str(value))


def backtest_command(
    candidate: Annotated[Path, typer.Argument(help="Candidate policy bundle directory.")],
    since: Annotated[
        str, typer.Option("--since", help="Replay decisions since: 7d, 12h or RFC 3339.")
    ] = "7d",
    agent: Annotated[
        str | None, typer.Option("--agent", help="Only decisions of this agent.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Replay at most this many decisions.")
    ] = None,
    agents: AgentsOpt = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Replay recorded decisions through a candidate bundle; report what would flip. Exit 0."""
    from lictor.cli.main import err, errors_mapped, out
    from lictor.service.policies import load_bundle

    with errors_mapped():
        bundle = load_bundle(candidate)
        start = parse_since(since, datetime.now(UTC))
        settings = _settings(config, store, data_dir)
        began = time.perf_counter()
        with _opened(settings) as opened:
            inventory: dict[str, Agent] = {a.id: a for a in _inventory(opened, agents)}
            report = backtest(
                bundle.policy,
                decision_records(opened.audit, since=start, agent_id=agent, limit=limit),
                inventory,
            )
        seconds = time.perf_counter() - began
    if as_json:
        out.print_json(data={**report.to_json(), "since": start.isoformat(), "seconds": seconds})
        return
    out.print(
        f"replayed {report.replayed} decisions since {start:%Y-%m-%d %H:%M} through "
        f"{bundle.version[:19]} in {seconds:.1f} s: {report.flipped} would flip, "
        f"{report.unchanged} unchanged",
        markup=False,
    )
    if report.inexact:
        err.print(
            f"{report.inexact} session decisions were recorded without session state and "
            "were replayed with an empty session",
            markup=False,
        )
    for cause, count in report.skipped.items():
        err.print(f"skipped {count}: {cause}", markup=False)
    if not report.flipped:
        return
    table = Table(title="flips by direction")
    for column in ("direction", "count", "examples (decision ids)"):
        table.add_column(column)
    for direction, count in report.by_direction.most_common():
        shown = ", ".join(f.decision_id for f in report.examples.get(direction, []))
        table.add_row(direction, str(count), shown)
    out.print(table)
    rules = Table(title="flips by rule")
    rules.add_column("direction / rule")
    rules.add_column("count", justify="right")
    for name, count in report.by_rule.most_common(20):
        rules.add_row(escape(name), str(count))
    out.print(rules)


def review_access_command(
    days: Annotated[int, typer.Option("--days", min=1, help="Review window in days.")] = 30,
    agents: AgentsOpt = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the suggested inventory (YAML) here."),
    ] = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Granted tools and destinations versus used ones, per agent, with a least-privilege file."""
    from lictor.cli.main import err, errors_mapped, out
    from lictor.service.access_review import review_access

    with errors_mapped():
        since = datetime.now(UTC) - timedelta(days=days)
        settings = _settings(config, store, data_dir)
        with _opened(settings) as opened:
            inventory = _inventory(opened, agents)
            review = review_access(
                inventory, decision_records(opened.audit, since=since), since=since
            )
        if output is not None:
            try:
                output.write_text(review.suggested_yaml(), encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot write {str(output)!r}: {exc.strerror}") from None
    if as_json:
        out.print_json(data=review.to_json())
    else:
        table = Table(title=f"access since {since:%Y-%m-%d} ({days} days)")
        for column in (
            "agent",
            "decisions",
            "granted tools",
            "unused tools",
            "unused destinations",
        ):
            table.add_column(column)
        for access in review.agents:
            unused_dest = "; ".join(
                f"{k}: {', '.join(v)}" for k, v in access.unused_destinations().items() if v
            )
            table.add_row(
                escape(access.agent.id) + (" (idle)" if access.is_idle else ""),
                str(access.decisions),
                escape(", ".join(access.agent.allowed_tools)),
                escape(", ".join(access.unused_tools)),
                escape(unused_dest),
            )
        out.print(table)
    if output is not None:
        err.print(f"suggested inventory written to {output}", markup=False)


def print_findings(findings: Sequence[Finding]) -> None:
    """Print lint findings for people, one line each (on stdout, after the summary)."""
    from lictor.cli.main import out

    for finding in findings:
        out.print(f"[yellow]warning:[/] {escape(str(finding))}", markup=True)


def register(policy_app: typer.Typer, agents_app: typer.Typer) -> None:
    """Add ``history``, ``diff``, ``backtest`` to ``policy`` and ``review-access`` to ``agents``."""
    policy_app.command("history")(history)
    policy_app.command("diff")(diff)
    policy_app.command("backtest")(backtest_command)
    agents_app.command("review-access")(review_access_command)
