"""OAuth 2.0 Token Exchange (RFC 8693): who acts for whom, with which scope, until when.

A person's token from the company IdP plus an agent's credential go in; a short-lived
Lictor delegation token comes out, with ``sub`` = the person and nested ``act`` claims
naming the agents that act for them (RFC 8693 §4.1). :meth:`TokenExchange.verify` turns
such a token back into a :class:`DelegationChain` the Governor can decide on.

This module holds the *policy* of delegation, not its cryptography: signatures are made
and checked behind the :class:`TokenSigner` and :class:`TokenVerifier` ports, which
:mod:`lictor.identity.tokens` implements with joserfc. Invariants:

1. Scope only shrinks. A new token's scope is within its subject token's scope and
   within the actor's inventory ``allowed_tools``; asking for more is refused, never
   silently granted.
2. A chain never outlives its subject token, never exceeds ``max_depth`` actors and
   never names one agent twice.
3. Every refusal raises :class:`TokenRejected` (the token is bad: 401) or
   :class:`DelegationRefused` (the token is fine but this delegation is not allowed:
   403), each with a :class:`TokenProblem` so edges and tests need not parse messages.
4. Time comes from the injected :class:`~lictor.service.ports.Clock` only.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, Protocol

from lictor.core.agents import AgentStatus
from lictor.core.decisions import format_time
from lictor.core.requests import ActionRequest, AgentId, JSONValue, Principal
from lictor.errors import AuthError, ConfigError, Forbidden
from lictor.service.ids import new_ulid
from lictor.service.ports import AgentDirectory, Clock, Credential, CredentialKind, Role

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_TTL_SECONDS",
    "GRANT_TYPE",
    "SCOPE_PREFIX",
    "SUBJECT_TOKEN_TYPES",
    "TOKEN_TYPE_ACCESS_TOKEN",
    "TOKEN_TYPE_ID_TOKEN",
    "TOKEN_TYPE_JWT",
    "DelegationChain",
    "DelegationRefused",
    "ExchangePolicy",
    "IssuedToken",
    "TokenExchange",
    "TokenProblem",
    "TokenRejected",
    "TokenSigner",
    "TokenVerifier",
    "TrustedIssuer",
    "VerifiedJWT",
    "bind_request",
    "intersect_scopes",
    "is_scope_covered",
    "parse_scope",
    "request_identity",
]

GRANT_TYPE: Final = "urn:ietf:params:oauth:grant-type:token-exchange"
TOKEN_TYPE_ACCESS_TOKEN: Final = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a URN
TOKEN_TYPE_ID_TOKEN: Final = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105 - a URN
TOKEN_TYPE_JWT: Final = "urn:ietf:params:oauth:token-type:jwt"  # noqa: S105 - a URN
#: The ``subject_token_type`` values /v1/token accepts: all are JWTs we can verify.
SUBJECT_TOKEN_TYPES: Final = frozenset(
    {TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_ID_TOKEN, TOKEN_TYPE_JWT}
)

#: Lictor scopes are tool patterns: ``tool:send_email``, ``tool:payments.*``, ``tool:*``.
SCOPE_PREFIX: Final = "tool:"
DEFAULT_TTL_SECONDS: Final = 300
DEFAULT_MAX_DEPTH: Final = 4
DEFAULT_LEEWAY_SECONDS: Final = 30
_MAX_LEEWAY_SECONDS: Final = 300
_MAX_SCOPES: Final = 256
_MAX_ID_LENGTH: Final = 256
_GLOB_CHARS: Final = frozenset("*?[")


class TokenProblem(StrEnum):
    """Why a token or a delegation was refused; stable values for edges and tests."""

    MALFORMED = "malformed"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    WRONG_AUDIENCE = "wrong_audience"
    UNKNOWN_ISSUER = "unknown_issuer"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    ALG_NONE = "alg_none"
    ALG_NOT_ALLOWED = "alg_not_allowed"
    ISSUER_UNREACHABLE = "issuer_unreachable"
    ACTOR_NOT_AGENT = "actor_not_agent"
    UNKNOWN_AGENT = "unknown_agent"
    AGENT_INACTIVE = "agent_inactive"
    MAY_ACT_MISMATCH = "may_act_mismatch"
    DELEGATION_LOOP = "delegation_loop"
    DEPTH_EXCEEDED = "depth_exceeded"
    SCOPE_ESCALATION = "scope_escalation"
    INVALID_SCOPE = "invalid_scope"
    AUDIENCE_NOT_ALLOWED = "audience_not_allowed"
    REVOKED = "revoked"

    @property
    def oauth_error(self) -> str:
        """The RFC 6749 §5.2 / RFC 8693 §2.2.2 ``error`` code for a /v1/token response.

        RFC 8693 says a subject or actor token that is invalid "or unacceptable based on
        policy" is ``invalid_request``; scope and audience have codes of their own.
        """
        if self in (TokenProblem.SCOPE_ESCALATION, TokenProblem.INVALID_SCOPE):
            return "invalid_scope"
        if self is TokenProblem.AUDIENCE_NOT_ALLOWED:
            return "invalid_target"
        return "invalid_request"


class TokenRejected(AuthError):
    """The token itself is not acceptable: forged, expired, untrusted or malformed (401)."""

    def __init__(self, problem: TokenProblem, message: str) -> None:
        self.problem = problem
        super().__init__(message)


class DelegationRefused(Forbidden):
    """The tokens are valid, but this delegation is not allowed (403)."""

    def __init__(self, problem: TokenProblem, message: str) -> None:
        self.problem = problem
        super().__init__(message)


# --- ports ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifiedJWT:
    """A JWT whose signature checked out against a key of ``issuer``.

    Only the signature is vouched for: time, audience and every other claim are still
    to be validated by the caller.
    """

    issuer: str
    key_id: str | None
    algorithm: str
    claims: Mapping[str, Any]


class TokenVerifier(Protocol):
    """Checks a JWT's signature against the keys of the issuer named in its ``iss``."""

    def verify(self, token: str) -> VerifiedJWT:
        """Return the verified token.

        Raises:
            TokenRejected: malformed, unknown issuer or key, disallowed ``alg``, bad
                signature, or the issuer's keys cannot be had.
        """
        ...


