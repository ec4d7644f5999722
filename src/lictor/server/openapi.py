"""The OpenAPI 3.1 document of the HTTP API, written by hand from the real schemas.

It mirrors what the core parsers accept (``parse_request``, ``parse_result``,
``parse_agent``): required fields, types, enums, and ``additionalProperties: false``
wherever the server refuses unknown fields. Each operation's roles come from
:data:`lictor.server.auth.ENDPOINTS` (as ``x-lictor-roles``), so the document cannot
disagree with the server about who may call what. The fuzz test
(``tests/integration/server/test_fuzz.py``) holds the server to this document.
"""

from __future__ import annotations

from typing import Any, Final

from lictor.core.agents import AgentStatus, RiskTier
from lictor.core.decisions import Outcome, ReasonCode
from lictor.core.policy import Mode, Severity
from lictor.core.requests import MAX_ID_LENGTH
from lictor.server.auth import ENDPOINTS
from lictor.server.problems import PROBLEM_MEDIA_TYPE, PROBLEM_TYPES

OPENAPI_VERSION: Final = "3.1.0"
API_VERSION: Final = "1"

_DESCRIPTION: Final = """\
Lictor decides on each action an AI agent proposes, before it runs: allow, deny or review.

**Authentication.** Every endpoint except `/healthz` and `/readyz` needs
`Authorization: Bearer <token>` — this document included. Tokens are issued with
`lictor credentials create`. Each operation lists the roles that may call it in
`x-lictor-roles`. A successful token check is cached for up to 1 second, so a revoked
token can keep working on a replica for up to that long. Inventory records are cached
for up to 0.5 seconds for decisions.

**Errors** are `application/problem+json` (RFC 9457) with a stable `type` URI
`urn:lictor:problem:<slug>`; validation problems carry `pointer` (JSON pointer into the
body) or `parameter` (a query parameter). A `deny` is an answer, not an error: it comes
with status 200.
"""


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


_STRING_LIST: Final = {"type": "array", "items": {"type": "string"}}
_OPT_STRING: Final = {"type": ["string", "null"]}
_ID: Final = {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH, "pattern": r"\S"}


