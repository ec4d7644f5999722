"""``lictor credentials``: issue, list, rotate and revoke bearer credentials.

They act on the store named by the settings, the same one ``lictor serve`` uses. A
token is printed once, on stdout, when it is made (``create``, ``rotate``); only its hash
is stored. Revocation reaches a running server within its 1-second credential cache
(on every replica: each checks the shared store at least once a second); a rotation
with ``--overlap`` lets the old token work until the window ends, then it stops.

Helpers from :mod:`lictor.cli.main` are imported when a command runs (see
:mod:`lictor.cli.serve`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lictor.cli.serve import (
    ConfigOpt,
    DataDirOpt,
    JsonOpt,
    StoreOpt,
    existing_store,
    load_cli_settings,
)
from lictor.errors import ConfigError
from lictor.service.credentials import Credentials, IssuedCredential
from lictor.service.memory import SystemClock
from lictor.service.ports import Credential, CredentialKind, Role

if TYPE_CHECKING:
    from lictor.store import Store

__all__ = ["credentials_app"]

credentials_app = typer.Typer(
    help="Issue, list, rotate and revoke bearer credentials.", no_args_is_help=True
)


class PersonRole(StrEnum):
    """Roles a person may hold (agents always hold the agent role)."""

    ADMIN = "admin"
    REVIEWER = "reviewer"
    AUDITOR = "auditor"


@contextmanager
def opened_store(config: Path | None, store: str | None, data_dir: Path | None) -> Iterator[Store]:
    """Open (and migrate) the store the options name; refuse to create a SQLite file."""
    settings = load_cli_settings(config, store_url=store, data_dir=data_dir)
    with existing_store(settings, migrate=True) as opened:
        yield opened


def _show_issued(issued: IssuedCredential, as_json: bool) -> None:
    from lictor.cli.main import err, out

    if as_json:
        out.print_json(
            json.dumps({"credential": issued.credential.to_json(), "token": issued.token})
        )
        return
    credential = issued.credential
    err.print(
        f"credential {credential.id} ({credential.role.value}) for {credential.subject!r}; "
        "its token is shown once, keep it secret:",
        markup=False,
    )
    out.print(issued.token, markup=False, highlight=False)


@credentials_app.command("create")
def create(
    agent: Annotated[
        str | None, typer.Option("--agent", help="Issue an agent credential for this agent id.")
    ] = None,
    admin: Annotated[
        str | None, typer.Option("--admin", help="Issue a person's credential for this name.")
    ] = None,
    role: Annotated[
        PersonRole | None, typer.Option("--role", help="The person's role (with --admin).")
    ] = None,
    description: Annotated[str, typer.Option("--description", help="Free text note.")] = "",
    config: ConfigOpt = None,
    store: StoreOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a credential: --agent ID, or --admin NAME --role admin|reviewer|auditor."""
    from lictor.cli.main import EXIT_USAGE, err, errors_mapped, fail

    if (agent is None) == (admin is None):
        fail("give exactly one of --agent ID or --admin NAME", EXIT_USAGE)
    if agent is not None and role is not None:
        fail("--role is for --admin; an agent credential always has the agent role", EXIT_USAGE)
    if admin is not None and role is None:
        fail("--admin needs --role admin|reviewer|auditor", EXIT_USAGE)
    kind, subject, granted = (
        (CredentialKind.AGENT, str(agent), Role.AGENT)
        if agent is not None
        else (CredentialKind.ADMIN, str(admin), Role(role.value if role else ""))
    )
    with errors_mapped(), opened_store(config, store, data_dir) as opened:
        issued = Credentials(opened.credentials, SystemClock()).issue(
            kind, subject, granted, description
        )
        # Before the first `lictor serve` the stored inventory is empty (the file is
        # loaded at start), so only a populated inventory that lacks the agent is news.
        if kind is CredentialKind.AGENT and opened.agents.list() and not opened.agents.get(subject):
            err.print(
                f"note: agent {subject!r} is not in the inventory; its decisions are denied "
                "until it is added",
                markup=False,
            )
    _show_issued(issued, as_json)


@credentials_app.command("list")
def list_credentials(
    subject: Annotated[
        str | None, typer.Option("--subject", help="Only this agent id or person.")
    ] = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List credentials (never their tokens), oldest first."""
    from rich.table import Table

    from lictor.cli.main import errors_mapped, out

    with errors_mapped(), opened_store(config, store, data_dir) as opened:
        found: list[Credential] = opened.credentials.list(subject)
    if as_json:
        out.print_json(json.dumps([c.to_json() for c in found]))
        return
    table = Table(title=f"{len(found)} credentials")
    table.add_column("id", no_wrap=True)  # what rotate and revoke take: never cut it
    for column in (
        "kind",
        "subject",
        "role",
        "created",
        "revoked",
        "expires",
        "last used",
        "description",
    ):
        table.add_column(column)
    for c in found:
        wire = c.to_json()
        table.add_row(
            c.id,
            c.kind.value,
            c.subject,
            c.role.value,
            wire["created_at"],
            wire["revoked_at"] or "",
            wire["expires_at"] or "",
            wire["last_used_at"] or "",
            c.description,
        )
    out.print(table)


_DURATION = re.compile(r"(\d+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """Parse ``90s``, ``10m``, ``1h30m``, ``2d`` or a plain number of seconds.

    Raises:
        ConfigError: anything else, or more than 30 days (an overlap is for a redeploy).
    """
    text = text.strip().lower()
    if text.isdigit():
        seconds = int(text)
    else:
        parts = _DURATION.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise ConfigError(f"--overlap {text!r}: write a duration such as 90s, 10m, 1h or 2d")
        seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds > 30 * 86400:
        raise ConfigError(f"--overlap {text!r}: at most 30 days")
    return timedelta(seconds=seconds)


@credentials_app.command("rotate")
def rotate(
    credential_id: Annotated[str, typer.Argument(help="The credential to replace.")],
    overlap: Annotated[
        str,
        typer.Option(
            "--overlap",
            help="Keep the old token working this long (10m, 1h, 2d); default: revoke now.",
        ),
    ] = "0",
    config: ConfigOpt = None,
    store: StoreOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Issue a replacement (same subject and role); the old one stops after --overlap."""
    from lictor.cli.main import err, errors_mapped

    with errors_mapped():
        window = parse_duration(overlap)
        with opened_store(config, store, data_dir) as opened:
            issued = Credentials(opened.credentials, SystemClock()).rotate(credential_id, window)
    if window:
        err.print(
            f"the old credential {credential_id} keeps working for {overlap}, then stops",
            markup=False,
        )
    _show_issued(issued, as_json)


@credentials_app.command("revoke")
def revoke(
    credential_id: Annotated[str, typer.Argument(help="The credential to revoke.")],
    config: ConfigOpt = None,
    store: StoreOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a credential (idempotent); running servers refuse it within 1 second."""
    from lictor.cli.main import err, errors_mapped, out

    with errors_mapped(), opened_store(config, store, data_dir) as opened:
        revoked = Credentials(opened.credentials, SystemClock()).revoke(credential_id)
    if as_json:
        out.print_json(json.dumps(revoked.to_json()))
    else:
        err.print(f"credential {revoked.id} for {revoked.subject!r} is revoked", markup=False)
