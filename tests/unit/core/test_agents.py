"""Inventory records: parse_agent validates every field; tools are granted by name or glob."""

from __future__ import annotations

from typing import Any

import pytest

from lictor.core.agents import Agent, AgentStatus, RiskTier, parse_agent
from lictor.core.requests import AgentId
from lictor.errors import PolicyError


def error_of(data: object, **kwargs: Any) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        parse_agent(data, **kwargs)
    return caught.value


def test_full_record_parses_into_every_field() -> None:
    agent = parse_agent(
        {
            "id": "payments-bot",
            "name": "Accounts payable",
            "owner": "finance-ops@corp.example",
            "purpose": "Pay approved invoices",
            "allowed_tools": ["get_invoice", "payments.*"],
            "tags": ["finance"],
            "risk_tier": "high",
            "risk_tolerance": 0.3,
            "status": "suspended",
            "attributes": {"daily_limit": 50000},
        }
    )

    assert agent == Agent(
        id=AgentId("payments-bot"),
        name="Accounts payable",
        owner="finance-ops@corp.example",
        purpose="Pay approved invoices",
        allowed_tools=("get_invoice", "payments.*"),
        tags=("finance",),
        risk_tier=RiskTier.HIGH,
        risk_tolerance=0.3,
        status=AgentStatus.SUSPENDED,
        attributes={"daily_limit": 50000},
    )


def test_minimal_record_gets_active_medium_defaults() -> None:
    agent = parse_agent({"id": "a"})

    assert agent.status is AgentStatus.ACTIVE
    assert agent.risk_tier is RiskTier.MEDIUM
    assert agent.risk_tolerance == 0.5
    assert agent.allowed_tools == ()


def test_to_json_parses_back_to_the_same_agent() -> None:
    agent = parse_agent(
        {"id": "a", "allowed_tools": ["x*"], "tags": ["t"], "risk_tier": "low", "status": "shadow"}
    )

    assert parse_agent(agent.to_json()) == agent


@pytest.mark.parametrize(
    ("data", "pointer"),
    [
        ({"id": "a", "allowed_tool": ["x"]}, "/allowed_tool"),
        ({"id": "a", "role": "admin"}, "/role"),
        ({}, "/id"),
        ({"id": ""}, "/id"),
        ({"id": 7}, "/id"),
        ({"id": "a", "name": 7}, "/name"),
        ({"id": "a", "owner": ["x"]}, "/owner"),
        ({"id": "a", "purpose": None}, "/purpose"),
        ({"id": "a", "risk_tier": "extreme"}, "/risk_tier"),
        ({"id": "a", "risk_tier": 3}, "/risk_tier"),
        ({"id": "a", "risk_tier": "HIGH"}, "/risk_tier"),
        ({"id": "a", "status": "paused"}, "/status"),
        ({"id": "a", "status": None}, "/status"),
        ({"id": "a", "risk_tolerance": 1.5}, "/risk_tolerance"),
        ({"id": "a", "risk_tolerance": -0.1}, "/risk_tolerance"),
        ({"id": "a", "risk_tolerance": "0.5"}, "/risk_tolerance"),
        ({"id": "a", "risk_tolerance": True}, "/risk_tolerance"),
        ({"id": "a", "risk_tolerance": float("nan")}, "/risk_tolerance"),
        ({"id": "a", "attributes": ["x"]}, "/attributes"),
        ({"id": "a", "allowed_tools": "payments.*"}, "/allowed_tools"),
        ({"id": "a", "allowed_tools": ["x", ""]}, "/allowed_tools/1"),
        ({"id": "a", "tags": ["ok", 3]}, "/tags/1"),
    ],
)
def test_bad_field_is_named_by_pointer(data: dict[str, Any], pointer: str) -> None:
    assert error_of(data).pointer == pointer


@pytest.mark.parametrize("data", [None, [], "payments-bot", 3])
def test_non_mapping_record_is_rejected(data: object) -> None:
    assert error_of(data).pointer == ""


def test_pointer_and_source_are_prefixed_for_records_inside_a_file() -> None:
    error = error_of({"id": "a", "status": "gone"}, source="agents.yaml", pointer="/agents/2")

    assert error.pointer == "/agents/2/status"
    assert error.source == "agents.yaml"


@pytest.mark.parametrize("tolerance", [0, 0.0, 1, 1.0])
def test_tolerance_bounds_are_inclusive(tolerance: float) -> None:
    assert parse_agent({"id": "a", "risk_tolerance": tolerance}).risk_tolerance == tolerance


@pytest.mark.parametrize(
    ("tool", "allowed"),
    [
        ("get_invoice", True),
        ("send_money", True),
        ("payments.refund", True),
        ("payments.", True),
        ("payments", False),
        ("Payments.refund", False),
        ("get_invoices", False),
        ("get_invoic", False),
        ("xpayments.refund", False),
        ("report_1", True),
        ("report_10", False),
    ],
)
def test_tool_is_allowed_by_exact_name_or_glob(tool: str, allowed: bool) -> None:
    agent = Agent(
        id=AgentId("a"), allowed_tools=("get_invoice", "send_money", "payments.*", "report_?")
    )

    assert agent.is_tool_allowed(tool) is allowed


def test_agent_without_tools_is_allowed_none() -> None:
    assert not Agent(id=AgentId("a")).is_tool_allowed("anything")
