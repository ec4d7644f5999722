"""In-memory implementations of the ports: for ``lictor demo``, tests and embedding.

Nothing here survives the process. The durable implementations are in ``lictor.store``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from lictor.core.agents import Agent
from lictor.core.audit.chain import Checkpoint, SealedRecord, seal_many
from lictor.core.decisions import parse_time
from lictor.core.policy import SessionFacts
from lictor.core.requests import AgentId
from lictor.errors import Conflict, NotFound
from lictor.service.ports import AuditPage, AuditQuery, Credential


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        """Return the current time."""
        return datetime.now(UTC)


class FixedClock:
    """A clock that only moves when told to: deterministic tests and replays."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._now = start

    def now(self) -> datetime:
        """Return the fixed time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self._now += timedelta(seconds=seconds)

    def set(self, moment: datetime) -> None:
        """Jump to ``moment``."""
        self._now = moment


class MemoryAgents:
    """An inventory held in a dict."""

    def __init__(self, agents: Iterable[Agent] = ()) -> None:
        self._agents: dict[AgentId, Agent] = {a.id: a for a in agents}

    def get(self, agent_id: str) -> Agent | None:
        """Return the agent record, or None."""
        return self._agents.get(AgentId(agent_id))

    def put(self, agent: Agent) -> None:
        """Insert or replace a record."""
        self._agents[agent.id] = agent

    def list(self) -> list[Agent]:
        """Return every record, sorted by id."""
        return sorted(self._agents.values(), key=lambda a: a.id)

    def delete(self, agent_id: str) -> bool:
        """Remove a record; return whether it existed."""
        return self._agents.pop(AgentId(agent_id), None) is not None

    def put_if(self, agent: Agent, expected_version: int | None) -> bool:
        """Write only if the stored version is ``expected_version`` (None: absent)."""
        with _AGENTS_LOCK:
            current = self._agents.get(agent.id)
            if (current.version if current is not None else None) != expected_version:
                return False
            self._agents[agent.id] = agent
            return True


_AGENTS_LOCK = threading.Lock()


class MemorySessions:
    """Session state in a bounded LRU dict (old sessions are forgotten first)."""

    def __init__(self, limit: int = 100_000) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, SessionFacts] = OrderedDict()

    def facts(self, session_id: str) -> SessionFacts:
        """Return the session's facts, empty when unknown."""
        with self._lock:
            found = self._sessions.get(session_id)
        return found if found is not None else SessionFacts(id=session_id)

    def record_call(self, session_id: str, tool: str, labels: frozenset[str]) -> None:
        """Count an allowed call and add its labels."""
        with self._lock:
            old = self._sessions.get(session_id) or SessionFacts(id=session_id)
            counters = dict(old.counters)
            counters[tool] = counters.get(tool, 0) + 1
            self._store(
                SessionFacts(
                    id=session_id,
                    labels=old.labels | labels,
                    counters=counters,
                    calls=old.calls + 1,
                )
            )

    def add_labels(self, session_id: str, labels: frozenset[str]) -> None:
        """Add reported labels."""
        with self._lock:
            old = self._sessions.get(session_id) or SessionFacts(id=session_id)
            self._store(
                SessionFacts(
                    id=session_id,
                    labels=old.labels | labels,
                    counters=old.counters,
                    calls=old.calls,
                )
            )

    def _store(self, facts: SessionFacts) -> None:
        self._sessions[facts.id] = facts
        self._sessions.move_to_end(facts.id)
        while len(self._sessions) > self._limit:
            self._sessions.popitem(last=False)


