"""Compile rules once: CEL programs, and an index so cost ignores rules that cannot match.

The index has two levels. By tool: exact names in a dict, glob patterns grouped by
pattern, and tool-less rules. Then the static selection (server, agent id, tags, tier)
is applied once per distinct ``(tool, server, agent id, tags, tier)`` and memoised, so a
steady stream of requests pays only for the conditions of the rules that can fire.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lictor.core.agents import Agent
from lictor.core.decisions import Outcome, Reason, ReasonCode
from lictor.core.policy.functions import VARIABLES, environment
from lictor.core.policy.model import Mode, PolicySet, Rule, is_glob
from lictor.core.policy.native import NativeProgram, compile_native
from lictor.errors import PolicyError

CACHE_LIMIT = 65_536
_CEL_POSITION = re.compile(r"<input>:(\d+):(\d+): ")


# A top-level name is not preceded by a word character or by a dot that follows one:
# ``arguments.time`` reads ``arguments`` only, while CEL's root-scoped ``.tool`` (a dot
# at the start or after an operator) reads ``tool``.
_IDENT = re.compile(r"(?<![\w.])([A-Za-z_]\w*)|(?:^|(?<=[^\w\s.)\]]))\s*\.([A-Za-z_]\w*)")


def referenced_variables(condition: str | None) -> frozenset[str]:
    """Over-approximate the top-level variables a condition reads (words not after a dot)."""
    if condition is None:
        return frozenset()
    names = {name for pair in _IDENT.findall(condition) for name in pair if name}
    return frozenset(names) & frozenset(VARIABLES)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule with its compiled condition (``None``: always true).

    ``native`` is the same condition compiled to Python closures when it lies in the
    subset :mod:`lictor.core.policy.native` models; CEL stays the authority for the rest.
    ``fired`` is the reason the rule gives when it fires, built once (reasons are
    immutable, so every decision can share it).
    """

    rule: Rule
    program: Any
    order: int
    variables: frozenset[str] = frozenset()
    native: NativeProgram | None = None
    fired: Reason | None = None

    @property
    def explicit_tool_grant(self) -> bool:
        """An enforcing allow rule that names tools may grant a tool the inventory lacks."""
        return (
            self.rule.effect is Outcome.ALLOW
            and self.rule.mode is Mode.ENFORCE
            and self.rule.match.is_explicit_for_tools()
        )