def _schemas() -> dict[str, Any]:
    reason = {
        "type": "object",
        "additionalProperties": False,
        "required": ["rule", "effect", "message", "code"],
        "properties": {
            "rule": {"type": "string"},
            "effect": {"type": "string", "enum": [o.value for o in Outcome]},
            "message": {"type": "string"},
            "code": {"type": "string", "enum": [c.value for c in ReasonCode]},
        },
    }
    agent_properties: dict[str, Any] = {
        "id": {"type": "string", "minLength": 1},
        "name": {"type": "string"},
        "owner": {"type": "string"},
        "purpose": {"type": "string"},
        "allowed_tools": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "tags": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "risk_tier": {"type": "string", "enum": [t.value for t in RiskTier]},
        "risk_tolerance": {"type": "number", "minimum": 0, "maximum": 1},
        "status": {"type": "string", "enum": [s.value for s in AgentStatus]},
        "attributes": {"type": "object"},
        # Bookkeeping (docs/inventory.md): set by Lictor; ignored in a PUT but `version`.
        "created_by": {"type": "string"},
        "created_at": _TIME_OR_NULL,
        "updated_by": {"type": "string"},
        "updated_at": _TIME_OR_NULL,
        "version": {
            "type": "integer",
            "minimum": 0,
            "description": "Bumped on every change; send the one you read to get a 409 "
            "instead of overwriting someone else's change.",
        },
        "shadow": {
            "type": ["object", "null"],
            "description": "What was seen of an unregistered agent: first/last seen, "
            "source, user agent, tools attempted, count.",
        },
        "tokens_valid_after": _TIME_OR_NULL,
    }
    agent_input_properties = dict(agent_properties)
    for name in ("allowed_tools", "tags", "attributes"):
        agent_input_properties[name] = _nullable(agent_properties[name])
    for name in ("created_by", "created_at", "updated_by", "updated_at", "shadow"):
        agent_input_properties[name] = {"description": "Set by Lictor; ignored in a PUT."}
    agent_input_properties["tokens_valid_after"] = {
        "description": "Set by Lictor (quarantine); ignored in a PUT."
    }
    return {
        "Problem": {
            "type": "object",
            "additionalProperties": False,
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": {"type": "string", "enum": [p.uri for p in PROBLEM_TYPES.values()]},
                "title": {"type": "string"},
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "detail": {"type": "string"},
                "pointer": {"type": "string"},
                "parameter": {"type": "string"},
            },
        },
        "ActionRequest": {
            "type": "object",
            "description": "One proposed agent action. `agent_id` defaults to the "
            "credential's agent and must equal it when given (else 403).",
            "additionalProperties": False,
            "required": ["tool"],
            "properties": {
                "request_id": _OPT_STRING,
                "agent_id": _nullable(_ID),
                "principal": _nullable(
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["id"],
                        "properties": {
                            "id": {"type": "string", "minLength": 1},
                            "groups": _nullable(_STRING_LIST),
                            "attributes": _nullable({"type": "object"}),
                        },
                    }
                ),
                "delegation": _nullable(_STRING_LIST),
                "session_id": _OPT_STRING,
                "tool": _ID,
                "server": _OPT_STRING,
                "arguments": _nullable({"type": "object"}),
                "resource": _nullable(
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "type": _OPT_STRING,
                            "id": _OPT_STRING,
                            "labels": _nullable(_STRING_LIST),
                        },
                    }
                ),
                "context": _nullable(
                    {
                        "type": "object",
                        "description": "Business context; keys beyond these are kept.",
                        "properties": {
                            "task": _OPT_STRING,
                            "purpose": _OPT_STRING,
                            "ticket": _OPT_STRING,
                            "parent_decision_id": _OPT_STRING,
                        },
                    }
                ),
            },
        },
        "Reason": reason,
        "Risk": {
            "type": "object",
            "additionalProperties": False,
            "required": ["score", "signals"],
            "properties": {
                "score": {"type": "number"},
                "signals": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["kind", "detail", "score"],
                        "properties": {
                            "kind": {"type": "string"},
                            "detail": {"type": "string"},
                            "score": {"type": "number"},
                        },
                    },
                },
            },
        },
        "Decision": {
            "type": "object",
            "additionalProperties": False,
            "required": [
                "decision_id",
                "outcome",
                "reasons",
                "risk",
                "policy_version",
                "decided_at",
            ],
            "properties": {
                "decision_id": {"type": "string"},
                "outcome": {"type": "string", "enum": [o.value for o in Outcome]},
                "reasons": {"type": "array", "items": _ref("Reason")},
                "risk": _ref("Risk"),
                "review_id": {"type": "string"},
                "policy_version": {"type": "string"},
                "decided_at": {"type": "string", "format": "date-time"},
                "shadow": {"type": "array", "items": _ref("Reason")},
            },
        },
        "GatewayEvent": {
            "type": "object",
            "description": "Something a gateway refused or saw without a decision. The "
            "agent is the caller's credential subject.",
            "additionalProperties": False,
            "required": ["event", "problem"],
            "properties": {
                "event": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"},
                "problem": {"type": "string", "minLength": 1, "maxLength": 2000, "pattern": r"\S"},
                "tool": {"type": ["string", "null"], "maxLength": 256},
                "server": {"type": ["string", "null"], "maxLength": 256},
                "session_id": {"type": ["string", "null"], "maxLength": 256},
                "detail": {"type": ["object", "null"]},
            },
        },
        "ResultReport": {
            "type": "object",
            "description": "What happened after an allowed action ran. `decision_id` "
            "defaults to the one in the URL and must equal it when given.",
            "additionalProperties": False,
            "required": ["status"],
            "properties": {
                "decision_id": _OPT_STRING,
                "status": {"type": "string", "enum": ["ok", "error"]},
                "output": {},
                "labels": _nullable(_STRING_LIST),
                "effects": _nullable(
                    {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["kind"],
                            "properties": {
                                "kind": {"type": "string"},
                                "target": {"type": "string"},
                            },
                        },
                    }
                ),
            },
        },
        "Agent": {
            "type": "object",
            "additionalProperties": False,
            "required": list(agent_properties),
            "properties": agent_properties,
        },
        "AgentInput": {
            "type": "object",
            "description": "An inventory record. `id` defaults to the one in the URL and "
            "must equal it when given.",
            "additionalProperties": False,
            "properties": agent_input_properties,
        },
        "AgentList": {
            "type": "object",
            "additionalProperties": False,
            "required": ["agents"],
            "properties": {"agents": {"type": "array", "items": _ref("Agent")}},
        },
        "AuditRecord": {
            "type": "object",
            "additionalProperties": False,
            "required": ["seq", "prev_hash", "payload", "record_hash"],
            "properties": {
                "seq": {"type": "integer", "minimum": 0},
                "prev_hash": {"type": "string"},
                "payload": {"type": "object"},
                "record_hash": {"type": "string"},
            },
        },
        "AuditPage": {
            "type": "object",
            "additionalProperties": False,
            "required": ["records", "next"],
            "properties": {
                "records": {"type": "array", "items": _ref("AuditRecord")},
                "next": {
                    "type": ["string", "null"],
                    "description": "Pass as `after` for the next page; null on the last.",
                },
            },
        },
        "Checkpoint": {
            "type": "object",
            "required": ["tree_size", "root_hash", "head_hash", "issued_at", "key_id"],
            "properties": {
                "tree_size": {"type": "integer", "minimum": 0},
                "root_hash": {"type": "string"},
                "head_hash": {"type": "string"},
                "issued_at": {"type": "string"},
                "key_id": {"type": "string"},
                "signature": {"type": "string"},
            },
        },
        "VerifyReport": {
            "type": "object",
            "additionalProperties": False,
            "required": [
                "ok",
                "size",
                "head_hash",
                "root_hash",
                "checkpoints_total",
                "checkpoints_checked",
                "signatures_verified",
                "latest_checkpoint",
                "error",
                "error_index",
                "bad_record",
            ],
            "properties": {
                "ok": {"type": "boolean"},
                "size": {"type": "integer", "minimum": 0},
                "head_hash": {"type": "string"},
                "root_hash": {"type": "string"},
                "checkpoints_total": {"type": "integer", "minimum": 0},
                "checkpoints_checked": {"type": "integer", "minimum": 0},
                "signatures_verified": {"type": "boolean"},
                "latest_checkpoint": _nullable(_ref("Checkpoint")),
                "error": _OPT_STRING,
                "error_index": {"type": ["integer", "null"]},
                "bad_record": {"type": ["object", "null"]},
            },
        },
        "InclusionProof": {
            "type": "object",
            "additionalProperties": False,
            "required": [
                "type",
                "version",
                "decision_id",
                "leaf_index",
                "tree_size",
                "leaf_hash",
                "audit_path",
                "root_hash",
                "checkpoint",
                "record",
            ],
            "properties": {
                "type": {"type": "string", "const": "lictor-inclusion-proof"},
                "version": {"type": "integer"},
                "decision_id": {"type": "string"},
                "leaf_index": {"type": "integer", "minimum": 0},
                "tree_size": {"type": "integer", "minimum": 1},
                "leaf_hash": {"type": "string"},
                "audit_path": {"type": "array", "items": {"type": "string"}},
                "root_hash": {"type": "string"},
                "checkpoint": _ref("Checkpoint"),
                "record": _ref("AuditRecord"),
            },
        },
        "Policies": {
            "type": "object",
            "additionalProperties": False,
            "required": ["version", "rule_count", "timezone", "rules"],
            "properties": {
                "version": {"type": "string"},
                "rule_count": {"type": "integer", "minimum": 0},
                "timezone": {"type": "string"},
                "rules": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["id", "effect", "mode", "severity", "source"],
                        "properties": {
                            "id": {"type": "string"},
                            "effect": {"type": "string", "enum": [o.value for o in Outcome]},
                            "mode": {"type": "string", "enum": [m.value for m in Mode]},
                            "severity": {"type": "string", "enum": [s.value for s in Severity]},
                            "source": {
                                "type": ["string", "null"],
                                "description": "file:line, relative to the bundle",
                            },
                        },
                    },
                },
            },
        },
        "PolicyUpload": {
            "type": "object",
            "additionalProperties": False,
            "required": ["files"],
            "properties": {
                "files": {
                    "type": "object",
                    "minProperties": 1,
                    "description": "Relative file name (ending .yaml or .yml) -> YAML text.",
                    "additionalProperties": {"type": "string"},
                },
                "author": {"type": ["string", "null"], "maxLength": 1000},
                "message": {"type": ["string", "null"], "maxLength": 1000},
            },
        },
        "PolicyVersion": {
            "type": "object",
            "additionalProperties": False,
            "required": ["version", "rule_count", "author", "message", "active"],
            "properties": {
                "version": {"type": "string"},
                "rule_count": {"type": "integer", "minimum": 0},
                "author": {"type": "string"},
                "message": {"type": "string"},
                "active": {"type": "boolean"},
            },
        },
        "Health": {
            "type": "object",
            "additionalProperties": False,
            "required": ["status"],
            "properties": {"status": {"type": "string", "const": "ok"}},
        },
        "Readiness": {
            "type": "object",
            "additionalProperties": False,
            "required": ["status", "checks"],
            "properties": {
                "status": {"type": "string", "enum": ["ready", "not_ready"]},
                "checks": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["store", "audit_writer"],
                    "properties": {
                        "store": {"type": "boolean"},
                        "audit_writer": {"type": "boolean"},
                    },
                },
            },
        },
    }


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _problem(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": _ref("Problem")}},
    }
    if headers:
        response["headers"] = headers
    return response


