"""``lictor init``, ``lictor credentials …`` and ``lictor serve``'s start-up errors, in process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from lictor.cli.credentials import credentials_app
from lictor.cli.serve import register
from lictor.service.credentials import Credentials
from lictor.service.memory import SystemClock
from lictor.store import open_store
from server.support import FINANCE

pytestmark = pytest.mark.integration


@pytest.fixture
def cli() -> typer.Typer:
    # The same registration lictor.cli.main performs.
    app = typer.Typer()
    register(app)
    app.add_typer(credentials_app, name="credentials")
    return app


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "lictor.toml"
    path.write_text(
        f'data_dir = "{(tmp_path / "data").as_posix()}"\n'
        f'policies = "{(FINANCE / "policies").as_posix()}"\n',
        encoding="utf-8",
    )
    return path


def invoke(cli: typer.Typer, *args: str) -> tuple[int, Any]:
    result = CliRunner().invoke(cli, list(args))
    try:
        data = json.loads(result.stdout)
    except json.JSONDecodeError:
        data = result.stdout
    return result.exit_code, data


def test_init_issues_one_first_admin_token(cli: typer.Typer, config: Path, tmp_path: Path) -> None:
    code, first = invoke(cli, "init", "--config", str(config), "--json")
    assert code == 0
    assert first["key_created"] is True
    assert (tmp_path / "data" / "checkpoint-key.pem").stat().st_mode & 0o077 == 0
    store = open_store(f"sqlite:///{tmp_path / 'data' / 'lictor.db'}")
    try:
        credential = Credentials(store.credentials, SystemClock()).authenticate(first["token"])
        assert credential.role.value == "admin"
    finally:
        store.close()

    code, again = invoke(cli, "init", "--config", str(config), "--json")
    assert code == 0
    assert again["key_created"] is False
    assert again["token"] is None


def test_credentials_create_list_rotate_revoke(cli: typer.Typer, config: Path) -> None:
    assert invoke(cli, "init", "--config", str(config), "--json")[0] == 0
    base = ("--config", str(config), "--json")
    code, agent = invoke(cli, "credentials", "create", "--agent", "payments-bot", *base)
    assert code == 0
    assert agent["credential"]["role"] == "agent"
    assert agent["token"].startswith(f"lct_{agent['credential']['id']}_")

    code, auditor = invoke(
        cli, "credentials", "create", "--admin", "audrey", "--role", "auditor", *base
    )
    assert code == 0
    assert auditor["credential"]["kind"] == "admin"

    code, listed = invoke(cli, "credentials", "list", "--subject", "payments-bot", *base)
    assert [c["id"] for c in listed] == [agent["credential"]["id"]]
    assert "token" not in json.dumps(listed)

    code, rotated = invoke(cli, "credentials", "rotate", agent["credential"]["id"], *base)
    assert code == 0
    assert rotated["credential"]["subject"] == "payments-bot"
    code, listed = invoke(cli, "credentials", "list", "--subject", "payments-bot", *base)
    assert [c["revoked_at"] is not None for c in listed] == [True, False]

    code, revoked = invoke(cli, "credentials", "revoke", auditor["credential"]["id"], *base)
    assert code == 0
    assert revoked["revoked_at"] is not None


@pytest.mark.parametrize(
    "args",
    [
        ("credentials", "create"),
        ("credentials", "create", "--agent", "a", "--admin", "b", "--role", "admin"),
        ("credentials", "create", "--agent", "a", "--role", "admin"),
        ("credentials", "create", "--admin", "b"),
    ],
)
def test_credentials_usage_errors_exit_2(
    cli: typer.Typer, config: Path, args: tuple[str, ...]
) -> None:
    assert invoke(cli, *args, "--config", str(config))[0] == 2


def test_credentials_refuse_a_store_that_does_not_exist(cli: typer.Typer, config: Path) -> None:
    code, _ = invoke(cli, "credentials", "list", "--config", str(config))
    assert code == 3
    assert invoke(cli, "credentials", "revoke", "nosuch", "--config", str(config))[0] == 3


def test_serve_with_a_missing_policy_directory_exits_3(
    cli: typer.Typer, config: Path, tmp_path: Path
) -> None:
    code, _ = invoke(
        cli, "serve", "--config", str(config), "--port", "0", "--policies", str(tmp_path / "nope")
    )
    assert code == 3
