"""Per-agent behavioural baselines: what is normal for one agent, and what is not.

A :class:`Baseline` learns online from the calls Lictor allowed (``observe_call``) and
from their result reports (``observe_result``), and scores a proposed call against what
it has learned (``score``). Rules:

1. **Pure value.** Every method returns a new baseline (copy-on-write of the tables that
   change); nothing reads a clock: time is the ``now`` argument, an aware ``datetime``.
2. **Bounded memory.** Each category is a space-saving table
   (:class:`~lictor.core.risk.counts.TopCounts`) with a fixed capacity; hours are 24
   counters and weekdays 7 (UTC); the rate is four numbers; volumes are kept for at most
   ``tools_capacity`` tools. Keys are cut to :data:`MAX_KEY_CHARS` characters. With the
   default :class:`BaselineConfig` one baseline holds at most
   128 + 512 + 256 + 64 + 256 = 1,216 keys, 31 hour/weekday counters and 128 volume
   records, whatever the agent does.
3. **Learning annotates.** Until the agent has ``learning_observations`` observed calls
   *and* ``learning_seconds`` have passed since it was first seen, ``score`` still
   reports signals and a score, but with ``enforce=False``: a new agent is not held for
   review because everything it does is new.
4. **Replays are quiet.** After observing a trace (with no more distinct keys per
   category than the capacity), scoring any call of that trace gives no ``new_tool``,
   ``first_time_destination``, ``first_time_resource`` or ``new_data_class`` signal.
5. **Serialisable.** ``Baseline.from_json(b.to_json(), b.config) == b``; the JSON is
   plain objects, arrays, strings and numbers, to be stored in the database.

Observe only what was allowed (or approved on review): a denied call must not teach the
baseline that it is normal, or an attacker could wear the baseline down by retrying.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, NamedTuple

from lictor.core.decisions import ResultReport, Risk, RiskSignal
from lictor.core.policy.functions import mentions
from lictor.core.requests import ActionRequest
from lictor.core.risk.arguments import (
    ArgumentReading,
    Destination,
    DestinationKind,
    classify_value,
    read_arguments,
)
from lictor.core.risk.counts import TopCounts
from lictor.core.risk.detect import detect_labels
from lictor.core.risk.signals import DEFAULT_SCORES, SignalKind, combine
from lictor.errors import ConfigError

__all__ = [
    "FORMAT_VERSION",
    "MAX_KEY_CHARS",
    "Assessment",
    "Baseline",
    "BaselineConfig",
    "CallFacts",
    "Rate",
    "ResultFacts",
    "ToolVolume",
    "Volume",
]

FORMAT_VERSION: Final = 1
MAX_KEY_CHARS: Final = 256
_DAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_LIST_SHOWN: Final = 3
# Plain strings: reading an enum member's ``.value`` costs a descriptor call per signal.
_K_FIRST_TIME_DESTINATION: Final = SignalKind.FIRST_TIME_DESTINATION.value
_K_FIRST_TIME_RESOURCE: Final = SignalKind.FIRST_TIME_RESOURCE.value
_K_NEW_DATA_CLASS: Final = SignalKind.NEW_DATA_CLASS.value
_K_NEW_TOOL: Final = SignalKind.NEW_TOOL.value
_K_RATE_SPIKE: Final = SignalKind.RATE_SPIKE.value
_K_UNUSUAL_HOUR: Final = SignalKind.UNUSUAL_HOUR.value
_K_UNUSUAL_TRANSITION: Final = SignalKind.UNUSUAL_TRANSITION.value
_K_VOLUME_SPIKE: Final = SignalKind.VOLUME_SPIKE.value
# The members too: reading one from its class goes through the enum's machinery.
_FIRST_TIME_DESTINATION: Final = SignalKind.FIRST_TIME_DESTINATION
_FIRST_TIME_RESOURCE: Final = SignalKind.FIRST_TIME_RESOURCE
_NEW_DATA_CLASS: Final = SignalKind.NEW_DATA_CLASS
_NEW_TOOL: Final = SignalKind.NEW_TOOL
_RATE_SPIKE: Final = SignalKind.RATE_SPIKE
_UNUSUAL_HOUR: Final = SignalKind.UNUSUAL_HOUR
_UNUSUAL_TRANSITION: Final = SignalKind.UNUSUAL_TRANSITION
_VOLUME_SPIKE: Final = SignalKind.VOLUME_SPIKE


@dataclass(frozen=True, slots=True)
class BaselineConfig:
    """Capacities, learning period and signal thresholds. Not stored with the baseline.

    Raises:
        ConfigError: if a capacity or count is negative, or a threshold is out of range.
    """

    learning_observations: int = 50
    learning_seconds: float = 86_400.0
    tools_capacity: int = 128
    destinations_capacity: int = 512
    resources_capacity: int = 256
    labels_capacity: int = 64
    transitions_capacity: int = 256
    #: Time constant of the recent call rate: "calls in about the last minute".
    rate_window_seconds: float = 60.0
    #: Time constant of the typical rate, in seconds of *activity* (see :class:`Rate`).
    rate_typical_seconds: float = 3_600.0
    rate_factor: float = 4.0
    #: An absolute floor under ``rate_factor``: it only rules out a handful of calls. The
    #: spike itself is relative to the agent's pace; a floor of ten calls a minute let an
    #: agent that works at one or two a minute loop at five to nine times that unseen.
    rate_min_calls: float = 5.0
    rate_min_samples: int = 20
    hour_min_samples: int = 50
    #: An hour (or weekday) with a smaller share of past calls than this is unusual.
    rare_share: float = 0.01
    transition_min_samples: int = 20
    volume_factor: float = 4.0
    volume_min_samples: int = 5
    volume_min_bytes: int = 16_384
    volume_min_items: int = 100
    volume_smoothing: float = 0.1
    #: A new destination the human named in the task, or the human's own address, weighs
    #: this share of the ``first_time_destination`` score: new, but not unexplained.
    named_destination_weight: float = 1 / 3
    #: Destination uses of a tool needed before their novelty rate discounts the
    #: ``first_time_destination`` score (see ``Baseline._novelty``).
    novelty_min_samples: int = 20
    scores: Mapping[SignalKind, float] = field(default_factory=lambda: DEFAULT_SCORES)

    def __post_init__(self) -> None:
        counts = {
            "learning_observations": self.learning_observations,
            "tools_capacity": self.tools_capacity,
            "destinations_capacity": self.destinations_capacity,
            "resources_capacity": self.resources_capacity,
            "labels_capacity": self.labels_capacity,
            "transitions_capacity": self.transitions_capacity,
            "rate_min_samples": self.rate_min_samples,
            "hour_min_samples": self.hour_min_samples,
            "transition_min_samples": self.transition_min_samples,
            "novelty_min_samples": self.novelty_min_samples,
            "volume_min_samples": self.volume_min_samples,
            "volume_min_bytes": self.volume_min_bytes,
            "volume_min_items": self.volume_min_items,
        }
        for name, value in counts.items():
            if value < 0:
                raise ConfigError(f"baseline {name} must be >= 0, got {value}")
        if self.learning_seconds < 0 or self.rate_min_calls < 0:
            raise ConfigError("baseline learning_seconds and rate_min_calls must be >= 0")
        if not (self.rate_window_seconds > 0 and self.rate_typical_seconds > 0):
            raise ConfigError("baseline rate_window_seconds and rate_typical_seconds must be > 0")
        for name, share in (
            ("volume_smoothing", self.volume_smoothing),
            ("rare_share", self.rare_share),
            ("named_destination_weight", self.named_destination_weight),
        ):
            if not 0.0 < share <= 1.0:
                raise ConfigError(f"baseline {name} must be in (0, 1], got {share}")
        if self.rate_factor < 1.0 or self.volume_factor < 1.0:
            raise ConfigError("baseline rate_factor and volume_factor must be >= 1")
        for kind, score in self.scores.items():
            if not 0.0 <= score <= 1.0:
                raise ConfigError(f"signal score for {kind} must be in [0, 1], got {score}")

    def score_of(self, kind: SignalKind) -> float:
        """Return the base score of a signal kind."""
        found = self.scores.get(kind)
        return DEFAULT_SCORES[kind] if found is None else found


class CallFacts(NamedTuple):
    """What a proposed call tells the baseline.

    ``previous_tool`` is the tool of the session's previous allowed call (``None`` at
    the start of a session or without one): transitions are learned within sessions.
    ``labels`` are the data labels in play: the resource's and the session's so far.
    ``task`` (the human's request) and ``principal`` (the id of the human the agent acts
    for) say which destinations the human vouched for; they are only read when a
    destination is new, and never learned.
    A named tuple rather than a frozen dataclass: one is built per decision, and a
    tuple is about three times cheaper to build.
    """

    tool: str
    destinations: tuple[Destination, ...] = ()
    resource: str | None = None
    labels: frozenset[str] = frozenset()
    previous_tool: str | None = None
    requested_items: int | None = None
    task: str = ""
    principal: str = ""

    @classmethod
    def from_request(
        cls,
        request: ActionRequest,
        *,
        previous_tool: str | None = None,
        session_labels: Iterable[str] = (),
        reading: ArgumentReading | None = None,
    ) -> CallFacts:
        """Read the facts of one action request.

        Pass ``reading`` when the arguments were already read (for provenance), so they
        are walked once.
        """
        if reading is None:
            reading = read_arguments(request.arguments)
        resource = request.resource
        key = f"{resource.type}:{resource.id}" if resource is not None and resource.id else None
        labels = session_labels if type(session_labels) is frozenset else frozenset(session_labels)
        if resource is not None and resource.labels:
            labels = labels.union(resource.labels)
        return cls(
            tool=request.tool,
            destinations=reading.destinations,
            resource=key,
            labels=labels,
            previous_tool=previous_tool,
            requested_items=reading.requested_items,
            task=request.context.task,
            principal=request.principal.id if request.principal is not None else "",
        )


@dataclass(frozen=True, slots=True)
class ResultFacts:
    """What a result report tells the baseline: output size, item count, labels, targets."""

    tool: str
    output_bytes: int | None = None
    items: int | None = None
    labels: frozenset[str] = frozenset()
    destinations: tuple[Destination, ...] = ()

    @classmethod
    def from_report(cls, tool: str, report: ResultReport, *, detect: bool = True) -> ResultFacts:
        """Read the facts of one result report for a call of ``tool``.

        With ``detect`` the output is scanned for data labels
        (:func:`~lictor.core.risk.detect.detect_labels`) on top of the reported ones.
        Effect targets (``email_sent`` to ``bob@corp.example``) count as destinations.
        """
        output = report.output
        labels = frozenset(report.labels)
        if detect and output is not None:
            labels |= detect_labels(output)
        targets: list[Destination] = []
        for i, effect in enumerate(report.effects):
            if effect.target:
                dest = classify_value(effect.target, DestinationKind.OTHER)
                if dest is not None:
                    targets.append(replace(dest, path=f"effects.{i}"))
        return cls(
            tool=tool,
            output_bytes=_size_of(output),
            items=_items_of(output),
            labels=labels,
            destinations=tuple(targets),
        )


@dataclass(frozen=True, slots=True)
class Volume:
    """A running summary of sizes: samples, weighted mean of log2(1 + size), peak."""

    samples: int = 0
    mean_log2: float = 0.0
    peak: int = 0

    def add(self, amount: int, smoothing: float) -> Volume:
        """Return the summary with one more size."""
        value = math.log2(1 + max(amount, 0))
        mean = value if self.samples == 0 else self.mean_log2 + smoothing * (value - self.mean_log2)
        return Volume(self.samples + 1, mean, max(self.peak, amount))

    def typical(self) -> float:
        """The weighted geometric-mean size."""
        return math.pow(2.0, self.mean_log2) - 1.0

    def excess(self, amount: int) -> float:
        """How many doublings ``amount`` lies above the typical size."""
        return math.log2(1 + max(amount, 0)) - self.mean_log2


@dataclass(frozen=True, slots=True)
class ToolVolume:
    """Sizes for one tool: items asked for in arguments, output bytes and output items."""

    requested: Volume = field(default_factory=Volume)
    output_bytes: Volume = field(default_factory=Volume)
    output_items: Volume = field(default_factory=Volume)

    @property
    def samples(self) -> int:
        """All sizes seen, for eviction."""
        return self.requested.samples + self.output_bytes.samples + self.output_items.samples


@dataclass(frozen=True, slots=True)
class Rate:
    """The call rate as two exponentially decayed numbers.

    ``recent`` is a count of calls that decays with time constant ``rate_window_seconds``
    (for a steady rate it approaches the calls per window). ``typical`` is the mean of
    ``recent`` as each observed call saw it: the agent's usual pace *while active*, so
    idle nights do not make every morning look like a spike. Over the first
    ``rate_min_samples`` calls it is the plain mean; after that each call moves it by
    ``1 - exp(-gap / rate_typical_seconds)``, where the gap since the previous call is
    capped at one window. A burst of 30 calls in 30 seconds therefore moves it by under
    1 %, and the burst stays visible while it lasts, even if its first calls are allowed
    and observed.
    """

    recent: float = 0.0
    typical: float = 0.0
    samples: int = 0
    last_at: datetime | None = None

    def recent_at(self, now: datetime, window_seconds: float) -> float:
        """Return ``recent`` decayed to ``now``, counting a call at ``now``."""
        if self.last_at is None:
            return 1.0
        elapsed = max((now - self.last_at).total_seconds(), 0.0)
        return self.recent * math.exp(-elapsed / window_seconds) + 1.0

    def add(self, now: datetime, config: BaselineConfig) -> Rate:
        """Return the rate with one more call at ``now``."""
        recent = self.recent_at(now, config.rate_window_seconds)
        if self.samples < config.rate_min_samples or self.last_at is None:
            weight = 1.0 / (self.samples + 1)
        else:
            gap = min(max((now - self.last_at).total_seconds(), 0.0), config.rate_window_seconds)
            weight = 1.0 - math.exp(-gap / config.rate_typical_seconds)
        typical = self.typical + weight * (recent - self.typical)
        last = now if self.last_at is None else max(self.last_at, now)
        return Rate(recent, typical, self.samples + 1, last)


class Assessment(NamedTuple):
    """The baseline's view of one call: a score in [0, 1], its signals, and whether to act.

    ``enforce`` is false while the baseline learns: the score is reported, not acted on.
    A named tuple rather than a frozen dataclass: one is built per decision, and a
    tuple is about three times cheaper to build.
    """

    score: float = 0.0
    signals: tuple[RiskSignal, ...] = ()
    enforce: bool = False

    @property
    def is_learning(self) -> bool:
        """True when the assessment only annotates."""
        return not self.enforce

    def kinds(self) -> frozenset[str]:
        """The kinds of signal present."""
        return frozenset(s.kind for s in self.signals)

    def to_risk(self) -> Risk:
        """Return the decision's ``risk`` field."""
        return Risk(score=self.score, signals=self.signals)


