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


BUDGETED = """\
rules:
  - id: pay
    match: {tools: [send_money]}
    effect: allow
  - id: pay/hourly
    match: {tools: [send_money]}
    when: "window_count('send_money', '1h', 'agent') >= 3"
    effect: review
  - id: pay/daily-sum
    match: {tools: [send_money]}
    when: "window_sum('send_money', 'amount', '1d', 'agent') + double(arguments.amount) > 20000.0"
    effect: deny
  - id: pay/untrusted-payee
    match: {tools: [send_money]}
    when: "provenance(arguments.to).exists(s, s.startsWith('tool_output:'))"
    effect: review
tests:
  - name: within every budget
    request: {agent_id: a, tool: send_money, arguments: {amount: 100, to: DE1}}
    session:
      windows: [{tools: send_money, duration: 1h, scope: agent, count: 2}]
      provenance: {DE1: [task]}
    expect: {outcome: allow, rules: [pay]}
  - name: the fourth payment in an hour is held
    request: {agent_id: a, tool: send_money, arguments: {amount: 100, to: DE1}}
    session: {windows: [{tools: send_money, duration: 1h, scope: agent, count: 3}]}
    expect: {outcome: review, rules: [pay/hourly]}
  - name: the day's sum is capped
    request: {agent_id: a, tool: send_money, arguments: {amount: 5000, to: DE1}}
    session:
      windows:
        - {tools: send_money, argument: amount, duration: 1d, scope: agent, count: 4, sum: 16000}
    expect: {outcome: deny, rules: [pay/daily-sum]}
  - name: a payee read from an email is held
    request: {agent_id: a, tool: send_money, arguments: {amount: 100, to: LT9}}
    session: {provenance: {LT9: ["tool_output:read_email"]}}
    expect: {outcome: review, rules: [pay/untrusted-payee]}
"""


def test_cases_state_window_totals_and_provenance_for_budget_and_source_rules() -> None:
    from lictor.core.agents import Agent
    from lictor.core.requests import AgentId
    from lictor.service.policies import bundle_from_files
    from lictor.service.policy_tests import run_cases

    bundle = bundle_from_files({"pay.yaml": BUDGETED})
    agents = {"a": Agent(id=AgentId("a"), allowed_tools=("send_money",))}
    results = run_cases(bundle, agents, collect_cases(bundle.documents))

    assert [(r.case.name, r.diff) for r in results if not r.passed] == []
    assert [r.outcome.value for r in results if r.outcome] == ["allow", "review", "deny", "review"]


@pytest.mark.parametrize(
    ("windows", "field"),
    [
        ("[{tools: send_money, duration: 1 hour, scope: agent}]", "duration"),
        ("[{tools: send_money, duration: 1h, scope: everyone}]", "scope"),
        ("[{tools: send_money, duration: 1h, scope: agent, count: -1}]", "count"),
        ("[{tools: send_money, duration: 1h, scope: agent, size: 3}]", "size"),
        ("{tools: send_money}", "windows"),
    ],
)
def test_a_bad_window_is_refused_with_its_line(windows: str, field: str) -> None:
    text = (
        "tests:\n  - name: w\n    request: {agent_id: a, tool: send_money}\n"
        f"    session:\n      windows: {windows}\n    expect: {{outcome: allow}}\n"
    )
    with pytest.raises(PolicyError) as caught:
        collect_cases([load_yaml(text, "t.yaml")])
    assert field in str(caught.value)
    assert caught.value.line == 5
