"""``lictor alerts``: test the sinks, read the delivery log, resend dead letters.

They act on the store and the ``[alerts]`` settings that ``lictor serve`` uses. ``test``
and ``retry`` send from this process, one attempt each, and write the outcome to the
delivery log like the server does.

Helpers from :mod:`lictor.cli.main` are imported when a command runs (see
:mod:`lictor.cli.serve`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lictor.alerts.config import build_sinks, load_alerts_config
from lictor.alerts.deliveries import RetryPolicy, attempt_once, new_delivery
from lictor.cli.serve import (
    ConfigOpt,
    DataDirOpt,
    JsonOpt,
    StoreOpt,
    existing_store,
    load_cli_settings,
)
from lictor.core.decisions import format_time
from lictor.errors import ConfigError, NotFound
from lictor.service.ids import new_ulid
from lictor.service.memory import SystemClock
from lictor.settings import Settings
from lictor.store.alerts import Delivery, DeliveryStatus, SqlDeliveries

if TYPE_CHECKING:
    from lictor.store import Store

__all__ = ["alerts_app"]

alerts_app = typer.Typer(
    help="Test alert sinks, list deliveries and dead letters, resend.", no_args_is_help=True
)

LimitOpt = Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")]


class StatusChoice(StrEnum):
    """Delivery states, as ``--status`` takes them."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


@contextmanager
def _opened(
    config: Path | None, store: str | None, data_dir: Path | None
) -> Iterator[tuple[Settings, Store]]:
    """The settings and the (migrated) store the options name; no SQLite file is created."""
    settings = load_cli_settings(config, store_url=store, data_dir=data_dir)
    with existing_store(settings, migrate=True) as opened:
        yield settings, opened


def _show(found: list[Delivery], as_json: bool, title: str) -> None:
    from rich.table import Table

    from lictor.cli.main import out

    if as_json:
        out.print_json(json.dumps([d.to_json() for d in found]))
        return
    table = Table(title=f"{len(found)} {title}")
    table.add_column("id", no_wrap=True)  # what `retry` takes: never cut it
    for column in ("sink", "status", "tries", "severity", "title", "updated", "last error"):
        table.add_column(column)
    for d in found:
        table.add_row(
            d.id,
            d.sink,
            d.status.value,
            str(d.attempts),
            str(d.alert.get("severity", "")),
            str(d.alert.get("title", "")),
            format_time(d.updated_at),
            d.last_error or "",
        )
    out.print(table)


@alerts_app.command("deliveries")
def deliveries(
    status: Annotated[
        StatusChoice | None, typer.Option("--status", help="Only deliveries in this state.")
    ] = None,
    limit: LimitOpt = 50,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List alert deliveries, newest first."""
    from lictor.cli.main import errors_mapped

    with errors_mapped(), _opened(config, store, data_dir) as (_, opened):
        wanted = DeliveryStatus(status.value) if status is not None else None
        found = SqlDeliveries(opened.database).list(wanted, limit)
    _show(found, as_json, "deliveries")


@alerts_app.command("dead-letters")
def dead_letters(
    limit: LimitOpt = 50,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List deliveries that were given up on (resend one with `lictor alerts retry ID`)."""
    from lictor.cli.main import errors_mapped

    with errors_mapped(), _opened(config, store, data_dir) as (_, opened):
        found = SqlDeliveries(opened.database).list(DeliveryStatus.DEAD, limit)
    _show(found, as_json, "dead letters")


def _report(results: list[Delivery], as_json: bool) -> None:
    from lictor.cli.main import EXIT_FAILED, err, out

    if as_json:
        out.print_json(json.dumps([d.to_json() for d in results]))
    else:
        for d in results:
            if d.status is DeliveryStatus.DELIVERED:
                out.print(f"delivered  {d.sink}  ({d.id})", markup=False)
            else:
                err.print(f"failed     {d.sink}  ({d.id}): {d.last_error}", markup=False)
    if any(d.status is not DeliveryStatus.DELIVERED for d in results):
        raise typer.Exit(EXIT_FAILED)


@alerts_app.command("retry")
def retry(
    delivery_id: Annotated[str, typer.Argument(help="The delivery to resend.")],
    config: ConfigOpt = None,
    store: StoreOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Resend one pending or dead delivery now (one attempt). Exit 1 if it fails again."""
    from lictor.cli.main import errors_mapped

    with errors_mapped(), _opened(config, store, data_dir) as (settings, opened):
        log = SqlDeliveries(opened.database)
        delivery = log.get(delivery_id)
        if delivery is None:
            raise NotFound("delivery", delivery_id)
        if delivery.status is DeliveryStatus.DELIVERED:
            raise ConfigError(f"delivery {delivery_id} was delivered already; nothing to resend")
        alerts = load_alerts_config(settings.alerts)
        spec = next((s for s in alerts.sinks if s.name == delivery.sink), None)
        if spec is None:
            raise ConfigError(f"sink {delivery.sink!r} is no longer in the [alerts] settings")
        sink = spec.build()
        try:
            updated, _ = attempt_once(
                sink, delivery, SystemClock().now(), RetryPolicy(max_attempts=1)
            )
        finally:
            sink.close()
        log.update(updated)
    _report([updated], as_json)


@alerts_app.command("test")
def send_test(
    sink_name: Annotated[
        str | None, typer.Option("--sink", help="Only this sink (default: every sink).")
    ] = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send a test alert to the configured sinks now; exit 1 if any attempt fails."""
    from lictor.cli.main import errors_mapped

    with errors_mapped(), _opened(config, store, data_dir) as (settings, opened):
        alerts = load_alerts_config(settings.alerts)
        sinks = build_sinks(alerts)
        if sink_name is not None:
            if sink_name not in sinks:
                known = ", ".join(sorted(sinks)) or "none is configured"
                raise ConfigError(f"no sink named {sink_name!r}; known: {known}")
            sinks = {sink_name: sinks[sink_name]}
        if not sinks:
            raise ConfigError("no sinks in the [alerts] settings; see docs/alerts.md")
        log = SqlDeliveries(opened.database)
        now = SystemClock().now()
        alert = {
            "alert_id": new_ulid(now),
            "type": "test",
            "rule": "lictor:test",
            "severity": "info",
            "title": "Test alert from `lictor alerts test`",
            "kind": "test",
            "agent_id": None,
            "principal_id": None,
            "policy_rule": None,
            "decision_id": None,
            "dedup_key": "test",
            "throttle_seconds": 0,
            "suppressed": 0,
            "window": None,
            "created_at": format_time(now),
            "event": None,
        }
        results: list[Delivery] = []
        for name, sink in sinks.items():
            delivery = new_delivery(alert, name, now)
            log.add(delivery)
            try:
                updated, _ = attempt_once(sink, delivery, now, RetryPolicy(max_attempts=1))
            finally:
                sink.close()
            log.update(updated)
            results.append(updated)
    _report(results, as_json)
