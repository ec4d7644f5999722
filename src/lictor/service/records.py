"""Audit entries: what Lictor writes down about each decision and each result report.

An entry is a plain JSON mapping. Every field is covered by the audit chain's hash, so
an entry holds exactly what an auditor needs: who (principal and delegation chain,
agent, credential), what (tool, server, arguments or their digest, resource), why
(context: task, purpose, ticket, parent decision), the outcome with its reasons and
risk, and the policy version that made it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from lictor.core.audit.canonical import canonical_json
from lictor.core.decisions import Decision, ReasonCode, ResultReport, format_time
from lictor.core.policy import SessionFacts
from lictor.core.requests import ActionRequest

ENTRY_VERSION = 1


def digest(value: Any) -> str:
    """Return ``sha256:<hex>`` of the canonical JSON of ``value``."""
    return "sha256:" + hashlib.sha256(canonical_json(value)).hexdigest()


def decision_entry(
    request: ActionRequest,
    decision: Decision,
    *,
    credential_id: str | None = None,
    redact_arguments: bool = False,
    source: str | None = None,
    session: SessionFacts | None = None,
) -> dict[str, Any]:
    """Return the audit entry for one decision.

    With ``redact_arguments`` the arguments are replaced by their digest; the digest
    itself is then inside the hashed record, so a later claim about what the arguments
    were can still be checked against the trail.

    ``session`` is what the session had done when the decision was made (labels, per-tool
    counters, calls): with it a backtest replays the request exactly as it was decided.
    Entries written before it was recorded lack the key. A decision in monitor mode (an
    allow given in place of what the policy decided) says so with ``enforced: false``
    and ``would_be``, the outcome the policy decided.
    """
    wire = request.to_json()
    arguments = wire["arguments"]
    entry = _decision_fields(
        request, decision, wire, arguments, credential_id, redact_arguments, source
    )
    if session is not None:
        entry["session"] = {
            "labels": sorted(session.labels),
            "counters": dict(session.counters),
            "calls": session.calls,
        }
    monitor = next((r for r in decision.reasons if r.code is ReasonCode.MONITOR), None)
    if monitor is not None:
        entry["enforced"] = False
        entry["would_be"] = monitor.effect.value
    return entry


def _decision_fields(
    request: ActionRequest,
    decision: Decision,
    wire: dict[str, Any],
    arguments: Any,
    credential_id: str | None,
    redact_arguments: bool,
    source: str | None,
) -> dict[str, Any]:
    return {
        "v": ENTRY_VERSION,
        "kind": "decision",
        "decision_id": decision.decision_id,
        "at": format_time(decision.decided_at),
        "request_id": request.request_id,
        "agent_id": request.agent_id,
        "credential_id": credential_id,
        "principal": wire["principal"],
        "delegation": wire["delegation"],
        "session_id": request.session_id,
        "tool": request.tool,
        "server": request.server,
        "arguments": None if redact_arguments else arguments,
        "arguments_digest": digest(arguments),
        "resource": wire["resource"],
        "context": wire["context"],
        "outcome": decision.outcome.value,
        "reasons": [r.to_json() for r in decision.reasons],
        "shadow": [r.to_json() for r in decision.shadow],
        "risk": decision.risk.to_json(),
        "review_id": decision.review_id,
        "policy_version": decision.policy_version,
        "source": source,
    }


def result_entry(
    report: ResultReport, *, at: datetime, redact_output: bool = False
) -> dict[str, Any]:
    """Return the audit entry for a result report, linked to its decision by id."""
    return {
        "v": ENTRY_VERSION,
        "kind": "result",
        "decision_id": report.decision_id,
        "at": format_time(at),
        "status": report.status.value,
        "output": None if redact_output else report.output,
        "output_digest": digest(report.output),
        "labels": list(report.labels),
        "effects": [e.to_json() for e in report.effects],
    }


def rejected_entry(
    raw: object, problem: str, pointer: str, *, at: datetime, source: str | None = None
) -> dict[str, Any]:
    """Return the audit entry for a request too malformed to decide on."""
    agent_id = raw.get("agent_id") if isinstance(raw, Mapping) else None
    tool = raw.get("tool") if isinstance(raw, Mapping) else None
    return {
        "v": ENTRY_VERSION,
        "kind": "rejected",
        "at": format_time(at),
        "agent_id": agent_id if isinstance(agent_id, str) else None,
        "tool": tool if isinstance(tool, str) else None,
        "problem": problem,
        "pointer": pointer,
        "source": source,
    }


def review_entry(action: str, review: Any, *, at: datetime) -> dict[str, Any]:
    """Return the audit entry for one step of a review (opened, approved, ..., cancelled).

    ``review`` is a :class:`lictor.service.reviews.Review` (typed loosely here, because
    that module builds on this one). The binding is repeated in every step, so each
    record can be read on its own.
    """
    return {
        "v": ENTRY_VERSION,
        "kind": "review",
        "action": action,
        "at": format_time(at),
        "review_id": review.review_id,
        "decision_id": review.decision_id,
        "agent_id": review.agent_id,
        "principal_id": review.principal_id,
        "tool": review.tool,
        "arguments_digest": review.arguments_digest,
        "policy_version": review.policy_version,
        "status": review.status.value,
        "expires_at": format_time(review.expires_at),
        "reviewer": review.reviewer,
        "comment": review.comment,
        "consumed_by": review.consumed_by,
    }


def incident_entry(
    action: str,
    *,
    at: datetime,
    actor: str,
    reason: str,
    agent_id: str | None = None,
    principal_id: str | None = None,
    status_before: str | None = None,
    status_after: str | None = None,
    revoked_credentials: list[str] | None = None,
    cancelled_reviews: list[str] | None = None,
) -> dict[str, Any]:
    """Return the audit entry for an incident response step (quarantine, release, ...)."""
    return {
        "v": ENTRY_VERSION,
        "kind": "incident",
        "action": action,
        "at": format_time(at),
        "agent_id": agent_id,
        "principal_id": principal_id,
        "actor": actor,
        "reason": reason,
        "status_before": status_before,
        "status_after": status_after,
        "revoked_credentials": list(revoked_credentials or []),
        "cancelled_reviews": list(cancelled_reviews or []),
    }


def agent_change_entry(
    *,
    action: str,
    agent_id: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    at: datetime,
    actor: str,
    credential_id: str | None = None,
    source: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """Return the audit entry for one inventory change: who changed what, from what to what.

    ``before`` and ``after`` are the records' wire forms (None when the record did not
    exist, or no longer does); ``changed`` names the fields that differ (every field
    when the record is created or removed; never the version stamp alone), so a reader
    need not diff them.
    """
    if before is None or after is None:
        changed = sorted((after if after is not None else before) or {})
    else:
        changed = sorted(
            k
            for k in before.keys() | after.keys()
            if before.get(k) != after.get(k) and k not in ("updated_at", "updated_by", "version")
        )
    return {
        "v": ENTRY_VERSION,
        "kind": "agent_change",
        "action": action,
        "at": format_time(at),
        "agent_id": agent_id,
        "actor": actor,
        "credential_id": credential_id,
        "source": source,
        "reason": reason,
        "changed": changed,
        "before": dict(before) if before is not None else None,
        "after": dict(after) if after is not None else None,
    }
