"""``lictor discover``: list the agents and MCP servers configured on this machine.

Reads client configuration files only (see :mod:`lictor.identity.discover`): nothing is
run, nothing is sent. With ``--agents`` each finding is marked as known to the inventory
or as *shadow*. Exit 0 after a scan, even with unreadable files (they are listed);
3 when ``--agents`` names a bad inventory.

Helpers from :mod:`lictor.cli.main` are imported when the command runs (see
:mod:`lictor.cli.serve`): main registers this command, so a top-level import would be
circular.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from lictor.identity.discover import DiscoveryReport, default_system_dirs, discover
from lictor.service.policies import load_inventory

__all__ = ["discover_command"]


def discover_command(
    home: Annotated[
        Path | None, typer.Option("--home", help="Home directory to scan (default: yours).")
    ] = None,
    project: Annotated[
        Path | None,
        typer.Option("--project", help="Project directory to scan (default: the current one)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
    agents: Annotated[
        Path | None,
        typer.Option("--agents", "-a", help="Inventory file: mark findings it does not list."),
    ] = None,
    system_dirs: Annotated[
        list[Path] | None,
        typer.Option(
            "--system-dir",
            help="Directory of machine-wide settings (repeatable; default: /etc and, on "
            "macOS, /Library/Application Support).",
        ),
    ] = None,
) -> None:
    """Find AI agents and MCP servers configured here, without running any of them."""
    from lictor.cli.main import errors_mapped, out

    with errors_mapped():
        inventory = load_inventory(agents) if agents is not None else None
        report = discover(
            home if home is not None else Path.home(),
            project if project is not None else Path.cwd(),
            system_dirs if system_dirs is not None else default_system_dirs(),
            inventory=inventory,
        )
    if as_json:
        out.print_json(json.dumps(report.to_json()))
        return
    _print(report, checked=inventory is not None)


def _status(in_inventory: bool | None) -> str:
    if in_inventory is None:
        return ""
    return "[green]known[/]" if in_inventory else "[bold red]shadow[/]"


def _print(report: DiscoveryReport, *, checked: bool) -> None:
    from lictor.cli.main import err, out

    agents = Table(title=f"{len(report.agents)} agents")
    if checked:
        agents.add_column("status")
    for column in ("client", "scope", "kind", "name", "file"):
        agents.add_column(column)
    for agent in report.agents:
        row = [agent.client.value, agent.scope.value, agent.kind, agent.name, agent.file]
        agents.add_row(*([_status(agent.in_inventory)] if checked else []), *map(escape, row))
    out.print(agents)

    servers = Table(title=f"{len(report.servers)} MCP servers")
    if checked:
        servers.add_column("status")
    for column in ("client", "scope", "server", "transport", "command / url", "env", "file"):
        servers.add_column(column)
    for server in report.servers:
        target = server.url or " ".join([server.command or "", *server.args]).strip()
        name = server.name if server.enabled else f"{server.name} (disabled)"
        row = [
            server.client.value,
            server.scope.value,
            name,
            server.transport,
            target,
            ", ".join(server.env),
            f"{server.file}#{server.pointer}",
        ]
        servers.add_row(*([_status(server.in_inventory)] if checked else []), *map(escape, row))
    out.print(servers)

    for problem in report.problems:
        err.print(
            f"[yellow]warning:[/] {escape(problem.file)}: {escape(problem.reason)}", markup=True
        )
    if checked:
        shadow = len(report.shadow_agents) + len(report.shadow_servers)
        colour = "red" if shadow else "green"
        out.print(f"[{colour}]{shadow} not in the inventory[/]", markup=True)
