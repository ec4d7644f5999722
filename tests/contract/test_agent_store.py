"""The ``AgentStore`` contract, run on memory, SQLite and PostgreSQL."""

from __future__ import annotations

from contract.backends import Backend
from lictor.core.agents import Agent, AgentStatus, RiskTier
from lictor.core.requests import AgentId
from lictor.service.ports import AgentStore


def agent(agent_id: str, **fields: object) -> Agent:
    return Agent(id=AgentId(agent_id), **fields)  # type: ignore[arg-type]  # test shorthand


FULL = agent(
    "mail-assistant",
    name="Mail assistant",
    owner="emma@corp.example",
    purpose="customer follow-up",
    allowed_tools=("send_email", "calendar.*"),
    tags=("sales", "tier-2"),
    risk_tier=RiskTier.HIGH,
    risk_tolerance=0.25,
    status=AgentStatus.QUARANTINED,
    attributes={"cost_center": "4711", "limits": {"per_day": 100, "ratio": 0.5}, "on": True},
)


def test_an_unknown_agent_is_none(agents: AgentStore) -> None:
    assert agents.get("nobody") is None
    assert agents.list() == []


def test_put_then_get_returns_an_equal_record(agents: AgentStore) -> None:
    agents.put(FULL)

    assert agents.get("mail-assistant") == FULL
    assert agents.list() == [FULL]


def test_put_replaces_the_record_with_the_same_id(agents: AgentStore) -> None:
    agents.put(FULL)
    retired = agent("mail-assistant", name="Mail assistant", status=AgentStatus.RETIRED)

    agents.put(retired)

    assert agents.get("mail-assistant") == retired
    assert agents.list() == [retired]


def test_list_is_sorted_by_id_in_code_point_order(agents: AgentStore) -> None:
    ids = ["b", "B", "a-2", "a_1", "A", "é", "a"]
    for agent_id in ids:
        agents.put(agent(agent_id))

    assert [a.id for a in agents.list()] == sorted(ids)


def test_delete_removes_and_says_whether_it_existed(agents: AgentStore) -> None:
    agents.put(agent("one"))
    agents.put(agent("two"))

    assert agents.delete("one") is True
    assert agents.delete("one") is False
    assert agents.delete("never") is False
    assert agents.get("one") is None
    assert [a.id for a in agents.list()] == ["two"]


def test_records_survive_a_restart(backend: Backend) -> None:
    first = backend.open()
    first.agents.put(FULL)
    first.close()

    assert backend.open().agents.get("mail-assistant") == FULL
