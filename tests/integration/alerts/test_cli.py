"""``lictor alerts test|deliveries|dead-letters|retry`` against a real store and receiver."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lictor.cli.main import app

from .receivers import HttpReceiver, http_receiver, write_bundle

pytestmark = pytest.mark.integration


def invoke(*args: str) -> tuple[int, Any, str]:
    result = CliRunner().invoke(app, list(args))
    try:
        parsed = json.loads(result.stdout)
    except json.JSONDecodeError:
        parsed = result.stdout
    return result.exit_code, parsed, result.stderr


def write_config(tmp_path: Path, receiver: HttpReceiver) -> str:
    policies, inventory = write_bundle(tmp_path)
    config = tmp_path / "lictor.toml"
    config.write_text(
        f"""
data_dir = "{(tmp_path / "data").as_posix()}"
policies = "{policies.as_posix()}"
agents = "{inventory.as_posix()}"

[[alerts.sinks]]
name = "soc"
type = "webhook"
url = "{receiver.url}"

[[alerts.sinks]]
name = "chat"
type = "slack"
url = "{receiver.url}"
""",
        encoding="utf-8",
    )
    code, _, stderr = invoke("init", "--config", str(config), "--json")
    assert code == 0, stderr
    return str(config)


def test_send_list_fail_and_retry(tmp_path: Path) -> None:
    with http_receiver() as receiver:
        config = write_config(tmp_path, receiver)
        code, sent, _ = invoke("alerts", "test", "--config", config, "--json")
        assert code == 0
        assert sorted(d["sink"] for d in sent) == ["chat", "soc"]
        assert {d["status"] for d in sent} == {"delivered"}
        assert json.loads(receiver.requests.get(timeout=5).body)  # both arrived
        assert json.loads(receiver.requests.get(timeout=5).body)

        receiver.status = 500
        code, failed, _ = invoke("alerts", "test", "--sink", "soc", "--config", config, "--json")
        assert code == 1
        [dead] = failed
        assert (dead["status"], dead["last_error"]) == ("dead", "soc: HTTP 500")

        code, letters, _ = invoke("alerts", "dead-letters", "--config", config, "--json")
        assert [d["id"] for d in letters] == [dead["id"]]
        code, listed, _ = invoke("alerts", "deliveries", "--config", config, "--json")
        assert len(listed) == 3
        code, table, _ = invoke("alerts", "deliveries", "--config", config)
        assert code == 0
        assert dead["id"] in table

        code, _, stderr = invoke("alerts", "retry", dead["id"], "--config", config)
        assert code == 1
        assert "soc" in stderr
        receiver.status = 200
        code, [resent], _ = invoke("alerts", "retry", dead["id"], "--config", config, "--json")
        assert code == 0
        assert (resent["status"], resent["attempts"]) == ("delivered", 3)
        code, letters, _ = invoke("alerts", "dead-letters", "--config", config, "--json")
        assert letters == []

        code, _, stderr = invoke("alerts", "retry", dead["id"], "--config", config)
        assert code == 3
        assert "delivered already" in stderr
        code, _, stderr = invoke("alerts", "retry", "NOPE", "--config", config)
        assert code == 3
        code, _, stderr = invoke("alerts", "test", "--sink", "pager", "--config", config)
        assert code == 3
        assert "no sink named 'pager'" in stderr


def test_a_bad_alerts_table_is_a_config_error(tmp_path: Path) -> None:
    with http_receiver() as receiver:
        config = write_config(tmp_path, receiver)
    with open(config, "a", encoding="utf-8") as handle:
        handle.write('\n[[alerts.rules]]\nname = "x"\nkinds = ["nope"]\n')
    code, _, stderr = invoke("alerts", "test", "--config", config)
    assert code == 3
    assert "alerts.rules[0].kinds" in stderr
