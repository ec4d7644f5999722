"""``lictor mcp-proxy pins`` and ``approve``: review and approve blocked tool definitions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from lictor.cli.mcp import mcp_app
from lictor.mcp_proxy.pins import Manifest, PinStatus, load_manifest, save_manifest, scan

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def write_config(tmp_path: Path) -> Path:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.yaml").write_text("rules: []\n")
    config = tmp_path / "gateway.toml"
    config.write_text(
        '[lictor]\npolicies = "policies"\n[[upstreams]]\nname = "fs"\ncommand = "x"\n'
    )
    manifest, _ = Manifest().assess("fs.read", "sha256:a", (), trust_on_first_use=True, now=NOW)
    manifest, _ = manifest.assess(
        "fs.write",
        "sha256:b",
        scan("<IMPORTANT>x</IMPORTANT>", {}),
        trust_on_first_use=True,
        now=NOW,
    )
    save_manifest(tmp_path / "gateway.pins.json", manifest)
    return config


def test_pins_lists_approved_and_blocked_tools(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = CliRunner().invoke(mcp_app, ["pins", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    tools = json.loads(result.stdout)["tools"]
    assert tools["fs.read"]["status"] == "approved"
    assert tools["fs.write"]["status"] == "blocked"
    human = CliRunner().invoke(mcp_app, ["pins", "--config", str(config)])
    assert "fs.write" in human.stdout


def test_approve_unblocks_the_pending_definition(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = CliRunner().invoke(mcp_app, ["approve", "--config", str(config), "fs.write"])
    assert result.exit_code == 0, result.output
    pin = load_manifest(tmp_path / "gateway.pins.json").pins["fs.write"]
    assert (pin.status, pin.digest) == (PinStatus.APPROVED, "sha256:b")


def test_approve_needs_names_or_all_and_known_tools(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    assert CliRunner().invoke(mcp_app, ["approve", "--config", str(config)]).exit_code == 2
    unknown = CliRunner().invoke(mcp_app, ["approve", "--config", str(config), "fs.nope"])
    assert unknown.exit_code == 3
    every = CliRunner().invoke(mcp_app, ["approve", "--config", str(config), "--all"])
    assert every.exit_code == 0
    assert load_manifest(tmp_path / "gateway.pins.json").blocked() == []


def test_serve_refuses_an_unknown_transport(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = CliRunner().invoke(mcp_app, ["serve", "--config", str(config), "-t", "ws"])
    assert result.exit_code == 2