_AUTH_PROBLEMS: Final = {
    "401": _problem(
        "No credential, or an invalid, unknown or revoked one.",
        {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True}},
    ),
    "403": _problem("The credential's role may not call this."),
}
_BODY_PROBLEMS: Final = {
    "400": _problem("The body is not valid JSON (or repeats a key)."),
    "413": _problem("The body is larger than the server's max_body_bytes."),
    "415": _problem("The body is not application/json."),
    "422": _problem("The body is JSON but not valid here; `pointer` says where."),
}
_COMMON: Final = {
    "405": _problem(
        "Wrong method for this path; see Allow.", {"Allow": {"schema": {"type": "string"}}}
    ),
    "500": _problem("Internal error (logged)."),
    "503": _problem("The store is unavailable."),
}


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1},
    }


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _audit_filters() -> list[dict[str, Any]]:
    return [
        _query("agent", "Only records of this agent."),
        _query("principal", "Only records acting for this principal id."),
        _query("tool", "Only records of this tool."),
        _query(
            "outcome", "Only decisions with this outcome.", {"enum": [o.value for o in Outcome]}
        ),
        _query("session", "Only records of this session."),
        _query("decision_id", "Only records of this decision (the decision and its result)."),
        _query("kind", "Only records of this kind: decision, result, rejected, inventory."),
        _query(
            "since", "Records at or after (RFC 3339).", {"type": "string", "format": "date-time"}
        ),
        _query("until", "Records before (RFC 3339).", {"type": "string", "format": "date-time"}),
    ]


