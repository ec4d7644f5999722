"""Ports: what the use cases need from the outside world, as Protocols they own.

Each port has an in-memory implementation in :mod:`lictor.service.memory`; durable
ones live in :mod:`lictor.store`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from lictor.core.agents import Agent
from lictor.core.audit.chain import Checkpoint, SealedRecord
from lictor.core.decisions import format_time
from lictor.core.policy import SessionFacts
from lictor.core.risk.session import SessionState


class Clock(Protocol):
    """Source of the current time (aware UTC)."""

    def now(self) -> datetime:
        """Return the current time."""
        ...


class AgentDirectory(Protocol):
    """Read access to the inventory."""

    def get(self, agent_id: str) -> Agent | None:
        """Return the agent record, or None if it is not registered."""
        ...


class SessionStore(Protocol):
    """Per-session state that rules read (labels, counters)."""

    def facts(self, session_id: str) -> SessionFacts:
        """Return what the session has done so far (empty for a new session)."""
        ...

    def record_call(self, session_id: str, tool: str, labels: frozenset[str]) -> None:
        """Count an allowed call and add the data labels it touched."""
        ...

    def add_labels(self, session_id: str, labels: frozenset[str]) -> None:
        """Add data labels reported after a call ran."""
        ...


class AuditLog(Protocol):
    """Where audit entries go. ``append`` returns only once the entry is durable."""

    def append(self, entry: Mapping[str, Any]) -> None:
        """Persist one entry; raise StoreError if it could not be made durable."""
        ...

    def find_decision(self, decision_id: str) -> Mapping[str, Any] | None:
        """Return the decision entry with this id, if recorded."""
        ...


# --- durable state (issue: server, storage, audit trail) ---------------------------------


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters for reading the audit trail; every given field must match.

    ``after_seq`` is the paging cursor: records with ``seq > after_seq``, in seq order.
    Times compare on the entry's ``at`` field (RFC 3339 UTC).
    """

    agent_id: str | None = None
    principal_id: str | None = None
    tool: str | None = None
    outcome: str | None = None
    session_id: str | None = None
    decision_id: str | None = None
    kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_seq: int = -1
    limit: int = 100


@dataclass(frozen=True, slots=True)
class AuditPage:
    """One page of audit records; ``next_after_seq`` is None on the last page."""

    records: tuple[SealedRecord, ...]
    next_after_seq: int | None


class AuditStore(Protocol):
    """The durable, hash-chained audit trail.

    ``append_batch`` seals the payloads after the current head (prev hash, seq) and
    commits them in one transaction; it returns only when they are durable. It must be
    safe against concurrent appenders on other nodes sharing the store (the chain never
    forks): adapters serialise appends with a database lock.
    """

    def append_batch(self, payloads: Sequence[Mapping[str, Any]]) -> list[SealedRecord]:
        """Seal and durably store payloads; return the sealed records in order."""
        ...

    def head(self) -> SealedRecord | None:
        """Return the last record, or None for an empty trail."""
        ...

    def size(self) -> int:
        """Return the number of records."""
        ...

    def records(self, start: int = 0, end: int | None = None) -> Iterator[SealedRecord]:
        """Yield records with ``start <= seq < end`` in seq order, streaming."""
        ...

    def find_decision(self, decision_id: str) -> SealedRecord | None:
        """Return the ``decision`` record with this id."""
        ...

    def query(self, query: AuditQuery) -> AuditPage:
        """Return one page of records matching the filters."""
        ...

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Store a signed checkpoint."""
        ...

    def checkpoints(self) -> list[Checkpoint]:
        """Return all checkpoints, oldest first."""
        ...


class AgentStore(Protocol):
    """The inventory, readable and writable."""

    def get(self, agent_id: str) -> Agent | None:
        """Return the agent record, or None if it is not registered."""
        ...

    def list(self) -> list[Agent]:
        """Return every record, sorted by id."""
        ...

    def put(self, agent: Agent) -> None:
        """Insert or replace a record."""
        ...

    def delete(self, agent_id: str) -> bool:
        """Remove a record; return whether it existed."""
        ...

    def put_if(self, agent: Agent, expected_version: int | None) -> bool:
        """Write ``agent`` only if the stored record has ``expected_version``.

        ``expected_version`` None means "only if there is no record". Returns whether
        it wrote; a False is a lost race (someone else changed the record), never an
        error. Atomic across processes sharing the store.
        """
        ...


class CredentialKind(StrEnum):
    """Who holds a credential: an agent, or a person operating Lictor."""

    AGENT = "agent"
    ADMIN = "admin"


class Role(StrEnum):
    """What a credential may do. Agents only decide and report."""

    AGENT = "agent"
    ADMIN = "admin"
    REVIEWER = "reviewer"
    AUDITOR = "auditor"


@dataclass(frozen=True, slots=True)
class Credential:
    """A bearer credential's record. The secret itself is never stored, only its hash."""

    id: str
    kind: CredentialKind
    subject: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None = None
    description: str = ""
    expires_at: datetime | None = None
    last_used_at: datetime | None = None

    @property
    def is_active(self) -> bool:
        """True until revoked (an expiry is checked against a clock: :meth:`is_valid_at`)."""
        return self.revoked_at is None

    def is_valid_at(self, now: datetime) -> bool:
        """True if not revoked and not past ``expires_at`` (the end of a rotation overlap)."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def to_json(self) -> dict[str, Any]:
        """Return the wire form (no secret, no hash)."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "subject": self.subject,
            "role": self.role.value,
            "created_at": format_time(self.created_at),
            "revoked_at": format_time(self.revoked_at) if self.revoked_at else None,
            "description": self.description,
            "expires_at": format_time(self.expires_at) if self.expires_at else None,
            "last_used_at": format_time(self.last_used_at) if self.last_used_at else None,
        }


