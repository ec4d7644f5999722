"""The policy lifecycle: stored versions, safe activation, rule diffs, backtests and lint.

Invariants:

1. A bundle becomes live only after it loaded completely *and* its own test cases passed;
   otherwise the caller gets the precise error and the old policy stays live.
2. The store's active pointer is the truth for every replica: activating a version
   writes the pointer first, then swaps locally; every replica's :meth:`PolicyLifecycle.sync`
   swaps to whatever the pointer names, from the stored files of that version.
3. Backtests and lint never change anything: they read the audit trail or a bundle.

HTTP, threads and file watching live at the edges (``lictor.server.policies_api``).
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from lictor.core.agents import Agent
from lictor.core.decisions import Outcome, format_time, parse_time
from lictor.core.policy import CompiledPolicy, Facts, Mode, Rule, SessionFacts, evaluate
from lictor.core.policy.model import Match, is_glob, matches_any
from lictor.core.requests import ActionRequest, AgentId, Context, SessionId, parse_request
from lictor.errors import ConfigError, InvalidToolCall, NotFound, PolicyError
from lictor.service.policies import Bundle, bundle_from_files, load_bundle
from lictor.service.policy_tests import TestCase, collect_cases, run_cases
from lictor.service.ports import AuditQuery, AuditStore, Clock

log = logging.getLogger("lictor.lifecycle")

# --- versions --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    """One stored bundle: its content digest, who loaded it and why, and its files."""

    digest: str
    author: str
    message: str
    loaded_at: datetime
    rule_count: int
    files: Mapping[str, str] = field(default_factory=dict)

    def to_json(self, *, with_files: bool = False) -> dict[str, Any]:
        """Return the wire form (files only when asked: they can be large)."""
        out: dict[str, Any] = {
            "version": self.digest,
            "author": self.author,
            "message": self.message,
            "loaded_at": self.loaded_at.isoformat().replace("+00:00", "Z"),
            "rule_count": self.rule_count,
        }
        if with_files:
            out["files"] = dict(self.files)
        return out


@dataclass(frozen=True, slots=True)
class ActivePointer:
    """Which version every replica should run, since when, and who said so."""

    digest: str
    activated_at: datetime
    activated_by: str


class PolicyVersionStore(Protocol):
    """Stored versions (keyed by digest, written once) and the active pointer."""

    def add(self, version: PolicyVersion) -> bool:
        """Store a version unless stored already; return whether it was new."""
        ...

    def get(self, digest: str) -> PolicyVersion | None:
        """Return the version with exactly this digest."""
        ...

    def history(self) -> list[PolicyVersion]:
        """Return every version, oldest first."""
        ...

    def activate(self, digest: str, at: datetime, by: str) -> None:
        """Point every replica at ``digest``."""
        ...

    def active(self) -> ActivePointer | None:
        """Return the active pointer, or None."""
        ...


class MemoryPolicyVersions:
    """Versions in a dict: for tests and embedded use (nothing survives the process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: dict[str, PolicyVersion] = {}
        self._active: ActivePointer | None = None

    def add(self, version: PolicyVersion) -> bool:
        """Store a version unless stored already."""
        with self._lock:
            if version.digest in self._versions:
                return False
            self._versions[version.digest] = version
            return True

    def get(self, digest: str) -> PolicyVersion | None:
        """Return the version or None."""
        return self._versions.get(digest)

    def history(self) -> list[PolicyVersion]:
        """Return every version, oldest first."""
        return sorted(self._versions.values(), key=lambda v: (v.loaded_at, v.digest))

    def activate(self, digest: str, at: datetime, by: str) -> None:
        """Move the pointer."""
        with self._lock:
            self._active = ActivePointer(digest, at, by)

    def active(self) -> ActivePointer | None:
        """Return the pointer."""
        return self._active


def version_of(bundle: Bundle, *, author: str, message: str, at: datetime) -> PolicyVersion:
    """Describe a loaded bundle as a version to store."""
    return PolicyVersion(
        digest=bundle.version,
        author=author,
        message=message,
        loaded_at=at,
        rule_count=len(bundle.policy.rules),
        files=dict(bundle.files),
    )


def find_version(versions: PolicyVersionStore, ref: str) -> PolicyVersion:
    """Return the stored version named by a digest or a unique prefix of it.

    ``sha256:`` may be left out of the prefix.

    Raises:
        NotFound: no stored version starts with ``ref``.
        ConfigError: more than one does.
    """
    wanted = ref if ref.startswith("sha256:") else "sha256:" + ref
    exact = versions.get(wanted)
    if exact is not None:
        return exact
    found = [v for v in versions.history() if v.digest.startswith(wanted)]
    if not found:
        raise NotFound("policy version", ref)
    if len(found) > 1:
        raise ConfigError(
            f"{len(found)} stored policy versions start with {ref!r}; give more of the digest"
        )
    return found[0]


def check_bundle_tests(bundle: Bundle, agents: Mapping[str, Agent]) -> int:
    """Run the bundle's own test cases; return how many passed.

    Raises:
        PolicyError: a case is malformed, or fails (file and line of the first failure,
            and how many failed).
    """
    cases = collect_cases(bundle.documents)
    results = run_cases(bundle, agents, cases)
    failed = [r for r in results if not r.passed]
    if failed:
        first = failed[0]
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise PolicyError(
            f"policy test {first.case.name!r} failed{more}: " + "; ".join(first.diff[:2]),
            source=first.case.source,
            line=first.case.line,
        )
    return len(results)


class PolicyLifecycle:
    """Loads, checks, stores and activates bundles for one Governor; converges replicas.

    ``swap`` makes a bundle live locally (the Governor's atomic swap: decisions in
    flight finish on the old policy). ``inventory`` returns the agents the bundle's
    tests run against.
    """

    def __init__(
        self,
        versions: PolicyVersionStore,
        *,
        current: Bundle,
        swap: Callable[[Bundle], object],
        inventory: Callable[[], Iterable[Agent]],
        clock: Clock,
    ) -> None:
        self.versions = versions
        self._current = current
        self._swap = swap
        self._inventory = inventory
        self._clock = clock
        self._lock = threading.Lock()

    @property
    def current(self) -> Bundle:
        """The bundle live in this process."""
        return self._current

    def start(self, *, author: str, message: str) -> str:
        """Record the bundle this process started with, and settle which one runs.

        A bundle new to the store is a deployment: it becomes active for every replica.
        A bundle the store knows already (a restart) defers to the active pointer, so a
        replica restarting after an upload through the API does not roll the others back.

        Raises:
            StoreError: the store failed.
        """
        with self._lock:
            bundle = self._current
            is_new = self.versions.add(
                version_of(bundle, author=author, message=message, at=self._clock.now())
            )
            pointer = self.versions.active()
            if is_new or pointer is None:
                self.versions.activate(bundle.version, self._clock.now(), author)
                return bundle.version
        self.sync()
        return self._current.version

    def propose_files(self, files: Mapping[str, str], *, author: str, message: str) -> Bundle:
        """Check an uploaded bundle and make it live everywhere.

        Raises:
            PolicyError: it does not load, or one of its tests fails; nothing changed.
            StoreError: the store failed; nothing changed.
        """
        return self._propose(lambda: bundle_from_files(files), author=author, message=message)

    def propose_directory(self, root: str | Path, *, author: str, message: str) -> Bundle:
        """Check the bundle in a directory and make it live everywhere.

        Raises:
            ConfigError: the directory does not exist; nothing changed.
            PolicyError: it does not load, or one of its tests fails; nothing changed.
            StoreError: the store failed; nothing changed.
        """
        return self._propose(lambda: load_bundle(root), author=author, message=message)

    def _propose(self, load: Callable[[], Bundle], *, author: str, message: str) -> Bundle:
        bundle = load()
        check_bundle_tests(bundle, {a.id: a for a in self._inventory()})
        with self._lock:
            now = self._clock.now()
            self.versions.add(version_of(bundle, author=author, message=message, at=now))
            self.versions.activate(bundle.version, now, author)
            self._install(bundle)
        log.info("policy %s activated by %s", bundle.version, author)
        return bundle

    def sync(self) -> str | None:
        """Swap to the store's active version if it differs; return it when swapped.

        A stored version that no longer loads (it was valid when stored, so only a newer
        Lictor could have written it) is logged and the current policy stays.

        Raises:
            StoreError: the store failed (the caller retries on its next poll).
        """
        pointer = self.versions.active()
        if pointer is None or pointer.digest == self._current.version:
            return None
        with self._lock:
            if pointer.digest == self._current.version:
                return None
            stored = self.versions.get(pointer.digest)
            if stored is None:
                log.error("active policy %s is not among the stored versions", pointer.digest)
                return None
            try:
                bundle = bundle_from_files(stored.files)
            except PolicyError as exc:
                log.error("stored policy %s does not load: %s", pointer.digest, exc)
                return None
            self._install(bundle)
        log.info("policy %s is live (activated by %s)", bundle.version, pointer.activated_by)
        return bundle.version

    def _install(self, bundle: Bundle) -> None:
        self._swap(bundle)
        self._current = bundle


# --- diff ------------------------------------------------------------------------------

DIFF_FIELDS = ("effect", "condition", "match", "message", "mode", "severity")


@dataclass(frozen=True, slots=True)
class RuleChange:
    """One rule present in both bundles whose meaning differs: field -> (old, new)."""

    rule_id: str
    fields: Mapping[str, tuple[Any, Any]]


@dataclass(frozen=True, slots=True)
class PolicyDiff:
    """Rule-level difference between two bundles, by rule id."""

    old_version: str
    new_version: str
    added: tuple[Rule, ...]
    removed: tuple[Rule, ...]
    changed: tuple[RuleChange, ...]

    @property
    def is_empty(self) -> bool:
        """True when the bundles hold the same rules with the same meaning."""
        return not (self.added or self.removed or self.changed)

    def to_json(self) -> dict[str, Any]:
        """Return the wire form."""
        return {
            "old": self.old_version,
            "new": self.new_version,
            "added": [rule_summary(r) for r in self.added],
            "removed": [rule_summary(r) for r in self.removed],
            "changed": [
                {
                    "id": c.rule_id,
                    "fields": {k: {"old": o, "new": n} for k, (o, n) in c.fields.items()},
                }
                for c in self.changed
            ],
        }


def match_json(match: Match) -> dict[str, Any]:
    """The match of a rule as plain data (empty lists left out)."""
    out: dict[str, Any] = {}
    if match.tools:
        out["tools"] = list(match.tools)
    if match.servers:
        out["servers"] = list(match.servers)
    agents = {
        k: list(v)
        for k, v in (
            ("ids", match.agents.ids),
            ("tags", match.agents.tags),
            ("tiers", match.agents.tiers),
        )
        if v
    }
    if agents:
        out["agents"] = agents
    return out


def rule_summary(rule: Rule) -> dict[str, Any]:
    """The fields of a rule that decide its meaning, as plain data."""
    return {
        "id": rule.id,
        "effect": rule.effect.value,
        "condition": rule.when,
        "match": match_json(rule.match),
        "message": rule.message,
        "mode": rule.mode.value,
        "severity": rule.severity.value,
    }


def diff_policies(old: PolicyDiffSide, new: PolicyDiffSide) -> PolicyDiff:
    """Compare two bundles rule by rule (by id); order changes alone are not reported."""
    before = {r.id: r for r in old.rules}
    after = {r.id: r for r in new.rules}
    changed = []
    for rule_id, rule in after.items():
        previous = before.get(rule_id)
        if previous is None:
            continue
        a, b = rule_summary(previous), rule_summary(rule)
        fields = {k: (a[k], b[k]) for k in DIFF_FIELDS if a[k] != b[k]}
        if fields:
            changed.append(RuleChange(rule_id, fields))
    return PolicyDiff(
        old_version=old.version,
        new_version=new.version,
        added=tuple(r for r in new.rules if r.id not in before),
        removed=tuple(r for r in old.rules if r.id not in after),
        changed=tuple(changed),
    )


@dataclass(frozen=True, slots=True)
class PolicyDiffSide:
    """One side of a diff: a version and its rules in load order."""

    version: str
    rules: tuple[Rule, ...]

    @classmethod
    def of(cls, bundle: Bundle) -> PolicyDiffSide:
        """The side for a loaded bundle."""
        return cls(bundle.version, bundle.policy.policy.rules)


def resolve_bundle(ref: str, versions: Callable[[], PolicyVersionStore] | None) -> Bundle:
    """Load a bundle named by a directory, or by a stored version digest (prefix).

    ``versions`` opens the store only when ``ref`` is not a directory.

    Raises:
        ConfigError: ``ref`` is neither a directory nor a version, and no store is given.
        NotFound: no unique stored version starts with ``ref``.
        PolicyError: the bundle does not load.
    """
    path = Path(ref)
    if path.is_dir() or path.is_file():
        return load_bundle(path)
    if versions is None:
        raise ConfigError(f"{ref!r} is not a directory, and no store was given to look it up")
    return bundle_from_files(find_version(versions(), ref).files)


# --- backtest --------------------------------------------------------------------------

#: Reason rules and codes of decisions that replaying a policy cannot reproduce: the
#: audit store failing, or a risk score or a reviewer's verdict deciding.
_NOT_REPLAYABLE_RULES = frozenset({"lictor/audit-unavailable", "lictor/unrecordable-request"})
_NOT_REPLAYABLE_CODES = frozenset({"risk", "review_verdict"})
_REQUEST_FIELDS = (
    "request_id",
    "agent_id",
    "principal",
    "delegation",
    "session_id",
    "tool",
    "server",
    "arguments",
    "resource",
    "context",
)


@dataclass(frozen=True, slots=True)
class Flip:
    """One recorded decision the candidate would decide differently."""

    decision_id: str
    agent_id: str
    tool: str
    before: str
    after: str
    rules: tuple[str, ...]

    @property
    def direction(self) -> str:
        """``allow->deny`` and so on."""
        return f"{self.before}->{self.after}"

    def to_json(self) -> dict[str, Any]:
        """Return the wire form."""
        return {
            "decision_id": self.decision_id,
            "agent_id": self.agent_id,
            "tool": self.tool,
            "before": self.before,
            "after": self.after,
            "rules": list(self.rules),
        }


@dataclass(slots=True)
class BacktestReport:
    """What a candidate would have decided differently over recorded decisions.

    ``inexact`` counts replays of session requests recorded before decision records
    held the session's state: they ran with an empty session (no labels, no counters).
    """

    candidate_version: str
    replayed: int = 0
    unchanged: int = 0
    inexact: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    by_direction: Counter[str] = field(default_factory=Counter)
    by_rule: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[Flip]] = field(default_factory=dict)

    @property
    def flipped(self) -> int:
        """How many decisions would change."""
        return sum(self.by_direction.values())

    def to_json(self) -> dict[str, Any]:
        """Return the wire form."""
        return {
            "candidate_version": self.candidate_version,
            "replayed": self.replayed,
            "unchanged": self.unchanged,
            "flipped": self.flipped,
            "inexact": self.inexact,
            "skipped": dict(self.skipped),
            "by_direction": dict(self.by_direction.most_common()),
            "by_rule": dict(self.by_rule.most_common()),
            "examples": {k: [f.to_json() for f in v] for k, v in self.examples.items()},
        }


