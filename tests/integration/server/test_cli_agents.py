"""``lictor agents …`` and ``lictor credentials rotate --overlap``, in process on SQLite."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from lictor.cli.agents import agents_app
from lictor.cli.credentials import credentials_app
from lictor.cli.serve import register
from lictor.core.agents import ShadowSighting
from lictor.service.inventory import Inventory, TrailAudit
from lictor.service.memory import FixedClock
from lictor.service.ports import AuditQuery
from lictor.store import open_store
from server.support import FINANCE

pytestmark = pytest.mark.integration


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    app.add_typer(agents_app, name="agents")
    app.add_typer(credentials_app, name="credentials")
    return app


@pytest.fixture
def config(tmp_path: Path, cli: typer.Typer) -> Path:
    path = tmp_path / "lictor.toml"
    path.write_text(
        f'data_dir = "{(tmp_path / "data").as_posix()}"\n'
        f'policies = "{(FINANCE / "policies").as_posix()}"\n',
        encoding="utf-8",
    )
    assert invoke(cli, "init", "--config", str(path), "--json")[0] == 0
    return path


def invoke(cli: typer.Typer, *args: str) -> tuple[int, Any]:
    result = CliRunner().invoke(cli, list(args))
    try:
        data = json.loads(result.stdout)
    except json.JSONDecodeError:
        data = result.stdout + result.stderr
    return result.exit_code, data


def trail(config: Path) -> list[dict[str, Any]]:
    store = open_store(f"sqlite:///{(config.parent / 'data' / 'lictor.db').as_posix()}")
    try:
        return [dict(r.payload) for r in store.audit.query(AuditQuery(kind="agent_change")).records]
    finally:
        store.close()


def test_init_creates_the_token_key_readable_by_its_owner_only(config: Path) -> None:
    key = config.parent / "data" / "token-key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in key.read_bytes()


def test_apply_dry_run_then_apply_then_again(cli: typer.Typer, config: Path) -> None:
    base = ("--config", str(config))
    inventory = str(FINANCE / "agents.yaml")

    code, dry = invoke(cli, "agents", "apply", inventory, "--dry-run", *base)
    assert code == 0, dry
    assert "+ add       payments-bot" in dry
    assert "3 added, 0 changed, 0 retired, 0 unchanged (dry run: nothing written)" in dry
    assert trail(config) == []

    code, applied = invoke(cli, "agents", "apply", inventory, "--json", *base)
    assert code == 0
    assert [(i["agent_id"], i["action"]) for i in applied["items"]] == [
        ("expense-helper", "add"),
        ("old-batch-job", "add"),
        ("payments-bot", "add"),
    ]
    code, again = invoke(cli, "agents", "apply", inventory, *base)
    assert "0 added, 0 changed, 0 retired, 3 unchanged" in again
    assert len(trail(config)) == 3


def test_register_update_suspend_retire_each_audited(cli: typer.Typer, config: Path) -> None:
    base = ("--config", str(config), "--actor", "alice")
    code, out = invoke(
        cli, "agents", "register", "mailer", "--owner", "ops", "--tool", "send_email", *base
    )
    assert code == 0, out
    assert invoke(cli, "agents", "update", "mailer", "--risk-tier", "high", *base)[0] == 0
    code, stale = invoke(cli, "agents", "update", "mailer", "--name", "x", "--version", "1", *base)
    assert code != 0
    assert "version" in stale
    assert invoke(cli, "agents", "suspend", "mailer", "--reason", "incident 7", *base)[0] == 0
    assert invoke(cli, "agents", "retire", "mailer", "--reason", "replaced", *base)[0] == 0
    code, shown = invoke(cli, "agents", "show", "mailer", "--json", "--config", str(config))

    assert (shown["status"], shown["version"], shown["updated_by"]) == ("retired", 4, "alice")
    entries = trail(config)
    assert [(e["action"], e["reason"]) for e in entries] == [
        ("register", None),
        ("update", None),
        ("suspended", "incident 7"),
        ("retired", "replaced"),
    ]
    assert {e["actor"] for e in entries} == {"alice"}
    assert invoke(cli, "agents", "suspend", "mailer", *base)[0] == 2  # --reason is required


def test_list_shadow_and_register_adopts(cli: typer.Typer, config: Path) -> None:
    store = open_store(f"sqlite:///{(config.parent / 'data' / 'lictor.db').as_posix()}")
    seen = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    try:
        Inventory(store.agents, TrailAudit(store.audit), FixedClock(seen)).record_shadow(
            "ghost", ShadowSighting(seen, seen, "10.0.0.7", "rogue/1", ("send_money",), 4)
        )
    finally:
        store.close()
    base = ("--config", str(config))

    code, shadow = invoke(cli, "agents", "list", "--shadow", "--json", *base)
    assert [(a["id"], a["shadow"]["count"]) for a in shadow] == [("ghost", 4)]
    code, table = invoke(cli, "agents", "list", "--shadow", *base)
    assert "10.0.0.7" in table
    assert "rogue/1" in table

    code, _ = invoke(cli, "agents", "register", "ghost", "--owner", "ops", *base)
    assert code == 0
    assert invoke(cli, "agents", "list", "--shadow", "--json", *base)[1] == []
    code, active = invoke(cli, "agents", "list", "--status", "active", "--json", *base)
    assert [a["id"] for a in active] == ["ghost"]
    assert trail(config)[-1]["action"] == "adopt"


def test_rotate_with_overlap_sets_the_old_credentials_expiry(
    cli: typer.Typer, config: Path
) -> None:
    base = ("--config", str(config), "--json")
    code, agent = invoke(cli, "credentials", "create", "--agent", "payments-bot", *base)
    old_id = agent["credential"]["id"]

    code, rotated = invoke(cli, "credentials", "rotate", old_id, "--overlap", "10m", *base)
    assert code == 0
    code, listed = invoke(cli, "credentials", "list", "--subject", "payments-bot", *base)
    by_id = {c["id"]: c for c in listed}
    assert by_id[old_id]["revoked_at"] is None
    assert by_id[old_id]["expires_at"] is not None
    assert by_id[rotated["credential"]["id"]]["expires_at"] is None
    code, _bad = invoke(cli, "credentials", "rotate", old_id, "--overlap", "soon", *base)
    assert code == 3
