"""Inventory use cases: register, update, suspend, retire, apply a file, record shadow agents.

Every change goes through one path, :meth:`Inventory._write`, which keeps three rules:

1. **Audited first.** The ``agent_change`` entry (who, what, before, after, why) is
   durable before the store is written. The trail may hold a change whose write then
   lost a race, but never lacks a change that was made.
2. **Versioned.** Each write sets ``version`` to the stored version plus one and only
   lands if the stored version is still the one it read (``AgentStore.put_if``), so
   two writers on two replicas cannot silently overwrite each other. A caller that
   names the version it read gets :class:`~lictor.errors.Conflict` when it is stale.
3. **No-ops write nothing.** A change that leaves the managed fields as they are
   writes no record, bumps no version and audits nothing: applying the same file twice
   is idempotent.

Shadow sightings are bookkeeping, not changes people made: the first sighting of an
agent is audited (``shadow_discovered``), later ones only update the record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final

from lictor.core.agents import (
    MANAGED_FIELDS,
    Agent,
    AgentStatus,
    ShadowSighting,
    parse_agent,
)
from lictor.core.requests import AgentId
from lictor.errors import Conflict, NotFound, PolicyError
from lictor.service.ports import AgentStore, AuditLog, AuditStore, Clock
from lictor.service.records import agent_change_entry

__all__ = [
    "SHADOW_ACTOR",
    "ApplyItem",
    "ApplyPlan",
    "Change",
    "Inventory",
    "TrailAudit",
]

SHADOW_ACTOR: Final = "lictor:shadow-discovery"
"""The ``actor`` of records and audit entries created by a shadow sighting."""

_WRITE_ATTEMPTS: Final = 5


@dataclass(frozen=True, slots=True)
class Change:
    """One inventory change: the record before and after. ``changed`` empty = no-op."""

    action: str
    agent_id: str
    before: Agent | None
    after: Agent | None
    changed: tuple[str, ...]

    @property
    def is_noop(self) -> bool:
        """True when nothing was written."""
        return not self.changed

    def to_json(self) -> dict[str, Any]:
        """Return the wire form (for ``--json`` output)."""
        return {
            "action": self.action,
            "agent_id": self.agent_id,
            "changed": list(self.changed),
            "before": self.before.to_json() if self.before is not None else None,
            "after": self.after.to_json() if self.after is not None else None,
        }


@dataclass(frozen=True, slots=True)
class ApplyItem:
    """What ``apply`` does (or would do) to one agent: add, adopt, change, retire, unchanged."""

    agent_id: str
    action: str
    fields: tuple[str, ...] = ()
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the wire form."""
        return {
            "agent_id": self.agent_id,
            "action": self.action,
            "fields": list(self.fields),
            "before": dict(self.before) if self.before is not None else None,
            "after": dict(self.after) if self.after is not None else None,
        }


@dataclass(frozen=True, slots=True)
class ApplyPlan:
    """The diff between an inventory file and the store, in agent id order."""

    items: tuple[ApplyItem, ...] = field(default_factory=tuple)
    applied: bool = False

    @property
    def changes(self) -> tuple[ApplyItem, ...]:
        """The items that write something."""
        return tuple(i for i in self.items if i.action != "unchanged")

    def to_json(self) -> dict[str, Any]:
        """Return the wire form."""
        return {"applied": self.applied, "items": [i.to_json() for i in self.items]}


class TrailAudit:
    """An ``AuditLog`` straight onto an ``AuditStore`` (for the CLI, without a writer).

    The store serialises appenders with a database lock, so the CLI can write while a
    server runs on the same database.
    """

    def __init__(self, store: AuditStore) -> None:
        self._store = store

    def append(self, entry: Mapping[str, Any]) -> None:
        """Seal and commit one entry; raise StoreError if it could not be made durable."""
        self._store.append_batch([entry])

    def find_decision(self, decision_id: str) -> Mapping[str, Any] | None:
        """Return the decision entry with this id, if recorded."""
        found = self._store.find_decision(decision_id)
        return found.payload if found is not None else None


def _content_of(wanted: Agent) -> Callable[[Agent | None], Agent | None]:
    """Return the change that gives a record ``wanted``'s managed fields."""

    def compute(before: Agent | None) -> Agent | None:
        return wanted if before is None else before.with_content_of(wanted)

    return compute