class CredentialStore(Protocol):
    """Credential records keyed by id, each with the SHA-256 of its secret."""

    def add(self, credential: Credential, secret_hash: str) -> None:
        """Store a new credential; raise Conflict if the id exists."""
        ...

    def get(self, credential_id: str) -> tuple[Credential, str] | None:
        """Return the record and its secret hash."""
        ...

    def list(self, subject: str | None = None) -> list[Credential]:
        """Return credentials, optionally of one subject, oldest first."""
        ...

    def revoke(self, credential_id: str, at: datetime) -> Credential:
        """Mark revoked (idempotent); raise NotFound if unknown."""
        ...

    def expire(self, credential_id: str, at: datetime) -> Credential:
        """Make the credential stop working at ``at`` (an earlier expiry is kept)."""
        ...

    def record_use(self, used: Mapping[str, datetime]) -> None:
        """Set ``last_used_at`` of each credential id (a later stored time is kept)."""
        ...


# --- risk state (docs/risk.md) ------------------------------------------------------------


class WindowTransaction(Protocol):
    """One atomic read-then-record of sliding-window events (see ``RiskStore.counting``)."""

    def totals(self, series: str, scope_key: str, since: datetime) -> tuple[int, float]:
        """Return the count and the sum of amounts of the series' events at or after ``since``."""
        ...

    def add(
        self, series: str, scope_key: str, at: datetime, amount: float, keep_seconds: int
    ) -> None:
        """Record one event; events older than ``keep_seconds`` before ``at`` may go."""
        ...


class RiskStore(Protocol):
    """Session state, baselines and window events, shared by every replica.

    ``update_session`` is an atomic read-modify-write of one session. ``counting`` holds
    the locks of the given series keys (other replicas wait) for the whole block, so a
    budget read, the decision and the event it adds cannot interleave with another's.
    """

    def session(self, session_id: str) -> SessionState | None:
        """Return the stored state of a session, or None."""
        ...

    def session_version(self, session_id: str) -> int | None:
        """Return the stored state's version (cheap), or None."""
        ...

    def update_session(
        self, session_id: str, change: Callable[[SessionState], SessionState], at: datetime
    ) -> SessionState:
        """Apply ``change`` to the stored state (empty if none) atomically; return the result."""
        ...

    def baseline(self, agent_id: str) -> Mapping[str, Any] | None:
        """Return the stored baseline JSON of an agent, or None."""
        ...

    def save_baseline(self, agent_id: str, data: Mapping[str, Any], at: datetime) -> None:
        """Store an agent's baseline JSON (last writer wins)."""
        ...

    def counting(self, lock_keys: Sequence[str]) -> AbstractContextManager[WindowTransaction]:
        """Return a transaction holding the locks of ``lock_keys`` until it ends."""
        ...