@dataclass(frozen=True, slots=True)
class Candidates:
    """The rules whose static selection holds for one request shape, by role.

    ``combined`` evaluates every candidate condition in one CEL call (a list of
    booleans, in ``conditional`` order): one call costs about as much as the fixed
    overhead of a single one, so the common path is one evaluation per decision. When
    it errors, the evaluator falls back to one call per rule to find the culprit.
    ``conditional_rules`` are the same rules as ``conditional``, for the native path;
    ``native_variables`` is the union of the variables their native programs read, or
    ``None`` when some condition has no native program.

    ``native_runs`` are those native programs in ``conditional`` order (``None`` unless
    every condition has one) and ``native_names`` their variables in a fixed order: the
    evaluator's fast path builds just these, runs every program, and looks the answer
    up in ``decided``. A verdict is a function of the request shape (this object), the
    bit mask of the conditions that held, and whether the inventory grants the tool, so
    the evaluator memoises it there (verdicts are immutable, so requests share them).
    """

    deny: tuple[CompiledRule, ...]
    review: tuple[CompiledRule, ...]
    allow: tuple[CompiledRule, ...]
    granting: tuple[CompiledRule, ...]
    shadow: tuple[CompiledRule, ...]
    variables: frozenset[str] = frozenset()
    conditional: tuple[int, ...] = ()
    combined: Any = None
    conditional_rules: tuple[CompiledRule, ...] = ()
    native_variables: frozenset[str] | None = None
    native_runs: tuple[Callable[[Mapping[str, Any]], Any], ...] | None = None
    native_names: tuple[str, ...] = ()
    decided: dict[int, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def size(self) -> int:
        """How many rules may be evaluated for this request shape."""
        return len(self.deny) + len(self.review) + len(self.allow) + len(self.shadow)


class CompiledPolicy:
    """An immutable, indexed, compiled policy bundle. Safe to share between threads."""

    def __init__(self, policy: PolicySet, rules: Sequence[CompiledRule], tz: ZoneInfo) -> None:
        self.policy = policy
        self.rules = tuple(rules)
        self.zone = tz
        self._exact: dict[str, list[CompiledRule]] = {}
        self._globbed: dict[str, list[CompiledRule]] = {}
        self._anytool: list[CompiledRule] = []
        for compiled in self.rules:
            tools = compiled.rule.match.tools
            if not tools:
                self._anytool.append(compiled)
                continue
            for pattern in tools:
                if is_glob(pattern):
                    self._globbed.setdefault(pattern, []).append(compiled)
                else:
                    self._exact.setdefault(pattern, []).append(compiled)
        self._cache: dict[tuple[Any, ...], Candidates] = {}

    @property
    def version(self) -> str:
        """The content digest of the bundle (``sha256:…``)."""
        return self.policy.version

    def candidates(
        self, tool: str, server: str | None, agent_id: str, agent: Agent | None
    ) -> Candidates:
        """Return the rules that statically apply to this request, memoised."""
        key = (
            tool,
            server,
            agent_id,
            agent.tags if agent else None,
            agent.risk_tier if agent else None,
        )
        found = self._cache.get(key)
        if found is None:
            found = self._select(tool, server, agent_id, agent)
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = found
        return found

    def _select(
        self, tool: str, server: str | None, agent_id: str, agent: Agent | None
    ) -> Candidates:
        seen: dict[int, CompiledRule] = {}
        for compiled in self._exact.get(tool, ()):
            seen[compiled.order] = compiled
        for pattern, group in self._globbed.items():
            if fnmatch.fnmatchcase(tool, pattern):
                for compiled in group:
                    seen[compiled.order] = compiled
        for compiled in self._anytool:
            seen[compiled.order] = compiled
        chosen = [
            seen[order]
            for order in sorted(seen)
            if seen[order].rule.match.selects(tool, server, agent_id, agent)
        ]
        enforce = [c for c in chosen if c.rule.mode is Mode.ENFORCE]
        conditional = [c for c in chosen if c.program is not None]
        natives = _native_variables(conditional)
        return Candidates(
            deny=tuple(c for c in enforce if c.rule.effect is Outcome.DENY),
            review=tuple(c for c in enforce if c.rule.effect is Outcome.REVIEW),
            allow=tuple(c for c in enforce if c.rule.effect is Outcome.ALLOW),
            granting=tuple(c for c in enforce if c.explicit_tool_grant),
            shadow=tuple(c for c in chosen if c.rule.mode is Mode.SHADOW),
            variables=frozenset().union(*(c.variables for c in conditional)),
            conditional=tuple(c.order for c in conditional),
            combined=_combine(conditional),
            conditional_rules=tuple(conditional),
            native_variables=natives,
            native_runs=_native_runs(conditional),
            native_names=tuple(sorted(natives or ())),
        )


def _native_variables(conditional: Sequence[CompiledRule]) -> frozenset[str] | None:
    natives = [c.native for c in conditional]
    if any(n is None for n in natives):
        return None
    return frozenset().union(*(n.variables for n in natives if n is not None))


def _native_runs(
    conditional: Sequence[CompiledRule],
) -> tuple[Callable[[Mapping[str, Any]], Any], ...] | None:
    runs = tuple(c.native.run for c in conditional if c.native is not None)
    return runs if len(runs) == len(conditional) else None


def _combine(conditional: Sequence[CompiledRule]) -> Any:
    """Compile ``[(c1), (c2), …]``; ``None`` when there are fewer than two conditions."""
    if len(conditional) < 2:
        return None
    source = "[" + ", ".join(f"({c.rule.when})" for c in conditional) + "]"
    try:
        return environment().compile(source)
    except (RuntimeError, TypeError, ValueError):  # every part compiled alone; fall back
        return None


def compile_policy(rules: Sequence[Rule], *, version: str, timezone: str = "UTC") -> CompiledPolicy:
    """Compile every condition once and build the index.

    Raises:
        PolicyError: duplicate rule id, a condition that does not compile (syntax,
            unknown function or variable) or is not boolean, or an unknown time zone.
    """
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise PolicyError(
            f"unknown time zone {timezone!r}; use an IANA name such as Europe/Berlin",
            pointer="/settings/timezone",
        ) from None
    seen: dict[str, Rule] = {}
    compiled: list[CompiledRule] = []
    env = environment()
    # Policies repeat conditions across agents ("payee on the allowlist", "outside
    # business hours"); a CEL compile costs hundreds of microseconds, and a program
    # depends only on its source text, so each distinct condition compiles once.
    programs: dict[str, Any] = {}
    for order, rule in enumerate(rules):
        if rule.id in seen:
            first = seen[rule.id]
            where = f"{first.source}:{first.line}" if first.source else "an earlier rule"
            raise PolicyError(
                f"duplicate rule id (first defined at {where})",
                source=rule.source,
                line=rule.line,
                rule_id=rule.id,
            )
        seen[rule.id] = rule
        compiled.append(
            CompiledRule(
                rule=rule,
                program=_compile_condition(env, rule, programs),
                order=order,
                variables=referenced_variables(rule.when),
                native=compile_native(rule.when) if rule.when is not None else None,
                fired=Reason(rule.id, rule.effect, rule.message, ReasonCode.RULE),
            )
        )
    policy = PolicySet(rules=tuple(rules), version=version, timezone=timezone)
    return CompiledPolicy(policy, compiled, zone)


def _compile_condition(env: Any, rule: Rule, programs: dict[str, Any]) -> Any:
    if rule.when is None:
        return None
    program = programs.get(rule.when)
    if program is not None:
        return program
    try:
        program = env.compile(rule.when)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise _cel_error(rule, str(exc)) from None
    kind = program.return_type().name()
    if kind.lower() not in ("bool", "dyn"):
        raise PolicyError(
            f"condition must be boolean, but it yields {kind.lower()}",
            source=rule.source,
            line=rule.when_line or rule.line,
            pointer="/when",
            rule_id=rule.id,
        )
    programs[rule.when] = program
    return program


def _cel_error(rule: Rule, text: str) -> PolicyError:
    """Turn a CEL compiler message into a PolicyError at the right file line."""
    first = text.split("\n", 1)[0]
    message = first.split("ERROR: ", 1)[-1]
    line = rule.when_line or rule.line
    where = ""
    pos = _CEL_POSITION.search(first)
    if pos:
        message = first[pos.end() :]
        where = f" (condition column {pos.group(2)})"
        if line is not None:
            line += int(pos.group(1)) - 1
    message = message.replace(" (in container '')", "")
    return PolicyError(
        f"condition does not compile: {message}{where} in `{rule.when}`",
        source=rule.source,
        line=line,
        pointer="/when",
        rule_id=rule.id,
    )
