"""The Lictor SDK: govern tool calls from Python, in process or against ``lictor serve``.

- :func:`guard` / :class:`Guard` wrap any tool function: decide first, run only on
  allow, report the result.
- :class:`LictorClient` / :class:`AsyncLictorClient` speak the HTTP API with typed
  answers and the :mod:`lictor.errors` tree.
- :class:`Decider` / :class:`AsyncDecider` are what ``guard`` needs; an in-process
  ``Governor`` and the clients satisfy them as they are.

Framework integrations live in :mod:`lictor.sdk.integrations` and are imported
explicitly, so this package never imports a framework.
"""

from lictor.sdk.client import (
    AsyncLictorClient,
    AuditPage,
    Health,
    LictorClient,
    PolicyRuleInfo,
    PolicySummary,
)
from lictor.sdk.deciders import AsyncDecider, AsyncReviewWaiter, Decider, ReviewWaiter, to_async
from lictor.sdk.guard import Guard, guard, jsonable, raise_if_blocked, refusal_message

__all__ = [
    "AsyncDecider",
    "AsyncLictorClient",
    "AsyncReviewWaiter",
    "AuditPage",
    "Decider",
    "Guard",
    "Health",
    "LictorClient",
    "PolicyRuleInfo",
    "PolicySummary",
    "ReviewWaiter",
    "guard",
    "jsonable",
    "raise_if_blocked",
    "refusal_message",
    "to_async",
]
