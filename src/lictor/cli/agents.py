"""``lictor agents``: the inventory, managed from the command line.

The group is defined here so that commands from several modules (inventory, incident
response, access review) hang off one ``agents`` name.
"""

from __future__ import annotations

import typer

__all__ = ["agents_app"]

agents_app = typer.Typer(help="Register, inspect and manage agents.", no_args_is_help=True)


# --- inventory commands: list, show, register, update, suspend, retire, apply -------------
# They act on the store named by the settings, as `lictor credentials` does, and write an
# `agent_change` audit record for every change. A running server sees a change within
# its 0.5-second inventory cache.

import getpass  # noqa: E402 - the inventory commands' own imports, below the shared group
import json  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Annotated, Any  # noqa: E402

from lictor.cli.credentials import opened_store  # noqa: E402
from lictor.cli.serve import ConfigOpt, DataDirOpt, JsonOpt, StoreOpt  # noqa: E402
from lictor.core.agents import Agent, AgentStatus, RiskTier, parse_agent  # noqa: E402
from lictor.service.inventory import ApplyPlan, Change, Inventory, TrailAudit  # noqa: E402
from lictor.service.memory import SystemClock  # noqa: E402

ActorOpt = Annotated[
    str | None,
    typer.Option("--actor", help="Who makes the change, for the audit trail (default: $USER)."),
]
ToolsOpt = Annotated[
    list[str] | None, typer.Option("--tool", help="An allowed tool or glob (repeatable).")
]
TagsOpt = Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeatable).")]
AttrOpt = Annotated[
    list[str] | None,
    typer.Option("--attribute", help="KEY=VALUE (VALUE parsed as JSON if it can be; repeatable)."),
]


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return "cli:unknown"


def _attributes(items: list[str] | None) -> dict[str, Any] | None:
    from lictor.errors import ConfigError

    if items is None:
        return None
    result: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--attribute {item!r}: write KEY=VALUE")
        try:
            result[key] = json.loads(raw)
        except ValueError:
            result[key] = raw
    return result


def _fields(
    name: str | None,
    owner: str | None,
    purpose: str | None,
    tools: list[str] | None,
    tags: list[str] | None,
    risk_tier: RiskTier | None,
    risk_tolerance: float | None,
    attributes: list[str] | None,
) -> dict[str, Any]:
    given: dict[str, Any] = {
        "name": name,
        "owner": owner,
        "purpose": purpose,
        "allowed_tools": tools,
        "tags": tags,
        "risk_tier": risk_tier.value if risk_tier is not None else None,
        "risk_tolerance": risk_tolerance,
        "attributes": _attributes(attributes),
    }
    return {k: v for k, v in given.items() if v is not None}


def _show_change(change: Change, as_json: bool) -> None:
    from lictor.cli.main import err, out

    if as_json:
        out.print_json(json.dumps(change.to_json()))
        return
    if change.is_noop:
        err.print(f"agent {change.agent_id}: unchanged", markup=False)
        return
    version = change.after.version if change.after is not None else "-"
    err.print(
        f"agent {change.agent_id}: {change.action} (version {version}); "
        f"changed: {', '.join(change.changed)}",
        markup=False,
    )


def _inventory(store: Any) -> Inventory:
    return Inventory(store.agents, TrailAudit(store.audit), SystemClock())