class TokenSigner(Protocol):
    """Signs Lictor's own tokens."""

    def sign(self, claims: Mapping[str, Any]) -> str:
        """Return a compact JWS of ``claims``."""
        ...


# --- configuration -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    """An identity provider whose tokens may start a delegation chain.

    ``audiences`` are the ``aud`` values its tokens must carry one of (usually the
    client id Lictor is registered under at the IdP). ``subject_claim`` names the
    person (``sub`` by default; ``email`` or ``preferred_username`` read better but
    are only unique if the IdP says so). ``attribute_claims`` maps principal attribute
    names to claim names, with dots for nested claims (``realm_access.roles``).
    """

    issuer: str
    audiences: frozenset[str]
    subject_claim: str = "sub"
    groups_claim: str = "groups"
    scope_claims: tuple[str, ...] = ("scope", "scp")
    attribute_claims: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.issuer:
            raise ConfigError("a trusted issuer needs its issuer URL")
        if not self.audiences or not all(self.audiences):
            raise ConfigError(
                f"trusted issuer {self.issuer}: set the audience its tokens carry for Lictor "
                "(the client id Lictor is registered under); without it any token the IdP "
                "issued to any application would be accepted"
            )
        if not self.subject_claim:
            raise ConfigError(f"trusted issuer {self.issuer}: subject_claim must not be empty")


@dataclass(frozen=True, slots=True)
class ExchangePolicy:
    """How Lictor exchanges and checks delegation tokens.

    ``issuer`` is the ``iss`` of Lictor's own tokens. ``audiences`` are the audiences it
    issues tokens for; the first is the default when a request names none.
    """

    issuer: str
    audiences: tuple[str, ...]
    trusted_issuers: tuple[TrustedIssuer, ...]
    token_ttl_seconds: int = DEFAULT_TTL_SECONDS
    max_depth: int = DEFAULT_MAX_DEPTH
    leeway_seconds: int = DEFAULT_LEEWAY_SECONDS

    def __post_init__(self) -> None:
        if not self.issuer:
            raise ConfigError("token exchange: set Lictor's issuer URL (the iss of its tokens)")
        if not self.audiences or not all(self.audiences):
            raise ConfigError("token exchange: set at least one audience to issue tokens for")
        if self.token_ttl_seconds <= 0:
            raise ConfigError("token exchange: token_ttl_seconds must be positive")
        if self.max_depth < 1:
            raise ConfigError("token exchange: max_depth must be at least 1 (one agent)")
        if not 0 <= self.leeway_seconds <= _MAX_LEEWAY_SECONDS:
            raise ConfigError(
                f"token exchange: leeway_seconds must be in [0, {_MAX_LEEWAY_SECONDS}]; "
                "clock skew beyond that is a broken clock, not skew"
            )
        names = [t.issuer for t in self.trusted_issuers]
        if len(set(names)) != len(names):
            raise ConfigError("token exchange: a trusted issuer is listed twice")
        if self.issuer in names:
            raise ConfigError(
                "token exchange: Lictor's own issuer cannot also be a trusted IdP; give it a "
                "URL of its own"
            )

    def trusted(self, issuer: str) -> TrustedIssuer | None:
        """Return the trusted IdP with this issuer URL, if configured."""
        for item in self.trusted_issuers:
            if item.issuer == issuer:
                return item
        return None


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DelegationChain:
    """A verified delegation: the person, the agents acting for them, and the scope.

    ``actors`` are agent ids, oldest first; the last one is the agent that holds the
    token now. ``scope`` holds ``tool:<pattern>`` strings.
    """

    principal: Principal
    actors: tuple[AgentId, ...]
    scope: frozenset[str]
    token_id: str
    expires_at: datetime
    principal_issuer: str = ""

    @property
    def current_actor(self) -> AgentId:
        """The agent the token was last issued to."""
        return self.actors[-1]

    @property
    def delegation(self) -> tuple[str, ...]:
        """The request's ``delegation`` field: principal, agent, sub-agent …, oldest first."""
        return (self.principal.id, *self.actors)

    def permits(self, tool: str) -> bool:
        """Return whether ``tool`` is within the chain's scope."""
        return any(fnmatch.fnmatchcase(tool, s[len(SCOPE_PREFIX) :]) for s in self.scope)

    def to_json(self) -> dict[str, JSONValue]:
        """Return a JSON-ready form (for audit entries and introspection)."""
        return {
            "principal": self.principal.to_json(),
            "principal_issuer": self.principal_issuer,
            "actors": list(self.actors),
            "delegation": list(self.delegation),
            "scope": sorted(self.scope),
            "token_id": self.token_id,
            "expires_at": format_time(self.expires_at),
        }


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A delegation token Lictor signed, with what it grants."""

    access_token: str
    chain: DelegationChain
    issued_at: datetime

    issued_token_type: str = TOKEN_TYPE_ACCESS_TOKEN

    @property
    def expires_at(self) -> datetime:
        """When the token stops being accepted."""
        return self.chain.expires_at

    @property
    def scope(self) -> frozenset[str]:
        """The narrowed scope the token grants."""
        return self.chain.scope

    def to_response(self) -> dict[str, JSONValue]:
        """Return the RFC 8693 §2.2.1 success response body."""
        return {
            "access_token": self.access_token,
            "issued_token_type": self.issued_token_type,
            "token_type": "Bearer",
            "expires_in": max(0, int((self.expires_at - self.issued_at).total_seconds())),
            "scope": " ".join(sorted(self.scope)),
        }


# --- scope algebra -------------------------------------------------------------------------


def parse_scope(value: str | Iterable[str]) -> frozenset[str]:
    """Validate Lictor scope strings (space-separated, or already split).

    Raises:
        DelegationRefused: a scope is not ``tool:<pattern>`` (``invalid_scope``).
    """
    raw: list[object] = list(value.split() if isinstance(value, str) else value)
    if len(raw) > _MAX_SCOPES:
        raise DelegationRefused(
            TokenProblem.INVALID_SCOPE, f"more than {_MAX_SCOPES} scopes requested"
        )
    items: list[str] = []
    for item in raw:
        if (
            not isinstance(item, str)
            or not item.startswith(SCOPE_PREFIX)
            or len(item) == len(SCOPE_PREFIX)
            or len(item) > _MAX_ID_LENGTH
            or any(c.isspace() for c in item)
        ):
            raise DelegationRefused(
                TokenProblem.INVALID_SCOPE,
                f"invalid scope {item!r}: Lictor scopes are tool patterns such as "
                "'tool:send_email' or 'tool:payments.*'",
            )
        items.append(item)
    return frozenset(items)


def _tool_scopes(items: Iterable[str]) -> frozenset[str]:
    """Keep the ``tool:`` scopes of an IdP token; ``openid``, ``email`` … are not ours."""
    return frozenset(
        s
        for s in items
        if s.startswith(SCOPE_PREFIX) and len(s) > len(SCOPE_PREFIX) and len(s) <= _MAX_ID_LENGTH
    )


def _pattern_covers(outer: str, inner: str) -> bool:
    """Return True only if every tool ``inner`` matches is matched by ``outer``.

    Glob containment in general is hard, so this is sound but incomplete: a pattern
    equal to, or a literal name matched by, ``outer``, or ``outer`` = ``<literal>*``
    with ``inner`` starting with that literal. An undecided pair counts as not
    covered, which can only narrow a scope, never widen it.
    """
    if outer == inner:
        return True
    if not _GLOB_CHARS & set(inner):
        return fnmatch.fnmatchcase(inner, outer)
    if outer.endswith("*"):
        prefix = outer[:-1]
        return not _GLOB_CHARS & set(prefix) and inner.startswith(prefix)
    return False


def is_scope_covered(held: Iterable[str], scope: str) -> bool:
    """Return whether ``scope`` grants nothing beyond what ``held`` grants."""
    pattern = scope[len(SCOPE_PREFIX) :]
    return any(_pattern_covers(h[len(SCOPE_PREFIX) :], pattern) for h in held)


def intersect_scopes(first: Iterable[str], second: Iterable[str]) -> frozenset[str]:
    """Return the scopes granted by both sets: each kept scope is within both.

    ``tool:mail.*`` ∩ ``tool:mail.send`` is ``tool:mail.send``; two globs that only
    partly overlap (``tool:mail.*`` and ``tool:*.send``) yield nothing, the safe side.
    """
    a, b = frozenset(first), frozenset(second)
    return frozenset(
        {s for s in a if is_scope_covered(b, s)} | {s for s in b if is_scope_covered(a, s)}
    )


# --- the use case --------------------------------------------------------------------------


class TokenExchange:
    """Issue and verify Lictor delegation tokens (RFC 8693).

    The constructor does no I/O; the verifier may fetch an IdP's keys on first use.
    Both methods are synchronous (the JWKS fetch uses a blocking client), so an async
    server runs them in a worker thread.
    """

    def __init__(
        self,
        policy: ExchangePolicy,
        *,
        verifier: TokenVerifier,
        signer: TokenSigner,
        agents: AgentDirectory,
        clock: Clock,
        new_token_id: Callable[[datetime], str] = new_ulid,
    ) -> None:
        self.policy = policy
        self._verifier = verifier
        self._signer = signer
        self._agents = agents
        self._clock = clock
        self._new_token_id = new_token_id

    def exchange(
        self,
        subject_token: str,
        actor: Credential,
        requested_scope: Sequence[str] | None = None,
        audience: str | None = None,
    ) -> IssuedToken:
        """Issue a delegation token: ``actor`` acts for the subject token's person.

        ``subject_token`` is either the person's JWT from a trusted IdP (the chain
        starts) or a Lictor delegation token (the chain grows by ``actor``, a
        sub-agent). ``requested_scope`` None asks for everything the subject may
        delegate; the grant is then narrowed to the actor's ``allowed_tools``.

        Raises:
            TokenRejected: the subject token is malformed, forged, expired, not yet
                valid, for another audience, from an unknown issuer or key, or its
                issuer's keys cannot be fetched and none are cached.
            DelegationRefused: the actor is not an active registered agent, does not
                match ``may_act``, is already in the chain, the chain would exceed
                ``max_depth``, the scope asks for more than the subject holds or
                nothing is left, or the audience is not one Lictor issues for.
        """
        now = self._clock.now()
        agent_id = self._check_actor(actor)
        target = self._check_audience(audience)
        verified = self._verifier.verify(subject_token)
        if verified.issuer == self.policy.issuer:
            parent = self._chain(verified, now, audience=None)
            principal, issuer_of_principal = parent.principal, parent.principal_issuer
            prior, available = parent.actors, parent.scope
            subject_exp = parent.expires_at.timestamp()
            claims = verified.claims
        else:
            trusted = self.policy.trusted(verified.issuer)
            if trusted is None:
                raise TokenRejected(
                    TokenProblem.UNKNOWN_ISSUER,
                    f"subject token issuer {verified.issuer!r} is not a trusted issuer",
                )
            claims = verified.claims
            subject_exp = self._check_times(claims, now, "subject token")
            self._check_token_audience(claims, trusted.audiences, "subject token")
            if "act" in claims:
                raise TokenRejected(
                    TokenProblem.MALFORMED,
                    f"subject token from {trusted.issuer} already carries an 'act' claim; "
                    "Lictor chains start at the person, so a token delegated elsewhere "
                    "cannot start one",
                )
            principal = _principal_from(claims, trusted)
            issuer_of_principal = trusted.issuer
            prior = ()
            available = _tool_scopes(_scope_values(claims, trusted.scope_claims))
        self._check_may_act(claims, agent_id)
        if agent_id in prior:
            raise DelegationRefused(
                TokenProblem.DELEGATION_LOOP,
                f"agent {agent_id!r} is already in the delegation chain "
                f"{' -> '.join(prior)}; an agent cannot delegate back to itself",
            )
        actors = (*prior, agent_id)
        if len(actors) > self.policy.max_depth:
            raise DelegationRefused(
                TokenProblem.DEPTH_EXCEEDED,
                f"delegation chain would have {len(actors)} agents, more than the limit of "
                f"{self.policy.max_depth}",
            )
        scope = self._narrow(requested_scope, available, agent_id)
        exp = min(now.timestamp() + self.policy.token_ttl_seconds, subject_exp)
        token_id = self._new_token_id(now)
        chain = DelegationChain(
            principal=principal,
            actors=actors,
            scope=scope,
            token_id=token_id,
            expires_at=datetime.fromtimestamp(int(exp), UTC),
            principal_issuer=issuer_of_principal,
        )
        issued_at = int(now.timestamp())
        token = self._signer.sign(
            {
                "iss": self.policy.issuer,
                "sub": principal.id,
                "aud": target,
                "iat": issued_at,
                "nbf": issued_at,
                "exp": int(exp),
                "jti": token_id,
                "scope": " ".join(sorted(scope)),
                "act": _act_claim(actors),
                "principal": {
                    "iss": issuer_of_principal,
                    "groups": list(principal.groups),
                    "attributes": dict(principal.attributes),
                },
            }
        )
        return IssuedToken(token, chain, datetime.fromtimestamp(issued_at, UTC))

    def verify(self, token: str, *, audience: str | None = None) -> DelegationChain:
        """Verify a Lictor delegation token and return its chain.

        ``audience`` None accepts any audience Lictor issues for. Every agent in the
        chain must still be registered and active: suspending a planner cuts off the
        sub-agents it delegated to at once, not when their tokens expire.

        Raises:
            TokenRejected: forged, expired (an expired token cannot be replayed), not
                yet valid, not a Lictor token, or for another audience.
            DelegationRefused: an agent in the chain is unknown or not active, or the
                chain is deeper than ``max_depth``.
        """
        verified = self._verifier.verify(token)
        if verified.issuer != self.policy.issuer:
            raise TokenRejected(
                TokenProblem.UNKNOWN_ISSUER,
                f"token from {verified.issuer!r} is not a Lictor delegation token; exchange "
                "it at /v1/token first",
            )
        return self._chain(verified, self._clock.now(), audience=audience)

    # --- steps -----------------------------------------------------------------------------

    def _check_actor(self, actor: Credential) -> AgentId:
        if not actor.is_active:
            raise TokenRejected(TokenProblem.MALFORMED, "the actor credential is revoked")
        if actor.kind is not CredentialKind.AGENT or actor.role is not Role.AGENT:
            raise DelegationRefused(
                TokenProblem.ACTOR_NOT_AGENT,
                f"the actor must be an agent credential, not a {actor.kind.value} "
                f"({actor.role.value}) one",
            )
        return self._active_agent(actor.subject)

    def _active_agent(self, agent_id: str) -> AgentId:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise DelegationRefused(
                TokenProblem.UNKNOWN_AGENT, f"agent {agent_id!r} is not in the inventory"
            )
        if agent.status is not AgentStatus.ACTIVE:
            raise DelegationRefused(
                TokenProblem.AGENT_INACTIVE,
                f"agent {agent_id!r} is {agent.status.value}; only active agents may act",
            )
        return agent.id

    def _check_not_revoked(self, agent_id: str, iat: float | None) -> None:
        """Refuse a token issued before an agent's ``tokens_valid_after`` (quarantine).

        A token without ``iat`` cannot show it is newer than the cut-off, so it is
        refused whenever a cut-off is set.
        """
        agent = self._agents.get(agent_id)
        cutoff = agent.tokens_valid_after if agent is not None else None
        if cutoff is None:
            return
        if iat is None or agent is None or agent.is_token_revoked(_instant(iat)):
            raise TokenRejected(
                TokenProblem.REVOKED,
                f"token revoked: tokens of agent {agent_id!r} issued before "
                f"{format_time(cutoff)} are no longer accepted",
            )

    def _check_audience(self, audience: str | None) -> str:
        if audience is None:
            return self.policy.audiences[0]
        if audience not in self.policy.audiences:
            raise DelegationRefused(
                TokenProblem.AUDIENCE_NOT_ALLOWED,
                f"Lictor does not issue tokens for audience {audience!r}; allowed: "
                f"{', '.join(self.policy.audiences)}",
            )
        return audience

    def _check_times(self, claims: Mapping[str, Any], now: datetime, what: str) -> float:
        """Check ``exp`` (required), ``nbf`` and ``iat`` with leeway; return ``exp``.

        RFC 7519 §4.1.4: the token must not be accepted on or after ``exp``. Numbers
        are compared as numbers, so an absurd ``exp`` cannot overflow a datetime.
        """
        leeway = self.policy.leeway_seconds
        current = now.timestamp()
        exp = _numeric(claims, "exp", what)
        if exp is None:
            raise TokenRejected(TokenProblem.MALFORMED, f"{what} has no 'exp' claim")
        if current >= exp + leeway:
            raise TokenRejected(
                TokenProblem.EXPIRED,
                f"{what} expired at {_at(exp)} (now {format_time(now)}); an expired token "
                "cannot be replayed, get a fresh one",
            )
        nbf = _numeric(claims, "nbf", what)
        if nbf is not None and current + leeway < nbf:
            raise TokenRejected(
                TokenProblem.NOT_YET_VALID,
                f"{what} is not valid before {_at(nbf)} (now {format_time(now)})",
            )
        iat = _numeric(claims, "iat", what)
        if iat is not None and current + leeway < iat:
            raise TokenRejected(
                TokenProblem.NOT_YET_VALID,
                f"{what} was issued in the future, at {_at(iat)} (now {format_time(now)})",
            )
        return exp

    def _check_token_audience(
        self, claims: Mapping[str, Any], accepted: Iterable[str], what: str
    ) -> None:
        aud = claims.get("aud")
        values = [aud] if isinstance(aud, str) else aud
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise TokenRejected(TokenProblem.WRONG_AUDIENCE, f"{what} has no valid 'aud' claim")
        wanted = set(accepted)
        if not wanted & set(values):
            raise TokenRejected(
                TokenProblem.WRONG_AUDIENCE,
                f"{what} is for audience {', '.join(values) or '(none)'}, not "
                f"{' or '.join(sorted(wanted))}",
            )

    def _check_may_act(self, claims: Mapping[str, Any], agent_id: str) -> None:
        """RFC 8693 §4.4: if the subject names who may act for it, the actor must match."""
        if "may_act" not in claims:
            return
        may_act = claims["may_act"]
        if not isinstance(may_act, Mapping):
            raise TokenRejected(TokenProblem.MALFORMED, "subject token 'may_act' is not an object")
        if may_act.get("sub") != agent_id:
            raise DelegationRefused(
                TokenProblem.MAY_ACT_MISMATCH,
                f"the subject token allows only {may_act.get('sub')!r} to act for it, "
                f"not agent {agent_id!r}",
            )
        if "iss" in may_act and may_act["iss"] != self.policy.issuer:
            raise DelegationRefused(
                TokenProblem.MAY_ACT_MISMATCH,
                f"the subject token's may_act names an actor of issuer {may_act['iss']!r}, "
                f"not of Lictor ({self.policy.issuer})",
            )

    def _narrow(
        self, requested: Sequence[str] | None, available: frozenset[str], agent_id: AgentId
    ) -> frozenset[str]:
        agent = self._agents.get(agent_id)
        allowed = frozenset(
            SCOPE_PREFIX + t for t in (agent.allowed_tools if agent is not None else ())
        )
        if requested is None:
            wanted = available
        else:
            wanted = parse_scope(requested)
            beyond = sorted(s for s in wanted if not is_scope_covered(available, s))
            if beyond:
                raise DelegationRefused(
                    TokenProblem.SCOPE_ESCALATION,
                    f"scope escalation attempted: {' '.join(beyond)} is not within the "
                    f"subject token's scope ({' '.join(sorted(available)) or 'none'})",
                )
        granted = intersect_scopes(intersect_scopes(wanted, available), allowed)
        if not granted:
            raise DelegationRefused(
                TokenProblem.INVALID_SCOPE,
                f"no scope left for agent {agent_id!r}: the subject token grants "
                f"{' '.join(sorted(available)) or 'no tool scopes'}, the request asked for "
                f"{' '.join(sorted(wanted)) or 'nothing'}, and the agent's inventory allows "
                f"{' '.join(sorted(allowed)) or 'no tools'}",
            )
        return granted

    def _chain(
        self, verified: VerifiedJWT, now: datetime, *, audience: str | None
    ) -> DelegationChain:
        """Validate a signature-checked Lictor token's claims into a chain."""
        claims = verified.claims
        what = "delegation token"
        exp = self._check_times(claims, now, what)
        accepted = self.policy.audiences if audience is None else (audience,)
        self._check_token_audience(claims, accepted, what)
        sub = claims.get("sub")
        jti = claims.get("jti")
        if not isinstance(sub, str) or not sub or not isinstance(jti, str) or not jti:
            raise TokenRejected(TokenProblem.MALFORMED, f"{what} lacks 'sub' or 'jti'")
        actors = _actors_from(claims.get("act"), self.policy.max_depth)
        iat = _numeric(claims, "iat", what)
        for actor in actors:
            self._active_agent(actor)
            self._check_not_revoked(actor, iat)
        scope_claim = claims.get("scope")
        if not isinstance(scope_claim, str):
            raise TokenRejected(TokenProblem.MALFORMED, f"{what} has no 'scope' claim")
        try:
            scope = parse_scope(scope_claim)
        except DelegationRefused as exc:
            raise TokenRejected(TokenProblem.MALFORMED, f"{what}: {exc}") from exc
        details = claims.get("principal", {})
        if not isinstance(details, Mapping):
            raise TokenRejected(TokenProblem.MALFORMED, f"{what}: 'principal' is not an object")
        groups = details.get("groups", [])
        attributes = details.get("attributes", {})
        issuer = details.get("iss", "")
        if (
            not isinstance(groups, list)
            or not all(isinstance(g, str) for g in groups)
            or not isinstance(attributes, Mapping)
            or not isinstance(issuer, str)
        ):
            raise TokenRejected(TokenProblem.MALFORMED, f"{what}: malformed 'principal' claim")
        return DelegationChain(
            principal=Principal(id=sub, groups=tuple(groups), attributes=dict(attributes)),
            actors=actors,
            scope=scope,
            token_id=jti,
            expires_at=datetime.fromtimestamp(int(exp), UTC),
            principal_issuer=issuer,
        )