def decision_records(
    audit: AuditStore,
    *,
    since: datetime | None = None,
    agent_id: str | None = None,
    limit: int | None = None,
    page_size: int = 1000,
) -> Iterator[Mapping[str, Any]]:
    """Yield decision payloads in trail order, reading the store in keyset batches.

    For one agent, the indexed query pages through that agent's decisions only. For all
    agents, one indexed query finds the first decision at or after ``since`` and the
    trail is then streamed from there (seq ranges, no per-page filter queries), since
    nearly every record of a decision-heavy trail is wanted anyway. With ``limit``, it is
    the first ``limit`` from ``since`` on, so a run is repeatable while the trail grows.
    """
    if agent_id is None:
        records: Iterator[Mapping[str, Any]] = _streamed(audit, since)
    else:
        records = _paged(audit, since, agent_id, page_size)
    for count, payload in enumerate(records):
        if limit is not None and count >= limit:
            return
        yield payload


def _paged(
    audit: AuditStore, since: datetime | None, agent_id: str, page_size: int
) -> Iterator[Mapping[str, Any]]:
    after = -1
    while True:
        page = audit.query(
            AuditQuery(
                kind="decision", agent_id=agent_id, since=since, after_seq=after, limit=page_size
            )
        )
        for record in page.records:
            yield record.payload
        if page.next_after_seq is None:
            return
        after = page.next_after_seq


