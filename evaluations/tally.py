"""Outcome counts shared by the evaluations: how many calls were allowed, held or denied.

"Caught" is deny plus review: a held call does not run until a person approves it, so for
an attack it is as good as a deny, and for a legitimate call it is as bad as one (it is a
false positive that costs a person's time).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from lictor.core.decisions import Outcome


@dataclass(slots=True)
class Tally:
    """Counts of outcomes for one group of calls."""

    allow: int = 0
    review: int = 0
    deny: int = 0

    def add(self, outcome: Outcome) -> None:
        """Count one decision."""
        if outcome is Outcome.ALLOW:
            self.allow += 1
        elif outcome is Outcome.REVIEW:
            self.review += 1
        else:
            self.deny += 1

    @property
    def total(self) -> int:
        """Every counted call."""
        return self.allow + self.review + self.deny

    @property
    def caught(self) -> int:
        """Calls that did not run unattended: deny + review."""
        return self.review + self.deny

    @property
    def caught_rate(self) -> float:
        """Share of calls caught; 0.0 for an empty group."""
        return self.caught / self.total if self.total else 0.0

    @property
    def allowed_rate(self) -> float:
        """Share of calls allowed; 0.0 for an empty group."""
        return self.allow / self.total if self.total else 0.0

    def to_json(self) -> dict[str, Any]:
        """Return plain data for ``--json``."""
        return {
            "total": self.total,
            "allow": self.allow,
            "review": self.review,
            "deny": self.deny,
            "caught_rate": round(self.caught_rate, 4),
        }


@dataclass(slots=True)
class Groups:
    """Tallies keyed by a label (attack type, model, tool …), created on first use."""

    tallies: dict[str, Tally] = field(default_factory=dict)

    def add(self, key: str, outcome: Outcome) -> None:
        """Count one decision under ``key``."""
        self.tallies.setdefault(key, Tally()).add(outcome)

    def items(self) -> list[tuple[str, Tally]]:
        """Groups sorted by key, for stable tables."""
        return sorted(self.tallies.items())

    def to_json(self) -> dict[str, Any]:
        """Return plain data for ``--json``."""
        return {k: t.to_json() for k, t in self.items()}


def counter_json(counter: Counter[str]) -> dict[str, int]:
    """Most common first, ties by name, so JSON output is stable."""
    return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))