# --- mapping to the request ------------------------------------------------------------------


def request_identity(chain: DelegationChain) -> tuple[Principal, tuple[str, ...]]:
    """Return the request's ``principal`` and ``delegation`` fields for a verified chain."""
    return chain.principal, chain.delegation


def bind_request(request: ActionRequest, chain: DelegationChain) -> ActionRequest:
    """Replace a request's principal and delegation with the verified chain's.

    What the body says about the principal is a claim; the token is proof, so the
    token wins. The request must come from the agent the token was issued to.

    Raises:
        DelegationRefused: the request's ``agent_id`` is not the chain's current actor.
    """
    if request.agent_id != chain.current_actor:
        raise DelegationRefused(
            TokenProblem.ACTOR_NOT_AGENT,
            f"the delegation token was issued to agent {chain.current_actor!r}, but the "
            f"request is from {request.agent_id!r}",
        )
    principal, delegation = request_identity(chain)
    return replace(request, principal=principal, delegation=delegation)


# --- claim helpers ---------------------------------------------------------------------------


def _act_claim(actors: Sequence[str]) -> dict[str, Any]:
    """Nest actors so the newest is outermost (RFC 8693 §4.1)."""
    claim: dict[str, Any] = {}
    for actor in actors:
        claim = {"sub": actor, "act": claim} if claim else {"sub": actor}
    return claim


