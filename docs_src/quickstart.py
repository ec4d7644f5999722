"""Govern a tool call in 15 lines: the README quickstart, run by the test suite."""

from lictor import Governor, Outcome

governor = Governor.from_paths("examples/finance/policies", "examples/finance/agents.yaml")

decision = governor.decide(
    {
        "agent_id": "payments-bot",
        "tool": "send_money",
        "arguments": {"amount": 25000, "to_account": "DE89370400440532013000"},
        "context": {"task": "Pay the 25,000 EUR milestone invoice"},
    }
)
print(decision.outcome.value, [r.rule for r in decision.reasons])
if decision.outcome is not Outcome.ALLOW:
    raise SystemExit("not allowed: the tool call must not run")
