"""Risk in the live decision: session context before the policy, baselines after it.

The :class:`RiskEngine` runs pipeline steps 4 and 5 of ARCHITECTURE.md for the Governor:

1. **Context.** It reads the session's state (labels, counters, previous tool, earlier
   tool outputs), traces where the call's destinations and amounts came from, and reads
   the sliding windows the policy declares. Policies see all of it (``session.*``,
   ``provenance()``, ``window_count()``, ``window_sum()``).
2. **Policy.** The policy is evaluated with that context. When the call adds to a
   window, the read, the evaluation and the recorded event happen under the window's
   lock (:meth:`RiskStore.counting`), so replicas sharing a database never exceed a
   budget between them.
3. **Baseline.** The agent's baseline scores the call; the agent's risk tolerance and
   tier turn the score into an outcome, and :func:`tighten` keeps the stronger of the
   policy's and the risk's: risk never loosens a decision.

Learning happens only after an allow is on record (:meth:`learn`) and from result
reports (:meth:`observe`). Errors while deciding propagate, and the Governor turns them
into an audited ``evaluation_error`` deny.

State consistency: session state is read through on every decision (with a database
store one version probe, the parsed state cached per version; the memory store is read
directly) and written atomically per event. What is derived from a state (its provenance
index, its session facts) is kept per session and reused while the state is the same
object. A result report is written before ``observe`` returns; the change of an allowed
call is written behind the decision (:class:`_Writer`) with a database store, seen at
once by this replica and by the others when it lands.
Baselines are cached per replica for ``baseline_cache_seconds`` and written back every
``baseline_sync_seconds`` (last writer wins), so replicas may lose a little learning to
each other, which only ever makes a call look newer (more cautious), never less.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache, partial
from typing import Any, Final

from lictor.core.agents import Agent
from lictor.core.decisions import Decision, Outcome, ResultReport, Risk, RiskSignal
from lictor.core.policy import CompiledPolicy, Facts, SessionFacts, evaluate
from lictor.core.requests import ActionRequest
from lictor.core.risk.arguments import ArgumentReading, read_arguments
from lictor.core.risk.baseline import Baseline, BaselineConfig, CallFacts, ResultFacts
from lictor.core.risk.context import CallContext, WindowKey
from lictor.core.risk.decide import RiskPolicy, risk_outcome, tighten
from lictor.core.risk.provenance import (
    Provenance,
    ProvenanceIndex,
    looks_side_effecting,
    review_untrusted_destinations,
)
from lictor.core.risk.session import SessionState
from lictor.core.risk.windows import WindowSpec, amount_of, find_window_specs, scope_key
from lictor.errors import ConfigError, LictorError
from lictor.service.ports import RiskStore, WindowTransaction

__all__ = [
    "AGENT_SWITCH",
    "UNTRUSTED_DESTINATION_SIGNAL",
    "MemoryRiskStore",
    "RiskEngine",
    "RiskSettings",
]

log = logging.getLogger("lictor.risk")

AGENT_SWITCH: Final = "risk_scoring"
"""The inventory attribute that turns baseline scoring off for one agent (``false``)."""

UNTRUSTED_DESTINATION_SIGNAL: Final = "untrusted_destination"
"""Signal kind annotating a side effect whose destination came only from tool output."""

_CACHE_LIMIT: Final = 10_000
WRITE_QUEUE_LIMIT: Final = 10_000
"""Store writes that may wait behind decisions before callers write themselves."""
_PROVENANCE_WORDS: Final = re.compile(r"provenance|value_sources|untrusted_destinations")
_EMPTY_STATE: Final = SessionState()
_NO_RISK: Final = Risk()
_NO_PROVENANCE: Final = Provenance(())
_NO_SESSION: Final = {
    flag: SessionFacts(side_effecting=flag, functions=CallContext(None)) for flag in (True, False)
}
"""Session facts of a call outside any session, for a policy without provenance or windows."""


@dataclass(frozen=True, slots=True)
class RiskSettings:
    """How risk takes part in decisions.

    Attributes:
        baseline: Score calls against per-agent baselines (anomaly signals). Off, the
            session context (labels, provenance, windows) still feeds the policy.
        learning_observations: Calls an agent makes before its signals may act.
        learning_seconds: Time since an agent was first seen before they may act.
        baseline_config: Full baseline configuration; overrides the two above.
        risk_policy: Deny margins per risk tier (review above tolerance, deny above
            tolerance + margin).
        detect: Scan reported outputs for emails, phones, IBANs, cards and secrets.
        disabled_agents: Agents never scored (as the ``risk_scoring: false`` attribute).
        baseline_cache_seconds: How long a replica trusts its cached baseline.
        baseline_sync_seconds: How often a replica writes a changed baseline back.

    Raises:
        ConfigError: a count or time is negative.
    """

    baseline: bool = True
    learning_observations: int = 50
    learning_seconds: float = 86_400.0
    baseline_config: BaselineConfig | None = None
    risk_policy: RiskPolicy = field(default_factory=RiskPolicy)
    detect: bool = True
    disabled_agents: frozenset[str] = frozenset()
    baseline_cache_seconds: float = 5.0
    baseline_sync_seconds: float = 5.0

    def __post_init__(self) -> None:
        if self.baseline_cache_seconds < 0 or self.baseline_sync_seconds < 0:
            raise ConfigError("risk baseline cache and sync seconds must be >= 0")
        self.config()  # validates the learning period

    def config(self) -> BaselineConfig:
        """The baseline configuration in force."""
        if self.baseline_config is not None:
            return self.baseline_config
        return BaselineConfig(
            learning_observations=self.learning_observations,
            learning_seconds=self.learning_seconds,
        )


@dataclass
class _CachedBaseline:
    baseline: Baseline
    loaded_at: float
    saved_at: float
    dirty: bool = False
    raw: Mapping[str, Any] | None = None  # the stored JSON it was read from or written as


class RiskEngine:
    """Session context, windows and baselines around policy evaluation. Thread-safe."""

    def __init__(self, settings: RiskSettings | None = None, store: RiskStore | None = None):
        self.settings = settings if settings is not None else RiskSettings()
        self.store: RiskStore = store if store is not None else MemoryRiskStore()
        # A database store is written behind the decision, off the request path; the
        # memory store is as fast as a queue would be.
        self._writer = None if isinstance(self.store, MemoryRiskStore) else _Writer(self.store)
        # The plain memory store holds the current session state itself: read it directly,
        # without a version probe and a second copy here.
        self._direct = type(self.store) is MemoryRiskStore
        self._config = self.settings.config()
        self._lock = threading.Lock()
        self._baselines: dict[str, _CachedBaseline] = {}
        self._states: OrderedDict[str, SessionState] = OrderedDict()
        self._indexes: OrderedDict[
            str, tuple[Agent | None, tuple[str, ...], ProvenanceIndex, SessionState]
        ] = OrderedDict()
        self._pending: OrderedDict[str, CallFacts] = OrderedDict()
        # Per session: its state, and the facts for a side-effecting and for another call.
        self._facts: OrderedDict[
            str, tuple[SessionState, SessionFacts | None, SessionFacts | None]
        ] = OrderedDict()
        self._specs: tuple[CompiledPolicy | None, tuple[WindowSpec, ...], bool] = (None, (), True)

    # -- deciding -----------------------------------------------------------------------

    def decide(
        self,
        policy: CompiledPolicy,
        request: ActionRequest,
        agent: Agent | None,
        now: datetime,
        decision_id: str,
    ) -> tuple[Decision, SessionFacts]:
        """Evaluate ``request`` in its session's context, then tighten by risk.

        Returns the decision and the session facts it was made with (for the audit entry).

        Raises:
            StoreError, ValueError: state could not be read or a window is invalid; the
                Governor denies with ``evaluation_error``.
        """
        session_id = request.session_id
        state = self._state(session_id) if session_id else _EMPTY_STATE
        side_effecting = _is_side_effecting(request.tool)
        specs, reads_provenance = self._policy_use(policy)
        if not specs and not reads_provenance:
            session = self._plain_facts(session_id, state, side_effecting)
            facts = Facts(agent=agent, now=now, session=session)
            return self._decide(policy, request, facts, state, decision_id, now, None), session
        trace = _Trace(self, request, state, agent)
        context = CallContext(trace.index if reads_provenance else None, request.context.task)
        session = SessionFacts(
            id=session_id or "",
            labels=state.labels,
            counters=state.counters,
            calls=state.calls,
            provenance=_Lazy(lambda: trace.value.to_cel()) if reads_provenance else {},
            value_sources=_Lazy(lambda: trace.value.values_to_cel()) if reads_provenance else {},
            untrusted_destinations=_LazyPaths(trace) if reads_provenance else (),
            side_effecting=side_effecting,
            functions=context,
        )
        facts = Facts(agent=agent, now=now, session=session)
        if not specs:
            return self._decide(policy, request, facts, state, decision_id, now, trace), session
        adding = [spec for spec in specs if spec.matches(request.tool)]
        keys = sorted({_lock_key(spec.series, scope_key(spec.scope, request)) for spec in adding})
        with self.store.counting(keys) as windows:
            totals: dict[WindowKey, tuple[int, float]] = {}
            for spec in specs:
                since = now - timedelta(seconds=spec.seconds)
                totals[_window_key(spec)] = windows.totals(
                    spec.series, scope_key(spec.scope, request), since
                )
            context.windows = totals
            decision = self._decide(policy, request, facts, state, decision_id, now, trace)
            if decision.outcome is Outcome.ALLOW:
                _record(windows, specs, adding, request, now)
        return decision, session

    def _plain_facts(
        self, session_id: str | None, state: SessionState, side_effecting: bool
    ) -> SessionFacts:
        """The session facts of a policy that reads no provenance and declares no window.

        Nothing call-specific is in them then (no condition can call ``provenance()``,
        and ``window_count()`` has nothing declared to answer), so one object serves every
        call of the session until its state changes: no per-call allocation, and the
        evaluator's per-object caches recognise it.
        """
        if not session_id:
            return _NO_SESSION[side_effecting]
        cached = self._facts.get(session_id)  # one dict read: atomic, no lock needed
        if cached is not None and cached[0] is state:
            found = cached[1] if side_effecting else cached[2]
            if found is not None:
                return found
        else:
            cached = (state, None, None)
        facts = SessionFacts(
            id=session_id,
            labels=state.labels,
            # A plain dict (read-only by convention, like the state's): the evaluator and
            # the audit entry copy it, and a dict copies three times faster than a proxy.
            counters=dict(state.counters),
            calls=state.calls,
            side_effecting=side_effecting,
            functions=CallContext(None),
        )
        entry = (state, facts, cached[2]) if side_effecting else (state, cached[1], facts)
        with self._lock:
            _put(self._facts, session_id, entry)
        return facts

    def _decide(
        self,
        policy: CompiledPolicy,
        request: ActionRequest,
        facts: Facts,
        state: SessionState,
        decision_id: str,
        now: datetime,
        trace: _Trace | None,
    ) -> Decision:
        verdict = evaluate(policy, request, facts)
        outcome = verdict.outcome
        if outcome is Outcome.DENY:
            # Risk only ever tightens: nothing to annotate, score or learn.
            return Decision(
                decision_id=decision_id,
                outcome=outcome,
                reasons=verdict.reasons,
                policy_version=policy.version,
                decided_at=now,
                risk=_NO_RISK,
                shadow=verdict.shadow,
            )
        reasons = verdict.reasons
        if trace is None:
            # The arguments are read, and the provenance index looked up, only from here
            # and only as far as the annotation of a side effect or the baseline needs.
            trace = _Trace(self, request, state, facts.agent)
        annotations: tuple[RiskSignal, ...] = ()
        if facts.session.side_effecting:
            untrusted = trace.untrusted()
            if untrusted.values:
                reason = review_untrusted_destinations(untrusted, side_effecting=True)
                if reason is not None:
                    annotations = (RiskSignal(UNTRUSTED_DESTINATION_SIGNAL, reason.message, 0.0),)
        agent = facts.agent
        if agent is not None and self.is_scored(agent):
            call = CallFacts.from_request(
                request,
                previous_tool=state.previous_tool,
                session_labels=state.labels,
                reading=trace.reading,
            )
            assessment = self._baseline(agent.id).score(call, now)
            self._remember(decision_id, call)
            wanted, reason = risk_outcome(assessment, agent, self.settings.risk_policy)
            if reason is not None:  # an allow without a reason tightens nothing
                final = tighten(outcome, wanted)
                # The risk reason decides when it tightened, and joins an equal outcome.
                if final is not outcome:
                    reasons = (reason,)
                elif wanted is outcome:
                    reasons = (*reasons, reason)
                outcome = final
            signals = assessment.signals
            risk = Risk(assessment.score, (*signals, *annotations) if annotations else signals)
        else:
            risk = Risk(0.0, annotations) if annotations else _NO_RISK
        return Decision(
            decision_id=decision_id,
            outcome=outcome,
            reasons=reasons,
            policy_version=policy.version,
            decided_at=now,
            risk=risk,
            shadow=verdict.shadow,
        )

    def is_scored(self, agent: Agent) -> bool:
        """Whether baselines score this agent's calls."""
        return (
            self.settings.baseline
            and agent.id not in self.settings.disabled_agents
            and agent.attributes.get(AGENT_SWITCH) is not False
        )

    # -- learning -------------------------------------------------------------------------

    def learn(self, request: ActionRequest, decision: Decision) -> None:
        """Learn from a decision that is on record: only an allow teaches.

        A denied or held call must not become normal, or retrying would wear the
        baseline down. Failures are logged: the decision has already been given.
        """
        # Single dict operations on ``_pending`` are atomic: no lock around them.
        call = self._pending.pop(decision.decision_id, None)
        if decision.outcome is not Outcome.ALLOW:
            return
        at = decision.decided_at
        try:
            if request.session_id:
                labels = request.resource.labels if request.resource is not None else ()
                tool = request.tool

                def change(state: SessionState) -> SessionState:
                    return state.after_call(tool, labels)

                if self._writer is None:
                    self._update_session(request.session_id, change, at)
                else:
                    self._update_behind(request.session_id, change, at)
            if call is not None:
                self._observe(request.agent_id, lambda b: b.observe_call(call, at), at)
        except (LictorError, ValueError):
            log.exception("risk state not updated after decision %s", decision.decision_id)

    def forget(self, decision_id: str) -> None:
        """Drop what :meth:`decide` kept for learning from a decision never put on record.

        :meth:`learn` does this for every recorded decision; a caller whose decision did
        not reach the audit trail calls this instead, so the call is never learned and its
        facts do not wait in memory for eviction.
        """
        self._pending.pop(decision_id, None)  # atomic: no lock needed

    def observe(
        self, entry: Mapping[str, Any], result: ResultReport, agent: Agent | None, at: datetime
    ) -> None:
        """Take a result report for the recorded decision ``entry``.

        Its output becomes a provenance source of the session, its reported and detected
        labels join the session, and the agent's baseline learns its size and labels.

        Raises:
            StoreError: the session state could not be written.
        """
        tool = str(entry.get("tool") or "")
        facts = ResultFacts.from_report(tool, result, detect=self.settings.detect)
        session_id = entry.get("session_id")
        if isinstance(session_id, str) and session_id:
            decision_id, output, labels = result.decision_id, result.output, facts.labels
            state = self._update_session(
                session_id, lambda s: s.after_result(tool, decision_id, output, labels), at
            )
            self._index(session_id, state, agent)  # tokenise the output now, not when deciding
        if agent is not None and self.is_scored(agent):
            self._observe(agent.id, lambda b: b.observe_result(facts, at), at)

    def baseline(self, agent_id: str) -> Baseline:
        """Return the agent's current baseline (for inspection and bootstrapping)."""
        return self._baseline(agent_id)

    def put_baseline(self, agent_id: str, baseline: Baseline, at: datetime) -> None:
        """Replace an agent's baseline (e.g. bootstrapped from the audit trail) and store it."""
        now = time.monotonic()
        with self._lock:
            self._baselines[agent_id] = _CachedBaseline(baseline, now, now)
        self.store.save_baseline(agent_id, baseline.to_json(), at)

    def flush(self, at: datetime) -> None:
        """Write every changed baseline and every queued session change (at shutdown)."""
        with self._lock:
            dirty = [(a, c) for a, c in self._baselines.items() if c.dirty]
        for agent_id, cached in dirty:
            self._save(agent_id, cached, at)
        if self._writer is not None:
            self._writer.drain()

    def _update_behind(
        self, session_id: str, change: Callable[[SessionState], SessionState], at: datetime
    ) -> None:
        """Apply a change to this replica's view now and to the store in the background."""
        with self._lock:
            local = self._states.get(session_id) or _EMPTY_STATE
            _put(self._states, session_id, change(local))
        writer = self._writer
        if writer is not None:
            writer.submit(_SessionChange(session_id, change, at))

    # -- state ------------------------------------------------------------------------------

    def _state(self, session_id: str) -> SessionState:
        if self._direct:
            return self.store.session(session_id) or _EMPTY_STATE
        version = self.store.session_version(session_id)
        cached = self._states.get(session_id)  # one dict read: atomic, no lock needed
        # Versions only grow: a cached state at or past the stored one is current, or
        # ahead by changes of this replica still being written.
        if cached is not None and (version is None or cached.version >= version):
            return cached
        if version is None:
            return _EMPTY_STATE
        state = self.store.session(session_id) or _EMPTY_STATE
        with self._lock:
            _put(self._states, session_id, state)
        return state

    def _update_session(
        self, session_id: str, change: Callable[[SessionState], SessionState], at: datetime
    ) -> SessionState:
        state = self.store.update_session(session_id, change, at)
        if not self._direct:
            with self._lock:
                _put(self._states, session_id, state)
        return state

    def _index(
        self, session_id: str | None, state: SessionState, agent: Agent | None
    ) -> ProvenanceIndex:
        """The session's provenance index, kept per session and extended as outputs arrive.

        Outputs only ever join at the end (the oldest leave first, as in the index), so
        a cached index needs only the outputs it has not seen: each output is tokenised
        once per replica, not once per decision.
        """
        trusted = agent.attributes if agent is not None else None
        if not session_id:
            return state.index(trusted)
        cached = self._indexes.get(session_id)  # one dict read: atomic, no lock needed
        if cached is not None and cached[0] is agent and cached[3] is state:
            return cached[2]
        ids = tuple(o.decision_id for o in state.outputs)
        if cached is not None and cached[0] is agent:
            if cached[1] == ids:
                with self._lock:
                    _put(self._indexes, session_id, (agent, ids, cached[2], state))
                return cached[2]
            seen = set(cached[1])
            fresh = [o for o in state.outputs if o.decision_id not in seen]
            if len(fresh) < len(ids) or not cached[1]:
                index = cached[2]
                for output in fresh:
                    index = index.with_output(output.tool, output.decision_id, output.output)
                with self._lock:
                    _put(self._indexes, session_id, (agent, ids, index, state))
                return index
        index = state.index(trusted)
        with self._lock:
            _put(self._indexes, session_id, (agent, ids, index, state))
        return index

    def _policy_use(self, policy: CompiledPolicy) -> tuple[tuple[WindowSpec, ...], bool]:
        """The windows a policy declares, and whether any condition reads provenance.

        Read once per policy object. No condition that names ``provenance``,
        ``value_sources`` or ``untrusted_destinations`` means none can read them, so
        the per-call tracing they need is skipped.
        """
        have, specs, reads = self._specs
        if have is policy:
            return specs, reads
        conditions = [compiled.rule.when for compiled in policy.rules]
        specs = find_window_specs(conditions)
        reads = any(_PROVENANCE_WORDS.search(c) for c in conditions if c)
        self._specs = (policy, specs, reads)
        return specs, reads

    def _remember(self, decision_id: str, call: CallFacts) -> None:
        pending = self._pending
        pending[decision_id] = call  # atomic; a new id goes to the end by itself
        if len(pending) > _CACHE_LIMIT:  # only when decisions are not learned or forgotten
            with self._lock:
                while len(pending) > _CACHE_LIMIT:
                    pending.popitem(last=False)

    def _baseline(self, agent_id: str) -> Baseline:
        now = time.monotonic()
        cached = self._baselines.get(agent_id)  # one dict read: atomic, no lock needed
        if cached is not None and (
            cached.dirty or now - cached.loaded_at <= self.settings.baseline_cache_seconds
        ):
            return cached.baseline
        data = self.store.baseline(agent_id)
        if cached is not None and data is not None and data is cached.raw:
            baseline = cached.baseline  # unchanged since this replica read or wrote it
        else:
            baseline = self._parse(agent_id, data)
        with self._lock:
            current = self._baselines.get(agent_id)
            if current is not None and current.dirty:
                return current.baseline  # learned meanwhile; keep what this replica knows
            if len(self._baselines) >= _CACHE_LIMIT:
                self._baselines = {a: c for a, c in self._baselines.items() if c.dirty}
            self._baselines[agent_id] = _CachedBaseline(baseline, now, now, raw=data)
        return baseline

    def _parse(self, agent_id: str, data: Mapping[str, Any] | None) -> Baseline:
        if data is None:
            return Baseline.empty(self._config)
        try:
            return Baseline.from_json(data, self._config)
        except ValueError:
            log.warning("stored baseline of agent %r is unreadable; learning again", agent_id)
            return Baseline.empty(self._config)

    def _observe(self, agent_id: str, change: Callable[[Baseline], Baseline], at: datetime) -> None:
        self._baseline(agent_id)  # loaded and cached
        now = time.monotonic()
        with self._lock:
            cached = self._baselines.get(agent_id)
            if cached is None:  # evicted in between: learn on a fresh load next time
                return
            cached.baseline = change(cached.baseline)
            cached.dirty = True
            due = now - cached.saved_at >= self.settings.baseline_sync_seconds
        if due:
            self._save(agent_id, cached, at)

    def _save(self, agent_id: str, cached: _CachedBaseline, at: datetime) -> None:
        with self._lock:
            baseline = cached.baseline
            cached.dirty = False
            cached.saved_at = cached.loaded_at = time.monotonic()
        data = baseline.to_json()
        if self._writer is not None:
            with self._lock:
                cached.raw = data
            self._writer.submit(lambda: self.store.save_baseline(agent_id, data, at))
            return
        try:
            self.store.save_baseline(agent_id, data, at)
            with self._lock:
                cached.raw = data
        except LictorError:
            with self._lock:
                cached.dirty = True
            raise


