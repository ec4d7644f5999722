"""Alert rules: which events become alerts, how loud, and under which deduplication key.

Pure: a rule looks at one :class:`~lictor.service.events.Event` and answers; time and
throttling live in :mod:`lictor.alerts.throttle`. Rules are built by
:mod:`lictor.alerts.config`, which validates them, so a rule that exists is well formed.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from lictor.core.policy.model import matches_any
from lictor.errors import ConfigError
from lictor.service.events import Event, EventKind, Severity

__all__ = [
    "DEFAULT_DEDUP_KEY",
    "KEY_FIELDS",
    "AlertRule",
    "check_template",
    "render_key",
]

DEFAULT_DEDUP_KEY: Final = "{agent_id}/{rule_or_kind}"
"""One alert per agent and policy rule (or event kind, for events without a rule)."""

KEY_FIELDS: Final = frozenset(
    {
        "kind",
        "severity",
        "agent_id",
        "principal_id",
        "rule",
        "rule_or_kind",
        "decision_id",
        "tool",
    }
)
"""The event fields a deduplication key template may use."""

_NIL: Final = "-"


def check_template(template: str, where: str) -> str:
    """Return ``template`` if it only uses known fields, else raise.

    Raises:
        ConfigError: Bad format syntax, an unknown field, or a conversion or format spec
            (keys are plain text; ``{agent_id!r}`` would only make them harder to read).
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"{where}: bad key template {template!r}: {exc}") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in KEY_FIELDS:
            known = ", ".join(sorted(KEY_FIELDS))
            raise ConfigError(f"{where}: unknown field {{{name}}} in key template; known: {known}")
        if spec or conversion:
            raise ConfigError(f"{where}: key template fields take no format spec or conversion")
    return template


def key_values(event: Event) -> dict[str, str]:
    """Return the fields a key template may use, ``-`` for missing ones."""
    tool = event.details.get("tool")
    values: Mapping[str, Any] = {
        "kind": event.kind.value,
        "severity": event.severity.value,
        "agent_id": event.agent_id,
        "principal_id": event.principal_id,
        "rule": event.rule,
        "rule_or_kind": event.rule or event.kind.value,
        "decision_id": event.decision_id,
        "tool": tool if isinstance(tool, str) else None,
    }
    return {
        name: _NIL if value is None or value == "" else str(value) for name, value in values.items()
    }


def render_key(template: str, event: Event) -> str:
    """Fill a checked key template from ``event``."""
    return template.format_map(key_values(event))


@dataclass(frozen=True, slots=True)
class AlertRule:
    """Select events and say how to alert on them.

    Attributes:
        name: Unique name; alerts carry it.
        kinds: Event kinds the rule selects (any of).
        min_severity: Events below this severity are ignored.
        agents: Agent id globs (any of); empty selects every event, with or without agent.
        rules: Policy rule id globs (any of); empty selects regardless of rule.
        risk_above: Only events whose ``details["score"]`` is greater (risk events).
        severity: The alert's severity; None keeps the event's.
        dedup_key: Key template; one alert per key per throttle window.
        throttle_seconds: The window; 0 sends every event.
        sinks: Sink names to deliver to; empty means every sink.
    """

    name: str
    kinds: frozenset[EventKind]
    min_severity: Severity = Severity.INFO
    agents: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    risk_above: float | None = None
    severity: Severity | None = None
    dedup_key: str = DEFAULT_DEDUP_KEY
    throttle_seconds: float = 300.0
    sinks: tuple[str, ...] = ()

    def selects(self, event: Event) -> bool:
        """Return whether this rule fires on ``event``."""
        if event.kind not in self.kinds or event.severity.rank < self.min_severity.rank:
            return False
        if self.agents and (event.agent_id is None or not matches_any(event.agent_id, self.agents)):
            return False
        if self.rules and (event.rule is None or not matches_any(event.rule, self.rules)):
            return False
        if self.risk_above is not None:
            score = event.details.get("score")
            if not isinstance(score, int | float) or isinstance(score, bool):
                return False
            return score > self.risk_above
        return True

    def severity_for(self, event: Event) -> Severity:
        """Return the alert's severity for ``event``."""
        return self.severity if self.severity is not None else event.severity

    def key_for(self, event: Event) -> str:
        """Return the deduplication key for ``event``."""
        return render_key(self.dedup_key, event)
