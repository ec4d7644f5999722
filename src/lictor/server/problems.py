"""The HTTP edge's one error table: Lictor errors to ``application/problem+json`` (RFC 9457).

Every problem has a stable ``type`` URI, ``urn:lictor:problem:<slug>``; clients branch on
the type, never on ``title`` or ``detail``, which are for people. Validation problems also
carry ``pointer`` (RFC 6901, into the request body) or ``parameter`` (a query parameter).

:class:`HTTPProblem` is the one exception that exists only at this edge: refusals that are
about HTTP itself (wrong content type, body too large, not JSON) rather than the domain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from starlette.responses import Response

from lictor.errors import (
    AuthError,
    Conflict,
    Forbidden,
    InvalidToolCall,
    LictorError,
    NotFound,
    PolicyError,
    StoreError,
)

PROBLEM_MEDIA_TYPE: Final = "application/problem+json"
TYPE_PREFIX: Final = "urn:lictor:problem:"


@dataclass(frozen=True, slots=True)
class ProblemType:
    """One kind of problem: its slug (the tail of the type URI), HTTP status and title."""

    slug: str
    status: int
    title: str

    @property
    def uri(self) -> str:
        """The stable ``type`` URI."""
        return TYPE_PREFIX + self.slug


PROBLEM_TYPES: Final[dict[str, ProblemType]] = {
    p.slug: p
    for p in (
        ProblemType("malformed-json", 400, "The request body is not valid JSON"),
        ProblemType("unauthorized", 401, "A valid bearer credential is required"),
        ProblemType("forbidden", 403, "This credential's role may not do this"),
        ProblemType("agent-mismatch", 403, "The credential belongs to a different agent"),
        ProblemType(
            "principal-mismatch", 400, "The body names another principal than the delegation"
        ),
        ProblemType("not-found", 404, "Not found"),
        ProblemType("method-not-allowed", 405, "Method not allowed"),
        ProblemType("conflict", 409, "The request conflicts with the current state"),
        ProblemType("payload-too-large", 413, "The request body is too large"),
        ProblemType("unsupported-media-type", 415, "The request body must be application/json"),
        ProblemType("invalid-request", 422, "The request is not valid"),
        ProblemType("internal-error", 500, "Internal error"),
        ProblemType("store-unavailable", 503, "The store is unavailable"),
    )
}

# Looked up along the exception's MRO, so the most specific class wins (Forbidden before
# AuthError). An error not listed here is a bug and becomes ``internal-error``.
_ERROR_SLUGS: Final[dict[type[LictorError], str]] = {
    Forbidden: "forbidden",
    AuthError: "unauthorized",
    InvalidToolCall: "invalid-request",
    PolicyError: "invalid-request",
    NotFound: "not-found",
    Conflict: "conflict",
    StoreError: "store-unavailable",
}

# RFC 6750 §3: the challenge a client gets when its bearer token is missing or bad.
BEARER_CHALLENGE: Final = 'Bearer realm="lictor"'
BEARER_INVALID: Final = 'Bearer realm="lictor", error="invalid_token"'


class HTTPProblem(LictorError):
    """An HTTP-level refusal with its problem type; raised and caught inside the server only."""

    def __init__(
        self,
        slug: str,
        detail: str,
        *,
        pointer: str | None = None,
        parameter: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.type = PROBLEM_TYPES[slug]
        self.detail = detail
        self.pointer = pointer
        self.parameter = parameter
        self.headers = headers or {}
        super().__init__(detail)


def problem_response(
    slug: str,
    detail: str,
    *,
    pointer: str | None = None,
    parameter: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Build a problem+json response of a registered type."""
    kind = PROBLEM_TYPES[slug]
    body: dict[str, Any] = {
        "type": kind.uri,
        "title": kind.title,
        "status": kind.status,
        "detail": detail,
    }
    if pointer is not None:
        body["pointer"] = pointer
    if parameter is not None:
        body["parameter"] = parameter
    return Response(
        json.dumps(body, ensure_ascii=False).encode(),
        status_code=kind.status,
        headers=headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def slug_for(exc: LictorError) -> str:
    """Return the problem slug for a Lictor error (``internal-error`` if unmapped)."""
    if isinstance(exc, HTTPProblem):
        return exc.type.slug
    for cls in type(exc).__mro__:
        slug = _ERROR_SLUGS.get(cls)
        if slug is not None:
            return slug
    return "internal-error"


def error_response(exc: LictorError) -> Response:
    """Map a Lictor error to its problem response (the edge's one table)."""
    if isinstance(exc, HTTPProblem):
        return problem_response(
            exc.type.slug,
            exc.detail,
            pointer=exc.pointer,
            parameter=exc.parameter,
            headers=exc.headers,
        )
    slug = slug_for(exc)
    pointer: str | None = None
    detail = str(exc)
    headers: dict[str, str] | None = None
    if isinstance(exc, InvalidToolCall | PolicyError):
        pointer = exc.pointer or "/"
        detail = exc.message
    if slug == "unauthorized":
        headers = {"WWW-Authenticate": BEARER_INVALID}
    if slug == "internal-error":
        detail = "an internal error occurred; it was logged"
    return problem_response(slug, detail, pointer=pointer, headers=headers)
