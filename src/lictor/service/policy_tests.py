"""Policy tests: YAML cases (request → expected outcome and deciding rules), like ``opa test``.

A case lives under ``tests:`` in any file of the bundle::

    tests:
      - name: transfers over the limit wait for a reviewer
        request: {agent_id: payments-bot, tool: send_money, arguments: {amount: 20000}}
        session: {labels: [confidential]}          # optional
        now: "2026-01-05T10:00:00Z"                # optional; default Monday 10:00 UTC
        agent: {id: payments-bot, ...}             # optional; replaces the inventory record
        expect: {outcome: review, rules: [finance/large-transfer], shadow: []}

``rules`` is compared as a set with the ids of the deciding reasons (built-in reasons
are named ``lictor/...``); ``shadow``, when given, with the shadow-mode rules that
fired. Cases run through the same ``evaluate`` as live traffic.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lictor.core.agents import Agent, parse_agent
from lictor.core.decisions import Outcome, parse_time
from lictor.core.policy import Facts, SessionFacts, evaluate
from lictor.core.requests import parse_request
from lictor.core.risk.windows import WindowScope, parse_duration
from lictor.errors import InvalidToolCall, PolicyError
from lictor.service.documents import Document
from lictor.service.policies import Bundle

DEFAULT_NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)  # a Monday, office hours
CASE_KEYS = frozenset({"name", "request", "session", "now", "agent", "expect"})
EXPECT_KEYS = frozenset({"outcome", "rules", "shadow"})


@dataclass(frozen=True, slots=True)
class TestCase:
    """One parsed case."""

    name: str
    source: str
    line: int | None
    request: Mapping[str, Any]
    expect_outcome: Outcome
    expect_rules: frozenset[str] | None
    expect_shadow: frozenset[str] | None = None
    session: SessionFacts = field(default_factory=SessionFacts)
    now: datetime = DEFAULT_NOW
    agent: Agent | None = None


@dataclass(frozen=True, slots=True)
class TestResult:
    """The outcome of one case; ``diff`` says what differed, empty when it passed."""

    case: TestCase
    outcome: Outcome | None
    rules: tuple[str, ...]
    diff: tuple[str, ...]
    exercised: frozenset[str] = frozenset()

    @property
    def passed(self) -> bool:
        """True when the decision matched the expectation."""
        return not self.diff


def collect_cases(documents: Iterable[Document]) -> list[TestCase]:
    """Parse every ``tests:`` list of the bundle.

    Raises:
        PolicyError: a case is malformed (file and line in the error).
    """
    cases: list[TestCase] = []
    for doc in documents:
        data = doc.data
        if not isinstance(data, dict) or data.get("tests") is None:
            continue
        items = data["tests"]
        if not isinstance(items, list):
            raise _err(doc, "/tests", "tests must be a list of cases")
        names: set[str] = set()
        for i, item in enumerate(items):
            case = _case(doc, f"/tests/{i}", item)
            if case.name in names:
                raise _err(doc, f"/tests/{i}/name", f"duplicate test name {case.name!r}")
            names.add(case.name)
            cases.append(case)
    return cases


def run_cases(
    bundle: Bundle, agents: Mapping[str, Agent], cases: Iterable[TestCase]
) -> list[TestResult]:
    """Run each case against the bundle's policy and compare."""
    results = []
    for case in cases:
        try:
            request = parse_request(case.request)
        except InvalidToolCall as exc:
            results.append(TestResult(case, None, (), (f"request is invalid: {exc}",)))
            continue
        agent = case.agent if case.agent is not None else agents.get(request.agent_id)
        verdict = evaluate(
            bundle.policy, request, Facts(agent=agent, now=case.now, session=case.session)
        )
        rules = verdict.rule_ids
        diff: list[str] = []
        if verdict.outcome is not case.expect_outcome:
            diff.append(
                f"outcome: expected {case.expect_outcome.value}, got {verdict.outcome.value}"
            )
        if case.expect_rules is not None and frozenset(rules) != case.expect_rules:
            missing = sorted(case.expect_rules - set(rules))
            extra = sorted(set(rules) - case.expect_rules)
            if missing:
                diff.append("rules: expected but did not decide: " + ", ".join(missing))
            if extra:
                diff.append("rules: decided but not expected: " + ", ".join(extra))
        if diff:
            diff.extend(f"  reason {r.rule}: {r.message}" for r in verdict.reasons)
        results.append(TestResult(case, verdict.outcome, rules, tuple(diff), frozenset(rules)))
    return results