_EMPTY_HOURS: Final = (0,) * 24
_EMPTY_DAYS: Final = (0,) * 7


@dataclass(frozen=True, slots=True)
class Baseline:
    """What is normal for one agent. Build with :meth:`empty` or :meth:`from_json`.

    ``destinations_per_tool`` is derived from ``destinations`` (distinct destinations
    stored per tool) and kept up to date by ``observe_*``, so explanations need no scan.
    ``destination_uses`` is derived the same way: per tool, the stored counts summed and
    the keys counted once, for :meth:`_novelty`.
    """

    config: BaselineConfig
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    observations: int
    results: int
    tools: TopCounts[str]
    destinations: TopCounts[tuple[str, str]]
    resources: TopCounts[str]
    labels: TopCounts[str]
    transitions: TopCounts[tuple[str, str]]
    hours: tuple[int, ...]
    weekdays: tuple[int, ...]
    rate: Rate
    volumes: Mapping[str, ToolVolume]
    destinations_per_tool: Mapping[str, int] = field(compare=False)
    destination_uses: Mapping[str, tuple[int, int]] = field(compare=False)

    @classmethod
    def empty(cls, config: BaselineConfig | None = None) -> Baseline:
        """Return a baseline that has seen nothing (and so is learning)."""
        cfg = config if config is not None else BaselineConfig()
        return cls(
            config=cfg,
            first_seen_at=None,
            last_seen_at=None,
            observations=0,
            results=0,
            tools=TopCounts(cfg.tools_capacity),
            destinations=TopCounts(cfg.destinations_capacity),
            resources=TopCounts(cfg.resources_capacity),
            labels=TopCounts(cfg.labels_capacity),
            transitions=TopCounts(cfg.transitions_capacity),
            hours=_EMPTY_HOURS,
            weekdays=_EMPTY_DAYS,
            rate=Rate(),
            volumes=MappingProxyType({}),
            destinations_per_tool=MappingProxyType({}),
            destination_uses=MappingProxyType({}),
        )

    # -- learning -------------------------------------------------------------------

    def is_learning(self, now: datetime) -> bool:
        """Return whether signals at ``now`` only annotate (see rule 3 above)."""
        cfg = self.config
        if self.observations < cfg.learning_observations:
            return True
        if self.first_seen_at is None:
            return cfg.learning_seconds > 0
        return (now - self.first_seen_at).total_seconds() < cfg.learning_seconds

    def observe_call(self, call: CallFacts, now: datetime) -> Baseline:
        """Return the baseline after one allowed call of ``call.tool`` at ``now``."""
        utc = _utc(now)
        cfg = self.config
        tool = _key(call.tool)
        tools, _ = self.tools.add((tool,))
        destinations, per_tool, uses = self._add_destinations(tool, call.destinations)
        resources = self.resources
        if call.resource:
            resources, _ = resources.add((_key(call.resource),))
        labels, _ = self.labels.add(sorted({_key(label) for label in call.labels}))
        transitions = self.transitions
        if call.previous_tool is not None:
            transitions, _ = transitions.add(((_key(call.previous_tool), tool),))
        hours = list(self.hours)
        hours[utc.hour] += 1
        weekdays = list(self.weekdays)
        weekdays[utc.weekday()] += 1
        volumes = self.volumes
        if call.requested_items is not None:
            volumes = self._add_volume(tool, requested=call.requested_items)
        return replace(
            self,
            first_seen_at=_earliest(self.first_seen_at, utc),
            last_seen_at=_latest(self.last_seen_at, utc),
            observations=self.observations + 1,
            tools=tools,
            destinations=destinations,
            destinations_per_tool=per_tool,
            destination_uses=uses,
            resources=resources,
            labels=labels,
            transitions=transitions,
            hours=tuple(hours),
            weekdays=tuple(weekdays),
            rate=self.rate.add(utc, cfg),
            volumes=volumes,
        )

    def observe_result(self, result: ResultFacts, now: datetime) -> Baseline:
        """Return the baseline after the result report of a call of ``result.tool``."""
        utc = _utc(now)
        tool = _key(result.tool)
        labels, _ = self.labels.add(sorted({_key(label) for label in result.labels}))
        destinations, per_tool, uses = self._add_destinations(tool, result.destinations)
        volumes = self._add_volume(tool, output_bytes=result.output_bytes, items=result.items)
        return replace(
            self,
            first_seen_at=_earliest(self.first_seen_at, utc),
            last_seen_at=_latest(self.last_seen_at, utc),
            results=self.results + 1,
            labels=labels,
            destinations=destinations,
            destinations_per_tool=per_tool,
            destination_uses=uses,
            volumes=volumes,
        )

    def _add_destinations(
        self, tool: str, found: tuple[Destination, ...]
    ) -> tuple[TopCounts[tuple[str, str]], Mapping[str, int], Mapping[str, tuple[int, int]]]:
        if not found:
            return self.destinations, self.destinations_per_tool, self.destination_uses
        keys = list(dict.fromkeys((tool, _key(d.key)) for d in found))
        old = self.destinations
        new, evicted = old.add(keys)
        per_tool = dict(self.destinations_per_tool)
        uses = dict(self.destination_uses)
        before, after = old.counts, new.counts
        # A key can enter and leave within one batch, or leave and come back: count
        # each touched key by whether it is stored before and after.
        for key in {*keys, *evicted}:
            delta = (key in after) - (key in before)
            if delta:
                remaining = per_tool.get(key[0], 0) + delta
                if remaining > 0:
                    per_tool[key[0]] = remaining
                else:
                    per_tool.pop(key[0], None)
            was, now = before.get(key, 0), after.get(key, 0)
            if was != now:
                total, once = uses.get(key[0], (0, 0))
                total += now - was
                once += (now == 1) - (was == 1)
                if total > 0:
                    uses[key[0]] = (total, once)
                else:
                    uses.pop(key[0], None)
        return new, MappingProxyType(per_tool), MappingProxyType(uses)

    def _add_volume(
        self,
        tool: str,
        *,
        requested: int | None = None,
        output_bytes: int | None = None,
        items: int | None = None,
    ) -> Mapping[str, ToolVolume]:
        if requested is None and output_bytes is None and items is None:
            return self.volumes
        cfg = self.config
        volumes = dict(self.volumes)
        current = volumes.get(tool)
        if current is None:
            if len(volumes) >= cfg.tools_capacity:
                if cfg.tools_capacity == 0:
                    return self.volumes
                victim = min(volumes.items(), key=lambda kv: (kv[1].samples, kv[0]))[0]
                del volumes[victim]
            current = ToolVolume()
        alpha = cfg.volume_smoothing
        volumes[tool] = ToolVolume(
            requested=current.requested
            if requested is None
            else current.requested.add(requested, alpha),
            output_bytes=(
                current.output_bytes
                if output_bytes is None
                else current.output_bytes.add(output_bytes, alpha)
            ),
            output_items=current.output_items
            if items is None
            else current.output_items.add(items, alpha),
        )
        return MappingProxyType(volumes)

    # -- scoring --------------------------------------------------------------------

    def score(self, call: CallFacts, now: datetime) -> Assessment:
        """Return the signals and score of a proposed call at ``now``; learns nothing."""
        utc = _utc(now)
        cfg = self.config
        tool = _key(call.tool)
        signals: list[RiskSignal] = []
        tools = self.tools.counts
        known_tool = tool in tools
        if not known_tool:
            others = len(tools)  # the table's size, without a call through TopCounts
            signals.append(
                RiskSignal(
                    _K_NEW_TOOL,
                    f"tool {tool} never used by this agent (it uses {others} other tools)",
                    cfg.score_of(_NEW_TOOL),
                )
            )
        if call.destinations:
            self._destination_signal(tool, call, signals)
        if call.resource:
            resource = _key(call.resource)
            if resource not in self.resources.counts:
                signals.append(
                    RiskSignal(
                        _K_FIRST_TIME_RESOURCE,
                        f"resource {resource} never touched by this agent "
                        f"(seen {len(self.resources.counts)} others)",
                        cfg.score_of(_FIRST_TIME_RESOURCE),
                    )
                )
        if call.labels:
            known = self.labels.counts
            new = sorted({key for key in map(_key, call.labels) if key not in known})
            if new:
                signals.append(self._label_signal(new))
        self._hour_signal(utc, signals)
        self._rate_signal(utc, signals)
        previous = call.previous_tool
        if previous is not None and known_tool:
            prev = _key(previous)
            if (
                prev in tools
                and self.transitions.total >= cfg.transition_min_samples
                and (prev, tool) not in self.transitions.counts
            ):
                signals.append(
                    RiskSignal(
                        _K_UNUSUAL_TRANSITION,
                        f"{tool} right after {prev}: a sequence this agent has not used "
                        f"before (seen {len(self.transitions.counts)} others)",
                        cfg.score_of(_UNUSUAL_TRANSITION),
                    )
                )
        if call.requested_items is not None:
            volume = self.volumes.get(tool)
            # Checked here as well as in ``_volume_signal``, so that the message is only
            # written for a size that can be a spike: most calls ask for a usual amount.
            if (
                volume is not None
                and volume.requested.samples >= cfg.volume_min_samples
                and call.requested_items >= cfg.volume_min_items
            ):
                signal = self._volume_signal(
                    f"{tool} asks for {call.requested_items} items",
                    volume.requested,
                    call.requested_items,
                    cfg.volume_min_items,
                    "items",
                )
                if signal is not None:
                    signals.append(signal)
        return Assessment(combine(signals), tuple(signals), not self.is_learning(utc))

    def score_result(self, result: ResultFacts, now: datetime) -> Assessment:
        """Return the signals of a result report: volume spikes and new data classes.

        The action has already run, so this cannot stop it; it feeds alerts, and the
        session's next decision (the Governor may raise the session's risk).
        """
        utc = _utc(now)
        cfg = self.config
        tool = _key(result.tool)
        signals: list[RiskSignal] = []
        new = sorted(
            label for label in {_key(x) for x in result.labels} if label not in self.labels
        )
        if new:
            signals.append(self._label_signal(new))
        volume = self.volumes.get(tool)
        if volume is not None:
            checks = (
                (result.output_bytes, volume.output_bytes, cfg.volume_min_bytes, "bytes"),
                (result.items, volume.output_items, cfg.volume_min_items, "items"),
            )
            for amount, summary, floor, unit in checks:
                if amount is None:
                    continue
                signal = self._volume_signal(
                    f"{tool} returned {amount} {unit}", summary, amount, floor, unit
                )
                if signal is not None:
                    signals.append(signal)
                    break
        return Assessment(combine(signals), tuple(signals), not self.is_learning(utc))

    def _destination_signal(self, tool: str, call: CallFacts, signals: list[RiskSignal]) -> None:
        known = self.destinations.counts
        new: dict[str, Destination] = {}
        for dest in call.destinations:
            key = _key(dest.key)
            if (tool, key) not in known and key not in new:
                new[key] = dest
        if not new:
            return
        shown = [f"{d.kind.noun} {d.value}" for d in list(new.values())[:_LIST_SHOWN]]
        if len(new) > _LIST_SHOWN:
            shown.append(f"{len(new) - _LIST_SHOWN} more")
        seen = self.destinations_per_tool.get(tool, 0)
        base = self.config.score_of(_FIRST_TIME_DESTINATION)
        # The signal is there to catch a place that nobody asked for: an injected payee or
        # an exfiltration address. A new destination the requester wrote into the task, or
        # the requester's own address, is still reported, but it is explained, so it weighs
        # less; one the requester did not name keeps the full weight.
        task, principal = call.task, call.principal
        lowered = task.lower() if task.isascii() else None  # once per call, not per value
        unnamed = [d for d in new.values() if not _is_named(d, task, lowered, principal)]
        counted = len(unnamed) if unnamed else len(new)
        # Several new destinations in one call weigh a little more than one, not n times:
        # a mail to three new colleagues is one decision, not three.
        score = min(base + 0.05 * (counted - 1), base + 0.15, 1.0)
        note = ""
        if not unnamed:
            score *= self.config.named_destination_weight
            note = "; named in the task or the requester's own"
        novelty = self._novelty(tool)
        if novelty > 0.0:
            # A new place is evidence only as far as new places are rare for this tool:
            # an agent that invites a new candidate to every interview meets a new
            # address half the time, one that pays the vendor master almost never. It
            # keeps at least half its weight, so that with a second signal it still holds.
            score *= max(1.0 - novelty, 0.5)
            note += f"; about {novelty:.0%} of its {tool} destinations were new"
        signals.append(
            RiskSignal(
                _K_FIRST_TIME_DESTINATION,
                f"{', '.join(shown)} never used by this agent with {tool} "
                f"(seen {seen} others){note}",
                score,
            )
        )

    def _novelty(self, tool: str) -> float:
        """How often ``tool`` met a destination for the first time, in [0, 1].

        Good-Turing's estimate of the chance that the next use is new: destinations seen
        exactly once over all destination uses of the tool (I. J. Good, "The population
        frequencies of species and the estimation of population parameters",
        Biometrika 40, 1953). Zero until the tool has ``novelty_min_samples`` uses. A
        space-saving table gives an evicted key's successor a count above one, so after
        evictions this underestimates novelty: it errs toward the full score.
        """
        uses, once = self.destination_uses.get(tool, (0, 0))
        if uses < max(self.config.novelty_min_samples, 1):
            return 0.0
        return once / uses

    def _label_signal(self, new: list[str]) -> RiskSignal:
        known = [k for k, _ in self.labels.top(5)]
        seen = f"known: {', '.join(sorted(known))}" if known else "none known"
        noun = "data class" if len(new) == 1 else "data classes"
        return RiskSignal(
            _K_NEW_DATA_CLASS,
            f"{noun} {', '.join(new)} never handled by this agent ({seen})",
            self.config.score_of(_NEW_DATA_CLASS),
        )

    def _hour_signal(self, utc: datetime, signals: list[RiskSignal]) -> None:
        cfg = self.config
        total = sum(self.hours)
        if total < cfg.hour_min_samples or total == 0:
            return
        parts: list[str] = []
        never = False
        hour_count = self.hours[utc.hour]
        if hour_count / total < cfg.rare_share:
            parts.append(
                f"call at {utc.hour:02d}:00-{utc.hour:02d}:59 UTC, an hour with "
                f"{hour_count} of this agent's {total} calls"
            )
            never = hour_count == 0
        day_count = self.weekdays[utc.weekday()]
        if day_count / total < cfg.rare_share:
            parts.append(f"on a {_DAYS[utc.weekday()]}, a day with {day_count} of its calls")
            never = never or day_count == 0
        if parts:
            base = cfg.score_of(_UNUSUAL_HOUR)
            signals.append(
                RiskSignal(_K_UNUSUAL_HOUR, "; ".join(parts), base if never else base * 0.6)
            )

    def _rate_signal(self, utc: datetime, signals: list[RiskSignal]) -> None:
        cfg = self.config
        rate = self.rate
        if rate.samples < cfg.rate_min_samples:
            return
        recent = rate.recent_at(utc, cfg.rate_window_seconds)
        typical = max(rate.typical, 1.0)
        if recent < cfg.rate_min_calls or recent <= cfg.rate_factor * typical:
            return
        base = cfg.score_of(_RATE_SPIKE)
        doublings = math.log2(recent / (cfg.rate_factor * typical))
        signals.append(
            RiskSignal(
                _K_RATE_SPIKE,
                f"a recent rate of about {recent:.0f} calls per {cfg.rate_window_seconds:.0f} s, "
                f"{recent / typical:.1f} times this agent's usual {rate.typical:.1f}",
                min(base + 0.1 * doublings, 0.9),
            )
        )

    def _volume_signal(
        self, what: str, summary: Volume, amount: int, floor: int, unit: str
    ) -> RiskSignal | None:
        cfg = self.config
        if summary.samples < cfg.volume_min_samples or amount < floor:
            return None
        excess = summary.excess(amount)
        threshold = math.log2(cfg.volume_factor)
        if excess < threshold:
            return None
        base = cfg.score_of(_VOLUME_SPIKE)
        return RiskSignal(
            _K_VOLUME_SPIKE,
            f"{what}, about {2.0**excess:.0f} times its usual {summary.typical():.0f} {unit} "
            f"(largest seen {summary.peak})",
            min(base + 0.1 * (excess - threshold), 0.9),
        )

    # -- storage --------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """Return the stored form: plain JSON, version :data:`FORMAT_VERSION`."""
        return {
            "version": FORMAT_VERSION,
            "first_seen_at": _time_out(self.first_seen_at),
            "last_seen_at": _time_out(self.last_seen_at),
            "observations": self.observations,
            "results": self.results,
            "tools": _table_out(self.tools),
            "destinations": _pairs_out(self.destinations),
            "resources": _table_out(self.resources),
            "labels": _table_out(self.labels),
            "transitions": _pairs_out(self.transitions),
            "hours": list(self.hours),
            "weekdays": list(self.weekdays),
            "rate": {
                "recent": self.rate.recent,
                "typical": self.rate.typical,
                "samples": self.rate.samples,
                "last_at": _time_out(self.rate.last_at),
            },
            "volumes": {
                tool: {
                    "requested": _volume_out(v.requested),
                    "output_bytes": _volume_out(v.output_bytes),
                    "output_items": _volume_out(v.output_items),
                }
                for tool, v in self.volumes.items()
            },
        }

    @classmethod
    def from_json(cls, data: object, config: BaselineConfig | None = None) -> Baseline:
        """Load a stored baseline; tables larger than ``config`` allows keep their top keys.

        Raises:
            ValueError: if ``data`` is not a baseline of a known version (the store
                should then start the agent from :meth:`empty`, which learns again).
        """
        cfg = config if config is not None else BaselineConfig()
        obj = _obj(data, "")
        if obj.get("version") != FORMAT_VERSION:
            raise ValueError(f"unknown baseline version {obj.get('version')!r}")
        destinations = _pairs_in(obj.get("destinations"), cfg.destinations_capacity, "destinations")
        per_tool: dict[str, int] = {}
        uses: dict[str, tuple[int, int]] = {}
        for (tool, _), count in destinations.counts.items():
            per_tool[tool] = per_tool.get(tool, 0) + 1
            total, once = uses.get(tool, (0, 0))
            uses[tool] = (total + count, once + (count == 1))
        rate = _obj(obj.get("rate"), "rate")
        volumes_in = _obj(obj.get("volumes", {}), "volumes")
        volumes: dict[str, ToolVolume] = {}
        for tool, entry in volumes_in.items():
            record = _obj(entry, f"volumes/{tool}")
            volumes[tool] = ToolVolume(
                requested=_volume_in(record.get("requested"), f"volumes/{tool}/requested"),
                output_bytes=_volume_in(record.get("output_bytes"), f"volumes/{tool}/output_bytes"),
                output_items=_volume_in(record.get("output_items"), f"volumes/{tool}/output_items"),
            )
        if len(volumes) > cfg.tools_capacity:
            ranked = sorted(volumes.items(), key=lambda kv: (-kv[1].samples, kv[0]))
            volumes = dict(ranked[: cfg.tools_capacity])
        return cls(
            config=cfg,
            first_seen_at=_time_in(obj.get("first_seen_at"), "first_seen_at"),
            last_seen_at=_time_in(obj.get("last_seen_at"), "last_seen_at"),
            observations=_int(obj.get("observations"), "observations"),
            results=_int(obj.get("results"), "results"),
            tools=_table_in(obj.get("tools"), cfg.tools_capacity, "tools"),
            destinations=destinations,
            resources=_table_in(obj.get("resources"), cfg.resources_capacity, "resources"),
            labels=_table_in(obj.get("labels"), cfg.labels_capacity, "labels"),
            transitions=_pairs_in(obj.get("transitions"), cfg.transitions_capacity, "transitions"),
            hours=_counters(obj.get("hours"), 24, "hours"),
            weekdays=_counters(obj.get("weekdays"), 7, "weekdays"),
            rate=Rate(
                recent=_float(rate.get("recent"), "rate/recent"),
                typical=_float(rate.get("typical"), "rate/typical"),
                samples=_int(rate.get("samples"), "rate/samples"),
                last_at=_time_in(rate.get("last_at"), "rate/last_at"),
            ),
            volumes=MappingProxyType(volumes),
            destinations_per_tool=MappingProxyType(per_tool),
            destination_uses=MappingProxyType(uses),
        )


