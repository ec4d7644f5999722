"""The [alerts] configuration: a full example parses; each mistake names its place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lictor.alerts.config import (
    DEFAULT_RISK_THRESHOLD,
    AlertsConfig,
    build_sinks,
    load_alerts_config,
    parse_alerts_config,
)
from lictor.alerts.playbooks import Action, CanaryTrigger, DenyBurstTrigger, RiskTrigger
from lictor.alerts.sinks import EmailSink, SlackSink, SyslogAlertSink, WebhookSink
from lictor.errors import ConfigError
from lictor.service.events import EventKind, Severity
from lictor.settings import load_settings

FULL: dict[str, Any] = {
    "queue_size": 100,
    "drain_seconds": 2,
    "sinks": [
        {"name": "soc", "type": "webhook", "url": "https://soc.example/hook", "secret_env": "S"},
        {"name": "chat", "type": "slack", "url": "https://hooks.example/T/B/X"},
        {"name": "siem", "type": "syslog", "target": "tcp://127.0.0.1:6514", "max_attempts": 3},
        {
            "name": "mail",
            "type": "email",
            "host": "smtp.example",
            "from": "lictor@example.com",
            "to": ["soc@example.com"],
            "tls": "none",
            "port": 25,
        },
    ],
    "rules": [
        {
            "name": "high-deny",
            "kinds": ["decision_denied"],
            "min_severity": "high",
            "rules": ["finance/*"],
            "throttle_seconds": 600,
            "sinks": ["soc", "chat"],
        },
        {"name": "risk", "kinds": ["risk_high"], "risk_above": 0.6, "severity": "critical"},
        {"name": "shadow", "kinds": ["shadow_agent_seen"], "dedup_key": "{agent_id}"},
    ],
    "playbooks": [
        {"name": "burst", "denies": 5, "within_seconds": 300, "action": "suspend"},
        {"name": "risky", "risk_above": 0.95, "action": "quarantine", "agents": ["fin-*"]},
        {"name": "canary", "canary_tools": ["export_all_*"], "action": "quarantine"},
    ],
}


def test_full_example_parses() -> None:
    config = parse_alerts_config(FULL)
    assert [s.type for s in config.sinks] == ["webhook", "slack", "syslog", "email"]
    assert config.sinks[2].retry.max_attempts == 3
    high = config.rules[0]
    assert high.kinds == {EventKind.DECISION_DENIED}
    assert (high.min_severity, high.rules, high.sinks) == (
        Severity.HIGH,
        ("finance/*",),
        ("soc", "chat"),
    )
    assert config.rules[1].severity is Severity.CRITICAL
    assert config.risk_threshold == 0.6
    burst, risky, canary = config.playbooks
    assert burst.trigger == DenyBurstTrigger(5, 300.0)
    assert burst.action is Action.SUSPEND
    assert risky.trigger == RiskTrigger(0.95)
    assert risky.agents == ("fin-*",)
    assert canary.trigger == CanaryTrigger(("export_all_*",))
    assert (config.queue_size, config.drain_seconds) == (100, 2.0)


def test_sinks_are_built_with_secrets_from_the_environment() -> None:
    sinks = build_sinks(parse_alerts_config(FULL), env={"S": "hush"})
    assert isinstance(sinks["soc"], WebhookSink)
    assert isinstance(sinks["chat"], SlackSink)
    assert isinstance(sinks["siem"], SyslogAlertSink)
    assert isinstance(sinks["mail"], EmailSink)
    for sink in sinks.values():
        sink.close()
    with pytest.raises(ConfigError, match="environment variable S is not set"):
        build_sinks(parse_alerts_config(FULL), env={})


def test_empty_config_runs_nothing() -> None:
    assert parse_alerts_config({}).is_empty
    assert parse_alerts_config(None) == AlertsConfig()
    assert AlertsConfig().risk_threshold == DEFAULT_RISK_THRESHOLD


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"rules": [{"name": "x", "kinds": ["nope"]}]}, "alerts.rules[0].kinds"),
        ({"rules": [{"name": "x", "kinds": []}]}, "alerts.rules[0].kinds"),
        ({"rules": [{"name": "x", "kinds": ["risk_high"], "sinks": ["gone"]}]}, "rules[0].sinks"),
        ({"rules": [{"name": "x", "kinds": ["risk_high"], "risk_above": 2}]}, "risk_above"),
        ({"rules": [{"name": "x", "kinds": ["risk_high"], "colour": 1}]}, "unknown key 'colour'"),
        ({"rules": [{"kinds": ["risk_high"]}]}, "alerts.rules[0].name"),
        ({"rules": [{"name": "x", "kinds": ["risk_high"], "min_severity": "loud"}]}, "severity"),
        ({"sinks": [{"name": "a", "type": "pager"}]}, "alerts.sinks[0].type"),
        ({"sinks": [{"name": "a", "type": "webhook", "url": "ftp://x"}]}, "sinks[0].url"),
        ({"sinks": [{"name": "a", "type": "syslog", "target": "x"}]}, "sinks[0].target"),
        ({"sinks": [{"name": "a", "type": "email", "host": "h", "from": "f"}]}, "sinks[0].to"),
        ({"sinks": [{"name": "a", "type": "slack", "url": "http://h", "max_attempts": 0}]}, "max"),
        ({"playbooks": [{"name": "p", "action": "reboot", "denies": 1}]}, "playbooks[0].action"),
        ({"playbooks": [{"name": "p", "action": "suspend"}]}, "exactly one trigger"),
        (
            {"playbooks": [{"name": "p", "action": "suspend", "denies": 2, "risk_above": 0.5}]},
            "exactly one trigger",
        ),
        ({"playbooks": [{"name": "p", "action": "suspend", "canary_tools": []}]}, "canary_tools"),
        ({"rules": "no"}, "alerts.rules: expected a list"),
        ({"queue_size": 0}, "alerts.queue_size"),
        ({"extra": 1}, "unknown key 'extra'"),
    ],
)
def test_mistakes_name_their_place(change: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_alerts_config(change)
    assert where in str(caught.value)


def test_names_must_be_unique() -> None:
    rule = {"name": "x", "kinds": ["risk_high"]}
    with pytest.raises(ConfigError, match="used twice"):
        parse_alerts_config({"rules": [rule, rule]})


def test_file_lists_are_appended(tmp_path: Path) -> None:
    (tmp_path / "alerts.yaml").write_text(
        "rules:\n  - name: from-file\n    kinds: [quarantine_unknown]\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="quarantine_unknown"):
        load_alerts_config({"file": str(tmp_path / "alerts.yaml")})
    (tmp_path / "alerts.yaml").write_text(
        "rules:\n  - name: from-file\n    kinds: [agent_quarantined]\n"
        "playbooks:\n  - {name: c, canary_tools: [honeypot], action: quarantine}\n",
        encoding="utf-8",
    )
    config = load_alerts_config(
        {"file": "alerts.yaml", "rules": [{"name": "inline", "kinds": ["review_opened"]}]},
        base_dir=tmp_path,
    )
    assert [r.name for r in config.rules] == ["inline", "from-file"]
    assert [p.name for p in config.playbooks] == ["c"]


def test_unreadable_or_invalid_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_alerts_config({"file": str(tmp_path / "missing.yaml")})
    (tmp_path / "bad.yaml").write_text("rules: [", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_alerts_config({"file": str(tmp_path / "bad.yaml")})


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
KEYS = st.sampled_from(
    ["rules", "sinks", "playbooks", "queue_size", "name", "kinds", "type", "url", "action"]
)
SHAPED = st.recursive(
    JSON | st.sampled_from(["decision_denied", "webhook", "quarantine", "http://h", "x"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=25,
)


def at_most(examples: int) -> settings:
    """The profile's example count, capped for a test that is slow under ``ci``."""
    return settings(max_examples=min(settings().max_examples, examples))


@at_most(300)
@given(st.one_of(JSON, SHAPED))
def test_any_json_gives_a_config_or_a_config_error(data: Any) -> None:
    try:
        result = parse_alerts_config(data)
    except ConfigError:
        return
    assert isinstance(result, AlertsConfig)


def test_settings_resolve_the_alerts_file_beside_the_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "alerts.yaml").write_text(
        "rules:\n  - {name: shadow, kinds: [shadow_agent_seen]}\n", encoding="utf-8"
    )
    (conf / "lictor.toml").write_text('[alerts]\nfile = "alerts.yaml"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # not the toml's directory
    settings = load_settings(conf / "lictor.toml", env={})
    assert settings.alerts["file"] == str(conf / "alerts.yaml")
    assert [r.name for r in load_alerts_config(settings.alerts).rules] == ["shadow"]
    with pytest.raises(ConfigError, match="alerts"):
        load_settings(conf / "lictor.toml", env={"LICTOR_ALERTS": "x"})
