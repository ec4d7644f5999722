"""Plain data (from YAML or JSON) to policy rules, or a :class:`PolicyError` saying where.

Parsing is total: any input yields rules or a ``PolicyError``, never another exception
(a property test holds us to it). Unknown fields are errors, because a misspelt ``when``
would otherwise silently widen a rule. Positions come from an injected ``locate``
callback, so this module needs no YAML library.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from lictor.core.decisions import Outcome
from lictor.core.jsontypes import describe_type
from lictor.core.policy.model import AgentSelector, Match, Mode, Rule, Severity
from lictor.errors import PolicyError

#: ``pointer -> (line, column)``, both 1-based, or ``None`` when unknown.
Locate = Callable[[str], tuple[int, int] | None]

RULE_ID = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}\Z")
DOCUMENT_KEYS = frozenset({"settings", "rules", "tests", "description", "mode"})
RULE_KEYS = frozenset(
    {"id", "description", "match", "when", "effect", "message", "mode", "severity"}
)
MATCH_KEYS = frozenset({"tools", "servers", "agents"})
AGENT_KEYS = frozenset({"ids", "tags", "tiers"})
SETTINGS_KEYS = frozenset({"timezone"})
TIERS = frozenset({"low", "medium", "high", "critical"})
MAX_CONDITION_LENGTH = 8192


def _no_location(_pointer: str) -> tuple[int, int] | None:
    return None


class _Errors:
    """Builds errors that carry the file and the position of a pointer."""

    def __init__(self, source: str | None, locate: Locate) -> None:
        self.source = source
        self.locate = locate

    def at(self, pointer: str, message: str, rule_id: str | None = None) -> PolicyError:
        pos = self.locate(pointer)
        return PolicyError(
            message,
            source=self.source,
            line=pos[0] if pos else None,
            column=pos[1] if pos else None,
            pointer=pointer,
            rule_id=rule_id,
        )


def parse_document(
    data: object, *, source: str | None = None, locate: Locate = _no_location
) -> tuple[list[Rule], dict[str, Any]]:
    """Parse one policy document into its rules and its ``settings`` mapping.

    A document is a mapping with optional keys ``rules`` (list), ``settings`` (mapping),
    ``tests`` (validated by the test runner), ``description`` and ``mode`` (``shadow``
    makes every rule of the document a shadow rule). An empty document is allowed and
    holds no rules.

    Raises:
        PolicyError: the first problem, with file, line, column and rule id when known.
    """
    err = _Errors(source, locate)
    if data is None:
        return [], {}
    if not isinstance(data, Mapping):
        raise err.at(
            "", f"a policy file must be a mapping with 'rules:', got {describe_type(data)}"
        )
    _check_keys(data, DOCUMENT_KEYS, "", err)
    settings = data.get("settings") or {}
    if not isinstance(settings, Mapping):
        raise err.at("/settings", "settings must be a mapping")
    _check_keys(settings, SETTINGS_KEYS, "/settings", err)
    tz = settings.get("timezone")
    if tz is not None and (not isinstance(tz, str) or not tz):
        raise err.at("/settings/timezone", "timezone must be an IANA name such as Europe/Berlin")
    rules = parse_rules(data.get("rules"), source=source, locate=locate)
    # ``mode: shadow`` at the top of a file puts every rule of it in shadow: a new
    # policy pack (or a one-file bundle) is trialled whole, then switched to enforce.
    try:
        file_mode = Mode(data.get("mode", Mode.ENFORCE.value))
    except (ValueError, TypeError):
        raise err.at("/mode", "mode must be enforce or shadow") from None
    if file_mode is Mode.SHADOW:
        rules = [replace(rule, mode=Mode.SHADOW) for rule in rules]
    return rules, dict(settings)


def parse_rules(
    data: object, *, source: str | None = None, locate: Locate = _no_location
) -> list[Rule]:
    """Parse the ``rules`` list of a document.

    Raises:
        PolicyError: the first problem found.
    """
    err = _Errors(source, locate)
    if data is None:
        return []
    if not isinstance(data, list):
        raise err.at("/rules", f"rules must be a list, got {describe_type(data)}")
    return [_rule(item, f"/rules/{i}", err) for i, item in enumerate(data)]


def _rule(data: object, ptr: str, err: _Errors) -> Rule:
    if not isinstance(data, Mapping):
        raise err.at(ptr, f"a rule must be a mapping, got {describe_type(data)}")
    rule_id = data.get("id")
    if not isinstance(rule_id, str) or not RULE_ID.match(rule_id):
        raise err.at(
            ptr + "/id",
            "every rule needs an id: letters, digits and _ . : / - (at most 128), "
            "starting with a letter or digit",
        )
    _check_keys(data, RULE_KEYS, ptr, err, rule_id)
    if "effect" not in data:
        raise err.at(ptr, "effect is required: allow, deny or review", rule_id)
    try:
        effect = Outcome(data["effect"])
    except (ValueError, TypeError):
        raise err.at(ptr + "/effect", "effect must be allow, deny or review", rule_id) from None
    when = data.get("when")
    if isinstance(when, bool):
        when = "true" if when else "false"
    if when is not None and (not isinstance(when, str) or not when.strip()):
        raise err.at(ptr + "/when", "when must be a non-empty CEL expression", rule_id)
    if isinstance(when, str) and len(when) > MAX_CONDITION_LENGTH:
        raise err.at(ptr + "/when", f"longer than {MAX_CONDITION_LENGTH} characters", rule_id)
    try:
        mode = Mode(data.get("mode", Mode.ENFORCE.value))
    except (ValueError, TypeError):
        raise err.at(ptr + "/mode", "mode must be enforce or shadow", rule_id) from None
    try:
        severity = Severity(data.get("severity", Severity.MEDIUM.value))
    except (ValueError, TypeError):
        names = ", ".join(s.value for s in Severity)
        raise err.at(ptr + "/severity", f"severity must be one of {names}", rule_id) from None
    pos = err.locate(ptr)
    when_pos = err.locate(ptr + "/when") if when is not None else None
    return Rule(
        id=rule_id,
        effect=effect,
        match=_match(data.get("match"), ptr + "/match", err, rule_id),
        when=when,
        message=_text(data.get("message"), ptr + "/message", err, rule_id),
        description=_text(data.get("description"), ptr + "/description", err, rule_id),
        mode=mode,
        severity=severity,
        source=err.source,
        line=pos[0] if pos else None,
        when_line=when_pos[0] if when_pos else None,
    )


def _match(data: object, ptr: str, err: _Errors, rule_id: str) -> Match:
    if data is None:
        return Match()
    if not isinstance(data, Mapping):
        raise err.at(ptr, "match must be a mapping of tools, servers, agents", rule_id)
    _check_keys(data, MATCH_KEYS, ptr, err, rule_id)
    agents = data.get("agents")
    if agents is None:
        selector = AgentSelector()
    elif isinstance(agents, list):
        # Shorthand: ``agents: [a, b]`` means ``agents: {ids: [a, b]}``.
        selector = AgentSelector(ids=_patterns(agents, ptr + "/agents", err, rule_id))
    elif isinstance(agents, Mapping):
        _check_keys(agents, AGENT_KEYS, ptr + "/agents", err, rule_id)
        tiers = _patterns(agents.get("tiers"), ptr + "/agents/tiers", err, rule_id)
        for i, tier in enumerate(tiers):
            if tier not in TIERS:
                raise err.at(
                    f"{ptr}/agents/tiers/{i}",
                    f"unknown risk tier {tier!r}; use low, medium, high or critical",
                    rule_id,
                )
        selector = AgentSelector(
            ids=_patterns(agents.get("ids"), ptr + "/agents/ids", err, rule_id),
            tags=_patterns(agents.get("tags"), ptr + "/agents/tags", err, rule_id),
            tiers=tiers,
        )
    else:
        raise err.at(ptr + "/agents", "agents must be a list of ids or a mapping", rule_id)
    return Match(
        tools=_patterns(data.get("tools"), ptr + "/tools", err, rule_id),
        servers=_patterns(data.get("servers"), ptr + "/servers", err, rule_id),
        agents=selector,
    )


def _patterns(data: object, ptr: str, err: _Errors, rule_id: str) -> tuple[str, ...]:
    if data is None:
        return ()
    if isinstance(data, str):
        data = [data]
    if not isinstance(data, list):
        raise err.at(ptr, f"expected a list of strings, got {describe_type(data)}", rule_id)
    out: list[str] = []
    for i, item in enumerate(data):
        if not isinstance(item, str) or not item:
            raise err.at(f"{ptr}/{i}", "expected a non-empty string", rule_id)
        out.append(item)
    return tuple(out)


def _text(data: object, ptr: str, err: _Errors, rule_id: str) -> str:
    if data is None:
        return ""
    if not isinstance(data, str):
        raise err.at(ptr, f"expected a string, got {describe_type(data)}", rule_id)
    return data


def _check_keys(
    data: Mapping[Any, Any],
    allowed: frozenset[str],
    ptr: str,
    err: _Errors,
    rule_id: str | None = None,
) -> None:
    for key in data:
        if not isinstance(key, str) or key not in allowed:
            raise err.at(
                f"{ptr}/{key}",
                f"unknown field {key!r}; allowed here: {', '.join(sorted(allowed))}",
                rule_id,
            )
