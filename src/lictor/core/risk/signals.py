"""Risk signals and how they combine into one score.

Each anomaly is a :class:`~lictor.core.decisions.RiskSignal` whose ``kind`` is a
:class:`SignalKind`, whose ``detail`` is a sentence a reviewer can act on, and whose
``score`` in [0, 1] is its weight. Signals combine by **noisy-OR**:

    score = 1 - (1 - s1) * (1 - s2) * ... * (1 - sn)

read as "the chance that at least one of the independent signals is a real problem".
It is 0 with no signals, never exceeds 1, never falls when a signal is added, and one
strong signal outweighs many weak ones (two 0.45 signals give 0.70, not 0.90).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from lictor.core.decisions import RiskSignal

__all__ = ["DEFAULT_SCORES", "SignalKind", "combine"]


class SignalKind(StrEnum):
    """The behavioural anomalies a baseline can report."""

    NEW_TOOL = "new_tool"
    FIRST_TIME_DESTINATION = "first_time_destination"
    FIRST_TIME_RESOURCE = "first_time_resource"
    NEW_DATA_CLASS = "new_data_class"
    UNUSUAL_HOUR = "unusual_hour"
    RATE_SPIKE = "rate_spike"
    UNUSUAL_TRANSITION = "unusual_transition"
    VOLUME_SPIKE = "volume_spike"


DEFAULT_SCORES: Final[Mapping[SignalKind, float]] = MappingProxyType(
    {
        # Alone, none of these reaches the default tolerance of 0.5: a single novelty is
        # normal work. Two together (0.70) are held for review; three (0.83) at a
        # medium tier are denied. The rate and volume spikes grow with their size.
        SignalKind.NEW_TOOL: 0.45,
        SignalKind.FIRST_TIME_DESTINATION: 0.45,
        SignalKind.FIRST_TIME_RESOURCE: 0.3,
        SignalKind.NEW_DATA_CLASS: 0.4,
        SignalKind.UNUSUAL_HOUR: 0.25,
        SignalKind.RATE_SPIKE: 0.35,
        SignalKind.UNUSUAL_TRANSITION: 0.2,
        SignalKind.VOLUME_SPIKE: 0.4,
    }
)
"""Base weight of each signal kind; :class:`~lictor.core.risk.baseline.BaselineConfig`
may override them."""


def combine(signals: Iterable[RiskSignal]) -> float:
    """Return the noisy-OR of the signal scores, each clamped to [0, 1]."""
    # Clamped with comparisons rather than min(max()): the same values (a NaN passes
    # through both), without two calls per signal on every scored decision.
    keep = 1.0
    for signal in signals:
        score = signal.score
        if score < 0.0:
            score = 0.0
        elif score > 1.0:
            score = 1.0
        keep *= 1.0 - score
    total = 1.0 - keep
    if total < 0.0:
        return 0.0
    return 1.0 if total > 1.0 else total
