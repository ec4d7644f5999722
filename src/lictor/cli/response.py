"""Incident response from the command line: the kill switch and an agent's timeline.

``lictor agents quarantine|release`` and ``lictor emergency on|off`` act through the
HTTP API of a running server with an admin token (``--url``/``LICTOR_URL``,
``--token``/``LICTOR_TOKEN``): the server writes the audit record through its own audit
writer, drops its cached copies at once, and every other replica sharing the store
follows within a second. ``lictor agents timeline`` reads the audit trail from the store
directly, like ``lictor audit``: it is the investigator's view and needs no server.

Helpers from :mod:`lictor.cli.main` are imported when a command runs (see
:mod:`lictor.cli.serve`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from lictor.cli.agents import agents_app
from lictor.cli.reviews import DEFAULT_URL, TokenOpt, UrlOpt, api_client
from lictor.cli.serve import ConfigOpt, DataDirOpt, JsonOpt, StoreOpt, load_cli_settings
from lictor.core.audit.chain import SealedRecord
from lictor.core.decisions import parse_time
from lictor.errors import ConfigError
from lictor.service.ports import AuditQuery, AuditStore

__all__ = ["Timeline", "build_timeline", "register"]

ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (kept in the audit trail).")]


class Switch(StrEnum):
    """Emergency mode: on or off."""

    ON = "on"
    OFF = "off"


def register(app: typer.Typer) -> None:
    """Add ``lictor emergency`` to the root app (the agents commands hang off ``agents_app``)."""
    app.command("emergency")(emergency)


@agents_app.command("quarantine")
def quarantine(
    agent: Annotated[str | None, typer.Argument(help="The agent to quarantine.")] = None,
    principal: Annotated[
        str | None,
        typer.Option("--principal", help="Quarantine everything acting for this principal."),
    ] = None,
    reason: ReasonOpt = "",
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Deny every further request of an agent (or of everything acting for --principal).

    An agent's credentials and delegated tokens are revoked and its pending reviews
    cancelled. Every replica sharing the store denies within one second.
    """
    from lictor.cli.main import EXIT_USAGE, err, errors_mapped, fail, out

    if (agent is None) == (principal is None):
        fail("give exactly one of AGENT or --principal PRINCIPAL", EXIT_USAGE)
    if not reason.strip():
        fail("give --reason: it goes into the audit trail and the alert", EXIT_USAGE)
    with errors_mapped(), api_client(url, token) as client:
        if agent is not None:
            record = client.quarantine(agent, reason)
            result: dict[str, Any] = record.to_json()
            message = f"agent {agent} is quarantined; its credentials are revoked"
        else:
            client.quarantine_principal(str(principal), reason)
            result = {"principal_id": principal, "quarantined": True}
            message = f"every request acting for {principal} is denied"
    if as_json:
        out.print_json(json.dumps(result))
    else:
        err.print(message, markup=False)