# -- helpers ------------------------------------------------------------------------


def _utc(now: datetime) -> datetime:
    if now.tzinfo is UTC:
        return now
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("naive datetime: Lictor times are aware (UTC)")
    return now.astimezone(UTC)


def _key(text: str) -> str:
    return text if len(text) <= MAX_KEY_CHARS else text[:MAX_KEY_CHARS]


def _is_named(dest: Destination, task: str, lowered: str | None, principal: str) -> bool:
    """Whether the requester vouched for ``dest``: their own id, or named in the task.

    The task is matched as policies match it (:func:`mentions`: whole words, any case),
    on the value as written and on its normalised form (a URL's host, a compact IBAN).
    ``lowered`` is the task in lower case when it is ASCII, else ``None``.
    """
    body = dest.key.partition(":")[2]
    if principal and body == principal.casefold():
        return True
    if not task:
        return False
    value = dest.value
    return (_may_mention(lowered, value) and mentions(task, value)) or (
        body != value and _may_mention(lowered, body) and mentions(task, body)
    )


_SPACE: Final = re.compile(r"\s")


def _may_mention(lowered: str | None, value: str) -> bool:
    """False only when :func:`mentions` is certain to be false; cheaper than it.

    For an ASCII task and an ASCII value without white space, ``mentions`` folds both to
    lower case (NFKC and case folding change nothing else there, and the value has no
    space to collapse), so it can only match where the lower-case value occurs in the
    lower-case task. Most new destinations are not named, and most tasks are ASCII.
    """
    if lowered is None or not value.isascii() or _SPACE.search(value) is not None:
        return True
    return value.lower() in lowered