class _Trace:
    """One call's arguments, read, looked up and traced only on first use.

    Most calls need none of it (a denied call) or only part of it (the baseline needs the
    reading, the untrusted-destination annotation also the session's index), so each step
    runs once, when first asked for.
    """

    __slots__ = ("_agent", "_engine", "_index", "_reading", "_request", "_state", "_value")

    def __init__(
        self, engine: RiskEngine, request: ActionRequest, state: SessionState, agent: Agent | None
    ) -> None:
        self._engine = engine
        self._request = request
        self._state = state
        self._agent = agent
        self._reading: ArgumentReading | None = None
        self._index: ProvenanceIndex | None = None
        self._value: Provenance | None = None

    @property
    def reading(self) -> ArgumentReading:
        """The call's destinations, amounts and requested items (one walk)."""
        if self._reading is None:
            self._reading = read_arguments(self._request.arguments)
        return self._reading

    @property
    def index(self) -> ProvenanceIndex:
        """The session's provenance index (cached per session by the engine)."""
        if self._index is None:
            session_id = self._request.session_id
            self._index = self._engine._index(session_id, self._state, self._agent)
        return self._index

    def untrusted(self) -> Provenance:
        """Only the destinations found only in tool outputs (cheaper than ``value``)."""
        if self._value is not None:
            return Provenance(self._value.untrusted_destinations())
        if not self._state.outputs:
            return _NO_PROVENANCE  # no tool output in the session: nothing came only from one
        reading = self.reading
        if not reading.destinations:
            return _NO_PROVENANCE  # nothing to look up, and no index to build
        return self.index.untrusted(reading, task=self._request.context.task)

    @property
    def value(self) -> Provenance:
        if self._value is None:
            request = self._request
            self._value = self.index.trace(
                request.arguments, task=request.context.task, reading=self.reading
            )
        return self._value