def _actors_from(act: object, max_depth: int) -> tuple[AgentId, ...]:
    """Unnest ``act`` claims into agent ids, oldest first."""
    newest_first: list[AgentId] = []
    current = act
    while current is not None:
        if len(newest_first) >= max_depth:
            raise DelegationRefused(
                TokenProblem.DEPTH_EXCEEDED,
                f"delegation token names more than {max_depth} agents",
            )
        if not isinstance(current, Mapping):
            raise TokenRejected(TokenProblem.MALFORMED, "an 'act' claim is not an object")
        sub = current.get("sub")
        if not isinstance(sub, str) or not sub:
            raise TokenRejected(TokenProblem.MALFORMED, "an 'act' claim has no 'sub'")
        newest_first.append(AgentId(sub))
        current = current.get("act")
    if not newest_first:
        raise TokenRejected(TokenProblem.MALFORMED, "delegation token has no 'act' claim")
    return tuple(reversed(newest_first))


def _scope_values(claims: Mapping[str, Any], names: Iterable[str]) -> list[str]:
    """Read ``scope`` (space-separated, RFC 8693 §4.2) or ``scp`` (string or list)."""
    values: list[str] = []
    for name in names:
        value = claims.get(name)
        if isinstance(value, str):
            values.extend(value.split())
        elif isinstance(value, list):
            values.extend(v for v in value if isinstance(v, str))
    return values


