"""The identify step of a decision: the verified delegation chain, and unregistered agents.

The edge verifies the ``Lictor-Delegation`` token and hands the Governor a
:class:`CallerIdentity`; :meth:`IdentityGate.check` then applies what identity adds to
a policy decision:

1. **Scope narrows.** A tool outside the chain's scope is denied
   (``lictor/delegation-scope``), whatever the policy said. Scope never allows.
2. **Shadow agents.** A request from an agent the inventory does not know (or knows
   only as ``shadow``) is recorded as a sighting and denied, or held for review when
   ``shadow_mode`` is ``review``.
3. **Fail closed.** An error here is an audited deny.

:func:`identity_fields` adds to the audit entry whether the principal was verified
(from a token) or only claimed in the body, and which token vouched for it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

from lictor.core.decisions import Decision, Outcome, Reason, ReasonCode
from lictor.core.requests import ActionRequest
from lictor.service.delegation import DelegationChain
from lictor.service.shadow import ShadowRecorder

__all__ = [
    "DELEGATION_SCOPE_RULE",
    "SHADOW_AGENT_RULE",
    "CallerIdentity",
    "IdentityGate",
    "identity_fields",
]

log = logging.getLogger("lictor.identity")

DELEGATION_SCOPE_RULE: Final = "lictor/delegation-scope"
SHADOW_AGENT_RULE: Final = "lictor/shadow-agent"
_UNREGISTERED: Final = frozenset({"lictor/unknown-agent", "lictor/agent-shadow"})

ShadowMode = Literal["deny", "review"]


@dataclass(frozen=True, slots=True)
class CallerIdentity:
    """What the edge knows about who is asking, beyond the request body.

    ``chain`` is set only when a delegation token verified; the request's principal
    and delegation then already come from it.
    """

    chain: DelegationChain | None = None
    user_agent: str | None = None


def identity_fields(identity: CallerIdentity | None) -> dict[str, Any]:
    """Return the audit entry fields saying how far the principal is to be believed."""
    chain = identity.chain if identity is not None else None
    return {
        "principal_verified": chain is not None,
        "delegation_token": (
            {
                "token_id": chain.token_id,
                "scope": sorted(chain.scope),
                "principal_issuer": chain.principal_issuer,
            }
            if chain is not None
            else None
        ),
    }


class IdentityGate:
    """Applies scope and shadow-agent rules to a decision (see the module docstring)."""

    def __init__(self, shadow: ShadowRecorder | None = None, mode: ShadowMode = "deny") -> None:
        if mode not in ("deny", "review"):
            raise ValueError(f"shadow mode must be 'deny' or 'review', not {mode!r}")
        self.shadow = shadow
        self.mode: ShadowMode = mode

    def check(
        self,
        request: ActionRequest,
        decision: Decision,
        identity: CallerIdentity | None,
        *,
        source: str | None = None,
    ) -> Decision:
        """Return ``decision`` narrowed by the caller's identity; never raises."""
        try:
            return self._check(request, decision, identity, source)
        except Exception as exc:
            log.exception("error in the identify step of %s; denying", decision.decision_id)
            return replace(
                decision,
                outcome=Outcome.DENY,
                review_id=None,
                reasons=(
                    Reason(
                        "lictor/evaluation-error",
                        Outcome.DENY,
                        f"evaluation_error: {type(exc).__name__} while identifying",
                        ReasonCode.EVALUATION_ERROR,
                    ),
                ),
            )

    def _check(
        self,
        request: ActionRequest,
        decision: Decision,
        identity: CallerIdentity | None,
        source: str | None,
    ) -> Decision:
        if any(r.rule in _UNREGISTERED for r in decision.reasons):
            if self.shadow is not None:
                self.shadow.seen(
                    request.agent_id,
                    request.tool,
                    source=source,
                    user_agent=identity.user_agent if identity is not None else None,
                )
            effect = Outcome.REVIEW if self.mode == "review" else Outcome.DENY
            return replace(
                decision,
                outcome=effect,
                reasons=(
                    Reason(
                        SHADOW_AGENT_RULE,
                        effect,
                        f"agent {request.agent_id!r} is not registered in the inventory "
                        f"(shadow agent); register it to let it act",
                        ReasonCode.UNKNOWN_AGENT,
                    ),
                ),
            )
        chain = identity.chain if identity is not None else None
        if chain is not None and not chain.permits(request.tool):
            return replace(
                decision,
                outcome=Outcome.DENY,
                review_id=None,
                reasons=(
                    Reason(
                        DELEGATION_SCOPE_RULE,
                        Outcome.DENY,
                        f"tool {request.tool!r} is outside the delegation's scope "
                        f"({' '.join(sorted(chain.scope))}) granted by {chain.principal.id}",
                        ReasonCode.DELEGATION,
                    ),
                ),
            )
        return decision
