"""How an evaluation builds its Governor, so one replay can run under other configurations.

The replays call a :data:`GovernorFactory` with their policy bundle, inventory and fixed
clock. The default, :func:`policy_governor`, is what the figures in the README were
measured with; ``benchmarks/quality/run.py`` passes factories that swap in the permissive
bundle or switch behavioural baselines on and off, to report the same datasets per
configuration.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from lictor.core.agents import Agent
from lictor.service.governor import Governor
from lictor.service.memory import FixedClock

GovernorFactory = Callable[[Path, Path | Iterable[Agent], FixedClock], Governor]
"""``(policies, agents, clock) -> Governor``."""


def policy_governor(policies: Path, agents: Path | Iterable[Agent], clock: FixedClock) -> Governor:
    """The evaluations' own Governor: the bundle and inventory as given, policies alone.

    Risk is off (``risk=None``) so the figures measure the rules; the quality runner
    reports the risk configurations separately.
    """
    return Governor.from_paths(policies, agents, clock=clock, risk=None)