def _streamed(audit: AuditStore, since: datetime | None) -> Iterator[Mapping[str, Any]]:
    first = audit.query(AuditQuery(kind="decision", since=since, limit=1)).records
    if not first:
        return
    # ``at`` is written by format_time (fixed width, UTC, "Z"), so text order is time
    # order; anything else is compared as a parsed time.
    bound = format_time(since) if since is not None else None
    for record in audit.records(first[0].seq):
        payload = record.payload
        if payload.get("kind") != "decision":
            continue
        if bound is not None and not _at_or_after(payload.get("at"), bound):
            continue
        yield payload


def _at_or_after(at: object, bound: str) -> bool:
    if not isinstance(at, str):
        return False
    if len(at) == len(bound) and at.endswith("Z"):
        return at >= bound
    try:
        return parse_time(at) >= parse_time(bound)
    except ValueError:
        return False


def backtest(
    candidate: CompiledPolicy,
    records: Iterable[Mapping[str, Any]],
    agents: Mapping[str, Agent] | Mapping[AgentId, Agent],
    *,
    examples_per_direction: int = 5,
) -> BacktestReport:
    """Replay recorded decision requests through ``candidate`` and count the flips.

    Each request is decided at its recorded time with the session state recorded with
    it and the agent's *current* inventory record. Monitor-mode decisions compare with
    the outcome the policy decided then (``would_be``), not the allow that was given.
    A flip towards a stricter outcome is attributed to the candidate's deciding rules,
    one towards a looser outcome to the rules that decided before.
    """
    report = BacktestReport(candidate.version)
    for payload in records:
        reasons = payload.get("reasons") or []
        if any(
            isinstance(r, Mapping)
            and (r.get("rule") in _NOT_REPLAYABLE_RULES or r.get("code") in _NOT_REPLAYABLE_CODES)
            for r in reasons
        ):
            report.skipped["not decided by the policy (risk, review or audit failure)"] += 1
            continue
        if payload.get("arguments") is None:
            report.skipped["arguments redacted"] += 1
            continue
        try:
            request = recorded_request(payload)
            at = parse_time(str(payload["at"]))
            before = Outcome(payload.get("would_be") or payload["outcome"])
        except (InvalidToolCall, KeyError, ValueError):
            report.skipped["unreadable record"] += 1
            continue
        session = SessionFacts()
        if request.session_id:
            recorded = payload.get("session")
            if isinstance(recorded, Mapping):
                session = SessionFacts(
                    id=request.session_id,
                    labels=frozenset(recorded.get("labels") or ()),
                    counters=dict(recorded.get("counters") or {}),
                    calls=int(recorded.get("calls") or 0),
                )
            else:
                session = SessionFacts(id=request.session_id)
                report.inexact += 1
        verdict = evaluate(
            candidate, request, Facts(agent=agents.get(request.agent_id), now=at, session=session)
        )
        report.replayed += 1
        if verdict.outcome is before:
            report.unchanged += 1
            continue
        if verdict.outcome.strength > before.strength:
            rules = verdict.rule_ids
        else:
            rules = _recorded_rules(payload)
        flip = Flip(
            str(payload.get("decision_id")),
            request.agent_id,
            request.tool,
            before.value,
            verdict.outcome.value,
            rules,
        )
        report.by_direction[flip.direction] += 1
        for rule in rules:
            report.by_rule[f"{flip.direction} {rule}"] += 1
        shown = report.examples.setdefault(flip.direction, [])
        if len(shown) < examples_per_direction:
            shown.append(flip)
    return report