@agents_app.command("list")
def list_agents(
    shadow: Annotated[
        bool, typer.Option("--shadow", help="Only shadow agents (seen, not registered).")
    ] = False,
    status: Annotated[
        AgentStatus | None, typer.Option("--status", help="Only agents with this status.")
    ] = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List inventory records (with --shadow: unregistered agents that asked to act)."""
    from rich.table import Table

    from lictor.cli.main import errors_mapped, out

    with errors_mapped(), opened_store(config, store, data_dir) as opened:
        found = _inventory(opened).list(status=status, shadow_only=shadow)
    if as_json:
        out.print_json(json.dumps([a.to_json() for a in found]))
        return
    table = Table(title=f"{len(found)} {'shadow ' if shadow else ''}agents")
    table.add_column("id", no_wrap=True)
    if shadow:
        for column in ("first seen", "last seen", "source", "user agent", "tools", "count"):
            table.add_column(column)
        for a in found:
            s = a.shadow.to_json() if a.shadow is not None else {}
            table.add_row(
                a.id,
                s.get("first_seen_at", ""),
                s.get("last_seen_at", ""),
                s.get("source") or "",
                s.get("user_agent") or "",
                ", ".join(s.get("tools", [])),
                str(s.get("count", "")),
            )
    else:
        for column in ("name", "owner", "status", "risk tier", "version", "updated"):
            table.add_column(column)
        for a in found:
            wire = a.to_json()
            table.add_row(
                a.id,
                a.name,
                a.owner,
                a.status.value,
                a.risk_tier.value,
                str(a.version),
                f"{wire['updated_at'] or ''} {a.updated_by}".strip(),
            )
    out.print(table)


@agents_app.command("show")
def show(
    agent_id: Annotated[str, typer.Argument(help="The agent id.")],
    config: ConfigOpt = None,
    store: StoreOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one inventory record, bookkeeping and shadow sighting included."""
    from lictor.cli.main import errors_mapped, out

    with errors_mapped(), opened_store(config, store, data_dir) as opened:
        agent = _inventory(opened).get(agent_id)
    if as_json:
        out.print_json(json.dumps(agent.to_json()))
        return
    for key, value in agent.to_json().items():
        shown = json.dumps(value) if isinstance(value, list | dict) else value
        out.print(f"{key:>18}: {'' if shown is None else shown}", markup=False)


@agents_app.command("register")
def register(
    agent_id: Annotated[str, typer.Argument(help="The new agent's id (or a shadow agent's).")],
    name: Annotated[str | None, typer.Option("--name", help="Display name.")] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Accountable person/team.")] = None,
    purpose: Annotated[str | None, typer.Option("--purpose", help="What it is for.")] = None,
    tools: ToolsOpt = None,
    tags: TagsOpt = None,
    risk_tier: Annotated[RiskTier | None, typer.Option("--risk-tier")] = None,
    risk_tolerance: Annotated[float | None, typer.Option("--risk-tolerance")] = None,
    attributes: AttrOpt = None,
    suspended: Annotated[
        bool, typer.Option("--suspended", help="Register it suspended (may not act yet).")
    ] = False,
    actor: ActorOpt = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register an agent; a shadow agent of that id is adopted (its sighting is kept)."""
    from lictor.cli.main import errors_mapped

    with errors_mapped():
        fields = _fields(name, owner, purpose, tools, tags, risk_tier, risk_tolerance, attributes)
        if suspended:
            fields["status"] = AgentStatus.SUSPENDED.value
        agent: Agent = parse_agent({"id": agent_id, **fields})
        with opened_store(config, store, data_dir) as opened:
            change = _inventory(opened).register(agent, actor=_actor(actor), source="cli")
    _show_change(change, as_json)


@agents_app.command("update")
def update(
    agent_id: Annotated[str, typer.Argument(help="The agent id.")],
    name: Annotated[str | None, typer.Option("--name")] = None,
    owner: Annotated[str | None, typer.Option("--owner")] = None,
    purpose: Annotated[str | None, typer.Option("--purpose")] = None,
    tools: ToolsOpt = None,
    tags: TagsOpt = None,
    risk_tier: Annotated[RiskTier | None, typer.Option("--risk-tier")] = None,
    risk_tolerance: Annotated[float | None, typer.Option("--risk-tolerance")] = None,
    attributes: AttrOpt = None,
    status: Annotated[AgentStatus | None, typer.Option("--status")] = None,
    version: Annotated[
        int | None,
        typer.Option("--version", help="Fail if the record is no longer at this version."),
    ] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why, for the trail.")] = None,
    actor: ActorOpt = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change fields of a record; list options (--tool, --tag) replace the whole list."""
    from lictor.cli.main import EXIT_USAGE, errors_mapped, fail

    fields = _fields(name, owner, purpose, tools, tags, risk_tier, risk_tolerance, None)
    with errors_mapped():
        extra = _attributes(attributes)
        if extra is not None:
            fields["attributes"] = extra
        if status is not None:
            fields["status"] = status.value
        if not fields:
            fail("nothing to update: give at least one field option", EXIT_USAGE)
        with opened_store(config, store, data_dir) as opened:
            change = _inventory(opened).update(
                agent_id,
                fields,
                actor=_actor(actor),
                expected_version=version,
                source="cli",
                reason=reason,
            )
    _show_change(change, as_json)


def _set_status(
    agent_id: str,
    status: AgentStatus,
    reason: str,
    actor: str | None,
    config: Path | None,
    store: str | None,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    from lictor.cli.main import errors_mapped

    with errors_mapped(), opened_store(config, store, data_dir) as opened:
        change = _inventory(opened).set_status(
            agent_id, status, actor=_actor(actor), reason=reason, source="cli"
        )
    _show_change(change, as_json)


ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (required; goes on the trail).")]


@agents_app.command("suspend")
def suspend(
    agent_id: Annotated[str, typer.Argument(help="The agent id.")],
    reason: ReasonOpt,
    actor: ActorOpt = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Suspend an agent: its next request is denied (reactivate with update --status active)."""
    _set_status(agent_id, AgentStatus.SUSPENDED, reason, actor, config, store, data_dir, as_json)


@agents_app.command("retire")
def retire(
    agent_id: Annotated[str, typer.Argument(help="The agent id.")],
    reason: ReasonOpt,
    actor: ActorOpt = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Retire an agent for good; the record and its history stay."""
    _set_status(agent_id, AgentStatus.RETIRED, reason, actor, config, store, data_dir, as_json)


def _print_plan(plan: ApplyPlan, dry_run: bool) -> None:
    from lictor.cli.main import err, out

    marks = {"add": "+", "adopt": "+", "change": "~", "retire": "-", "unchanged": "="}
    for item in plan.items:
        line = f"{marks[item.action]} {item.action:<9} {item.agent_id}"
        out.print(line, markup=False, highlight=False)
        if item.action in ("change", "adopt", "retire"):
            before = item.before or {}
            after = item.after or {}
            for name in item.fields:
                out.print(
                    f"    {name}: {json.dumps(before.get(name))} -> {json.dumps(after.get(name))}",
                    markup=False,
                    highlight=False,
                )
    counts = {a: sum(1 for i in plan.items if i.action == a) for a in marks}
    summary = (
        f"{counts['add'] + counts['adopt']} added, {counts['change']} changed, "
        f"{counts['retire']} retired, {counts['unchanged']} unchanged"
    )
    err.print(summary + (" (dry run: nothing written)" if dry_run else ""), markup=False)


@agents_app.command("apply")
def apply(
    file: Annotated[Path, typer.Argument(help="Inventory YAML (`agents:` list).")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the diff; change nothing.")
    ] = False,
    retire_missing: Annotated[
        bool,
        typer.Option("--retire-missing", help="Retire stored agents the file does not list."),
    ] = False,
    actor: ActorOpt = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make the inventory match a file (idempotent) and print the diff."""
    from lictor.cli.main import errors_mapped, out
    from lictor.service.policies import load_inventory

    with errors_mapped():
        records = load_inventory(file)
        with opened_store(config, store, data_dir) as opened:
            plan = _inventory(opened).apply(
                records,
                actor=_actor(actor),
                source=str(file),
                retire_missing=retire_missing,
                dry_run=dry_run,
            )
    if as_json:
        out.print_json(json.dumps(plan.to_json()))
    else:
        _print_plan(plan, dry_run)