def _case(doc: Document, ptr: str, item: object) -> TestCase:
    if not isinstance(item, dict):
        raise _err(doc, ptr, "a test case must be a mapping")
    unknown = sorted(set(item) - CASE_KEYS)
    if unknown:
        raise _err(
            doc,
            f"{ptr}/{unknown[0]}",
            f"unknown field {unknown[0]!r}; allowed: {', '.join(sorted(CASE_KEYS))}",
        )
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise _err(doc, f"{ptr}/name", "every test case needs a name")
    if not isinstance(item.get("request"), dict):
        raise _err(doc, f"{ptr}/request", "request must be a mapping (an action request)")
    expect = item.get("expect")
    if not isinstance(expect, dict):
        raise _err(doc, f"{ptr}/expect", "expect must be a mapping with outcome (and rules)")
    unknown = sorted(set(expect) - EXPECT_KEYS)
    if unknown:
        raise _err(doc, f"{ptr}/expect/{unknown[0]}", f"unknown field {unknown[0]!r}")
    try:
        outcome = Outcome(str(expect.get("outcome")))
    except ValueError:
        raise _err(doc, f"{ptr}/expect/outcome", "outcome must be allow, deny or review") from None
    rules = expect.get("rules")
    if rules is not None and (
        not isinstance(rules, list) or not all(isinstance(r, str) for r in rules)
    ):
        raise _err(doc, f"{ptr}/expect/rules", "rules must be a list of rule ids")
    shadow = expect.get("shadow")
    if shadow is not None and (
        not isinstance(shadow, list) or not all(isinstance(r, str) for r in shadow)
    ):
        raise _err(doc, f"{ptr}/expect/shadow", "shadow must be a list of rule ids")
    now = DEFAULT_NOW
    if item.get("now") is not None:
        try:
            now = parse_time(str(item["now"]))
        except ValueError:
            raise _err(doc, f"{ptr}/now", "now must be an RFC 3339 time with zone") from None
    agent = None
    if item.get("agent") is not None:
        try:
            agent = parse_agent(item["agent"], source=doc.source, pointer=f"{ptr}/agent")
        except PolicyError as exc:
            raise _err(doc, exc.pointer, exc.message) from None
    pos = doc.locate(ptr)
    return TestCase(
        name=name,
        source=doc.source,
        line=pos[0] if pos else None,
        request=item["request"],
        expect_outcome=outcome,
        expect_rules=frozenset(rules) if rules is not None else None,
        expect_shadow=frozenset(shadow) if shadow is not None else None,
        session=_session(doc, f"{ptr}/session", item.get("session")),
        now=now,
        agent=agent,
    )


# What a case may say about the session: the facts risk state fills in a live decision
# (labels, counters, untrusted destinations, whether the call has side effects).
_SESSION_KEYS = frozenset(
    {
        "id",
        "labels",
        "counters",
        "calls",
        "untrusted_destinations",
        "side_effecting",
        "windows",
        "provenance",
    }
)
_WINDOW_KEYS = frozenset({"tools", "argument", "duration", "scope", "count", "sum"})
_SCOPES = frozenset(scope.value for scope in WindowScope)


class _CaseFunctions:
    """What ``provenance()`` and ``window_*()`` answer in a test case: what it states.

    Live, risk state reads these from the session and the window store; a case states
    them, so rules on budgets and on where a value came from can be tested like any
    other. A window the case does not state holds no earlier calls; a value it does not
    list has the source ``unknown``.
    """

    __slots__ = ("_sources", "_windows")

    def __init__(
        self,
        windows: Mapping[tuple[str, str, str, str], tuple[int, float]],
        sources: Mapping[str, list[str]],
    ) -> None:
        self._windows = windows
        self._sources = sources

    def provenance(self, value: object) -> list[str]:
        key = value if isinstance(value, str) else json.dumps(value)
        return list(self._sources.get(key, ["unknown"]))

    def window_count(self, tools: str, duration: str, scope: str) -> int:
        return self._windows.get((tools, "", duration, scope), (0, 0.0))[0]

    def window_sum(self, tools: str, argument: str, duration: str, scope: str) -> float:
        return self._windows.get((tools, argument, duration, scope), (0, 0.0))[1]