def recorded_request(payload: Mapping[str, Any]) -> ActionRequest:
    """Rebuild the request of a decision record.

    A record holds a request that ``parse_request`` accepted, so the common shapes are
    rebuilt directly (it is most of a replay's cost otherwise); anything unusual — a
    record written by hand — goes through ``parse_request`` and its checks.

    Raises:
        InvalidToolCall: the record's request is not a valid request.
    """
    agent_id = payload.get("agent_id")
    tool = payload.get("tool")
    arguments = payload.get("arguments")
    context = payload.get("context")
    session_id = payload.get("session_id")
    if (
        isinstance(agent_id, str)
        and agent_id
        and isinstance(tool, str)
        and tool
        and type(arguments) is dict
        and type(context) is dict
        and payload.get("principal") is None
        and payload.get("resource") is None
        and not payload.get("delegation")
        and payload.get("server") is None
        and (session_id is None or isinstance(session_id, str))
        and isinstance(payload.get("request_id"), str | None)
        and all(
            context.get(k) is None or isinstance(context[k], str)
            for k in ("task", "purpose", "ticket", "parent_decision_id")
        )
    ):
        extra = {k: v for k, v in context.items() if k not in _CONTEXT_KEYS}
        return ActionRequest(
            agent_id=AgentId(agent_id),
            tool=tool,
            request_id=payload.get("request_id"),
            session_id=SessionId(session_id) if session_id is not None else None,
            arguments=arguments,
            context=Context(
                task=context.get("task") or "",
                purpose=context.get("purpose") or "",
                ticket=context.get("ticket") or "",
                parent_decision_id=context.get("parent_decision_id"),
                extra=extra,
            ),
        )
    return parse_request({k: payload.get(k) for k in _REQUEST_FIELDS})


