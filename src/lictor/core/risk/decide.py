"""Turn a risk score into an outcome, and combine it with the policy's outcome.

Rules:

1. **Tolerance.** A score *above* the agent's ``risk_tolerance`` is held for review; a
   score above ``tolerance + margin`` is denied, where the margin shrinks as the agent's
   risk tier grows (low 0.4, medium 0.3, high 0.2, critical 0.1). Thresholds are capped at
   1.0 and comparisons are strict, so a tolerance of 1.0 never reviews or denies.
2. **Learning annotates.** An assessment made while the baseline is still learning
   (``enforce=False``) is reported but always maps to ``allow``.
3. **Never loosen.** :func:`tighten` returns the stronger of two outcomes
   (deny > review > allow): risk can turn an allow into a review or a deny, and nothing
   here can turn a policy deny into anything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from lictor.core.agents import Agent, RiskTier
from lictor.core.decisions import Outcome, Reason, ReasonCode
from lictor.core.risk.baseline import Assessment
from lictor.errors import ConfigError

__all__ = ["DEFAULT_DENY_MARGINS", "RISK_RULE", "RiskPolicy", "risk_outcome", "tighten"]

RISK_RULE: Final = "lictor/risk"
"""The ``rule`` of the reason a risk-driven review or deny carries."""

DEFAULT_DENY_MARGINS: Final[Mapping[RiskTier, float]] = MappingProxyType(
    {RiskTier.LOW: 0.4, RiskTier.MEDIUM: 0.3, RiskTier.HIGH: 0.2, RiskTier.CRITICAL: 0.1}
)


@dataclass(frozen=True, slots=True)
class RiskPolicy:
    """How scores map to outcomes: review above tolerance, deny above tolerance + margin.

    Raises:
        ConfigError: if a margin is negative or not a number.
    """

    deny_margins: Mapping[RiskTier, float] = field(default_factory=lambda: DEFAULT_DENY_MARGINS)

    def __post_init__(self) -> None:
        for tier, margin in self.deny_margins.items():
            if not 0.0 <= margin <= 1.0:
                raise ConfigError(f"risk deny margin for tier {tier} must be in [0, 1]")

    def thresholds(self, tolerance: float, tier: RiskTier) -> tuple[float, float]:
        """Return (review above, deny above) for an agent's tolerance and tier."""
        review = min(max(tolerance, 0.0), 1.0)
        margin = self.deny_margins.get(tier, DEFAULT_DENY_MARGINS[tier])
        return review, min(review + margin, 1.0)

    def outcome(self, score: float, tolerance: float, tier: RiskTier) -> Outcome:
        """Return the outcome risk alone calls for."""
        review, deny = self.thresholds(tolerance, tier)
        if score > deny:
            return Outcome.DENY
        if score > review:
            return Outcome.REVIEW
        return Outcome.ALLOW


def risk_outcome(
    assessment: Assessment, agent: Agent, policy: RiskPolicy | None = None
) -> tuple[Outcome, Reason | None]:
    """Return the outcome the assessment calls for, with the reason when it is not allow.

    A learning assessment (``enforce`` false) is always ``allow``, without a reason: its
    signals still go into the decision's ``risk`` for people to read.
    """
    if not assessment.enforce:
        return Outcome.ALLOW, None
    rules = policy if policy is not None else _DEFAULT_POLICY
    outcome = rules.outcome(assessment.score, agent.risk_tolerance, agent.risk_tier)
    if outcome is Outcome.ALLOW:
        return outcome, None
    review, deny = rules.thresholds(agent.risk_tolerance, agent.risk_tier)
    limit = deny if outcome is Outcome.DENY else review
    kinds = ", ".join(sorted({s.kind for s in assessment.signals})) or "no signals"
    message = (
        f"risk {assessment.score:.2f} is above the {outcome.value} threshold {limit:.2f} "
        f"for agent {agent.id!r} (tolerance {agent.risk_tolerance:.2f}, tier "
        f"{agent.risk_tier.value}): {kinds}"
    )
    return outcome, Reason(RISK_RULE, outcome, message, ReasonCode.RISK)


def tighten(policy_outcome: Outcome, risk_outcome: Outcome) -> Outcome:
    """Return the stronger outcome: deny > review > allow. Never looser than either."""
    return policy_outcome if policy_outcome.strength >= risk_outcome.strength else risk_outcome


_DEFAULT_POLICY: Final = RiskPolicy()