class _Lazy(Mapping[str, list[str]]):
    """A mapping built on first read (``session.provenance`` for conditions that ask)."""

    __slots__ = ("_data", "_make")

    def __init__(self, make: Callable[[], dict[str, list[str]]]) -> None:
        self._make = make
        self._data: dict[str, list[str]] | None = None

    def _get(self) -> dict[str, list[str]]:
        if self._data is None:
            self._data = self._make()
        return self._data

    def __getitem__(self, key: str) -> list[str]:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


class _LazyPaths(Sequence[str]):
    """The paths of destinations found only in tool output, traced on first read."""

    __slots__ = ("_paths", "_trace")

    def __init__(self, trace: _Trace) -> None:
        self._trace = trace
        self._paths: tuple[str, ...] | None = None

    def _get(self) -> tuple[str, ...]:
        if self._paths is None:
            self._paths = tuple(v.path for v in self._trace.value.untrusted_destinations())
        return self._paths

    def __getitem__(self, index: Any) -> Any:
        return self._get()[index]

    def __len__(self) -> int:
        return len(self._get())


@lru_cache(maxsize=4096)
def _is_side_effecting(tool: str) -> bool:
    return looks_side_effecting(tool)


@dataclass(frozen=True, slots=True)
class _SessionChange:
    """A session change queued for the store (batched with its neighbours)."""

    session_id: str
    change: Callable[[SessionState], SessionState]
    at: datetime