def _operations() -> dict[tuple[str, str], dict[str, Any]]:
    decision_param = _path_param("decision_id", "The decision's id.")
    agent_param = _path_param("agent_id", "The agent's id.")
    return {
        ("POST", "/v1/decide"): {
            "summary": "Decide on one proposed agent action",
            "parameters": [
                {
                    "name": "Lictor-Delegation",
                    "in": "header",
                    "required": False,
                    "description": "A delegation token from /v1/token: the principal and "
                    "chain then come from it, and a body naming another principal is a "
                    "400 (docs/identity.md).",
                    "schema": {"type": "string"},
                }
            ],
            "requestBody": _body("ActionRequest"),
            "responses": {
                "200": _json("Decision", "The decision; deny and review are answers too."),
                **_BODY_PROBLEMS,
            },
        },
        ("POST", "/v1/decisions/{decision_id}/result"): {
            "summary": "Report what happened after an allowed action ran",
            "parameters": [decision_param],
            "requestBody": _body("ResultReport"),
            "responses": {
                "204": {"description": "Recorded."},
                "404": _problem("No such decision."),
                "409": _problem("The decision was not allow: nothing should have run."),
                **_BODY_PROBLEMS,
            },
        },
        ("POST", "/v1/events"): {
            "summary": "Record a gateway event about the calling agent (audited)",
            "requestBody": _body("GatewayEvent"),
            "responses": {"204": {"description": "On the audit trail."}, **_BODY_PROBLEMS},
        },
        ("GET", "/v1/agents"): {
            "summary": "List the inventory",
            "parameters": [
                _query(
                    "status",
                    "Only records with this status (`shadow`: unregistered agents seen).",
                    {"type": "string", "enum": [s.value for s in AgentStatus]},
                )
            ],
            "responses": {
                "200": _json("AgentList", "Matching records, sorted by id."),
                "422": _problem("Unknown, repeated or invalid parameter."),
            },
        },
        ("GET", "/v1/agents/{agent_id}"): {
            "summary": "Read one inventory record",
            "parameters": [agent_param],
            "responses": {
                "200": _json("Agent", "The record."),
                "404": _problem("No such agent."),
            },
        },
        ("PUT", "/v1/agents/{agent_id}"): {
            "summary": "Create or replace an inventory record (audited)",
            "parameters": [agent_param],
            "requestBody": _body("AgentInput"),
            "responses": {
                "200": _json("Agent", "Replaced (or unchanged)."),
                "201": _json("Agent", "Created."),
                "409": _problem("`version` is not the stored version: read and retry."),
                **_BODY_PROBLEMS,
            },
        },
        ("POST", "/v1/token"): {
            "summary": "RFC 8693 token exchange: a delegation token for the acting agent",
            "requestBody": {
                "required": True,
                "content": {FORM_MEDIA_TYPE: {"schema": _ref("TokenRequest")}},
            },
            "responses": {
                "200": _json("TokenResponse", "The delegation token (never cached)."),
                "400": _json("OAuthError", "Refused (RFC 6749 §5.2); `error` says why."),
            },
        },
        ("GET", "/.well-known/jwks.json"): {
            "summary": "Lictor's public token-signing keys, as a JWKS (open)",
            "responses": {"200": _json("JWKS", "The current key first, then retired ones.")},
        },
        ("DELETE", "/v1/agents/{agent_id}"): {
            "summary": "Remove an inventory record (audited)",
            "parameters": [agent_param],
            "responses": {
                "204": {"description": "Removed."},
                "404": _problem("No such agent."),
            },
        },
        ("GET", "/v1/audit"): {
            "summary": "Query the audit trail, one page at a time",
            "parameters": [
                *_audit_filters(),
                _query(
                    "after",
                    "Cursor: the `next` of the previous page.",
                    {"type": "string", "pattern": "^[0-9]{1,18}$"},
                ),
                _query(
                    "limit",
                    "Page size (default 100).",
                    {"type": "integer", "minimum": 1, "maximum": 1000},
                ),
            ],
            "responses": {
                "200": _json("AuditPage", "Matching records in seq order."),
                "422": _problem("A parameter is unknown, repeated or invalid; see `parameter`."),
            },
        },
        ("GET", "/v1/audit/verify"): {
            "summary": "Verify the whole trail and every signed checkpoint",
            "responses": {
                "200": _json("VerifyReport", "The report; `ok` false means tampering."),
                "422": _problem("This endpoint takes no parameters."),
            },
        },
        ("GET", "/v1/audit/export"): {
            "summary": "Export the trail as sealed JSON Lines or OCSF events (streamed)",
            "parameters": [
                _query("format", "jsonl (default) or ocsf.", {"enum": ["jsonl", "ocsf"]}),
                *_audit_filters(),
            ],
            "responses": {
                "200": {
                    "description": "One JSON object per line.",
                    "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
                },
                "422": _problem("A parameter is unknown, repeated or invalid; see `parameter`."),
            },
        },
        ("GET", "/v1/audit/proof/{decision_id}"): {
            "summary": "Prove a decision is in the trail (RFC 9162 inclusion proof)",
            "parameters": [decision_param],
            "responses": {
                "200": _json("InclusionProof", "Verify it with `lictor audit verify-proof`."),
                "404": _problem("No such decision."),
            },
        },
        ("GET", "/v1/policies"): {
            "summary": "The active policy bundle",
            "responses": {"200": _json("Policies", "Version, timezone and rules.")},
        },
        ("POST", "/v1/policies"): {
            "summary": "Upload a policy bundle: checked, tested, stored, live on every replica",
            "requestBody": _body("PolicyUpload"),
            "responses": {
                "201": _json("PolicyVersion", "Stored and active."),
                **_BODY_PROBLEMS,
                "422": _problem(
                    "The body is invalid, or the bundle was refused (it does not load, or one "
                    "of its tests fails; `detail` names the file and line). Nothing changed."
                ),
            },
        },
        ("POST", "/v1/policies/reload"): {
            "summary": "Reload the policy directory: checked, tested, live on every replica",
            "responses": {
                "200": _json("PolicyVersion", "Stored and active."),
                "409": _problem("The policy directory does not exist. Nothing changed."),
                "422": _problem(
                    "The bundle was refused (it does not load, or one of its tests fails; "
                    "`detail` names the file and line), or a parameter was given."
                ),
            },
        },
        ("GET", "/metrics"): {
            "summary": "Prometheus metrics",
            "responses": {
                "200": {
                    "description": "Prometheus text exposition format.",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        },
        ("GET", "/openapi.json"): {
            "summary": "This document (needs a credential)",
            "responses": {
                "200": {
                    "description": "OpenAPI 3.1.",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        },
        ("GET", "/healthz"): {
            "summary": "Liveness: the process is up (open)",
            "responses": {"200": _json("Health", "Up.")},
        },
        ("GET", "/readyz"): {
            "summary": "Readiness: the store answers and the audit writer runs (open)",
            "responses": {
                "200": _json("Readiness", "Ready."),
                "503": _json("Readiness", "Not ready; `checks` says what failed."),
            },
        },
        **_review_operations(),
    }


def build_openapi() -> dict[str, Any]:
    """Return the OpenAPI 3.1 document as a JSON-ready dict."""
    operations = _operations()
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in ENDPOINTS:
        operation = dict(operations[(endpoint.method, endpoint.path)])
        operation["operationId"] = endpoint.name
        responses = dict(operation["responses"])
        for status, response in _COMMON.items():
            # Health probes touch no store, so only readiness documents its own 503.
            if status not in responses and (endpoint.roles is not None or status != "503"):
                responses[status] = response
        if endpoint.roles is None:
            operation["security"] = []
            operation["x-lictor-roles"] = []
        else:
            operation["x-lictor-roles"] = sorted(r.value for r in endpoint.roles)
            for status, response in _AUTH_PROBLEMS.items():
                responses.setdefault(status, response)
        operation["responses"] = responses
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "Lictor", "version": API_VERSION, "description": _DESCRIPTION},
        "paths": paths,
        "components": {
            "schemas": {**_schemas(), **_review_schemas(), **_identity_schemas()},
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from `lictor credentials create`.",
                }
            },
        },
        "security": [{"bearer": []}],
    }


