"""The state one session carries between calls: labels, counters, previous tool, outputs.

A :class:`SessionState` is a pure value; the service keeps one per session in a store
shared by every replica, so a label read on one node stops a sink on another. Rules:

1. **Only grows by events.** :meth:`after_call` (an allowed call is on record) and
   :meth:`after_result` (its result report) return a new state with ``version`` one
   higher; nothing else changes it. Labels are never removed within a session.
2. **Bounded.** At most :data:`~lictor.core.risk.provenance.MAX_OUTPUTS` outputs are
   kept (the oldest go first), each flattened to at most
   :data:`~lictor.core.risk.provenance.MAX_SOURCE_CHARS` characters of text;
   :data:`MAX_LABELS` labels and :data:`MAX_COUNTERS` per-tool counters (calls of
   further tools still count in ``calls``). One state thus holds at most about 1 MiB.
3. **Serialisable.** ``SessionState.from_json(s.to_json()) == s``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from lictor.core.risk.detect import flatten_text
from lictor.core.risk.provenance import MAX_OUTPUTS, MAX_SOURCE_CHARS, ProvenanceIndex, ToolOutput

__all__ = ["MAX_COUNTERS", "MAX_LABELS", "SESSION_FORMAT_VERSION", "SessionState"]

SESSION_FORMAT_VERSION: Final = 1
MAX_LABELS: Final = 256
MAX_COUNTERS: Final = 256
_MAX_NAME_CHARS: Final = 256


@dataclass(frozen=True, slots=True)
class SessionState:
    """What one session has done so far. Outputs hold flattened text, not the raw JSON."""

    labels: frozenset[str] = frozenset()
    counters: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    calls: int = 0
    previous_tool: str | None = None
    outputs: tuple[ToolOutput, ...] = ()
    version: int = 0

    def after_call(self, tool: str, labels: Iterable[str] = ()) -> SessionState:
        """Return the state after an allowed call of ``tool`` touching ``labels``."""
        tool = tool[:_MAX_NAME_CHARS]
        counters = dict(self.counters)
        if tool in counters or len(counters) < MAX_COUNTERS:
            counters[tool] = counters.get(tool, 0) + 1
        return SessionState(
            labels=_add_labels(self.labels, labels),
            counters=MappingProxyType(counters),
            calls=self.calls + 1,
            previous_tool=tool,
            outputs=self.outputs,
            version=self.version + 1,
        )

    def after_result(
        self, tool: str, decision_id: str, output: Any, labels: Iterable[str] = ()
    ) -> SessionState:
        """Return the state after a result report: its output and labels join the session."""
        outputs = self.outputs
        if output is not None:
            text = output if isinstance(output, str) else flatten_text(output)
            kept = ToolOutput(tool[:_MAX_NAME_CHARS], decision_id, text[:MAX_SOURCE_CHARS])
            outputs = (*outputs, kept)[-MAX_OUTPUTS:]
        return SessionState(
            labels=_add_labels(self.labels, labels),
            counters=self.counters,
            calls=self.calls,
            previous_tool=self.previous_tool,
            outputs=outputs,
            version=self.version + 1,
        )

    def index(self, trusted: Any = None) -> ProvenanceIndex:
        """Return the provenance index over ``trusted`` context and this session's outputs."""
        index = ProvenanceIndex()
        if trusted:
            index = index.with_trusted(trusted)
        for output in self.outputs:
            index = index.with_output(output.tool, output.decision_id, output.output)
        return index

    def to_json(self) -> dict[str, Any]:
        """Return the stored form (plain JSON)."""
        return {
            "version": SESSION_FORMAT_VERSION,
            "state_version": self.version,
            "labels": sorted(self.labels),
            "counters": dict(self.counters),
            "calls": self.calls,
            "previous_tool": self.previous_tool,
            "outputs": [[o.tool, o.decision_id, o.output] for o in self.outputs],
        }

    @classmethod
    def from_json(cls, data: object) -> SessionState:
        """Load a stored state.

        Raises:
            ValueError: ``data`` is not a session state of a known format.
        """
        if not isinstance(data, Mapping) or data.get("version") != SESSION_FORMAT_VERSION:
            raise ValueError("not a stored session state of a known version")
        labels = data.get("labels")
        counters = data.get("counters")
        outputs = data.get("outputs")
        previous = data.get("previous_tool")
        if not (
            isinstance(labels, list)
            and all(isinstance(x, str) for x in labels)
            and isinstance(counters, Mapping)
            and all(_is_count(v) for v in counters.values())
            and isinstance(outputs, list)
            and (previous is None or isinstance(previous, str))
            and _is_count(data.get("calls"))
            and _is_count(data.get("state_version"))
        ):
            raise ValueError("malformed stored session state")
        kept: list[ToolOutput] = []
        for row in outputs[-MAX_OUTPUTS:]:
            if not (
                isinstance(row, list)
                and len(row) == 3
                and isinstance(row[0], str)
                and isinstance(row[1], str)
                and isinstance(row[2], str)
            ):
                raise ValueError("malformed stored session output")
            kept.append(ToolOutput(row[0], row[1], row[2]))
        return cls(
            labels=frozenset(labels[:MAX_LABELS]),
            counters=MappingProxyType({str(k): int(v) for k, v in counters.items()}),
            calls=int(data["calls"]),
            previous_tool=previous,
            outputs=tuple(kept),
            version=int(data["state_version"]),
        )


def _add_labels(have: frozenset[str], new: Iterable[str]) -> frozenset[str]:
    extra = {label[:_MAX_NAME_CHARS] for label in new} - have
    if not extra:
        return have
    room = MAX_LABELS - len(have)
    if room <= 0:
        return have
    return have | frozenset(sorted(extra)[:room])


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
