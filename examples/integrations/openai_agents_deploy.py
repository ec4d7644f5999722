"""An OpenAI Agents SDK agent whose function tools are governed by Lictor, offline.

The model is a scripted subclass of the SDK's ``Model``: it asks to deploy straight to
production without a change ticket (the devops policy denies it), reads the refusal,
and deploys to staging instead (allowed). No API key and no network are needed. Run:

    python examples/integrations/openai_agents_deploy.py

Decisions are made in process by a Governor over ``examples/devops``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agents import Agent, ModelResponse, RunConfig, Runner, Usage, function_tool
from agents.models.interface import Model
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

from lictor.sdk import Guard
from lictor.sdk.integrations.openai_agents import govern_tools
from lictor.service.governor import Governor
from lictor.service.memory import FixedClock

DEVOPS = Path(__file__).resolve().parents[1] / "devops"
WEDNESDAY_MORNING = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)

deployed: list[str] = []


@function_tool
def deploy(service: str, environment: str) -> str:
    """Deploy the service's current build to an environment (staging or production)."""
    deployed.append(environment)
    return f"{service} deployed to {environment}"


class ScriptedModel(Model):
    """Answers from a script: one tool call per turn, then a final message."""

    def __init__(self, turns: list[ResponseFunctionToolCall | str]) -> None:
        self.turns = list(turns)
        self.seen: list[Any] = []

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        """Return the next scripted turn (the tool outputs so far are in ``input``)."""
        self.seen.append(args[1] if len(args) > 1 else kwargs.get("input"))
        turn = self.turns.pop(0)
        item: Any = turn
        if isinstance(turn, str):
            item = ResponseOutputMessage(
                id="msg-final",
                content=[ResponseOutputText(annotations=[], text=turn, type="output_text")],
                role="assistant",
                status="completed",
                type="message",
            )
        return ModelResponse(output=[item], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        """Not needed: ``Runner.run`` does not stream."""
        raise NotImplementedError("this scripted model does not stream")


def call(call_id: str, environment: str) -> ResponseFunctionToolCall:
    """A model turn that calls ``deploy`` for the checkout service."""
    arguments = json.dumps({"service": "checkout", "environment": environment})
    return ResponseFunctionToolCall(
        arguments=arguments, call_id=call_id, name="deploy", type="function_call", id=call_id
    )


async def run() -> Any:
    """Run the scripted agent; return the run result."""
    governor = Governor.from_paths(
        DEVOPS / "policies", DEVOPS / "agents.yaml", clock=FixedClock(WEDNESDAY_MORNING)
    )
    guard = Guard(governor, agent_id="deploy-bot", session_id="release-7", server="ci")
    model = ScriptedModel(
        [
            call("call-1", "production"),
            call("call-2", "staging"),
            "Production needs a change ticket; I deployed checkout to staging instead.",
        ]
    )
    agent = Agent(
        name="release assistant",
        instructions="Roll out the checkout service.",
        tools=govern_tools([deploy], guard),
        model=model,
    )
    result = await Runner.run(
        agent, "Ship checkout to production.", run_config=RunConfig(tracing_disabled=True)
    )
    for item in result.new_items:
        print(f"{item.type}: {getattr(item, 'output', '') or item.raw_item}")
    print(f"final: {result.final_output}")
    print(f"deployed to: {deployed}")
    return result


def main() -> Any:
    """Run the example."""
    return asyncio.run(run())


if __name__ == "__main__":
    main()