# --- human review and incident response (server/reviews_api.py) -----------------------------

_TIME_OR_NULL: Final = {"type": ["string", "null"], "format": "date-time"}


def _review_schemas() -> dict[str, Any]:
    review_properties: dict[str, Any] = {
        "review_id": {"type": "string"},
        "decision_id": {"type": "string"},
        "agent_id": {"type": "string"},
        "principal_id": _OPT_STRING,
        "tool": {"type": "string"},
        "arguments_digest": {"type": "string"},
        "policy_version": {"type": "string"},
        "status": {
            "type": "string",
            "enum": ["pending", "approved", "denied", "expired", "consumed", "cancelled"],
        },
        "created_at": {"type": "string", "format": "date-time"},
        "expires_at": {"type": "string", "format": "date-time"},
        "resolved_at": _TIME_OR_NULL,
        "reviewer": _OPT_STRING,
        "comment": _OPT_STRING,
        "approved_until": _TIME_OR_NULL,
        "consumed_at": _TIME_OR_NULL,
        "consumed_by": _OPT_STRING,
        "request": {"type": "object"},
        "reasons": {"type": "array", "items": {"type": "object"}},
    }
    reason = {"type": "string", "minLength": 1, "maxLength": 4096, "pattern": r"\S"}
    return {
        "Review": {
            "type": "object",
            "description": "A decision held for a person, bound to the exact action.",
            "required": list(review_properties),
            "properties": review_properties,
        },
        "ReviewList": {
            "type": "object",
            "required": ["reviews"],
            "properties": {"reviews": {"type": "array", "items": _ref("Review")}},
        },
        "ReviewVerdict": {
            "type": "object",
            "additionalProperties": False,
            "required": ["comment"],
            "properties": {"comment": {"type": "string", "maxLength": 4096}},
        },
        "IncidentReason": {
            "type": "object",
            "additionalProperties": False,
            "required": ["reason"],
            "properties": {"reason": reason},
        },
        "OptionalReason": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"reason": {"type": "string", "maxLength": 4096}},
        },
        "PrincipalQuarantine": {
            "type": "object",
            "required": ["principal_id", "quarantined"],
            "properties": {
                "principal_id": {"type": "string"},
                "quarantined": {"type": "boolean"},
                "reason": {"type": "string"},
            },
        },
        "EmergencyInput": {
            "type": "object",
            "additionalProperties": False,
            "required": ["on", "reason"],
            "properties": {"on": {"type": "boolean"}, "reason": reason},
        },
        "Emergency": {
            "type": "object",
            "required": ["on", "reason", "actor", "since"],
            "properties": {
                "on": {"type": "boolean"},
                "reason": _OPT_STRING,
                "actor": _OPT_STRING,
                "since": _TIME_OR_NULL,
            },
        },
    }