def _earliest(current: datetime | None, now: datetime) -> datetime:
    return now if current is None or now < current else current


def _latest(current: datetime | None, now: datetime) -> datetime:
    return now if current is None or now > current else current


def _size_of(output: Any) -> int | None:
    """Bytes of the output as UTF-8 text or compact JSON; ``None`` for no output."""
    if output is None:
        return None
    if isinstance(output, str):
        return len(output.encode("utf-8", "surrogatepass"))
    try:
        text = json.dumps(output, separators=(",", ":"), ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return None
    return len(text.encode("utf-8", "surrogatepass"))


_ITEM_KEYS: Final = ("items", "results", "data", "rows", "records", "messages", "files", "entries")


def _items_of(output: Any) -> int | None:
    """How many items an output holds: a list's length, or that of a list under a usual key."""
    if isinstance(output, list):
        return len(output)
    if isinstance(output, Mapping):
        for key in _ITEM_KEYS:
            value = output.get(key)
            if isinstance(value, list):
                return len(value)
    return None


def _time_out(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _time_in(value: object, where: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"baseline {where}: expected a timestamp")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"baseline {where}: timestamp without time zone")
    return moment.astimezone(UTC)


def _table_out(table: TopCounts[str]) -> dict[str, Any]:
    return {"counts": dict(table.counts), "total": table.total}


def _pairs_out(table: TopCounts[tuple[str, str]]) -> dict[str, Any]:
    return {"counts": [[a, b, c] for (a, b), c in table.counts.items()], "total": table.total}


def _volume_out(volume: Volume) -> list[Any]:
    return [volume.samples, volume.mean_log2, volume.peak]


def _obj(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"baseline {where or '/'}: expected an object")
    return value


def _int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"baseline {where}: expected a count")
    return value


