"""Policy test cases state the session facts a live decision gets from risk state."""

from __future__ import annotations

import pytest

from lictor.errors import PolicyError
from lictor.service.documents import load_yaml
from lictor.service.policy_tests import collect_cases

CASE = """\
tests:
  - name: held
    request: {agent_id: a, tool: send_money}
    session: {side_effecting: %s, untrusted_destinations: %s}
    expect: {outcome: review}
"""


def test_session_risk_facts_reach_the_case() -> None:
    [case] = collect_cases([load_yaml(CASE % ("true", "[LT12]"), "t.yaml")])
    assert case.session.side_effecting is True
    assert tuple(case.session.untrusted_destinations) == ("LT12",)


@pytest.mark.parametrize(
    ("side_effecting", "untrusted", "field"),
    [("1", "[]", "side_effecting"), ("true", "LT12", "untrusted_destinations")],
)
def test_wrong_types_are_refused_with_their_line(
    side_effecting: str, untrusted: str, field: str
) -> None:
    with pytest.raises(PolicyError) as caught:
        collect_cases([load_yaml(CASE % (side_effecting, untrusted), "t.yaml")])
    assert field in str(caught.value)
    assert caught.value.line == 4