@agents_app.command("release")
def release(
    agent: Annotated[str | None, typer.Argument(help="The agent to release.")] = None,
    principal: Annotated[
        str | None, typer.Option("--principal", help="Lift a principal quarantine instead.")
    ] = None,
    reason: ReasonOpt = "",
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a quarantined agent active again; its old credentials stay revoked."""
    from lictor.cli.main import EXIT_USAGE, err, errors_mapped, fail, out

    if (agent is None) == (principal is None):
        fail("give exactly one of AGENT or --principal PRINCIPAL", EXIT_USAGE)
    with errors_mapped(), api_client(url, token) as client:
        if agent is not None:
            result: dict[str, Any] = client.release(agent, reason).to_json()
            message = (
                f"agent {agent} is active again; issue it a new credential "
                f"(lictor credentials create --agent {agent})"
            )
        else:
            client.release_principal(str(principal), reason)
            result = {"principal_id": principal, "quarantined": False}
            message = f"requests acting for {principal} are decided as usual again"
    if as_json:
        out.print_json(json.dumps(result))
    else:
        err.print(message, markup=False)


def emergency(
    switch: Annotated[Switch, typer.Argument(help="on: deny every agent request; off: undo.")],
    reason: ReasonOpt = "",
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Turn emergency mode on (every agent request is denied, on every replica) or off."""
    from lictor.cli.main import EXIT_USAGE, err, errors_mapped, fail, out

    if not reason.strip():
        fail("give --reason: it goes into the audit trail and the alert", EXIT_USAGE)
    with errors_mapped(), api_client(url, token) as client:
        state = client.set_emergency(switch is Switch.ON, reason)
    if as_json:
        out.print_json(json.dumps(state))
    elif state.get("on"):
        err.print("emergency mode is ON: every agent request is denied", markup=False)
    else:
        err.print("emergency mode is off", markup=False)


# -- the timeline --------------------------------------------------------------------------


@dataclass(slots=True)
class Timeline:
    """Everything the trail says about one agent, in trail order."""

    agent_id: str
    records: list[SealedRecord] = field(default_factory=list)
    delegation_chains: list[list[str]] = field(default_factory=list)
    principals: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Return the ``--json`` form: the chains, and each record with a one-line summary."""
        return {
            "agent_id": self.agent_id,
            "principals": self.principals,
            "delegation_chains": self.delegation_chains,
            "events": [
                {
                    "seq": r.seq,
                    "at": r.payload.get("at"),
                    "kind": r.payload.get("kind"),
                    "summary": summarize(r.payload),
                    "record": dict(r.payload),
                }
                for r in self.records
            ],
        }


def _all(store: AuditStore, query: AuditQuery) -> Iterator[SealedRecord]:
    after = -1
    while True:
        page = store.query(replace(query, after_seq=after, limit=1000))
        yield from page.records
        if page.next_after_seq is None:
            return
        after = page.next_after_seq


def build_timeline(store: AuditStore, agent_id: str, since: datetime | None = None) -> Timeline:
    """Collect an agent's decisions, results, reviews, alerts, incidents and status changes.

    Results name only their decision, so they are found by the decision ids seen; an
    incident that names only a principal is included when the agent acted for them.
    """
    timeline = Timeline(agent_id)
    found: dict[int, SealedRecord] = {}
    decisions: set[str] = set()
    chains: dict[tuple[str, ...], None] = {}
    principals: dict[str, None] = {}
    for record in _all(store, AuditQuery(agent_id=agent_id, since=since)):
        found[record.seq] = record
        payload = record.payload
        if payload.get("kind") == "decision":
            decisions.add(str(payload.get("decision_id")))
            chain = payload.get("delegation") or []
            if chain:
                chains[tuple(str(x) for x in chain)] = None
            principal = payload.get("principal")
            if isinstance(principal, Mapping) and principal.get("id"):
                principals[str(principal["id"])] = None
    if decisions:
        for record in _all(store, AuditQuery(kind="result", since=since)):
            if record.payload.get("decision_id") in decisions:
                found[record.seq] = record
    acting_for = set(principals) | {p for chain in chains for p in chain}
    for record in _all(store, AuditQuery(kind="incident", since=since)):
        if record.payload.get("principal_id") in acting_for:
            found[record.seq] = record
    timeline.records = [found[seq] for seq in sorted(found)]
    timeline.delegation_chains = [list(c) for c in chains]
    timeline.principals = list(principals)
    return timeline


def summarize(payload: Mapping[str, Any]) -> str:
    """One line per record, for people."""
    kind = payload.get("kind")
    if kind == "decision":
        reasons = "; ".join(
            f"{r.get('rule')}: {r.get('message')}" for r in payload.get("reasons") or []
        )
        review = f" (review {payload['review_id']})" if payload.get("review_id") else ""
        principal = payload.get("principal") or {}
        who = f" for {principal.get('id')}" if isinstance(principal, Mapping) and principal else ""
        return f"{payload.get('tool')}{who} -> {payload.get('outcome')}{review}: {reasons}"
    if kind == "result":
        effects = ", ".join(
            f"{e.get('kind')} {e.get('target')}".strip() for e in payload.get("effects") or []
        )
        labels = ",".join(payload.get("labels") or [])
        return (
            f"result of {payload.get('decision_id')}: {payload.get('status')}"
            + (f"; data {labels}" if labels else "")
            + (f"; effects {effects}" if effects else "")
        )
    if kind == "review":
        by = f" by {payload.get('reviewer')}" if payload.get("reviewer") else ""
        comment = f": {payload.get('comment')}" if payload.get("comment") else ""
        return f"review {payload.get('review_id')} {payload.get('action')}{by}{comment}"
    if kind == "incident":
        target = payload.get("agent_id") or f"principal {payload.get('principal_id')}"
        change = ""
        if payload.get("status_before") or payload.get("status_after"):
            change = f" ({payload.get('status_before')} -> {payload.get('status_after')})"
        return f"{payload.get('action')} {target}{change} by {payload.get('actor')}: " + str(
            payload.get("reason")
        )
    if kind == "playbook":
        return (
            f"playbook {payload.get('playbook')} -> {payload.get('action')} "
            f"({payload.get('trigger')}): {payload.get('result')}"
        )
    if kind in ("inventory", "agent_change"):
        before = payload.get("before") or {}
        after = payload.get("after") or {}
        changed = ", ".join(payload.get("changed") or [])
        status = ""
        if (
            isinstance(before, Mapping)
            and isinstance(after, Mapping)
            and before.get("status") != after.get("status")
        ):
            status = f" status {before.get('status')} -> {after.get('status')}"
        why = f": {payload['reason']}" if payload.get("reason") else ""
        return (
            f"inventory {payload.get('action')} by {payload.get('actor')}{status} [{changed}]{why}"
        )
    if kind == "alert":
        return (
            f"alert {payload.get('severity')} ({payload.get('rule')}): {payload.get('summary')}"
            f" -> {', '.join(payload.get('sinks') or []) or 'no sink'}"
        )
    if kind == "rejected":
        return f"rejected request: {payload.get('problem')}"
    text = payload.get("summary") or payload.get("action") or payload.get("message") or ""
    return f"{kind}: {text}".rstrip(": ")


@agents_app.command("timeline")
def timeline(
    agent: Annotated[str, typer.Argument(help="The agent.")],
    since: Annotated[
        str | None, typer.Option("--since", help="Only from this RFC 3339 time on.")
    ] = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show, in order, everything the audit trail holds about one agent.

    Decisions with their reasons, result reports (data touched, effects), reviews,
    alerts, quarantines and status changes, and the delegation chains it acted in.
    """
    from rich.table import Table

    from lictor.cli.main import EXIT_USAGE, errors_mapped, fail, out
    from lictor.store import open_store

    moment = None
    if since is not None:
        try:
            moment = parse_time(since)
        except ValueError:
            fail("--since must be an RFC 3339 time with an offset", EXIT_USAGE)
    with errors_mapped():
        settings = load_cli_settings(config, store_url=store, data_dir=data_dir)
        url = settings.resolved_store_url
        if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
            raise ConfigError(f"no Lictor store at {url}; pass --data-dir or --store")
        opened = open_store(url)
        try:
            found = build_timeline(opened.audit, agent, moment)
        finally:
            opened.close()
    if as_json:
        out.print_json(json.dumps(found.to_json(), ensure_ascii=False))
        return
    if found.delegation_chains:
        out.print(
            "delegation: " + " | ".join(" -> ".join(c) for c in found.delegation_chains),
            markup=False,
        )
    table = Table(title=f"{agent}: {len(found.records)} events")
    table.add_column("seq", justify="right")
    table.add_column("at", no_wrap=True)
    table.add_column("kind")
    table.add_column("what")
    for record in found.records:
        table.add_row(
            str(record.seq),
            str(record.payload.get("at")),
            str(record.payload.get("kind")),
            summarize(record.payload),
        )
    out.print(table)
