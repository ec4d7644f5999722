"""docs/alerts.md is executable: its configuration parses and its recipe verifies."""

from __future__ import annotations

import re
import time
import tomllib
from pathlib import Path
from typing import Any

from lictor.alerts.config import build_sinks, load_alerts_config
from lictor.alerts.sinks import sign

DOC = (Path(__file__).resolve().parents[3] / "docs" / "alerts.md").read_text(encoding="utf-8")


def block(language: str) -> str:
    found = re.search(rf"```{language}\n(.*?)```", DOC, flags=re.S)
    assert found, language
    return found.group(1)


def test_the_documented_configuration_is_valid(tmp_path: Path) -> None:
    (tmp_path / "alerts.yaml").write_text(block("yaml"), encoding="utf-8")
    table = tomllib.loads(block("toml"))["alerts"]
    config = load_alerts_config(table, base_dir=tmp_path)
    assert [s.name for s in config.sinks] == ["soc", "chat", "siem", "oncall"]
    assert [r.name for r in config.rules][-1] == "shadow"  # appended from the file
    assert len(config.playbooks) == 4
    env = {"LICTOR_SOC_WEBHOOK_SECRET": "x", "LICTOR_SMTP_PASSWORD": "y"}
    for sink in build_sinks(config, env).values():
        sink.close()


def test_the_verification_recipe_accepts_lictor_signatures_only() -> None:
    namespace: dict[str, Any] = {}
    exec(block("python"), namespace)  # noqa: S102  # the documented recipe, run as written
    is_genuine = namespace["is_genuine"]
    body = b'{"alert_id":"01A"}'
    now = str(int(time.time()))
    headers = {"X-Lictor-Timestamp": now, "X-Lictor-Signature": sign(b"k", now, body)}
    assert is_genuine(b"k", headers, body)
    assert not is_genuine(b"other", headers, body)
    assert not is_genuine(b"k", headers, body + b" ")
    old = str(int(time.time()) - 3600)
    assert not is_genuine(
        b"k", {"X-Lictor-Timestamp": old, "X-Lictor-Signature": sign(b"k", old, body)}, body
    )