def _review_operations() -> dict[tuple[str, str], dict[str, Any]]:
    review_param = _path_param("review_id", "The review's id (from the decision).")
    agent_param = _path_param("agent_id", "The agent's id.")
    principal_param = _path_param("principal_id", "The principal's id.")
    optional_body = {
        "required": False,
        "content": {"application/json": {"schema": _ref("OptionalReason")}},
    }
    verdict = {
        "parameters": [review_param],
        "requestBody": _body("ReviewVerdict"),
        "responses": {
            "200": _json("Review", "The review with its verdict."),
            "403": _problem("Not a reviewer, or the request's own agent or principal."),
            "404": _problem("No such review."),
            "409": _problem("The review is no longer pending."),
            **_BODY_PROBLEMS,
        },
    }
    return {
        ("GET", "/v1/reviews"): {
            "summary": "List reviews, oldest first",
            "parameters": [
                _query(
                    "status",
                    "Only reviews in this state.",
                    {
                        "enum": [
                            "pending",
                            "approved",
                            "denied",
                            "expired",
                            "consumed",
                            "cancelled",
                        ]
                    },
                ),
                _query("agent", "Only reviews of this agent."),
                _query(
                    "limit",
                    "At most this many (default 100).",
                    {"type": "integer", "minimum": 1, "maximum": 1000},
                ),
            ],
            "responses": {
                "200": _json("ReviewList", "Matching reviews."),
                "422": _problem("A parameter is unknown, repeated or invalid; see `parameter`."),
            },
        },
        ("GET", "/v1/reviews/{review_id}"): {
            "summary": "Read a review; with `wait`, long-poll until it leaves pending",
            "parameters": [
                review_param,
                _query(
                    "wait",
                    "Seconds to wait for a verdict (0 to 60).",
                    {"type": "number", "minimum": 0, "maximum": 60},
                ),
            ],
            "responses": {
                "200": _json("Review", "The review (still pending if the wait ran out)."),
                "404": _problem("No such review (or another agent's)."),
                "422": _problem("A parameter is unknown, repeated or invalid; see `parameter`."),
            },
        },
        ("POST", "/v1/reviews/{review_id}/approve"): {
            "summary": "Approve a pending review: allows one identical retry (audited)",
            **verdict,
        },
        ("POST", "/v1/reviews/{review_id}/deny"): {
            "summary": "Deny a pending review (audited)",
            **verdict,
        },
        ("POST", "/v1/agents/{agent_id}/quarantine"): {
            "summary": "Quarantine an agent: deny everything, revoke credentials (audited)",
            "parameters": [agent_param],
            "requestBody": _body("IncidentReason"),
            "responses": {
                "200": _json("Agent", "The quarantined record."),
                "404": _problem("No such agent."),
                **_BODY_PROBLEMS,
            },
        },
        ("POST", "/v1/agents/{agent_id}/release"): {
            "summary": "Release an agent (credentials stay revoked; audited)",
            "parameters": [agent_param],
            "requestBody": optional_body,
            "responses": {
                "200": _json("Agent", "The released record."),
                "404": _problem("No such agent."),
                **_BODY_PROBLEMS,
            },
        },
        ("POST", "/v1/principals/{principal_id}/quarantine"): {
            "summary": "Deny every request made for a principal (audited)",
            "parameters": [principal_param],
            "requestBody": _body("IncidentReason"),
            "responses": {
                "200": _json("PrincipalQuarantine", "Quarantined."),
                **_BODY_PROBLEMS,
            },
        },
        ("POST", "/v1/principals/{principal_id}/release"): {
            "summary": "Lift a principal quarantine (audited)",
            "parameters": [principal_param],
            "requestBody": optional_body,
            "responses": {
                "200": _json("PrincipalQuarantine", "Released."),
                "404": _problem("The principal is not quarantined."),
                **_BODY_PROBLEMS,
            },
        },
        ("GET", "/v1/emergency"): {
            "summary": "Whether emergency mode (deny all agents) is on",
            "responses": {
                "200": _json("Emergency", "The state."),
                "422": _problem("This endpoint takes no parameters."),
            },
        },
        ("POST", "/v1/emergency"): {
            "summary": "Turn emergency mode on or off (audited)",
            "requestBody": _body("EmergencyInput"),
            "responses": {"200": _json("Emergency", "The new state."), **_BODY_PROBLEMS},
        },
    }


