"""``lictor agents``: the inventory, managed from the command line.

The group is defined here so that commands from several modules (inventory, incident
response, access review) hang off one ``agents`` name.
"""

from __future__ import annotations

import typer

__all__ = ["agents_app"]

agents_app = typer.Typer(help="Register, inspect and manage agents.", no_args_is_help=True)
