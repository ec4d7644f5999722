"""Reviews as records: a ``review`` decision held for a person, bound to the exact action.

Only the data lives here (pure, like every core module); opening, resolving, expiring
and consuming reviews is :mod:`lictor.service.reviews`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from lictor.core.decisions import Reason, format_time, parse_time

__all__ = ["Review", "ReviewStatus", "Verdict"]


class ReviewStatus(StrEnum):
    """Where a review is in its life; only ``pending`` ever changes."""

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    CONSUMED = "consumed"
    CANCELLED = "cancelled"


class Verdict(StrEnum):
    """What a reviewer can say."""

    APPROVE = "approve"
    DENY = "deny"


@dataclass(frozen=True, slots=True)
class Review:
    """One review, bound to one action (see the module's invariants).

    ``request`` is the action request's wire form as the audit entry holds it (the
    arguments are None when the server redacts them); ``reasons`` are the reasons of the
    decision that asked for the review, so a reviewer sees *why* without a lookup.
    """

    review_id: str
    decision_id: str
    agent_id: str
    principal_id: str | None
    tool: str
    arguments_digest: str
    policy_version: str
    status: ReviewStatus
    created_at: datetime
    expires_at: datetime
    request: Mapping[str, Any]
    reasons: tuple[Reason, ...] = ()
    resolved_at: datetime | None = None
    reviewer: str | None = None
    comment: str | None = None
    approved_until: datetime | None = None
    consumed_at: datetime | None = None
    consumed_by: str | None = None

    @property
    def is_pending(self) -> bool:
        """True while no verdict, expiry or cancellation has happened."""
        return self.status is ReviewStatus.PENDING

    def to_json(self) -> dict[str, Any]:
        """Return the wire form (``GET /v1/reviews/{id}``)."""

        def moment(value: datetime | None) -> str | None:
            return format_time(value) if value is not None else None

        return {
            "review_id": self.review_id,
            "decision_id": self.decision_id,
            "agent_id": self.agent_id,
            "principal_id": self.principal_id,
            "tool": self.tool,
            "arguments_digest": self.arguments_digest,
            "policy_version": self.policy_version,
            "status": self.status.value,
            "created_at": format_time(self.created_at),
            "expires_at": format_time(self.expires_at),
            "resolved_at": moment(self.resolved_at),
            "reviewer": self.reviewer,
            "comment": self.comment,
            "approved_until": moment(self.approved_until),
            "consumed_at": moment(self.consumed_at),
            "consumed_by": self.consumed_by,
            "request": dict(self.request),
            "reasons": [r.to_json() for r in self.reasons],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Review:
        """Parse the wire form."""

        def moment(key: str) -> datetime | None:
            value = data.get(key)
            return parse_time(str(value)) if value is not None else None

        principal = data.get("principal_id")
        return cls(
            review_id=str(data["review_id"]),
            decision_id=str(data["decision_id"]),
            agent_id=str(data["agent_id"]),
            principal_id=str(principal) if principal is not None else None,
            tool=str(data["tool"]),
            arguments_digest=str(data["arguments_digest"]),
            policy_version=str(data["policy_version"]),
            status=ReviewStatus(data["status"]),
            created_at=parse_time(str(data["created_at"])),
            expires_at=parse_time(str(data["expires_at"])),
            request=dict(data.get("request") or {}),
            reasons=tuple(Reason.from_json(r) for r in data.get("reasons") or ()),
            resolved_at=moment("resolved_at"),
            reviewer=data.get("reviewer"),
            comment=data.get("comment"),
            approved_until=moment("approved_until"),
            consumed_at=moment("consumed_at"),
            consumed_by=data.get("consumed_by"),
        )
