"""``guard`` with a remote client against the real HTTP app: the same contract as in process."""

from __future__ import annotations

from typing import Any

import pytest

from lictor.core.requests import Principal
from lictor.errors import ReviewRequired, ToolCallDenied
from lictor.sdk import AsyncLictorClient, Guard, LictorClient
from lictor.server.runtime import Runtime

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

MARIA = Principal("maria@corp.example", ("support",))


async def test_remote_guard_decides_runs_and_reports(
    client_for: Any, tokens: Any, runtime: Runtime
) -> None:
    client = client_for(tokens.agent)
    # No agent_id: the server takes the agent from the credential.
    policy = Guard(client, principal=MARIA, session_id="remote-1", labels=["finance"])
    ran: list[float] = []

    def refund(order: str, amount: float) -> str:
        ran.append(amount)
        return f"refunded {amount}"

    async def arefund(order: str, amount: float) -> str:
        return refund(order, amount)

    governed: Any
    if isinstance(client, LictorClient):
        governed = policy.wrap(refund, name="refunds.issue")
    else:
        assert isinstance(client, AsyncLictorClient)
        governed = policy.wrap(arefund, name="refunds.issue")

    async def invoke(*args: Any) -> Any:
        result = governed(*args)
        return await result if isinstance(client, AsyncLictorClient) else result

    assert await invoke("ORD-1", 89.0) == "refunded 89.0"
    with pytest.raises(ReviewRequired):
        await invoke("ORD-2", 500.0)
    with pytest.raises(ToolCallDenied) as denied:
        await invoke("ORD-3", 8900.0)
    assert denied.value.decision.reasons[0].rule == "support/refund-over-hard-limit"
    assert ran == [89.0]
    runtime.writer.checkpoint_now()
    results = [
        r.payload for r in runtime.store.audit.records() if r.payload.get("kind") == "result"
    ]
    assert [(r["status"], r["labels"]) for r in results] == [("ok", ["finance"])]
