"""OpenAI Agents SDK function tools governed by Lictor; the offline example runs."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration]

EXAMPLE = (
    Path(__file__).resolve().parents[3] / "examples" / "integrations" / "openai_agents_deploy.py"
)


def test_the_example_refuses_production_and_deploys_to_staging() -> None:
    example = runpy.run_path(str(EXAMPLE), run_name="example")
    result = example["main"]()
    outputs = [item.output for item in result.new_items if item.type == "tool_call_output_item"]
    assert len(outputs) == 2
    assert "refused" in outputs[0]
    assert "change ticket" in outputs[0]
    assert outputs[1] == "checkout deployed to staging"
    assert example["deployed"] == ["staging"]


def test_blocked_calls_can_fail_the_run() -> None:
    import asyncio
    import json

    from agents import Agent, RunConfig, Runner
    from agents.exceptions import UserError

    from lictor.errors import ToolCallDenied
    from lictor.sdk import Guard
    from lictor.sdk.integrations.openai_agents import govern_tools

    example = runpy.run_path(str(EXAMPLE), run_name="example")
    governor = example["Governor"].from_paths(
        example["DEVOPS"] / "policies", example["DEVOPS"] / "agents.yaml"
    )
    guard = Guard(governor, agent_id="deploy-bot")
    model = example["ScriptedModel"]([example["call"]("c1", "production"), "done"])
    agent = Agent(
        name="a",
        tools=govern_tools([example["deploy"]], guard, on_blocked="raise"),
        model=model,
    )
    with pytest.raises((ToolCallDenied, UserError)) as caught:
        asyncio.run(Runner.run(agent, "go", run_config=RunConfig(tracing_disabled=True)))
    assert json.dumps(example["deployed"]) == "[]"
    assert isinstance(caught.value, ToolCallDenied) or isinstance(
        caught.value.__cause__, ToolCallDenied
    )
