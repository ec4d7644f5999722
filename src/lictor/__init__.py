"""Lictor: request-by-request enforcement for autonomous AI agents.

Every proposed agent action is checked before it runs and answered ``allow``, ``deny``
or ``review``. Embed it with :class:`Governor`, or run ``lictor serve``.
"""

from lictor.core.agents import Agent, AgentStatus, RiskTier
from lictor.core.decisions import (
    Decision,
    Effect,
    Outcome,
    Reason,
    ReasonCode,
    ResultReport,
    ResultStatus,
    Risk,
    RiskSignal,
)
from lictor.core.requests import ActionRequest, Context, Principal, Resource, parse_request
from lictor.service.governor import Governor
from lictor.service.memory import FixedClock, SystemClock

__version__ = "0.1.0"

__all__ = [
    "ActionRequest",
    "Agent",
    "AgentStatus",
    "Context",
    "Decision",
    "Effect",
    "FixedClock",
    "Governor",
    "Outcome",
    "Principal",
    "Reason",
    "ReasonCode",
    "Resource",
    "ResultReport",
    "ResultStatus",
    "Risk",
    "RiskSignal",
    "RiskTier",
    "SystemClock",
    "__version__",
    "parse_request",
]