def _session(doc: Document, ptr: str, data: object) -> SessionFacts:
    if data is None:
        return SessionFacts()
    if not isinstance(data, dict):
        raise _err(doc, ptr, "session must be a mapping of labels, counters, calls")
    unknown = sorted(set(data) - _SESSION_KEYS)
    if unknown:
        raise _err(doc, f"{ptr}/{unknown[0]}", f"unknown field {unknown[0]!r}")
    labels = data.get("labels") or []
    counters = data.get("counters") or {}
    calls = data.get("calls", sum(counters.values()) if isinstance(counters, dict) else 0)
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise _err(doc, f"{ptr}/labels", "labels must be a list of strings")
    if not isinstance(counters, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in counters.values()
    ):
        raise _err(doc, f"{ptr}/counters", "counters must map tool names to integers")
    if not isinstance(calls, int) or isinstance(calls, bool):
        raise _err(doc, f"{ptr}/calls", "calls must be an integer")
    untrusted = data.get("untrusted_destinations") or []
    if not isinstance(untrusted, list) or not all(isinstance(x, str) for x in untrusted):
        raise _err(
            doc, f"{ptr}/untrusted_destinations", "untrusted_destinations must be a list of strings"
        )
    side_effecting = data.get("side_effecting", False)
    if not isinstance(side_effecting, bool):
        raise _err(doc, f"{ptr}/side_effecting", "side_effecting must be true or false")
    windows = _windows(doc, f"{ptr}/windows", data.get("windows"))
    sources = _sources(doc, f"{ptr}/provenance", data.get("provenance"))
    stated = "windows" in data or "provenance" in data
    return SessionFacts(
        id=str(data.get("id", "")),
        labels=frozenset(labels),
        counters=counters,
        calls=calls,
        untrusted_destinations=tuple(untrusted),
        side_effecting=side_effecting,
        functions=_CaseFunctions(windows, sources) if stated else None,
    )


def _windows(
    doc: Document, ptr: str, data: object
) -> dict[tuple[str, str, str, str], tuple[int, float]]:
    """Parse ``windows``: earlier allowed calls per window, as the policy writes it."""
    if data is None:
        return {}
    if not isinstance(data, list):
        raise _err(doc, ptr, "windows must be a list of {tools, duration, scope, count}")
    windows: dict[tuple[str, str, str, str], tuple[int, float]] = {}
    for i, item in enumerate(data):
        at = f"{ptr}/{i}"
        if not isinstance(item, dict):
            raise _err(doc, at, "a window must be a mapping of tools, duration, scope, count")
        unknown = sorted(set(item) - _WINDOW_KEYS)
        if unknown:
            raise _err(doc, f"{at}/{unknown[0]}", f"unknown field {unknown[0]!r}")
        for name in ("tools", "duration", "scope"):
            if not isinstance(item.get(name), str) or not item[name]:
                raise _err(doc, f"{at}/{name}", f"{name} must be a string, as in the policy")
        try:
            parse_duration(item["duration"])
        except ValueError as exc:
            raise _err(doc, f"{at}/duration", str(exc)) from None
        if item["scope"] not in _SCOPES:
            raise _err(doc, f"{at}/scope", f"scope must be one of {', '.join(sorted(_SCOPES))}")
        argument = item.get("argument", "")
        if not isinstance(argument, str):
            raise _err(doc, f"{at}/argument", "argument must be a string")
        count = item.get("count", 0)
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise _err(doc, f"{at}/count", "count must be an integer >= 0")
        total = item.get("sum", 0)
        if not isinstance(total, int | float) or isinstance(total, bool):
            raise _err(doc, f"{at}/sum", "sum must be a number")
        windows[(item["tools"], argument, item["duration"], item["scope"])] = (count, float(total))
    return windows


def _sources(doc: Document, ptr: str, data: object) -> dict[str, list[str]]:
    """Parse ``provenance``: value -> where it came from (``task``, ``tool_output:x``...)."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise _err(doc, ptr, "provenance must map values to lists of sources")
    sources: dict[str, list[str]] = {}
    for value, found in data.items():
        if not isinstance(found, list) or not found or not all(isinstance(x, str) for x in found):
            raise _err(doc, f"{ptr}/{value}", "sources must be a non-empty list of strings")
        sources[str(value)] = sorted(found)
    return sources


def _err(doc: Document, ptr: str, message: str) -> PolicyError:
    pos = doc.locate(ptr)
    return PolicyError(
        message,
        source=doc.source,
        line=pos[0] if pos else None,
        column=pos[1] if pos else None,
        pointer=ptr,
    )
