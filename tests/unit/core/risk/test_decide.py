from __future__ import annotations

import pytest

from lictor.core.agents import Agent, RiskTier
from lictor.core.decisions import Outcome, ReasonCode, RiskSignal
from lictor.core.requests import AgentId
from lictor.core.risk.baseline import Assessment
from lictor.core.risk.decide import RISK_RULE, RiskPolicy, risk_outcome, tighten
from lictor.core.risk.signals import combine
from lictor.errors import ConfigError


def agent(tolerance: float = 0.5, tier: RiskTier = RiskTier.MEDIUM) -> Agent:
    return Agent(id=AgentId("mail"), risk_tolerance=tolerance, risk_tier=tier)


SIGNALS = (RiskSignal("new_tool", "tool x never used", 0.45),)


@pytest.mark.parametrize(
    ("score", "tier", "expected"),
    [
        (0.5, RiskTier.MEDIUM, Outcome.ALLOW),  # at tolerance: not above it
        (0.51, RiskTier.MEDIUM, Outcome.REVIEW),
        (0.8, RiskTier.MEDIUM, Outcome.REVIEW),  # at tolerance + 0.3
        (0.81, RiskTier.MEDIUM, Outcome.DENY),
        (0.85, RiskTier.LOW, Outcome.REVIEW),  # low tier: margin 0.4
        (0.65, RiskTier.CRITICAL, Outcome.DENY),  # critical tier: margin 0.1
    ],
)
def test_thresholds_by_tolerance_and_tier(score: float, tier: RiskTier, expected: Outcome) -> None:
    outcome, reason = risk_outcome(Assessment(score, SIGNALS, enforce=True), agent(0.5, tier))
    assert outcome is expected
    if expected is Outcome.ALLOW:
        assert reason is None
    else:
        assert reason is not None
        assert reason.rule == RISK_RULE
        assert reason.effect is expected
        assert reason.code is ReasonCode.RISK
        assert "new_tool" in reason.message


def test_reason_message_names_the_threshold_and_agent() -> None:
    _, reason = risk_outcome(Assessment(0.7, SIGNALS, enforce=True), agent())
    assert reason is not None
    assert reason.message == (
        "risk 0.70 is above the review threshold 0.50 for agent 'mail' "
        "(tolerance 0.50, tier medium): new_tool"
    )


def test_learning_assessments_only_annotate() -> None:
    assert risk_outcome(Assessment(1.0, SIGNALS, enforce=False), agent(0.0)) == (
        Outcome.ALLOW,
        None,
    )


def test_full_tolerance_never_reviews() -> None:
    outcome, _ = risk_outcome(Assessment(1.0, SIGNALS, enforce=True), agent(1.0))
    assert outcome is Outcome.ALLOW


def test_custom_margins() -> None:
    policy = RiskPolicy({RiskTier.MEDIUM: 0.0})
    assert policy.thresholds(0.5, RiskTier.MEDIUM) == (0.5, 0.5)
    assert policy.outcome(0.6, 0.5, RiskTier.MEDIUM) is Outcome.DENY
    # Tiers the mapping leaves out keep their defaults.
    assert policy.thresholds(0.5, RiskTier.LOW) == pytest.approx((0.5, 0.9))
    with pytest.raises(ConfigError):
        RiskPolicy({RiskTier.HIGH: -0.1})


def test_tighten_examples() -> None:
    assert tighten(Outcome.ALLOW, Outcome.REVIEW) is Outcome.REVIEW
    assert tighten(Outcome.DENY, Outcome.ALLOW) is Outcome.DENY
    assert tighten(Outcome.REVIEW, Outcome.DENY) is Outcome.DENY
    assert tighten(Outcome.ALLOW, Outcome.ALLOW) is Outcome.ALLOW


def test_combine_is_noisy_or() -> None:
    assert combine([]) == 0.0
    two = [RiskSignal("a", "", 0.45), RiskSignal("b", "", 0.45)]
    assert combine(two) == pytest.approx(0.6975)
    assert combine([RiskSignal("a", "", 7.0), RiskSignal("b", "", -1.0)]) == 1.0