def _claim_path(claims: Mapping[str, Any], path: str) -> object:
    current: object = claims
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def _principal_from(claims: Mapping[str, Any], issuer: TrustedIssuer) -> Principal:
    subject = claims.get(issuer.subject_claim)
    if not isinstance(subject, str) or not subject or len(subject) > _MAX_ID_LENGTH:
        raise TokenRejected(
            TokenProblem.MALFORMED,
            f"subject token has no usable {issuer.subject_claim!r} claim to name the person",
        )
    raw_groups = _claim_path(claims, issuer.groups_claim)
    if raw_groups is None:
        groups: tuple[str, ...] = ()
    elif isinstance(raw_groups, str):
        groups = (raw_groups,)
    elif isinstance(raw_groups, list) and all(isinstance(g, str) for g in raw_groups):
        groups = tuple(raw_groups)
    else:
        raise TokenRejected(
            TokenProblem.MALFORMED,
            f"subject token claim {issuer.groups_claim!r} is not a list of strings",
        )
    attributes = {
        name: value
        for name, path in issuer.attribute_claims.items()
        if (value := _claim_path(claims, path)) is not None
    }
    return Principal(id=subject, groups=groups, attributes=attributes)


def _numeric(claims: Mapping[str, Any], name: str, what: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise TokenRejected(TokenProblem.MALFORMED, f"{what} claim {name!r} is not a number")
    return float(value)


def _instant(timestamp: float) -> datetime:
    try:
        return datetime.fromtimestamp(timestamp, UTC)
    except (OverflowError, OSError, ValueError):
        return (
            datetime.min.replace(tzinfo=UTC) if timestamp < 0 else datetime.max.replace(tzinfo=UTC)
        )


def _at(timestamp: float) -> str:
    try:
        return format_time(datetime.fromtimestamp(timestamp, UTC))
    except (OverflowError, OSError, ValueError):
        return repr(timestamp)