_WRITE_BATCH: Final = 256
"""Most queued writes the writer thread takes at once."""


class _Writer:
    """One daemon thread that runs store writes in submission order.

    Session changes after an allow and baseline saves go here, so a decision never waits
    for a database commit it does not need: the replica that made the change sees it at
    once (its cached state is ahead of the store), the others once it lands, normally
    within milliseconds. With :data:`WRITE_QUEUE_LIMIT` writes waiting, the caller writes
    itself (back-pressure rather than unbounded memory).

    Session changes queued one after another go to the store together
    (``update_sessions``, one transaction) when the store offers it: under load a
    write transaction per allowed call cost more Python than the decision itself.
    """

    def __init__(self, store: RiskStore) -> None:
        self._store = store
        self._queue: queue.Queue[Callable[[], object] | _SessionChange] = queue.Queue(
            WRITE_QUEUE_LIMIT
        )
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, job: Callable[[], object] | _SessionChange) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="lictor-risk-writer", daemon=True
                )
                self._thread.start()
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self._write([job])

    def drain(self) -> None:
        """Wait until every submitted write has run."""
        self._queue.join()

    def _run(self) -> None:
        while True:
            jobs = [self._queue.get()]
            while len(jobs) < _WRITE_BATCH:
                try:
                    jobs.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._write(jobs)
            finally:
                for _ in jobs:
                    self._queue.task_done()

    def _write(self, jobs: Sequence[Callable[[], object] | _SessionChange]) -> None:
        """Run jobs in order; consecutive session changes as one batch where possible."""
        batch: list[_SessionChange] = []
        for job in jobs:
            if isinstance(job, _SessionChange):
                batch.append(job)
                continue
            self._write_sessions(batch)
            batch = []
            _run_job(job)
        self._write_sessions(batch)

    def _write_sessions(self, batch: Sequence[_SessionChange]) -> None:
        if not batch:
            return
        many = getattr(self._store, "update_sessions", None)
        if many is None or len(batch) == 1:
            for item in batch:
                _run_job(partial(self._store.update_session, item.session_id, item.change, item.at))
            return
        _run_job(lambda: many([(c.session_id, c.change, c.at) for c in batch]))


