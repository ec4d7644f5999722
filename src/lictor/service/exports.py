"""Export the audit trail: as sealed JSON Lines, or as OCSF events for a SIEM.

**JSON Lines** is the trail itself: one :meth:`SealedRecord.to_json` per line, hashes
included, so an export can be re-verified offline with the core's chain verifier.

**OCSF** maps each record to one OCSF 1.8.0 *API Activity* event (class 6003, category
6 Application Activity) with the ``security_control`` profile. We chose API Activity
over *Authorize Session* (3003) because a governed tool call *is* an API operation by
an actor on resources, which API Activity models directly (``actor``, ``api``,
``resources``, ``src_endpoint``), and the security_control profile adds the control's
verdict (``action_id``, ``disposition_id``, ``policy``, ``authorizations``). Authorize
Session is about privileges granted to a login session and requires a ``user``, which
an autonomous agent acting alone does not have. 1.8.0 is the newest release and the one
the tests validate every produced event against (JSON Schema from the
``ocsf-json-schema`` package, which ships the official schema).

Mapping, per record kind (``activity_id`` is 99 Other, ``activity_name`` "Tool Call",
since a tool is not a CRUD verb we can know). Each line gives ``action_id``,
``disposition_id``, ``status_id`` and ``severity_id``:

* decision ``allow``: 1 Allowed, 1 Allowed, 1 Success, 1 Informational.
* decision ``deny``: 2 Denied, 2 Blocked, 2 Failure, 3 Medium.
* decision ``review``: 99 Other ("Review"), 14 Delayed, 99 Other ("Pending Review"),
  2 Low.
* ``rejected`` (a request too malformed to decide): 2 Denied, 25 Rejected, 2 Failure,
  2 Low.
* ``result``: no action or disposition (the control acted at the decision); status
  1 Success for ``ok`` or 2 Failure for ``error``; severity 1 or 2.

A *review* is "Delayed": the call is held, not refused, until a person decides.
Other fields: ``actor.app_name``/``app_uid`` = agent, ``actor.user`` = principal
(groups as ``user.groups``), ``actor.session`` = session id and credential id;
``api.operation`` = tool, ``api.service.name`` = MCP server, ``api.request.uid`` =
request id (else decision id); ``resources`` = the request's resource;
``src_endpoint.name`` = agent (the class requires a source; Lictor knows the agent, not
its address); ``policy`` = the policy bundle version; ``authorizations`` = one entry
per deciding rule (``is_applied`` false for shadow rules); ``risk_score`` = risk * 100.
``metadata.uid`` is the decision id (``<decision id>/result`` for a result,
the record hash for a rejected request), ``metadata.correlation_uid`` the decision id,
``metadata.sequence`` the record's seq and ``metadata.original_event_uid`` its hash.
``unmapped`` keeps what OCSF has no place for: the delegation chain, the business
context (task, purpose, ticket, parent decision), the full risk with its signals,
digests, review id and source. Arguments go into ``api.request.data`` only when asked,
because a SIEM is usually a wider audience than the trail.

**Result records** map to their own API Activity event rather than an enrichment: a
result arrives later than its decision (possibly in another export), and SIEMs join on
``metadata.correlation_uid``. The actor, API and resources are copied from the
decision, looked up in the store. Records of other kinds are skipped and counted.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TextIO

from lictor.core.audit.chain import SealedRecord
from lictor.core.decisions import parse_time
from lictor.service.ports import AuditQuery, AuditStore

__all__ = [
    "OCSF_CLASS_UID",
    "OCSF_PROFILES",
    "OCSF_VERSION",
    "OcsfExport",
    "export_jsonl",
    "export_ocsf",
    "iter_records",
    "ocsf_event",
]

OCSF_VERSION: Final = "1.8.0"
OCSF_CLASS_UID: Final = 6003  # API Activity
OCSF_PROFILES: Final = ("security_control",)

_CATEGORY_UID: Final = 6  # Application Activity
_ACTIVITY_OTHER: Final = 99
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)
_DECISION_CACHE_SIZE: Final = 4096

# outcome -> (action_id, action, disposition_id, disposition, status_id, status, severity)
_VERDICTS: Final[dict[str, tuple[int, str, int, str, int, str, int]]] = {
    "allow": (1, "Allowed", 1, "Allowed", 1, "Success", 1),
    "deny": (2, "Denied", 2, "Blocked", 2, "Failure", 3),
    "review": (99, "Review", 14, "Delayed", 99, "Pending Review", 2),
    "rejected": (2, "Denied", 25, "Rejected", 2, "Failure", 2),
}
_UNKNOWN_VERDICT: Final = (0, "Unknown", 0, "Unknown", 0, "Unknown", 0)
_SEVERITY_NAMES: Final = {0: "Unknown", 1: "Informational", 2: "Low", 3: "Medium"}
_RESULT_STATUS: Final = {"ok": (1, "Success", 1), "error": (2, "Failure", 2)}


def iter_records(store: AuditStore, query: AuditQuery | None = None) -> Iterator[SealedRecord]:
    """Yield every record matching ``query``'s filters, in seq order, page by page.

    ``query.after_seq`` is where to start and ``query.limit`` the page size; memory
    stays at one page whatever the size of the trail.
    """
    page_query = query if query is not None else AuditQuery(limit=1000)
    while True:
        page = store.query(page_query)
        yield from page.records
        if page.next_after_seq is None:
            return
        page_query = replace(page_query, after_seq=page.next_after_seq)


def export_jsonl(store: AuditStore, query: AuditQuery | None, out: TextIO) -> int:
    """Write matching records as sealed JSON Lines; return how many were written."""
    written = 0
    for record in iter_records(store, query):
        out.write(record.to_json())
        out.write("\n")
        written += 1
    return written


@dataclass(frozen=True, slots=True)
class OcsfExport:
    """Counts from :func:`export_ocsf`: events written, records of unmapped kinds skipped."""

    written: int
    skipped: int


def export_ocsf(
    store: AuditStore,
    query: AuditQuery | None,
    out: TextIO,
    *,
    include_arguments: bool = False,
) -> OcsfExport:
    """Write matching records as OCSF events, one JSON object per line.

    Args:
        store: The trail; also where a result's decision is looked up.
        query: Filters and page size; None exports everything.
        out: Text stream to write to.
        include_arguments: Put the tool arguments into ``api.request.data``.

    Returns:
        How many events were written and how many records were skipped.

    Raises:
        StoreError: The store could not be read.
    """
    written = skipped = 0
    # Results follow their decisions, usually closely: remember recent decisions so a
    # result costs a store lookup only when its decision is outside the export.
    decisions: OrderedDict[str, Mapping[str, Any]] = OrderedDict()
    for record in iter_records(store, query):
        payload = record.payload
        decision: Mapping[str, Any] | None = None
        if payload.get("kind") == "decision":
            decisions[str(payload.get("decision_id"))] = payload
            if len(decisions) > _DECISION_CACHE_SIZE:
                decisions.popitem(last=False)
        elif payload.get("kind") == "result":
            decision_id = str(payload.get("decision_id"))
            decision = decisions.get(decision_id)
            if decision is None:
                found = store.find_decision(decision_id)
                decision = found.payload if found is not None else None
        event = ocsf_event(record, decision=decision, include_arguments=include_arguments)
        if event is None:
            skipped += 1
            continue
        out.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")))
        out.write("\n")
        written += 1
    return OcsfExport(written=written, skipped=skipped)


def ocsf_event(
    record: SealedRecord,
    *,
    decision: Mapping[str, Any] | None = None,
    include_arguments: bool = False,
) -> dict[str, Any] | None:
    """Map one audit record to an OCSF 1.8.0 API Activity event (see the module docs).

    Args:
        record: A sealed audit record.
        decision: For a ``result`` record, the payload of its decision, whose actor,
            API and resources the event repeats; without it they read "unknown".
        include_arguments: Put the tool arguments into ``api.request.data``.

    Returns:
        The event as a JSON-ready mapping, or None for a record kind with no mapping.
    """
    payload = record.payload
    kind = payload.get("kind")
    if kind == "decision":
        return _decision_event(record, include_arguments=include_arguments)
    if kind == "rejected":
        return _rejected_event(record)
    if kind == "result":
        return _result_event(record, decision, include_arguments=include_arguments)
    return None


def _decision_event(record: SealedRecord, *, include_arguments: bool) -> dict[str, Any]:
    payload = record.payload
    outcome = str(payload.get("outcome"))
    verdict = _VERDICTS.get(outcome, _UNKNOWN_VERDICT)
    reasons = _list_of_mappings(payload.get("reasons"))
    shadow = _list_of_mappings(payload.get("shadow"))
    details = "; ".join(str(r.get("message") or r.get("rule")) for r in reasons)
    event = _base(record, verdict[6], uid=str(payload.get("decision_id")))
    event.update(_who_and_what(payload, include_arguments=include_arguments))
    event.update(_verdict_fields(verdict))
    event["status_code"] = outcome
    if outcome == "review" and payload.get("review_id"):
        details = f"held for review {payload['review_id']}" + (f": {details}" if details else "")
    if details:
        event["status_detail"] = details
    version = payload.get("policy_version")
    if isinstance(version, str) and version:
        event["policy"] = {
            "name": "Lictor policy bundle",
            "uid": version,
            "version": version,
            "is_applied": True,
        }
    authorizations = [_authorization(r, version, applied=True) for r in reasons]
    authorizations += [_authorization(r, version, applied=False) for r in shadow]
    if authorizations:
        event["authorizations"] = authorizations
    risk = payload.get("risk")
    if isinstance(risk, Mapping):
        score = risk.get("score")
        if isinstance(score, int | float) and not isinstance(score, bool):
            event["risk_score"] = round(float(score) * 100)
        signals = _list_of_mappings(risk.get("signals"))
        if signals:
            event["risk_details"] = "; ".join(
                f"{s.get('kind')}: {s.get('detail')}" for s in signals
            )
    event["message"] = _summary(payload, outcome, details)
    event["unmapped"] = _prune(
        {
            "delegation": payload.get("delegation") or None,
            "context": _prune(dict(payload.get("context") or {})) or None,
            "risk": risk,
            "review_id": payload.get("review_id"),
            "arguments_digest": payload.get("arguments_digest"),
            "arguments_redacted": payload.get("arguments") is None or None,
            "resource_labels": _resource_labels(payload) or None,
            "source": payload.get("source"),
            "entry_version": payload.get("v"),
            "record_hash": record.record_hash,
        }
    )
    return event


def _rejected_event(record: SealedRecord) -> dict[str, Any]:
    payload = record.payload
    verdict = _VERDICTS["rejected"]
    event = _base(record, verdict[6], uid=record.record_hash)
    agent = payload.get("agent_id") or "unknown"
    event["actor"] = {"app_name": agent, "app_uid": agent}
    event["src_endpoint"] = {"name": agent}
    event["api"] = {"operation": payload.get("tool") or "unknown"}
    event.update(_verdict_fields(verdict))
    event["status_code"] = "rejected"
    detail = str(payload.get("problem") or "malformed request")
    if payload.get("pointer"):
        detail = f"{payload['pointer']}: {detail}"
    event["status_detail"] = detail
    event["message"] = f"rejected malformed request from {agent}: {detail}"
    event["unmapped"] = _prune(
        {
            "source": payload.get("source"),
            "entry_version": payload.get("v"),
            "record_hash": record.record_hash,
        }
    )
    return event


def _result_event(
    record: SealedRecord, decision: Mapping[str, Any] | None, *, include_arguments: bool
) -> dict[str, Any]:
    payload = record.payload
    decision_id = str(payload.get("decision_id"))
    status = str(payload.get("status"))
    status_id, status_name, severity = _RESULT_STATUS.get(status, (0, "Unknown", 0))
    event = _base(record, severity, uid=f"{decision_id}/result", correlation=decision_id)
    if decision is not None:
        event.update(_who_and_what(decision, include_arguments=include_arguments))
    else:
        event["actor"] = {"app_name": "unknown"}
        event["src_endpoint"] = {"name": "unknown"}
        event["api"] = {"operation": "unknown", "request": {"uid": decision_id}}
    event["status_id"] = status_id
    event["status"] = status_name
    event["status_code"] = status
    effects = _list_of_mappings(payload.get("effects"))
    if effects:
        event["status_detail"] = "; ".join(f"{e.get('kind')} {e.get('target')}" for e in effects)
    tool = event["api"]["operation"]
    event["message"] = f"result {status} for {tool} (decision {decision_id})"
    event["unmapped"] = _prune(
        {
            "labels": payload.get("labels") or None,
            "effects": effects or None,
            "output_digest": payload.get("output_digest"),
            "output_redacted": payload.get("output") is None or None,
            "entry_version": payload.get("v"),
            "record_hash": record.record_hash,
        }
    )
    return event


def _base(
    record: SealedRecord, severity: int, *, uid: str, correlation: str | None = None
) -> dict[str, Any]:
    """The fields every event has: class, time, severity and metadata."""
    payload = record.payload
    correlation = correlation or payload.get("decision_id")
    metadata: dict[str, Any] = {
        "version": OCSF_VERSION,
        "product": {"name": "Lictor", "vendor_name": "Lictor", "version": _lictor_version()},
        "profiles": list(OCSF_PROFILES),
        "log_name": "lictor-audit",
        "event_code": str(payload.get("kind")),
        "uid": uid,
        "sequence": record.seq,
        "original_event_uid": record.record_hash,
    }
    if correlation:
        metadata["correlation_uid"] = str(correlation)
    return {
        "class_uid": OCSF_CLASS_UID,
        "class_name": "API Activity",
        "category_uid": _CATEGORY_UID,
        "category_name": "Application Activity",
        "activity_id": _ACTIVITY_OTHER,
        "activity_name": "Tool Call",
        "type_uid": OCSF_CLASS_UID * 100 + _ACTIVITY_OTHER,
        "type_name": "API Activity: Other",
        "time": _epoch_ms(payload.get("at")),
        "severity_id": severity,
        "severity": _SEVERITY_NAMES.get(severity, "Unknown"),
        "metadata": metadata,
    }


def _who_and_what(payload: Mapping[str, Any], *, include_arguments: bool) -> dict[str, Any]:
    """Actor, API, source endpoint and resources of a decision payload."""
    agent = str(payload.get("agent_id") or "unknown")
    actor: dict[str, Any] = {"app_name": agent, "app_uid": agent}
    principal = payload.get("principal")
    if isinstance(principal, Mapping) and principal.get("id"):
        user: dict[str, Any] = {"uid": str(principal["id"]), "name": str(principal["id"])}
        groups = [{"name": str(g)} for g in principal.get("groups") or () if g]
        if groups:
            user["groups"] = groups
        actor["user"] = user
    session = _prune(
        {"uid": payload.get("session_id"), "credential_uid": payload.get("credential_id")}
    )
    if session:
        actor["session"] = session
    request: dict[str, Any] = {
        "uid": str(payload.get("request_id") or payload.get("decision_id") or "unknown")
    }
    if include_arguments and payload.get("arguments") is not None:
        request["data"] = payload["arguments"]
    api: dict[str, Any] = {"operation": str(payload.get("tool") or "unknown"), "request": request}
    if payload.get("server"):
        api["service"] = {"name": str(payload["server"])}
    out: dict[str, Any] = {"actor": actor, "api": api, "src_endpoint": {"name": agent}}
    resource = payload.get("resource")
    if isinstance(resource, Mapping):
        details = _prune(
            {
                "type": resource.get("type") or None,
                "uid": resource.get("id") or None,
                "labels": list(resource.get("labels") or ()) or None,
            }
        )
        if "uid" not in details and "type" in details:
            details["name"] = details["type"]  # OCSF needs a name or a uid
        if "uid" in details or "name" in details:
            out["resources"] = [details]
    return out


def _verdict_fields(verdict: tuple[int, str, int, str, int, str, int]) -> dict[str, Any]:
    action_id, action, disposition_id, disposition, status_id, status, _ = verdict
    return {
        "action_id": action_id,
        "action": action,
        "disposition_id": disposition_id,
        "disposition": disposition,
        "status_id": status_id,
        "status": status,
    }


def _lictor_version() -> str:
    # Imported here: ``lictor/__init__`` imports the service layer, so a module-level
    # import would break whenever this module is reached from there.
    from lictor import __version__

    return __version__


def _authorization(reason: Mapping[str, Any], version: object, *, applied: bool) -> dict[str, Any]:
    rule = str(reason.get("rule") or "unknown")
    policy: dict[str, Any] = {"uid": rule, "name": rule, "is_applied": applied}
    if reason.get("code"):
        policy["type"] = str(reason["code"])
    if reason.get("message"):
        policy["desc"] = str(reason["message"])
    if isinstance(version, str) and version:
        policy["version"] = version
    return {"decision": str(reason.get("effect") or "unknown"), "policy": policy}


def _summary(payload: Mapping[str, Any], outcome: str, details: str) -> str:
    text = f"{outcome} {payload.get('tool')} by agent {payload.get('agent_id')}"
    principal = payload.get("principal")
    if isinstance(principal, Mapping) and principal.get("id"):
        text += f" for {principal['id']}"
    return f"{text}: {details}" if details else text


def _resource_labels(payload: Mapping[str, Any]) -> list[str]:
    resource = payload.get("resource")
    return list(resource.get("labels") or ()) if isinstance(resource, Mapping) else []


def _list_of_mappings(value: object) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def _prune(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Drop None and empty-string values: OCSF wants absent, not null, attributes."""
    return {key: value for key, value in fields.items() if value is not None and value != ""}


def _epoch_ms(at: object) -> int:
    """OCSF ``timestamp_t``: milliseconds since the epoch (0 when the record has no time)."""
    if not isinstance(at, str):
        return 0
    try:
        return (parse_time(at) - _EPOCH) // _MS
    except ValueError:
        return 0
