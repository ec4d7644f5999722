"""Policy as code: rules in YAML with CEL conditions, compiled once, evaluated per request.

``parse`` turns plain data into :class:`Rule` objects (or a :class:`PolicyError` with a
location), ``compile`` builds an indexed :class:`CompiledPolicy`, ``evaluate`` decides.
"""

from lictor.core.policy.compile import CompiledPolicy, compile_policy
from lictor.core.policy.evaluate import Evaluation, Facts, SessionFacts, evaluate
from lictor.core.policy.model import AgentSelector, Match, Mode, PolicySet, Rule, Severity
from lictor.core.policy.parse import parse_document, parse_rules

__all__ = [
    "AgentSelector",
    "CompiledPolicy",
    "Evaluation",
    "Facts",
    "Match",
    "Mode",
    "PolicySet",
    "Rule",
    "SessionFacts",
    "Severity",
    "compile_policy",
    "evaluate",
    "parse_document",
    "parse_rules",
]