def _diff(before: Agent | None, after: Agent | None) -> tuple[str, ...]:
    old = before.managed() if before is not None else {}
    new = after.managed() if after is not None else {}
    return tuple(sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k)))


class Inventory:
    """Changes to the inventory, audited and versioned. Thread-safe if its ports are."""

    def __init__(
        self,
        store: AgentStore,
        audit: AuditLog,
        clock: Clock,
        *,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self._audit = audit
        self._clock = clock
        self._on_change = on_change

    # --- reads -------------------------------------------------------------------------

    def get(self, agent_id: str) -> Agent:
        """Return one record.

        Raises:
            NotFound: no such agent.
        """
        agent = self.store.get(agent_id)
        if agent is None:
            raise NotFound("agent", agent_id)
        return agent

    def list(self, *, status: AgentStatus | None = None, shadow_only: bool = False) -> list[Agent]:
        """Return records sorted by id, optionally only one status or only shadow agents."""
        wanted = AgentStatus.SHADOW if shadow_only else status
        return [a for a in self.store.list() if wanted is None or a.status is wanted]

    # --- changes -----------------------------------------------------------------------

    def register(
        self,
        agent: Agent,
        *,
        actor: str,
        credential_id: str | None = None,
        source: str | None = None,
        reason: str | None = None,
    ) -> Change:
        """Add a new agent, or adopt the shadow record of that id.

        Adopting keeps the sighting (what it was seen doing) and the original
        ``created_at``; the status becomes the given one (``active`` by default).

        Raises:
            Conflict: a registered (non-shadow) agent has this id; use update.
        """

        def compute(before: Agent | None) -> Agent | None:
            if before is not None and before.status is not AgentStatus.SHADOW:
                raise Conflict(
                    "agent", agent.id, f"agent {agent.id!r} is already registered; update it"
                )
            if before is None:
                return agent
            return before.with_content_of(agent)

        before = self.store.get(agent.id)
        action = "adopt" if before is not None else "register"
        return self._write(
            agent.id, compute, action, actor, credential_id, source, reason, expected=None
        )

    def put(
        self,
        agent: Agent,
        *,
        expected_version: int | None,
        actor: str,
        credential_id: str | None = None,
        source: str | None = None,
        reason: str | None = None,
    ) -> Change:
        """Create or replace a record's managed fields (``PUT /v1/agents/{id}``).

        ``expected_version`` is the version the caller read (0 for "no record yet");
        None skips the check.

        Raises:
            Conflict: the stored version is not ``expected_version``.
        """

        def compute(before: Agent | None) -> Agent | None:
            return agent if before is None else before.with_content_of(agent)

        return self._write(
            agent.id,
            compute,
            "put",
            actor,
            credential_id,
            source,
            reason,
            expected=expected_version,
        )

    def update(
        self,
        agent_id: str,
        fields: Mapping[str, Any],
        *,
        actor: str,
        expected_version: int | None = None,
        credential_id: str | None = None,
        source: str | None = None,
        reason: str | None = None,
    ) -> Change:
        """Change some managed fields of an existing record.

        Raises:
            NotFound: no such agent.
            PolicyError: a field is unknown or invalid (names it).
            Conflict: the stored version is not ``expected_version``.
        """
        unknown = sorted(set(fields) - set(MANAGED_FIELDS))
        if unknown:
            raise PolicyError(
                f"{unknown[0]!r} cannot be updated (updatable: {', '.join(MANAGED_FIELDS)})",
                pointer=f"/{unknown[0]}",
            )

        def compute(before: Agent | None) -> Agent | None:
            if before is None:
                raise NotFound("agent", agent_id)
            merged = parse_agent({**before.managed(), **fields})
            return before.with_content_of(merged)

        return self._write(
            agent_id,
            compute,
            "update",
            actor,
            credential_id,
            source,
            reason,
            expected=expected_version,
        )

    def set_status(
        self,
        agent_id: str,
        status: AgentStatus,
        *,
        actor: str,
        reason: str,
        credential_id: str | None = None,
        source: str | None = None,
    ) -> Change:
        """Suspend, retire or reactivate an agent, with the reason on the record.

        Raises:
            NotFound: no such agent.
        """

        def compute(before: Agent | None) -> Agent | None:
            if before is None:
                raise NotFound("agent", agent_id)
            return replace(before, status=status)

        return self._write(
            agent_id, compute, status.value, actor, credential_id, source, reason, expected=None
        )

    def revoke_tokens(self, agent_id: str, *, after: datetime, actor: str, reason: str) -> Change:
        """Refuse every delegation token issued to ``agent_id`` before ``after``.

        Raises:
            NotFound: no such agent.
        """

        def compute(before: Agent | None) -> Agent | None:
            if before is None:
                raise NotFound("agent", agent_id)
            return replace(before, tokens_valid_after=after)

        return self._write(
            agent_id,
            compute,
            "revoke_tokens",
            actor,
            None,
            None,
            reason,
            expected=None,
            bookkeeping=True,
        )

    def delete(
        self,
        agent_id: str,
        *,
        actor: str,
        credential_id: str | None = None,
        source: str | None = None,
        reason: str | None = None,
    ) -> Change:
        """Remove a record altogether (retiring keeps the history; prefer it).

        Raises:
            NotFound: no such agent.
        """
        before = self.get(agent_id)
        self._audit.append(
            agent_change_entry(
                action="delete",
                agent_id=agent_id,
                before=before.to_json(),
                after=None,
                at=self._clock.now(),
                actor=actor,
                credential_id=credential_id,
                source=source,
                reason=reason,
            )
        )
        self.store.delete(agent_id)
        self._changed(agent_id)
        return Change("delete", agent_id, before, None, _diff(before, None))

    def plan(self, records: Sequence[Agent], *, retire_missing: bool = False) -> ApplyPlan:
        """Return what :meth:`apply` would do, changing nothing.

        Raises:
            PolicyError: the file names one agent twice.
        """
        seen: set[str] = set()
        for agent in records:
            if agent.id in seen:
                raise PolicyError(f"agent {agent.id!r} is listed twice", pointer="/agents")
            seen.add(agent.id)
        stored = {a.id: a for a in self.store.list()}
        items: list[ApplyItem] = []
        for agent in records:
            before = stored.get(agent.id)
            if before is None:
                items.append(ApplyItem(agent.id, "add", _diff(None, agent), None, agent.managed()))
            elif before.same_content(agent):
                items.append(ApplyItem(agent.id, "unchanged"))
            else:
                action = "adopt" if before.status is AgentStatus.SHADOW else "change"
                fields = _diff(before, agent)
                items.append(
                    ApplyItem(
                        agent.id,
                        action,
                        fields,
                        {k: before.managed()[k] for k in fields},
                        {k: agent.managed()[k] for k in fields},
                    )
                )
        if retire_missing:
            for agent_id, before in stored.items():
                if agent_id in seen or before.status in (
                    AgentStatus.RETIRED,
                    AgentStatus.SHADOW,
                ):
                    continue
                items.append(
                    ApplyItem(
                        agent_id,
                        "retire",
                        ("status",),
                        {"status": before.status.value},
                        {"status": AgentStatus.RETIRED.value},
                    )
                )
        return ApplyPlan(tuple(sorted(items, key=lambda i: i.agent_id)))

    def apply(
        self,
        records: Sequence[Agent],
        *,
        actor: str,
        source: str | None = None,
        retire_missing: bool = False,
        dry_run: bool = False,
    ) -> ApplyPlan:
        """Make the store match an inventory file; return the diff.

        Records in the store but not in the file are left alone unless
        ``retire_missing`` (then retired, never deleted). Shadow records are never
        retired this way. Each write is one audited, versioned change.

        Raises:
            PolicyError: the file names one agent twice.
            Conflict: a record kept changing under us (retry the apply).
        """
        plan = self.plan(records, retire_missing=retire_missing)
        if dry_run:
            return plan
        by_id = {a.id: a for a in records}
        for item in plan.changes:
            if item.action == "retire":
                self.set_status(
                    item.agent_id,
                    AgentStatus.RETIRED,
                    actor=actor,
                    source=source,
                    reason="not in the applied inventory file",
                )
                continue
            self._write(
                item.agent_id,
                _content_of(by_id[AgentId(item.agent_id)]),
                "apply",
                actor,
                None,
                source,
                None,
                expected=None,
            )
        return replace(plan, applied=True)

    def record_shadow(self, agent_id: str, sighting: ShadowSighting) -> Agent | None:
        """Create or update the shadow record of an unregistered agent.

        Returns the stored record, or None when the id turned out to be registered
        (a sighting never touches a registered agent).

        Raises:
            StoreError: the store or the audit trail failed (the caller keeps the
                sighting and retries).
        """
        for _ in range(_WRITE_ATTEMPTS):
            before = self.store.get(agent_id)
            now = self._clock.now()
            if before is None:
                after = Agent(
                    id=AgentId(agent_id),
                    name="",
                    owner="",
                    purpose="seen asking to act without being registered",
                    status=AgentStatus.SHADOW,
                    created_by=SHADOW_ACTOR,
                    created_at=sighting.first_seen_at,
                    updated_by=SHADOW_ACTOR,
                    updated_at=now,
                    version=1,
                    shadow=sighting,
                )
                self._audit.append(
                    agent_change_entry(
                        action="shadow_discovered",
                        agent_id=agent_id,
                        before=None,
                        after=after.to_json(),
                        at=now,
                        actor=SHADOW_ACTOR,
                        source=sighting.source,
                    )
                )
                expected = None
            elif before.status is AgentStatus.SHADOW:
                merged = before.shadow.merge(sighting) if before.shadow is not None else sighting
                after = replace(
                    before,
                    shadow=merged,
                    version=before.version + 1,
                    updated_by=SHADOW_ACTOR,
                    updated_at=now,
                )
                expected = before.version
            else:
                return None
            if self.store.put_if(after, expected):
                self._changed(agent_id)
                return after
        raise Conflict("agent", agent_id, f"agent {agent_id!r} kept changing; sighting kept")

    # --- the one write path ------------------------------------------------------------

    def _write(
        self,
        agent_id: str,
        compute: Callable[[Agent | None], Agent | None],
        action: str,
        actor: str,
        credential_id: str | None,
        source: str | None,
        reason: str | None,
        *,
        expected: int | None,
        bookkeeping: bool = False,
    ) -> Change:
        # A change is computed from the stored record, never from a cached copy: a stale
        # read (another replica quarantined the agent a moment ago) would make a release
        # look like a no-op. A caching store (the server's) offers ``invalidate``.
        refresh: Callable[[str], None] | None = getattr(self.store, "invalidate", None)
        for _ in range(_WRITE_ATTEMPTS):
            if refresh is not None:
                refresh(agent_id)
            before = self.store.get(agent_id)
            stored_version = before.version if before is not None else 0
            if expected is not None and expected != stored_version:
                raise Conflict(
                    "agent",
                    agent_id,
                    f"agent {agent_id!r} is at version {stored_version}, not {expected}; "
                    "read it again and retry",
                )
            proposed = compute(before)
            if proposed is None:
                return Change(action, agent_id, before, before, ())
            fields = _diff(before, proposed)
            if bookkeeping and before is not None:
                fields = tuple(
                    sorted(
                        k
                        for k, v in proposed.to_json().items()
                        if before.to_json().get(k) != v and k not in ("updated_at", "updated_by")
                    )
                )
            if not fields:
                return Change(action, agent_id, before, before, ())
            now = self._clock.now()
            after = replace(
                proposed,
                created_by=before.created_by if before is not None else actor,
                created_at=before.created_at if before is not None else now,
                updated_by=actor,
                updated_at=now,
                version=stored_version + 1,
                shadow=before.shadow if before is not None else None,
                tokens_valid_after=(
                    proposed.tokens_valid_after
                    if bookkeeping or before is None
                    else before.tokens_valid_after
                ),
            )
            self._audit.append(
                agent_change_entry(
                    action=action,
                    agent_id=agent_id,
                    before=before.to_json() if before is not None else None,
                    after=after.to_json(),
                    at=now,
                    actor=actor,
                    credential_id=credential_id,
                    source=source,
                    reason=reason,
                )
            )
            if self.store.put_if(after, before.version if before is not None else None):
                self._changed(agent_id)
                return Change(action, agent_id, before, after, fields)
            if expected is not None:
                raise Conflict(
                    "agent", agent_id, f"agent {agent_id!r} changed while it was being written"
                )
        raise Conflict("agent", agent_id, f"agent {agent_id!r} kept changing; try again")

    def _changed(self, agent_id: str) -> None:
        if self._on_change is not None:
            self._on_change(agent_id)