def _float(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"baseline {where}: expected a number")
    return float(value)


def _table_in(value: object, capacity: int, where: str) -> TopCounts[str]:
    obj = _obj(value, where)
    counts = _obj(obj.get("counts"), f"{where}/counts")
    items = [(str(k), _int(c, f"{where}/counts/{k}")) for k, c in counts.items()]
    return TopCounts.from_items(capacity, items, _int(obj.get("total"), f"{where}/total"))


def _pairs_in(value: object, capacity: int, where: str) -> TopCounts[tuple[str, str]]:
    obj = _obj(value, where)
    rows = obj.get("counts")
    if not isinstance(rows, list):
        raise ValueError(f"baseline {where}/counts: expected a list")
    items: list[tuple[tuple[str, str], int]] = []
    for i, row in enumerate(rows):
        if not (isinstance(row, list) and len(row) == 3):
            raise ValueError(f"baseline {where}/counts/{i}: expected [a, b, count]")
        a, b, count = row
        if not (isinstance(a, str) and isinstance(b, str)):
            raise ValueError(f"baseline {where}/counts/{i}: expected strings")
        items.append(((a, b), _int(count, f"{where}/counts/{i}")))
    return TopCounts.from_items(capacity, items, _int(obj.get("total"), f"{where}/total"))


def _counters(value: object, size: int, where: str) -> tuple[int, ...]:
    if not (isinstance(value, list) and len(value) == size):
        raise ValueError(f"baseline {where}: expected {size} counts")
    return tuple(_int(v, f"{where}/{i}") for i, v in enumerate(value))


def _volume_in(value: object, where: str) -> Volume:
    if value is None:
        return Volume()
    if not (isinstance(value, list) and len(value) == 3):
        raise ValueError(f"baseline {where}: expected [samples, mean_log2, peak]")
    return Volume(_int(value[0], where), _float(value[1], where), _int(value[2], where))
