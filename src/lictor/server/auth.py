"""Who may call what: bearer authentication and the one route-to-roles table.

:data:`ENDPOINTS` is the only place that says which roles may call a route; the app
builds its routes from it and the tests derive their role matrix from it, so the two
cannot drift. Only ``/healthz``, ``/readyz`` and Lictor's public token keys
(``/.well-known/jwks.json``) are open; even ``/openapi.json`` needs a valid credential,
because the API's shape is not for anonymous callers to map.

Successful token lookups are cached for at most ``ttl_seconds`` (1 s by default), keyed
by the SHA-256 of the token, so the hot path does not hit the store on every request.
**A revoked credential keeps working on a replica for up to that window** (unless the
revoking code calls :meth:`Authenticator.forget` on that replica). Failed lookups are
never cached. A rotated credential's ``expires_at`` is checked on cache hits too.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

import anyio.to_thread

from lictor.errors import AuthError, Forbidden
from lictor.server.problems import BEARER_CHALLENGE, HTTPProblem
from lictor.service.credentials import Credentials
from lictor.service.ports import Credential, Role

AGENT_ONLY: Final = frozenset({Role.AGENT})
ADMIN_ONLY: Final = frozenset({Role.ADMIN})
READERS: Final = frozenset({Role.ADMIN, Role.AUDITOR, Role.REVIEWER})
AUDITORS: Final = frozenset({Role.ADMIN, Role.AUDITOR})
ANY_ROLE: Final = frozenset(Role)
REVIEWERS: Final = frozenset({Role.REVIEWER})


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One route: method, path template, handler name and the roles that may call it.

    ``roles`` None means open to anyone, without a credential.
    """

    method: str
    path: str
    name: str
    roles: frozenset[Role] | None


ENDPOINTS: Final[tuple[Endpoint, ...]] = (
    Endpoint("POST", "/v1/decide", "decide", AGENT_ONLY),
    Endpoint("POST", "/v1/decisions/{decision_id}/result", "report_result", AGENT_ONLY),
    Endpoint("POST", "/v1/events", "record_event", AGENT_ONLY),
    Endpoint("GET", "/v1/agents", "list_agents", READERS),
    Endpoint("GET", "/v1/agents/{agent_id}", "get_agent", READERS),
    Endpoint("PUT", "/v1/agents/{agent_id}", "put_agent", ADMIN_ONLY),
    Endpoint("DELETE", "/v1/agents/{agent_id}", "delete_agent", ADMIN_ONLY),
    Endpoint("POST", "/v1/token", "exchange_token", AGENT_ONLY),
    Endpoint("GET", "/.well-known/jwks.json", "jwks", None),
    Endpoint("GET", "/v1/audit", "query_audit", AUDITORS),
    Endpoint("GET", "/v1/audit/verify", "verify_audit", AUDITORS),
    Endpoint("GET", "/v1/audit/export", "export_audit", AUDITORS),
    Endpoint("GET", "/v1/audit/proof/{decision_id}", "prove_decision", AUDITORS),
    Endpoint("GET", "/v1/policies", "get_policies", AUDITORS),
    Endpoint("POST", "/v1/policies", "upload_policy", ADMIN_ONLY),
    Endpoint("POST", "/v1/policies/reload", "reload_policies", ADMIN_ONLY),
    Endpoint("GET", "/metrics", "metrics", AUDITORS),
    Endpoint("GET", "/openapi.json", "openapi", ANY_ROLE),
    Endpoint("GET", "/v1/reviews", "list_reviews", READERS),
    Endpoint("GET", "/v1/reviews/{review_id}", "get_review", ANY_ROLE),
    Endpoint("POST", "/v1/reviews/{review_id}/approve", "approve_review", REVIEWERS),
    Endpoint("POST", "/v1/reviews/{review_id}/deny", "deny_review", REVIEWERS),
    Endpoint("POST", "/v1/agents/{agent_id}/quarantine", "quarantine_agent", ADMIN_ONLY),
    Endpoint("POST", "/v1/agents/{agent_id}/release", "release_agent", ADMIN_ONLY),
    Endpoint(
        "POST", "/v1/principals/{principal_id}/quarantine", "quarantine_principal", ADMIN_ONLY
    ),
    Endpoint("POST", "/v1/principals/{principal_id}/release", "release_principal", ADMIN_ONLY),
    Endpoint("GET", "/v1/emergency", "get_emergency", READERS),
    Endpoint("POST", "/v1/emergency", "set_emergency", ADMIN_ONLY),
    Endpoint("GET", "/healthz", "healthz", None),
    Endpoint("GET", "/readyz", "readyz", None),
)


class Authenticator:
    """Turns an ``Authorization`` header into an active credential, with a short cache."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        ttl_seconds: float = 1.0,
        max_entries: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._credentials = credentials
        self._ttl = ttl_seconds
        self._max = max_entries
        self._monotonic = monotonic
        self._cache: dict[bytes, tuple[Credential, float]] = {}
        self._lookups: dict[bytes, anyio.Event] = {}

    async def authenticate(self, authorization: str | None) -> Credential:
        """Return the credential for a ``Bearer`` header.

        Raises:
            HTTPProblem: no credential was sent (401 with a bare challenge).
            AuthError: the token is malformed, unknown, wrong or revoked (401).
            StoreError: the credential store could not be read (503).
        """
        if not authorization:
            raise HTTPProblem(
                "unauthorized",
                "send 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": BEARER_CHALLENGE},
            )
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        # RFC 7235 §2.1: the auth scheme is case-insensitive.
        if scheme.lower() != "bearer" or not token:
            raise AuthError("invalid credential")
        key = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        now = self._monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[1] > now and self._credentials.is_still_valid(hit[0]):
            self._credentials.note_use(hit[0])
            return hit[0]
        running = self._lookups.get(key)
        if running is not None:
            # One store lookup per token at a time. Without this, every request in flight
            # when an entry expires (all of them, under load) sent its own lookup to a
            # worker thread, exhausting the connection pool the audit writer needs.
            await running.wait()
            hit = self._cache.get(key)
            if hit is not None and hit[1] > now and self._credentials.is_still_valid(hit[0]):
                self._credentials.note_use(hit[0])
                return hit[0]
        lookup = self._lookups[key] = anyio.Event()
        try:
            credential = await anyio.to_thread.run_sync(self._credentials.authenticate, token)
            if len(self._cache) >= self._max:
                self._cache.clear()  # simple bound: a full cache costs one lookup per token
            self._cache[key] = (credential, now + self._ttl)
        finally:
            if self._lookups.get(key) is lookup:
                del self._lookups[key]
            lookup.set()
        return credential

    def forget(self, subject: str) -> None:
        """Drop every cached credential of ``subject`` (an agent id or a person).

        Call it on revoking or quarantining, so this replica checks the store again on
        the subject's next request instead of trusting its cache for up to a second.
        """
        for key, (credential, _) in list(self._cache.items()):
            if credential.subject == subject:
                self._cache.pop(key, None)


def authorize(credential: Credential, roles: frozenset[Role]) -> None:
    """Check that the credential's role may call a route.

    Raises:
        Forbidden: it may not (403).
    """
    if credential.role not in roles:
        allowed = ", ".join(sorted(r.value for r in roles))
        raise Forbidden(f"role {credential.role.value!r} may not call this; allowed: {allowed}")


def roles_by_route() -> Mapping[tuple[str, str], frozenset[Role] | None]:
    """Return ``(method, path) -> roles`` from :data:`ENDPOINTS` (for docs and tests)."""
    return {(e.method, e.path): e.roles for e in ENDPOINTS}
