"""``lictor mcp-proxy``: run the MCP gateway, and review the tool definitions it pins.

``serve`` speaks MCP on stdout in stdio mode, so it never prints there; everything for
people goes to stderr. In HTTP mode it prints ``listening on http://HOST:PORT/mcp`` on
stderr (``--port 0`` picks a free port).

The MCP SDK is imported only when ``serve`` runs: it takes seconds to import, and
``lictor decide`` should not pay for it. Helpers from :mod:`lictor.cli.main` are
imported when a command runs, because main registers this app (a top-level import would
be circular). ``python -m lictor.cli.mcp`` runs this app on its own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

mcp_app = typer.Typer(
    help="MCP gateway: every tool call of an MCP client is governed by Lictor.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", help="Gateway config file (TOML).", show_default=True)
]


def register(app: typer.Typer) -> None:
    """Add ``mcp-proxy`` to the ``lictor`` command."""
    app.add_typer(mcp_app, name="mcp-proxy")


@mcp_app.command("serve")
def serve(
    config: ConfigOpt = Path("gateway.toml"),
    transport: Annotated[
        str, typer.Option("--transport", "-t", help="stdio (one client) or http.")
    ] = "stdio",
    host: Annotated[str, typer.Option(help="HTTP: address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP: port (0 picks a free one).")] = 8721,
    path: Annotated[str, typer.Option(help="HTTP: the MCP endpoint path.")] = "/mcp",
) -> None:
    """Serve MCP clients over stdio or streamable HTTP, fronting the configured upstreams."""
    from lictor.cli.main import EXIT_USAGE, errors_mapped, fail

    if transport not in ("stdio", "http"):
        fail("--transport must be stdio or http", EXIT_USAGE)
    with errors_mapped():
        _run(config, "stdio" if transport == "stdio" else "http", host, port, path)


def _run(
    config_path: Path, transport: Literal["stdio", "http"], host: str, port: int, path: str
) -> None:
    import anyio

    from lictor.mcp_proxy.config import load_config
    from lictor.mcp_proxy.proxy import Gateway, open_source, serve_http, serve_lines, serve_stdio

    del serve_lines  # imported to fail early if the module is broken
    config = load_config(config_path)

    def ready(url: str) -> None:
        sys.stderr.write(f"listening on {url}\n")
        sys.stderr.flush()

    async def main() -> None:
        async with open_source(config) as source:
            gateway = Gateway(config, source)
            if transport == "stdio":
                await serve_stdio(gateway)
            else:
                await serve_http(gateway, host=host, port=port, path=path, on_ready=ready)

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a person stops it
        anyio.run(main)


@mcp_app.command("approve")
def approve(
    tools: Annotated[list[str] | None, typer.Argument(help="Namespaced tool names.")] = None,
    config: ConfigOpt = Path("gateway.toml"),
    all_blocked: Annotated[bool, typer.Option("--all", help="Approve every blocked tool.")] = False,
) -> None:
    """Approve the pending definitions of blocked tools (a running gateway picks them up).

    Read each definition first (``lictor mcp-proxy pins``): an approved tool is trusted.
    """
    from lictor.cli.main import EXIT_USAGE, errors_mapped, fail
    from lictor.mcp_proxy.config import load_config
    from lictor.mcp_proxy.pins import load_manifest, save_manifest
    from lictor.service.memory import SystemClock

    with errors_mapped():
        gateway = load_config(config)
        manifest = load_manifest(gateway.manifest)
        names = manifest.blocked() if all_blocked else list(tools or [])
        if not names:
            fail("name the tools to approve, or pass --all", EXIT_USAGE)
        save_manifest(gateway.manifest, manifest.approve(names, now=SystemClock().now()))
    for name in names:
        sys.stderr.write(f"approved {name}\n")


@mcp_app.command("pins")
def pins(
    config: ConfigOpt = Path("gateway.toml"),
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON.")] = False,
) -> None:
    """List the pinned tool definitions: approved, or blocked and why."""
    from lictor.cli.main import errors_mapped, out
    from lictor.mcp_proxy.config import load_config
    from lictor.mcp_proxy.pins import PinStatus, load_manifest

    with errors_mapped():
        manifest = load_manifest(load_config(config).manifest)
    if as_json:
        sys.stdout.write(json.dumps(manifest.to_json(), indent=2) + "\n")
        return
    from rich.markup import escape

    for name in sorted(manifest.pins):
        pin = manifest.pins[name]
        style = "green" if pin.status is PinStatus.APPROVED else "bold red"
        # Names and reasons come from upstream servers: never let them be read as markup.
        line = f"[{style}]{pin.status.value:8}[/] {escape(name)}  [dim]{escape(pin.reason)}[/]"
        out.print(line, markup=True)


def run() -> None:
    """Run this app on its own (``python -m lictor.cli.mcp``)."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    mcp_app(prog_name="lictor mcp-proxy")


if __name__ == "__main__":
    run()
