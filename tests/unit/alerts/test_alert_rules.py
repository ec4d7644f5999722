"""Alert rules: event selection, severities, deduplication key templates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from lictor.alerts.rules import DEFAULT_DEDUP_KEY, AlertRule, check_template, render_key
from lictor.errors import ConfigError
from lictor.service.events import Event, EventKind, Severity

NOW = datetime(2026, 11, 25, 14, 0, 0, tzinfo=UTC)


def event(
    kind: EventKind = EventKind.DECISION_DENIED,
    *,
    severity: Severity = Severity.HIGH,
    agent: str | None = "bot",
    rule: str | None = "finance/no-wire",
    at: datetime = NOW,
    **details: Any,
) -> Event:
    return Event(
        kind=kind,
        at=at,
        severity=severity,
        summary=f"{kind.value} for {agent}",
        agent_id=agent,
        rule=rule,
        details=details,
    )


DENIED = frozenset({EventKind.DECISION_DENIED})


def test_rule_selects_only_its_kinds() -> None:
    rule = AlertRule("r", DENIED)
    assert rule.selects(event())
    assert not rule.selects(event(EventKind.REVIEW_OPENED))


def test_min_severity_drops_quieter_events() -> None:
    rule = AlertRule("r", DENIED, min_severity=Severity.HIGH)
    assert rule.selects(event(severity=Severity.HIGH))
    assert rule.selects(event(severity=Severity.CRITICAL))
    assert not rule.selects(event(severity=Severity.MEDIUM))


def test_agent_and_rule_globs_must_both_match() -> None:
    rule = AlertRule("r", DENIED, agents=("fin-*",), rules=("finance/*",))
    assert rule.selects(event(agent="fin-bot", rule="finance/no-wire"))
    assert not rule.selects(event(agent="mail-bot", rule="finance/no-wire"))
    assert not rule.selects(event(agent="fin-bot", rule="mail/send"))
    assert not rule.selects(event(agent=None))
    assert not rule.selects(event(rule=None))


def test_risk_rule_needs_a_score_above_its_threshold() -> None:
    rule = AlertRule("r", frozenset({EventKind.RISK_HIGH}), risk_above=0.7)
    assert rule.selects(event(EventKind.RISK_HIGH, score=0.71))
    assert not rule.selects(event(EventKind.RISK_HIGH, score=0.7))
    assert not rule.selects(event(EventKind.RISK_HIGH))
    assert not rule.selects(event(EventKind.RISK_HIGH, score=True))


def test_alert_severity_defaults_to_the_event_severity() -> None:
    assert AlertRule("r", DENIED).severity_for(event(severity=Severity.LOW)) is Severity.LOW
    loud = AlertRule("r", DENIED, severity=Severity.CRITICAL)
    assert loud.severity_for(event(severity=Severity.LOW)) is Severity.CRITICAL


def test_default_key_is_agent_and_rule_or_kind() -> None:
    assert render_key(DEFAULT_DEDUP_KEY, event()) == "bot/finance/no-wire"
    shadow = event(EventKind.SHADOW_AGENT_SEEN, rule=None, agent="ghost")
    assert render_key(DEFAULT_DEDUP_KEY, shadow) == "ghost/shadow_agent_seen"
    assert render_key("{principal_id}|{tool}", event(tool="wire")) == "-|wire"


@pytest.mark.parametrize(
    "template", ["{nope}", "{agent_id!r}", "{agent_id:>10}", "{agent_id", "{details.x}"]
)
def test_bad_templates_are_config_errors(template: str) -> None:
    with pytest.raises(ConfigError):
        check_template(template, "alerts.rules[0].dedup_key")
