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
from lictor.core.decisions import Decision, ResultReport, format_time
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
) -> dict[str, Any]:
    """Return the audit entry for one decision.

    With ``redact_arguments`` the arguments are replaced by their digest; the digest
    itself is then inside the hashed record, so a later claim about what the arguments
    were can still be checked against the trail.
    """
    wire = request.to_json()
    arguments = wire["arguments"]
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
