"""The ``[alerts]`` configuration: rules, sinks and playbooks, validated up front.

It comes from ``lictor.toml`` (``[[alerts.rules]]``, ``[[alerts.sinks]]``,
``[[alerts.playbooks]]``) and, optionally, a YAML file named by ``alerts.file`` whose
lists are appended to those. Every mistake is a :class:`~lictor.errors.ConfigError`
naming the place (``alerts.rules[2].kinds``) before the server starts, never a
surprise on the first alert. docs/alerts.md is the reference.

Secrets are not written into the file: ``secret_env`` and ``password_env`` name the
environment variables that hold them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import yaml

from lictor.alerts.deliveries import RetryPolicy
from lictor.alerts.playbooks import (
    Action,
    CanaryTrigger,
    DenyBurstTrigger,
    Playbook,
    RiskTrigger,
    Trigger,
)
from lictor.alerts.rules import DEFAULT_DEDUP_KEY, AlertRule, check_template
from lictor.alerts.sinks import EmailSink, Sink, SlackSink, SyslogAlertSink, WebhookSink
from lictor.errors import ConfigError
from lictor.notify.syslog import SyslogTarget
from lictor.service.events import EventKind, Severity

__all__ = [
    "AlertsConfig",
    "SinkSpec",
    "build_sinks",
    "load_alerts_config",
    "parse_alerts_config",
]

SINK_TYPES: Final = ("webhook", "slack", "syslog", "email")
_TOP_KEYS: Final = frozenset({"file", "rules", "sinks", "playbooks", "queue_size", "drain_seconds"})
_RETRY_KEYS: Final = frozenset(
    {"max_attempts", "backoff_initial_seconds", "backoff_max_seconds", "timeout_seconds"}
)
_SINK_KEYS: Final = {
    "webhook": frozenset({"url", "secret_env"}),
    "slack": frozenset({"url"}),
    "syslog": frozenset({"target"}),
    "email": frozenset({"host", "port", "tls", "from", "to", "username", "password_env"}),
}
_RULE_KEYS: Final = frozenset(
    {
        "name",
        "kinds",
        "min_severity",
        "agents",
        "rules",
        "risk_above",
        "severity",
        "dedup_key",
        "throttle_seconds",
        "sinks",
    }
)
_PLAYBOOK_KEYS: Final = frozenset(
    {"name", "action", "agents", "denies", "within_seconds", "risk_above", "canary_tools"}
)
DEFAULT_RISK_THRESHOLD: Final = 0.8
"""Risk score above which a decision is a ``risk_high`` event when no rule says lower."""


@dataclass(frozen=True, slots=True)
class SinkSpec:
    """A validated sink entry; :meth:`build` makes the sink (reads secrets from env)."""

    name: str
    type: str
    options: Mapping[str, Any]
    retry: RetryPolicy
    timeout_seconds: float

    def build(self, env: Mapping[str, str] | None = None) -> Sink:
        """Return the sink.

        Raises:
            ConfigError: A named environment variable is not set.
        """
        env = os.environ if env is None else env
        o = self.options
        where = f"alerts.sinks[{self.name}]"
        if self.type == "webhook":
            secret: bytes | None = None
            if "secret_env" in o:
                secret = _env(env, o["secret_env"], where + ".secret_env").encode()
            return WebhookSink(
                self.name, o["url"], secret=secret, timeout_seconds=self.timeout_seconds
            )
        if self.type == "slack":
            return SlackSink(self.name, o["url"], timeout_seconds=self.timeout_seconds)
        if self.type == "syslog":
            return SyslogAlertSink(
                self.name, SyslogTarget.parse(o["target"]), timeout_seconds=self.timeout_seconds
            )
        password = (
            _env(env, o["password_env"], where + ".password_env") if "password_env" in o else None
        )
        return EmailSink(
            self.name,
            host=o["host"],
            port=o["port"],
            sender=o["from"],
            recipients=o["to"],
            tls=o["tls"],
            username=o.get("username"),
            password=password,
            timeout_seconds=self.timeout_seconds,
        )


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    """Everything the alerts service needs, validated."""

    rules: tuple[AlertRule, ...] = ()
    sinks: tuple[SinkSpec, ...] = ()
    playbooks: tuple[Playbook, ...] = ()
    queue_size: int = 10_000
    drain_seconds: float = 5.0

    @property
    def is_empty(self) -> bool:
        """True when nothing is configured (the service need not run)."""
        return not (self.rules or self.playbooks)

    @property
    def risk_threshold(self) -> float:
        """The lowest ``risk_above`` of the ``risk_high`` rules, or the default."""
        thresholds = [
            r.risk_above
            for r in self.rules
            if EventKind.RISK_HIGH in r.kinds and r.risk_above is not None
        ]
        return min(thresholds, default=DEFAULT_RISK_THRESHOLD)


def _env(env: Mapping[str, str], name: str, where: str) -> str:
    value = env.get(name)
    if not value:
        raise ConfigError(f"{where}: environment variable {name} is not set")
    return value


def _type_name(value: object) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _mapping(value: object, where: str, allowed: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a table (object), got {_type_name(value)}")
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r}; allowed here: {', '.join(sorted(allowed))}"
        )
    return value


def _string(data: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}.{key}: expected a non-empty string, got {_type_name(value)}")
    return value


def _strings(data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}.{key}: expected a list of non-empty strings")
    return tuple(value)


def _number(
    data: Mapping[str, Any],
    key: str,
    where: str,
    default: float,
    *,
    low: float,
    high: float = math.inf,
    low_open: bool = False,
) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}.{key}: expected a number, got {_type_name(value)}")
    if value < low or (low_open and value == low) or value > high:
        bound = f"greater than {low:g}" if low_open else f"at least {low:g}"
        upper = f" and at most {high:g}" if math.isfinite(high) else ""
        raise ConfigError(f"{where}.{key}: must be {bound}{upper}, got {value}")
    return float(value)


def _integer(data: Mapping[str, Any], key: str, where: str, default: int, *, low: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}.{key}: expected a whole number, got {_type_name(value)}")
    if value < low:
        raise ConfigError(f"{where}.{key}: must be at least {low}, got {value}")
    return value


def _severity(data: Mapping[str, Any], key: str, where: str) -> Severity | None:
    if key not in data:
        return None
    value = data[key]
    try:
        return Severity(value)
    except ValueError:
        names = ", ".join(s.value for s in Severity)
        raise ConfigError(f"{where}.{key}: must be one of {names}, got {value!r}") from None


def _list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list, got {_type_name(value)}")
    return value


def _http_url(value: str, where: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: expected an http:// or https:// URL, got {value!r}")
    return value


def _sink(index: int, raw: object) -> SinkSpec:
    where = f"alerts.sinks[{index}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a table (object), got {_type_name(raw)}")
    kind = raw.get("type")
    if kind not in SINK_TYPES:
        raise ConfigError(f"{where}.type: must be one of {', '.join(SINK_TYPES)}, got {kind!r}")
    data = _mapping(raw, where, _SINK_KEYS[kind] | _RETRY_KEYS | {"name", "type"})
    name = _string(data, "name", where)
    retry = RetryPolicy(
        max_attempts=_integer(data, "max_attempts", where, 5, low=1),
        backoff_initial_seconds=_number(data, "backoff_initial_seconds", where, 1.0, low=0),
        backoff_max_seconds=_number(data, "backoff_max_seconds", where, 300.0, low=0),
    )
    timeout = _number(data, "timeout_seconds", where, 5.0, low=0, high=300, low_open=True)
    options: dict[str, Any] = {}
    if kind in ("webhook", "slack"):
        options["url"] = _http_url(_string(data, "url", where), where + ".url")
        if "secret_env" in data:
            options["secret_env"] = _string(data, "secret_env", where)
    elif kind == "syslog":
        options["target"] = _string(data, "target", where)
        try:
            SyslogTarget.parse(options["target"])
        except ConfigError as exc:
            raise ConfigError(f"{where}.target: {exc}") from None
    else:
        options["host"] = _string(data, "host", where)
        options["port"] = _integer(data, "port", where, 587, low=1)
        if options["port"] > 65535:
            raise ConfigError(f"{where}.port: must be at most 65535")
        options["tls"] = _string(data, "tls", where, "starttls")
        if options["tls"] not in ("starttls", "ssl", "none"):
            raise ConfigError(f"{where}.tls: must be one of starttls, ssl, none")
        options["from"] = _string(data, "from", where)
        options["to"] = _strings(data, "to", where)
        if not options["to"]:
            raise ConfigError(f"{where}.to: name at least one recipient")
        if "username" in data:
            options["username"] = _string(data, "username", where)
        if "password_env" in data:
            options["password_env"] = _string(data, "password_env", where)
    return SinkSpec(name, kind, options, retry, timeout)


def _kinds(data: Mapping[str, Any], where: str) -> frozenset[EventKind]:
    names = _strings(data, "kinds", where)
    if not names:
        raise ConfigError(f"{where}.kinds: name at least one event kind")
    kinds: set[EventKind] = set()
    for name in names:
        try:
            kinds.add(EventKind(name))
        except ValueError:
            known = ", ".join(k.value for k in EventKind)
            raise ConfigError(f"{where}.kinds: unknown kind {name!r}; known: {known}") from None
    return frozenset(kinds)


def _rule(index: int, raw: object, sink_names: frozenset[str]) -> AlertRule:
    where = f"alerts.rules[{index}]"
    data = _mapping(raw, where, _RULE_KEYS)
    sinks = _strings(data, "sinks", where)
    for sink in sinks:
        if sink not in sink_names:
            known = ", ".join(sorted(sink_names)) or "none is configured"
            raise ConfigError(f"{where}.sinks: no sink named {sink!r}; known: {known}")
    risk_above = (
        _number(data, "risk_above", where, 0.0, low=0, high=1) if "risk_above" in data else None
    )
    return AlertRule(
        name=_string(data, "name", where),
        kinds=_kinds(data, where),
        min_severity=_severity(data, "min_severity", where) or Severity.INFO,
        agents=_strings(data, "agents", where),
        rules=_strings(data, "rules", where),
        risk_above=risk_above,
        severity=_severity(data, "severity", where),
        dedup_key=check_template(
            _string(data, "dedup_key", where, DEFAULT_DEDUP_KEY), where + ".dedup_key"
        ),
        throttle_seconds=_number(data, "throttle_seconds", where, 300.0, low=0),
        sinks=sinks,
    )


def _playbook(index: int, raw: object) -> Playbook:
    where = f"alerts.playbooks[{index}]"
    data = _mapping(raw, where, _PLAYBOOK_KEYS)
    name = _string(data, "name", where)
    action_name = data.get("action")
    try:
        action = Action(str(action_name))
    except ValueError:
        raise ConfigError(
            f"{where}.action: must be quarantine or suspend, got {action_name!r}"
        ) from None
    given = [key for key in ("denies", "risk_above", "canary_tools") if key in data]
    if len(given) != 1:
        raise ConfigError(
            f"{where}: give exactly one trigger: denies (with within_seconds), "
            "risk_above or canary_tools"
        )
    if "within_seconds" in data and given[0] != "denies":
        raise ConfigError(f"{where}.within_seconds: only goes with denies")
    trigger: Trigger
    if given[0] == "denies":
        trigger = DenyBurstTrigger(
            denies=_integer(data, "denies", where, 1, low=1),
            within_seconds=_number(data, "within_seconds", where, 60.0, low=0, low_open=True),
        )
    elif given[0] == "risk_above":
        trigger = RiskTrigger(_number(data, "risk_above", where, 0.0, low=0, high=1))
    else:
        tools = _strings(data, "canary_tools", where)
        if not tools:
            raise ConfigError(f"{where}.canary_tools: name at least one tool (globs allowed)")
        trigger = CanaryTrigger(tools)
    return Playbook(name, trigger, action, _strings(data, "agents", where))


def _unique(names: Sequence[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ConfigError(f"alerts.{what}: the name {name!r} is used twice")
        seen.add(name)


def parse_alerts_config(data: object) -> AlertsConfig:
    """Validate an ``[alerts]`` mapping (without ``file``, already merged in).

    Raises:
        ConfigError: Anything is missing, unknown or out of range; names the place.
    """
    if data is None:
        return AlertsConfig()
    top = _mapping(data, "alerts", _TOP_KEYS - {"file"})
    sinks = tuple(
        _sink(i, raw) for i, raw in enumerate(_list(top.get("sinks", []), "alerts.sinks"))
    )
    _unique([s.name for s in sinks], "sinks")
    names = frozenset(s.name for s in sinks)
    rules = tuple(
        _rule(i, raw, names) for i, raw in enumerate(_list(top.get("rules", []), "alerts.rules"))
    )
    _unique([r.name for r in rules], "rules")
    playbooks = tuple(
        _playbook(i, raw)
        for i, raw in enumerate(_list(top.get("playbooks", []), "alerts.playbooks"))
    )
    _unique([p.name for p in playbooks], "playbooks")
    return AlertsConfig(
        rules=rules,
        sinks=sinks,
        playbooks=playbooks,
        queue_size=_integer(top, "queue_size", "alerts", 10_000, low=1),
        drain_seconds=_number(top, "drain_seconds", "alerts", 5.0, low=0),
    )


def load_alerts_config(data: Mapping[str, Any], base_dir: Path | None = None) -> AlertsConfig:
    """Validate the ``[alerts]`` table, first appending the lists of ``alerts.file``.

    ``file`` is relative to ``base_dir`` (the directory of ``lictor.toml``) when not
    absolute. Its top-level keys are the same as the table's.

    Raises:
        ConfigError: The file cannot be read, is not YAML, or the result is invalid.
    """
    merged: dict[str, Any] = dict(_mapping(data, "alerts", _TOP_KEYS))
    file = merged.pop("file", None)
    if file is not None:
        if not isinstance(file, str) or not file:
            raise ConfigError("alerts.file: expected a path")
        path = Path(file)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"alerts.file: cannot read {str(path)!r}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"alerts.file: {path} is not valid YAML: {exc}") from None
        extra = _mapping({} if loaded is None else loaded, str(path), _TOP_KEYS - {"file"})
        for key, value in extra.items():
            if key in ("rules", "sinks", "playbooks"):
                merged[key] = _list(merged.get(key, []), f"alerts.{key}") + _list(
                    value, f"{path}: {key}"
                )
            else:
                merged.setdefault(key, value)
    return parse_alerts_config(merged)


def build_sinks(config: AlertsConfig, env: Mapping[str, str] | None = None) -> dict[str, Sink]:
    """Build every configured sink by name (reads ``*_env`` secrets now, to fail early).

    Raises:
        ConfigError: A secret's environment variable is not set.
    """
    return {spec.name: spec.build(env) for spec in config.sinks}