def _run_job(job: Callable[[], object]) -> None:
    try:
        job()
    except (LictorError, ValueError):
        log.exception("risk state write failed; the session or baseline lags behind")


def _put(table: OrderedDict[str, Any], key: str, value: Any) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > _CACHE_LIMIT:
        table.popitem(last=False)


def _lock_key(series: str, key: str) -> str:
    return f"{series}\x1e{key}"


def _window_key(spec: WindowSpec) -> WindowKey:
    return (spec.tools, spec.argument, spec.duration, spec.scope.value)


def _record(
    windows: WindowTransaction,
    specs: Sequence[WindowSpec],
    adding: Sequence[WindowSpec],
    request: ActionRequest,
    now: datetime,
) -> None:
    """Add one event per series this allowed call belongs to, kept for its longest window."""
    keep: dict[str, int] = {}
    for spec in specs:
        keep[spec.series] = max(keep.get(spec.series, 0), spec.seconds)
    done: set[str] = set()
    for spec in adding:
        if spec.series in done:
            continue
        done.add(spec.series)
        amount = amount_of(request.arguments, spec.argument)
        windows.add(spec.series, scope_key(spec.scope, request), now, amount, keep[spec.series])


class MemoryRiskStore:
    """Risk state in process memory, for embedded use and tests: **not shared, not durable**.

    Bounds: ``session_limit`` sessions (least recently used go first) and
    ``events_per_series`` events per window series (the oldest go first, which can only
    make a later count smaller than the truth past that many events in one window; keep
    limits below it).
    """

    def __init__(self, session_limit: int = 100_000, events_per_series: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._windows_lock = threading.Lock()
        self._session_limit = session_limit
        self._events_per_series = events_per_series
        self._sessions: OrderedDict[str, SessionState] = OrderedDict()
        self._baselines: dict[str, Mapping[str, Any]] = {}
        self._events: dict[tuple[str, str], deque[tuple[datetime, float]]] = {}

    def session(self, session_id: str) -> SessionState | None:
        """Return the session's state, or None."""
        # No lock: one dict read is atomic, and writers replace a state whole.
        return self._sessions.get(session_id)

    def session_version(self, session_id: str) -> int | None:
        """Return the session state's version, or None."""
        found = self._sessions.get(session_id)
        return None if found is None else found.version

    def update_session(
        self, session_id: str, change: Callable[[SessionState], SessionState], at: datetime
    ) -> SessionState:
        """Apply ``change`` under the lock."""
        with self._lock:
            state = change(self._sessions.get(session_id) or _EMPTY_STATE)
            self._sessions[session_id] = state
            self._sessions.move_to_end(session_id)
            while len(self._sessions) > self._session_limit:
                self._sessions.popitem(last=False)
            return state

    def baseline(self, agent_id: str) -> Mapping[str, Any] | None:
        """Return the stored baseline JSON, or None."""
        with self._lock:
            return self._baselines.get(agent_id)

    def save_baseline(self, agent_id: str, data: Mapping[str, Any], at: datetime) -> None:
        """Keep the baseline JSON."""
        with self._lock:
            self._baselines[agent_id] = data

    @contextmanager
    def counting(self, lock_keys: Sequence[str]) -> Iterator[WindowTransaction]:
        """Hold the one window lock of this store for the block."""
        with self._windows_lock:
            yield _MemoryWindows(self._events, self._events_per_series)


class _MemoryWindows:
    def __init__(
        self, events: dict[tuple[str, str], deque[tuple[datetime, float]]], limit: int
    ) -> None:
        self._events = events
        self._limit = limit

    def totals(self, series: str, scope_key: str, since: datetime) -> tuple[int, float]:
        found = self._events.get((series, scope_key))
        if not found:
            return 0, 0.0
        count = 0
        total = 0.0
        for at, amount in found:
            if at >= since:
                count += 1
                total += amount
        return count, total

    def add(
        self, series: str, scope_key: str, at: datetime, amount: float, keep_seconds: int
    ) -> None:
        found = self._events.setdefault((series, scope_key), deque())
        found.append((at, amount))
        horizon = at - timedelta(seconds=keep_seconds)
        while found and (found[0][0] < horizon or len(found) > self._limit):
            found.popleft()