class MemoryAudit:
    """Audit entries in a list. **Not durable**: for demos and tests only."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.entries: list[Mapping[str, Any]] = []
        self._by_decision: dict[str, Mapping[str, Any]] = {}

    def append(self, entry: Mapping[str, Any]) -> None:
        """Keep the entry."""
        with self._lock:
            self.entries.append(entry)
            if entry.get("kind") == "decision":
                self._by_decision[str(entry["decision_id"])] = entry

    def find_decision(self, decision_id: str) -> Mapping[str, Any] | None:
        """Return the decision entry with this id."""
        with self._lock:
            return self._by_decision.get(decision_id)


class MemoryAuditStore:
    """A hash-chained trail in a list: the reference implementation of ``AuditStore``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[SealedRecord] = []
        self._decisions: dict[str, SealedRecord] = {}
        self._checkpoints: list[Checkpoint] = []

    def append_batch(self, payloads: Sequence[Mapping[str, Any]]) -> list[SealedRecord]:
        """Seal after the head and keep; a reused decision id refuses the whole batch."""
        with self._lock:
            ids = [str(p.get("decision_id")) for p in payloads if p.get("kind") == "decision"]
            for decision_id in ids:
                if decision_id in self._decisions or ids.count(decision_id) > 1:
                    raise Conflict("decision", decision_id, "decision id already recorded")
            sealed = seal_many(self._records[-1] if self._records else None, payloads)
            self._records.extend(sealed)
            for record in sealed:
                if record.payload.get("kind") == "decision":
                    self._decisions[str(record.payload.get("decision_id"))] = record
            return sealed

    def head(self) -> SealedRecord | None:
        """Return the last record."""
        with self._lock:
            return self._records[-1] if self._records else None

    def size(self) -> int:
        """Return the number of records."""
        with self._lock:
            return len(self._records)

    def records(self, start: int = 0, end: int | None = None) -> Iterator[SealedRecord]:
        """Yield records in ``[start, end)``."""
        with self._lock:
            chosen = self._records[start:end]
        yield from chosen

    def find_decision(self, decision_id: str) -> SealedRecord | None:
        """Return the decision record with this id."""
        with self._lock:
            return self._decisions.get(decision_id)

    def query(self, query: AuditQuery) -> AuditPage:
        """Filter in memory, in seq order."""
        with self._lock:
            candidates = self._records[query.after_seq + 1 :]
        found: list[SealedRecord] = []
        for record in candidates:
            if matches_query(record.payload, query):
                found.append(record)
                if len(found) > query.limit:
                    break
        more = len(found) > query.limit
        page = tuple(found[: query.limit])
        return AuditPage(page, page[-1].seq if more and page else None)

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Keep a checkpoint."""
        with self._lock:
            self._checkpoints.append(checkpoint)

    def checkpoints(self) -> list[Checkpoint]:
        """Return all checkpoints, oldest first."""
        with self._lock:
            return list(self._checkpoints)


def matches_query(payload: Mapping[str, Any], query: AuditQuery) -> bool:
    """Return whether an audit payload passes the query's filters (the reference logic)."""
    principal = payload.get("principal")
    principal_id = principal.get("id") if isinstance(principal, Mapping) else None
    checks = (
        (query.agent_id, payload.get("agent_id")),
        (query.principal_id, principal_id),
        (query.tool, payload.get("tool")),
        (query.outcome, payload.get("outcome")),
        (query.session_id, payload.get("session_id")),
        (query.decision_id, payload.get("decision_id")),
        (query.kind, payload.get("kind")),
    )
    if any(want is not None and have != want for want, have in checks):
        return False
    if query.since is not None or query.until is not None:
        at = payload.get("at")
        if not isinstance(at, str):
            return False
        moment = parse_time(at)
        if query.since is not None and moment < query.since:
            return False
        if query.until is not None and moment >= query.until:
            return False
    return True


class MemoryCredentials:
    """Credential records in a dict."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[Credential, str]] = {}

    def add(self, credential: Credential, secret_hash: str) -> None:
        """Store a new credential."""
        with self._lock:
            if credential.id in self._items:
                raise Conflict("credential", credential.id)
            self._items[credential.id] = (credential, secret_hash)

    def get(self, credential_id: str) -> tuple[Credential, str] | None:
        """Return the record and its secret hash."""
        with self._lock:
            return self._items.get(credential_id)

    def list(self, subject: str | None = None) -> list[Credential]:
        """Return credentials, oldest first."""
        with self._lock:
            items = [c for c, _ in self._items.values()]
        chosen = [c for c in items if subject is None or c.subject == subject]
        return sorted(chosen, key=lambda c: (c.created_at, c.id))

    def revoke(self, credential_id: str, at: datetime) -> Credential:
        """Mark revoked (idempotent)."""
        with self._lock:
            found = self._items.get(credential_id)
            if found is None:
                raise NotFound("credential", credential_id)
            credential, secret_hash = found
            if credential.revoked_at is None:
                credential = replace(credential, revoked_at=at)
                self._items[credential_id] = (credential, secret_hash)
            return credential

    def expire(self, credential_id: str, at: datetime) -> Credential:
        """Set ``expires_at`` unless an earlier one is set."""
        with self._lock:
            found = self._items.get(credential_id)
            if found is None:
                raise NotFound("credential", credential_id)
            credential, secret_hash = found
            if credential.expires_at is None or at < credential.expires_at:
                credential = replace(credential, expires_at=at)
                self._items[credential_id] = (credential, secret_hash)
            return credential

    def record_use(self, used: Mapping[str, datetime]) -> None:
        """Set ``last_used_at`` where later than the stored one; unknown ids are skipped."""
        with self._lock:
            for credential_id, at in used.items():
                found = self._items.get(credential_id)
                if found is None:
                    continue
                credential, secret_hash = found
                if credential.last_used_at is None or at > credential.last_used_at:
                    self._items[credential_id] = (replace(credential, last_used_at=at), secret_hash)
