"""The one exception tree of Lictor.

Every error Lictor raises on purpose is a :class:`LictorError`. Edges map them to
their protocol in one table each (HTTP problem+json, JSON-RPC code, CLI exit code)::

    LictorError
    ├── ConfigError           bad settings or CLI usage; says how to fix it
    ├── PolicyError           invalid policy document; .source, .line, .column, .pointer, .rule_id
    ├── NotFound              .kind, .id
    ├── Conflict              .kind, .id: the thing exists, or changed under you
    ├── StoreError            backend failure, raised ``from`` the driver error
    ├── AuditIntegrityError   chain does not verify; .index of the first bad record
    ├── AuthError             missing, forged, expired or revoked credential
    │   └── Forbidden         authenticated, but the role may not do this
    ├── InvalidToolCall       the agent sent something malformed  (h11: "local")
    ├── UpstreamError         the proxied MCP server misbehaved   (h11: "remote")
    └── Blocked               raised only at enforcement edges; .decision
        ├── ToolCallDenied
        │   ├── ReviewDenied    a reviewer said no (or the review was cancelled); .review
        │   └── ReviewExpired   nobody decided in time; .review
        └── ReviewRequired    .review_id
            └── ReviewTimeout   still pending when the caller stopped waiting; .review

A denial is an answer, not an error: ``core`` and ``service`` return a ``Decision``.
Only enforcement edges (SDK guard, MCP proxy) raise :class:`Blocked`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lictor.core.decisions import Decision
    from lictor.core.reviews import Review

__all__ = [
    "AuditIntegrityError",
    "AuthError",
    "Blocked",
    "ConfigError",
    "Conflict",
    "Forbidden",
    "InvalidToolCall",
    "LictorError",
    "NotFound",
    "PolicyError",
    "ReviewDenied",
    "ReviewExpired",
    "ReviewRequired",
    "ReviewTimeout",
    "StoreError",
    "ToolCallDenied",
    "UpstreamError",
]


class LictorError(Exception):
    """Root of every error Lictor raises on purpose."""


class ConfigError(LictorError):
    """Bad settings or CLI usage. The message says how to fix it."""


class PolicyError(LictorError):
    """A policy document is invalid.

    Carries where the problem is, so a person can jump to it: the file, the line and
    column (1-based, when known), a JSON pointer into the document, and the rule id.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        column: int | None = None,
        pointer: str = "",
        rule_id: str | None = None,
    ) -> None:
        self.message = message
        self.source = source
        self.line = line
        self.column = column
        self.pointer = pointer
        self.rule_id = rule_id
        super().__init__(self.location() + message)

    def location(self) -> str:
        """Return ``file:line:column: [rule] `` prefix, empty parts left out."""
        parts: list[str] = []
        if self.source is not None:
            where = self.source
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            parts.append(where)
        if self.rule_id is not None:
            parts.append(f"rule {self.rule_id!r}")
        elif self.pointer:
            parts.append(self.pointer)
        return (": ".join(parts) + ": ") if parts else ""

    def to_dict(self) -> dict[str, object]:
        """Return the fields as a JSON-ready mapping (for ``--json`` and problem+json)."""
        return {
            "message": self.message,
            "source": self.source,
            "line": self.line,
            "column": self.column,
            "pointer": self.pointer,
            "rule_id": self.rule_id,
        }


class NotFound(LictorError):
    """A named thing does not exist."""

    def __init__(self, kind: str, id: str) -> None:
        self.kind = kind
        self.id = id
        super().__init__(f"{kind} {id!r} not found")


class Conflict(LictorError):
    """The thing already exists, or changed under the caller."""

    def __init__(self, kind: str, id: str, message: str = "") -> None:
        self.kind = kind
        self.id = id
        super().__init__(message or f"{kind} {id!r} conflicts with the stored one")


class StoreError(LictorError):
    """The storage backend failed. Always raised ``from`` the driver error."""


class AuditIntegrityError(LictorError):
    """The audit trail does not verify. ``index`` is the first bad record (0-based)."""

    def __init__(self, message: str, *, index: int | None = None) -> None:
        self.index = index
        super().__init__(message)


class AuthError(LictorError):
    """A credential is missing, malformed, forged, expired or revoked."""


class Forbidden(AuthError):
    """The caller is authenticated but its role may not do this."""


class InvalidToolCall(LictorError):
    """The agent sent a malformed action request. ``pointer`` locates the bad field."""

    def __init__(self, message: str, *, pointer: str = "") -> None:
        self.message = message
        self.pointer = pointer
        super().__init__(f"{pointer}: {message}" if pointer else message)


class UpstreamError(LictorError):
    """A proxied upstream (an MCP server) misbehaved."""


class Blocked(LictorError):
    """An enforcement edge refused to run a tool call. ``decision`` says why."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        reasons = "; ".join(r.message or r.rule for r in decision.reasons)
        super().__init__(
            f"{decision.outcome.value}: {reasons}" if reasons else decision.outcome.value
        )


class ToolCallDenied(Blocked):
    """The decision was ``deny``."""


class ReviewRequired(Blocked):
    """The decision was ``review`` and no verdict allowed it (yet)."""

    @property
    def review_id(self) -> str | None:
        """The pending review to wait on or show to a person."""
        return self.decision.review_id


class ReviewDenied(ToolCallDenied):
    """A reviewer denied the held call, or the review was cancelled (a quarantine).

    ``decision`` is the ``review`` decision; ``review`` holds the verdict and comment.
    """

    def __init__(self, decision: Decision, review: Review) -> None:
        super().__init__(decision)
        self.review = review


class ReviewExpired(ToolCallDenied):
    """Nobody decided on the held call before the review expired: it is denied."""

    def __init__(self, decision: Decision, review: Review) -> None:
        super().__init__(decision)
        self.review = review


class ReviewTimeout(ReviewRequired):
    """The review was still pending when the caller stopped waiting; it may still be approved."""

    def __init__(self, decision: Decision, review: Review) -> None:
        super().__init__(decision)
        self.review = review
