"""Sliding-window counts and sums that policies read: rate limits and budgets.

A policy asks in CEL, with **string literals** as arguments::

    window_count('delete_*', '1h', 'agent') >= 5
    window_sum('send_money', 'amount', '24h', 'principal') + double(arguments.amount) > 20000.0

``window_count(tools, duration, scope)`` is the number of earlier *allowed* calls whose
tool matches the glob ``tools`` within ``duration`` before now, by the same ``scope``
(``agent``, ``principal`` or ``session``) as the call being decided.
``window_sum(tools, argument, duration, scope)`` adds up the numeric top-level argument
``argument`` of those calls. The call being decided is not included.

Rules:

1. **Declared by use.** :func:`find_window_specs` reads the calls out of the policy's
   conditions when it is loaded, so the service knows which series to keep and to read
   before evaluating. A call with a non-literal argument is not found, and evaluating it
   fails, which denies (fail closed).
2. **Series.** Calls are counted per series: (tools, argument, scope) and the scope's key
   (the agent id, principal id or session id of the call; ``""`` when the request has no
   principal or session, so such calls share one series, which errs toward counting too
   much). A series keeps events for its longest declared duration.
3. **Pure.** Parsing and matching here do no I/O; the service reads and records events
   atomically around the evaluation (:mod:`lictor.service.risk`).
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from lictor.core.requests import ActionRequest

__all__ = [
    "MAX_WINDOW_SECONDS",
    "WindowScope",
    "WindowSpec",
    "amount_of",
    "find_window_specs",
    "parse_duration",
    "scope_key",
]

MAX_WINDOW_SECONDS: Final = 366 * 86_400
_UNITS: Final = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"([0-9]{1,9})([smhdw])")
_LITERAL = r"""\s*(?:'([^'\\]*)'|"([^"\\]*)")\s*"""
_COUNT_CALL = re.compile(r"\bwindow_count\s*\(" + ",".join([_LITERAL] * 3) + r"\)")
_SUM_CALL = re.compile(r"\bwindow_sum\s*\(" + ",".join([_LITERAL] * 4) + r"\)")


class WindowScope(StrEnum):
    """Whose calls a window counts: the same agent, principal or session as this call."""

    AGENT = "agent"
    PRINCIPAL = "principal"
    SESSION = "session"


def parse_duration(text: str) -> int:
    """Return the seconds of a duration such as ``30s``, ``15m``, ``1h``, ``7d``, ``1h30m``.

    Raises:
        ValueError: not a duration, zero, or longer than :data:`MAX_WINDOW_SECONDS`.
    """
    compact = text.strip().lower()
    pos = 0
    total = 0
    for match in _DURATION.finditer(compact):
        if match.start() != pos:
            break
        total += int(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(compact) or not compact:
        raise ValueError(f"{text!r} is not a duration such as '30s', '15m', '1h' or '7d'")
    if not 0 < total <= MAX_WINDOW_SECONDS:
        raise ValueError(f"window duration {text!r} must be between 1s and 366d")
    return total


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """One window a policy reads: which tools, which argument (sums), how long, by whom."""

    tools: str
    duration: str
    scope: WindowScope
    argument: str = ""

    @property
    def seconds(self) -> int:
        """The window's length."""
        return parse_duration(self.duration)

    @property
    def series(self) -> str:
        """The name of the event series this window reads (independent of the duration)."""
        return f"{self.tools}\x1f{self.argument}\x1f{self.scope.value}"

    def matches(self, tool: str) -> bool:
        """Whether a call of ``tool`` adds to this window's series."""
        return fnmatch.fnmatchcase(tool, self.tools)

    @classmethod
    def of(cls, tools: str, duration: str, scope: str, argument: str = "") -> WindowSpec:
        """Build and validate a spec from the literal arguments of a policy call.

        Raises:
            ValueError: the duration or scope is invalid, or the tool pattern is empty.
        """
        if not tools:
            raise ValueError("a window needs a tool name or glob")
        try:
            kind = WindowScope(scope)
        except ValueError:
            raise ValueError(
                f"window scope {scope!r} must be one of agent, principal, session"
            ) from None
        parse_duration(duration)
        return cls(tools, duration, kind, argument)


def find_window_specs(conditions: Iterable[str | None]) -> tuple[WindowSpec, ...]:
    """Return every window the conditions read, in first-use order, without duplicates.

    Raises:
        ValueError: a call has literal arguments that are not a valid window.
    """
    found: dict[WindowSpec, None] = {}
    for condition in conditions:
        if not condition or "window_" not in condition:
            continue
        for match in _COUNT_CALL.finditer(condition):
            tools, duration, scope = _literals(match, 3)
            found[WindowSpec.of(tools, duration, scope)] = None
        for match in _SUM_CALL.finditer(condition):
            tools, argument, duration, scope = _literals(match, 4)
            found[WindowSpec.of(tools, duration, scope, argument)] = None
    return tuple(found)


def _literals(match: re.Match[str], count: int) -> list[str]:
    groups = match.groups()
    return [groups[2 * i] if groups[2 * i] is not None else groups[2 * i + 1] for i in range(count)]


def scope_key(scope: WindowScope, request: ActionRequest) -> str:
    """Return whose series a call belongs to for ``scope``."""
    if scope is WindowScope.AGENT:
        return request.agent_id
    if scope is WindowScope.PRINCIPAL:
        return request.principal.id if request.principal is not None else ""
    return request.session_id or ""


def amount_of(arguments: Mapping[str, Any], argument: str) -> float:
    """The numeric value of a top-level argument, ``0.0`` when absent or not a number.

    Numeric strings (``"1500.50"``) count; booleans, NaN and infinities do not. A policy
    that must refuse non-numeric amounts says so in its own rule.
    """
    if not argument:
        return 0.0
    value = arguments.get(argument)
    if isinstance(value, bool):
        return 0.0
    if isinstance(value, str):
        try:
            value = float(value.replace(",", "").strip())
        except ValueError:
            return 0.0
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return 0.0