_CONTEXT_KEYS = frozenset({"task", "purpose", "ticket", "parent_decision_id"})


def _recorded_rules(payload: Mapping[str, Any]) -> tuple[str, ...]:
    """The rules that decided a recorded decision (for monitor mode, the would-be ones)."""
    reasons = [r for r in payload.get("reasons") or [] if isinstance(r, Mapping)]
    if payload.get("would_be") is not None:
        effect = payload["would_be"]
        reasons = [
            r
            for r in payload.get("shadow") or []
            if isinstance(r, Mapping) and r.get("effect") == effect
        ]
    return tuple(str(r.get("rule")) for r in reasons)


# --- lint ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    """One lint finding about a rule (or the bundle when ``rule_id`` is None)."""

    code: str
    message: str
    rule_id: str | None = None
    source: str | None = None
    line: int | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the wire form."""
        return {
            "code": self.code,
            "rule": self.rule_id,
            "source": self.source,
            "line": self.line,
            "message": self.message,
        }

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}: " if self.source and self.line else ""
        rule = f"{self.rule_id}: " if self.rule_id else ""
        return f"{where}{rule}{self.message} [{self.code}]"


#: Fields of each top-level CEL variable that the request schema defines. ``arguments``
#: is open (any key), as is anything below ``principal.attributes`` and
#: ``agent.attributes``.
SCHEMA_FIELDS: Mapping[str, frozenset[str]] = {
    "request": frozenset(_REQUEST_FIELDS),
    "principal": frozenset({"id", "groups", "attributes"}),
    "resource": frozenset({"type", "id", "labels"}),
    "context": frozenset({"task", "purpose", "ticket", "parent_decision_id"}),
    "agent": frozenset(
        {
            "id",
            "name",
            "owner",
            "purpose",
            "allowed_tools",
            "tags",
            "risk_tier",
            "risk_tolerance",
            "status",
            "attributes",
        }
    ),
    "session": frozenset({"id", "labels", "counters", "calls"}),
    "time": frozenset({"hour", "minute", "weekday", "day", "date"}),
}

_STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_FIELD_ACCESS = re.compile(
    r"(has\(\s*)?(?<![\w.])(" + "|".join(SCHEMA_FIELDS) + r")\s*(\.\s*\??|\[\s*['\"])([A-Za-z_]\w*)"
)
_COMPARISON = re.compile(
    r"\A\s*([A-Za-z_][\w.]*)\s*(==|!=|<=|>=|<|>)\s*(-?\d+(?:\.\d+)?|'[^'\\]*'|\"[^\"\\]*\")\s*\Z"
)


def lint_policy(
    bundle: Bundle,
    *,
    inventory: Sequence[Agent] | None = None,
    cases: Sequence[TestCase] | None = None,
) -> list[Finding]:
    """Find rules that are likely mistakes; every finding is sound (never a guess).

    Checks: a rule whose tools match no tool of any agent it selects in ``inventory``
    (or that selects no registered agent); a condition whose ``&&``-joined comparisons
    on one field cannot all hold (``x > 5 && x < 3``) or that is literally ``false``; a
    rule that an unconditional enforcing deny with the same or a wider match makes
    unreachable; a condition reading a field the request schema does not define; rules
    that no test case exercises (with ``cases``; one ``no-tests`` finding when there are
    none); a bundle with no enforcing rule.
    """
    rules = bundle.policy.policy.rules
    findings: list[Finding] = []
    if rules and all(r.mode is Mode.SHADOW for r in rules):
        findings.append(
            Finding(
                "all-shadow",
                "every rule is in shadow mode: nothing allows, so every request is denied",
            )
        )
    for index, rule in enumerate(rules):
        if inventory is not None:
            findings.extend(_unknown_tools(rule, inventory))
        findings.extend(_contradictions(rule))
        findings.extend(_unknown_fields(rule))
        shadowing = _shadowed_by(rule, index, rules)
        if shadowing is not None:
            findings.append(
                _finding(
                    rule,
                    "shadowed",
                    f"can never decide: the unconditional deny {shadowing.id!r} matches "
                    "everything it matches, and deny wins",
                )
            )
    if cases is not None and not cases and rules:
        findings.append(Finding("no-tests", "the bundle has no test cases"))
    elif cases is not None:
        exercised = exercised_rules(bundle, cases, inventory or ())
        findings.extend(
            _finding(rule, "untested", "no test case exercises this rule")
            for rule in rules
            if rule.id not in exercised
        )
    return findings


def exercised_rules(
    bundle: Bundle, cases: Sequence[TestCase], inventory: Iterable[Agent]
) -> set[str]:
    """Ids of the rules that decide, or fire in shadow, in at least one test case."""
    agents = {a.id: a for a in inventory}
    seen: set[str] = set()
    for case in cases:
        try:
            request = parse_request(case.request)
        except InvalidToolCall:
            continue
        agent = case.agent if case.agent is not None else agents.get(request.agent_id)
        verdict = evaluate(
            bundle.policy, request, Facts(agent=agent, now=case.now, session=case.session)
        )
        seen.update(verdict.rule_ids)
        seen.update(r.rule for r in verdict.shadow)
    return seen


def _finding(rule: Rule, code: str, message: str) -> Finding:
    return Finding(code, message, rule.id, rule.source, rule.line)


def _unknown_tools(rule: Rule, inventory: Sequence[Agent]) -> list[Finding]:
    # A deny rule on tools nobody is granted is a deliberate guard that holds whatever
    # the inventory later says; only allow and review rules are reported.
    if rule.effect is Outcome.DENY:
        return []
    selected = [a for a in inventory if rule.match.agents.selects(a.id, a)]
    if not selected:
        return [_finding(rule, "no-agent", "selects no agent of the inventory")]
    tools = [t for a in selected for t in a.allowed_tools]
    return [
        _finding(
            rule,
            "unknown-tool",
            f"tool pattern {pattern!r} matches no tool the inventory grants to an agent it "
            "applies to (misspelt, or a tool no agent is registered for)",
        )
        for pattern in rule.match.tools
        if not any(_may_overlap(pattern, tool) for tool in tools)
    ]


def _may_overlap(pattern: str, granted: str) -> bool:
    """Whether some tool name could match both patterns (two globs: assume it could)."""
    if is_glob(pattern) and is_glob(granted):
        return True
    if is_glob(pattern):
        return matches_any(granted, (pattern,))
    return matches_any(pattern, (granted,))


def _split_top(condition: str, operator: str) -> list[str] | None:
    """Split on ``operator`` outside brackets and strings; None if it cannot be sure."""
    parts: list[str] = []
    depth = 0
    quote = ""
    start = 0
    i = 0
    while i < len(condition):
        ch = condition[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and condition.startswith(operator, i):
            parts.append(condition[start:i])
            i += len(operator)
            start = i
            continue
        i += 1
    if quote or depth:
        return None
    parts.append(condition[start:])
    return parts


def _contradictions(rule: Rule) -> list[Finding]:
    when = rule.when
    if when is None:
        return []
    if when.strip() == "false":
        return [_finding(rule, "never-matches", "the condition is always false")]
    if _split_top(when, "||") != [when]:
        return []
    parts = _split_top(when, "&&")
    if parts is None or len(parts) < 2:
        return []
    ranges: dict[str, _Range] = {}
    for part in parts:
        found = _COMPARISON.match(part)
        if found is None:
            continue
        name, op, literal = found.groups()
        if not ranges.setdefault(name, _Range()).add(op, literal):
            return [
                _finding(
                    rule,
                    "never-matches",
                    f"the comparisons on {name} cannot all hold, so the condition is never true",
                )
            ]
    return []


@dataclass
class _Range:
    """What a field may still be after some ``&&``-joined comparisons with literals."""

    low: float | None = None
    low_open: bool = False
    high: float | None = None
    high_open: bool = False
    equal: Any = None
    has_equal: bool = False
    not_equal: set[Any] = field(default_factory=set)
    kind: type | None = None

    def add(self, op: str, literal: str) -> bool:
        """Narrow by one comparison; return False once nothing can satisfy them all."""
        value: Any = literal[1:-1] if literal[0] in "'\"" else float(literal)
        kind = type(value)
        if self.kind is not None and kind is not self.kind:
            return True  # mixed types: CEL would error or compare across types; not ours
        self.kind = kind
        if op == "==":
            if self.has_equal and self.equal != value:
                return False
            self.equal, self.has_equal = value, True
        elif op == "!=":
            self.not_equal.add(value)
        elif kind is str:
            return True  # string ordering is left alone
        elif op in (">", ">="):
            if self.low is None or value > self.low or (value == self.low and op == ">"):
                self.low, self.low_open = value, op == ">"
        elif self.high is None or value < self.high or (value == self.high and op == "<"):
            self.high, self.high_open = value, op == "<"
        return self._satisfiable()

    def _satisfiable(self) -> bool:
        if self.has_equal:
            v = self.equal
            if v in self.not_equal:
                return False
            if self.kind is float:
                if self.low is not None and (v < self.low or (v == self.low and self.low_open)):
                    return False
                if self.high is not None and (v > self.high or (v == self.high and self.high_open)):
                    return False
        if self.low is not None and self.high is not None:
            if self.low > self.high:
                return False
            if self.low == self.high and (self.low_open or self.high_open):
                return False
        return True


def _unknown_fields(rule: Rule) -> list[Finding]:
    if rule.when is None:
        return []
    text = _STRING_LITERAL.sub("''", rule.when)
    out = []
    seen: set[str] = set()
    for found in _FIELD_ACCESS.finditer(text):
        guarded, root, access, name = found.groups()
        if name in SCHEMA_FIELDS[root] or f"{root}.{name}" in seen:
            continue
        if root == "context" and (guarded or "?" in access):
            continue  # callers may send extra context keys; this read expects absence
        seen.add(f"{root}.{name}")
        out.append(
            _finding(
                rule,
                "unknown-field",
                f"{root}.{name} is not a field of the request schema "
                f"({root} has: {', '.join(sorted(SCHEMA_FIELDS[root]))})",
            )
        )
    return out


def _covers(wide: tuple[str, ...], narrow: tuple[str, ...]) -> bool:
    """Whether every value ``narrow`` selects is selected by ``wide`` (empty: any)."""
    if not wide:
        return True
    if not narrow:
        return False
    return all(
        p in wide or (not is_glob(p) and matches_any(p, wide)) or "*" in wide for p in narrow
    )


def _shadowed_by(rule: Rule, index: int, rules: Sequence[Rule]) -> Rule | None:
    """An unconditional enforcing deny whose match covers ``rule``'s, if any.

    Deny overrides whatever the order, so any such deny makes an allow or review rule
    unreachable; between two denies, only the earlier one counts. Shadow-mode rules
    are evaluated on their own, so they are never reported.
    """
    if rule.mode is Mode.SHADOW:
        return None
    for position, other in enumerate(rules):
        if other is rule or other.effect is not Outcome.DENY or other.when is not None:
            continue
        if other.mode is not Mode.ENFORCE:
            continue
        if rule.effect is Outcome.DENY and position > index:
            continue
        wide, narrow = other.match, rule.match
        if not (_covers(wide.tools, narrow.tools) and _covers(wide.servers, narrow.servers)):
            continue
        if wide.agents.is_empty() or wide.agents == narrow.agents:
            return other
    return None
