"""Bootstrap baselines by replaying audit history (oldest entry first).

Reads the audit entry shapes the service writes (``kind`` ``decision`` and ``result``,
see ``lictor.service.records``) as plain JSON, so the core does not import the service.
Rules:

1. Only ``allow`` decisions teach, as online (a denied or held call is not normal).
2. A result teaches only when its decision was replayed, so its tool is known.
3. Entries of other agents, other kinds, or malformed entries are skipped, never raised.
4. Bounded: the replay remembers at most :data:`MAX_PENDING` decision ids (to join results
   to their tool) and :data:`MAX_PENDING` sessions (previous tool and labels), dropping
   the oldest; a result whose decision was dropped is skipped.

Replaying the same history into an empty baseline gives the baseline that online
learning would have built, had it observed the same allowed calls and reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from lictor.core.decisions import Effect, ResultReport, ResultStatus, parse_time
from lictor.core.requests import ActionRequest, AgentId, Context, Resource
from lictor.core.risk.baseline import Baseline, CallFacts, ResultFacts

__all__ = ["MAX_PENDING", "replay_audit"]

MAX_PENDING: Final = 10_000


def replay_audit(baseline: Baseline, entries: Iterable[object], agent_id: str) -> Baseline:
    """Return ``baseline`` after observing ``agent_id``'s allowed calls and their results."""
    tools: dict[str, tuple[str, str | None]] = {}
    previous: dict[str, str] = {}
    labels: dict[str, frozenset[str]] = {}
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        try:
            at = parse_time(str(entry.get("at")))
        except ValueError:
            continue
        kind = entry.get("kind")
        if kind == "decision":
            if entry.get("agent_id") != agent_id or entry.get("outcome") != "allow":
                continue
            request = _request(entry, agent_id)
            if request is None:
                continue
            session = entry.get("session_id") if isinstance(entry.get("session_id"), str) else None
            facts = CallFacts.from_request(
                request,
                previous_tool=previous.get(session) if session else None,
                session_labels=labels.get(session, frozenset()) if session else (),
            )
            baseline = baseline.observe_call(facts, at)
            decision_id = entry.get("decision_id")
            if isinstance(decision_id, str):
                _remember(tools, decision_id, (request.tool, session))
            if session:
                _remember(previous, session, request.tool)
                _remember(labels, session, labels.get(session, frozenset()) | facts.labels)
        elif kind == "result":
            decision_id = entry.get("decision_id")
            known = tools.get(decision_id) if isinstance(decision_id, str) else None
            if known is None:
                continue
            tool, session = known
            report = _report(entry, str(decision_id))
            facts_out = ResultFacts.from_report(tool, report)
            baseline = baseline.observe_result(facts_out, at)
            if session:
                _remember(labels, session, labels.get(session, frozenset()) | facts_out.labels)
    return baseline


def _remember(table: dict[str, Any], key: str, value: Any) -> None:
    table.pop(key, None)
    table[key] = value
    while len(table) > MAX_PENDING:
        del table[next(iter(table))]


def _request(entry: Mapping[str, Any], agent_id: str) -> ActionRequest | None:
    tool = entry.get("tool")
    if not isinstance(tool, str) or not tool:
        return None
    arguments = entry.get("arguments")
    resource = entry.get("resource")
    res: Resource | None = None
    if isinstance(resource, Mapping):
        raw_labels = resource.get("labels")
        res = Resource(
            type=str(resource.get("type") or ""),
            id=str(resource.get("id") or ""),
            labels=tuple(x for x in raw_labels if isinstance(x, str))
            if isinstance(raw_labels, list)
            else (),
        )
    return ActionRequest(
        agent_id=AgentId(agent_id),
        tool=tool,
        arguments=arguments if isinstance(arguments, Mapping) else {},
        resource=res,
        context=Context(),
    )


def _report(entry: Mapping[str, Any], decision_id: str) -> ResultReport:
    raw_labels = entry.get("labels")
    labels = (
        tuple(x for x in raw_labels if isinstance(x, str)) if isinstance(raw_labels, list) else ()
    )
    status = ResultStatus.OK if entry.get("status") == "ok" else ResultStatus.ERROR
    raw_effects = entry.get("effects")
    effects = tuple(
        Effect(str(e["kind"]), e["target"])
        for e in (raw_effects if isinstance(raw_effects, list) else ())
        if isinstance(e, Mapping)
        and isinstance(e.get("kind"), str)
        and isinstance(e.get("target"), str)
    )
    return ResultReport(
        decision_id, status, output=entry.get("output"), labels=labels, effects=effects
    )
