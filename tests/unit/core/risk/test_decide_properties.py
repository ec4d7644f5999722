"""Property tests: risk never loosens a policy outcome; the score is a monotone noisy-OR."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lictor.core.agents import Agent, RiskTier
from lictor.core.decisions import Outcome, RiskSignal
from lictor.core.requests import AgentId
from lictor.core.risk.baseline import Assessment
from lictor.core.risk.decide import RiskPolicy, risk_outcome, tighten
from lictor.core.risk.signals import combine


def at_most(examples: int) -> settings:
    """Cap the profile's example count; these properties are settled long before 1,000."""
    return settings(max_examples=min(settings().max_examples, examples))


outcomes = st.sampled_from(list(Outcome))
unit = st.floats(0.0, 1.0)
signals = st.lists(
    st.builds(RiskSignal, st.sampled_from(["a", "b", "c"]), st.just(""), unit),
    max_size=6,
)


@given(outcomes, outcomes)
def test_tighten_never_loosens(policy: Outcome, risk: Outcome) -> None:
    result = tighten(policy, risk)
    assert result.strength >= policy.strength
    assert result.strength >= risk.strength
    assert result in (policy, risk)
    assert tighten(risk, policy) is result


@given(outcomes, outcomes, outcomes)
def test_tighten_is_associative(a: Outcome, b: Outcome, c: Outcome) -> None:
    assert tighten(tighten(a, b), c) is tighten(a, tighten(b, c))


@at_most(200)
@given(outcomes, unit, unit, st.sampled_from(list(RiskTier)), st.booleans())
def test_a_policy_deny_survives_any_risk(
    policy: Outcome, score: float, tolerance: float, tier: RiskTier, enforce: bool
) -> None:
    agent = Agent(id=AgentId("a"), risk_tolerance=tolerance, risk_tier=tier)
    risk, _ = risk_outcome(Assessment(score, (), enforce), agent)
    final = tighten(policy, risk)
    if policy is Outcome.DENY:
        assert final is Outcome.DENY
    assert final.strength >= policy.strength


@at_most(200)
@given(unit, unit, unit, st.sampled_from(list(RiskTier)))
def test_a_higher_score_never_gives_a_weaker_outcome(
    low: float, high: float, tolerance: float, tier: RiskTier
) -> None:
    low, high = sorted((low, high))
    policy = RiskPolicy()
    assert (
        policy.outcome(low, tolerance, tier).strength
        <= policy.outcome(high, tolerance, tier).strength
    )


@at_most(200)
@given(signals, st.builds(RiskSignal, st.just("z"), st.just(""), unit))
def test_combine_is_bounded_and_adding_a_signal_never_lowers_it(
    found: list[RiskSignal], extra: RiskSignal
) -> None:
    score = combine(found)
    assert 0.0 <= score <= 1.0
    assert combine([*found, extra]) >= score - 1e-12
    assert combine([*found, extra]) >= extra.score - 1e-12
    assert combine(reversed(found)) == pytest.approx(score)