# --- token exchange (server/identity_api.py) ---------------------------------------------

FORM_MEDIA_TYPE: Final = "application/x-www-form-urlencoded"


def _identity_schemas() -> dict[str, Any]:
    return {
        "TokenRequest": {
            "type": "object",
            "required": ["grant_type", "subject_token", "subject_token_type"],
            "properties": {
                "grant_type": {
                    "type": "string",
                    "enum": ["urn:ietf:params:oauth:grant-type:token-exchange"],
                },
                "subject_token": {"type": "string"},
                "subject_token_type": {"type": "string"},
                "actor_token": {"type": "string"},
                "actor_token_type": {"type": "string"},
                "scope": {"type": "string"},
                "audience": {"type": "string"},
            },
        },
        "TokenResponse": {
            "type": "object",
            "required": ["access_token", "issued_token_type", "token_type", "expires_in"],
            "properties": {
                "access_token": {"type": "string"},
                "issued_token_type": {"type": "string"},
                "token_type": {"type": "string"},
                "expires_in": {"type": "integer", "minimum": 0},
                "scope": {"type": "string"},
            },
        },
        "OAuthError": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {"type": "string"},
                "error_description": {"type": "string"},
            },
        },
        "JWKS": {
            "type": "object",
            "required": ["keys"],
            "properties": {"keys": {"type": "array", "items": {"type": "object"}}},
        },
    }
