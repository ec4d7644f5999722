"""HTTP for identity: token exchange, Lictor's JWKS, the inventory, and delegation on decide.

- ``POST /v1/token`` is RFC 8693 over a form body. Its refusals are OAuth errors
  (RFC 6749 §5.2: ``400 {"error", "error_description"}``), not problem+json, because
  OAuth clients parse exactly that shape.
- ``GET /.well-known/jwks.json`` is open: Lictor's public token keys, for anyone who
  must check a delegation token.
- ``/v1/agents`` reads and changes the inventory through
  :class:`lictor.service.inventory.Inventory` (audited, versioned: a ``PUT`` naming a
  stale ``version`` is a 409).
- :meth:`IdentityApi.bind_delegation` is the decide handler's identify step: it
  verifies the ``Lictor-Delegation`` header and puts the token's principal and chain
  into the request, never the body's.

Every exchange and verification runs in a worker thread: it may fetch an IdP's keys.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl

import anyio.to_thread
import httpx
from starlette.requests import Request
from starlette.responses import Response

from lictor.core.agents import BOOKKEEPING_FIELDS, AgentStatus, parse_agent
from lictor.errors import AuthError, LictorError, NotFound
from lictor.identity.exchange import ensure_token_key, open_exchange
from lictor.identity.tokens import SigningKey
from lictor.server.problems import HTTPProblem
from lictor.service.credentials import UsageRecorder
from lictor.service.delegation import (
    GRANT_TYPE,
    SUBJECT_TOKEN_TYPES,
    DelegationChain,
    DelegationRefused,
    ExchangePolicy,
    TokenExchange,
    TokenProblem,
    TokenRejected,
    TrustedIssuer,
)
from lictor.service.identity import CallerIdentity, IdentityGate
from lictor.service.inventory import Inventory
from lictor.service.ports import Credential
from lictor.service.shadow import ShadowRecorder

if TYPE_CHECKING:
    from lictor.server.runtime import Runtime
    from lictor.settings import Settings

__all__ = [
    "ACTOR_TOKEN_TYPE",
    "DELEGATION_HEADER",
    "IdentityApi",
    "IdentityServices",
    "exchange_policy",
    "open_identity",
]

log = logging.getLogger("lictor.server.identity")

DELEGATION_HEADER: Final = "lictor-delegation"
ACTOR_TOKEN_TYPE: Final = "urn:lictor:params:oauth:token-type:credential"  # noqa: S105 - a URN
FORM_MEDIA_TYPE: Final = "application/x-www-form-urlencoded"
_NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_TOKEN_FIELDS: Final = frozenset(
    {
        "grant_type",
        "subject_token",
        "subject_token_type",
        "actor_token",
        "actor_token_type",
        "scope",
        "audience",
        "resource",
        "requested_token_type",
    }
)


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return Response(
        body.encode(), status_code=status, media_type="application/json", headers=headers
    )


def oauth_error(error: str, description: str) -> Response:
    """Return an RFC 6749 §5.2 error response (400, never cached)."""
    return _json({"error": error, "error_description": description}, 400, _NO_STORE)


def exchange_policy(settings: Settings) -> ExchangePolicy:
    """Build the exchange policy from settings.

    Raises:
        ConfigError: an issuer or audience is missing or repeated.
    """
    return ExchangePolicy(
        issuer=settings.token_issuer,
        audiences=tuple(settings.token_audiences),
        trusted_issuers=tuple(
            TrustedIssuer(
                issuer=t.issuer,
                audiences=frozenset(t.audiences),
                subject_claim=t.subject_claim,
                groups_claim=t.groups_claim,
                scope_claims=tuple(t.scope_claims),
                attribute_claims=dict(t.attribute_claims),
            )
            for t in settings.trusted_issuers
        ),
        token_ttl_seconds=settings.token_ttl_seconds,
        max_depth=settings.token_max_depth,
    )


@dataclass
class IdentityServices:
    """The identity parts of a running server; :meth:`close` them with it."""

    key: SigningKey
    exchange: TokenExchange
    inventory: Inventory
    shadow: ShadowRecorder
    usage: UsageRecorder
    http: httpx.Client

    def close(self) -> None:
        """Write pending shadow sightings and credential use; close the IdP client."""
        try:
            self.shadow.close()
        finally:
            self.usage.flush()
            self.http.close()


def open_identity(runtime: Runtime) -> IdentityServices:
    """Wire token exchange, the inventory service, shadow recording and credential use.

    Raises:
        ConfigError: the token key or an exchange setting is wrong.
    """
    settings = runtime.settings
    key, _ = ensure_token_key(settings.token_key_path)
    exchange, http = open_exchange(
        exchange_policy(settings),
        key,
        jwks_urls={t.issuer: t.jwks_url for t in settings.trusted_issuers},
        agents=runtime.agents,
        clock=runtime.clock,
    )
    inventory = Inventory(runtime.agents, runtime.audit, runtime.clock)
    shadow = ShadowRecorder(inventory, runtime.clock, events=runtime.events).start()
    usage = UsageRecorder(runtime.store.credentials)
    runtime.credentials.usage = usage
    runtime.governor.identity_gate = IdentityGate(shadow, settings.shadow_agents)
    return IdentityServices(key, exchange, inventory, shadow, usage, http)


async def _read_form(request: Request, max_bytes: int) -> dict[str, str]:
    """Read a form body (bounded); refuse repeated parameters (RFC 6749 §3.2)."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != FORM_MEDIA_TYPE:
        raise _OAuthError("invalid_request", f"send the body as {FORM_MEDIA_TYPE}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _OAuthError("invalid_request", f"the body may be at most {max_bytes} bytes")
        chunks.append(chunk)
    try:
        text = b"".join(chunks).decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except (UnicodeDecodeError, ValueError):
        raise _OAuthError("invalid_request", "the body is not a valid form") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise _OAuthError("invalid_request", f"parameter {name!r} is given more than once")
        if name in _TOKEN_FIELDS:
            form[name] = value
    return form


class _OAuthError(Exception):
    def __init__(self, error: str, description: str) -> None:
        self.error = error
        self.description = description
        super().__init__(description)


RejectionRecorder = Callable[[Mapping[str, Any] | None, str, str, Credential, str | None], None]


class IdentityApi:
    """The handlers of this module, bound to one runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    @property
    def services(self) -> IdentityServices:
        """The runtime's identity services (opened with it)."""
        services = self.runtime.identity
        if services is None:
            raise LictorError("identity services are not open")
        return services

    def protected(self) -> dict[str, Callable[[Request, Credential], Any]]:
        """Authenticated handlers by endpoint name."""
        return {
            "exchange_token": self.exchange_token,
            "list_agents": self.list_agents,
            "get_agent": self.get_agent,
            "put_agent": self.put_agent,
            "delete_agent": self.delete_agent,
        }

    def open(self) -> dict[str, Callable[[Request], Any]]:
        """Open handlers by endpoint name."""
        return {"jwks": self.jwks}

    # -- token exchange -----------------------------------------------------------------

    async def exchange_token(self, request: Request, caller: Credential) -> Response:
        """``POST /v1/token``: RFC 8693 token exchange; the caller or ``actor_token`` acts."""
        try:
            form = await _read_form(request, self.runtime.settings.max_body_bytes)
            if form.get("grant_type") != GRANT_TYPE:
                raise _OAuthError("unsupported_grant_type", f"grant_type must be {GRANT_TYPE}")
            subject_token = form.get("subject_token", "")
            if not subject_token:
                raise _OAuthError("invalid_request", "subject_token is required")
            if form.get("subject_token_type") not in SUBJECT_TOKEN_TYPES:
                raise _OAuthError(
                    "invalid_request",
                    "subject_token_type must be one of " + ", ".join(sorted(SUBJECT_TOKEN_TYPES)),
                )
            actor = await self._actor(form, caller)
            scope = form["scope"].split() if form.get("scope") else None
            audience = form.get("audience") or None
            issued = await anyio.to_thread.run_sync(
                self.services.exchange.exchange, subject_token, actor, scope, audience
            )
        except _OAuthError as exc:
            return oauth_error(exc.error, exc.description)
        except (TokenRejected, DelegationRefused) as exc:
            return oauth_error(exc.problem.oauth_error, str(exc))
        return _json(issued.to_response(), 200, _NO_STORE)

    async def _actor(self, form: Mapping[str, str], caller: Credential) -> Credential:
        token = form.get("actor_token")
        if token is None:
            if "actor_token_type" in form:
                raise _OAuthError("invalid_request", "actor_token_type without actor_token")
            return caller
        if form.get("actor_token_type") != ACTOR_TOKEN_TYPE:
            raise _OAuthError("invalid_request", f"actor_token_type must be {ACTOR_TOKEN_TYPE}")
        try:
            return await anyio.to_thread.run_sync(self.runtime.credentials.authenticate, token)
        except AuthError:
            raise _OAuthError("invalid_request", "actor_token is not a valid credential") from None

    async def jwks(self, request: Request) -> Response:
        """``GET /.well-known/jwks.json``: Lictor's public token-signing keys."""
        return _json(self.services.key.jwks(), 200, {"Cache-Control": "max-age=300"})

    # -- delegation on decide -----------------------------------------------------------

    async def bind_delegation(
        self,
        request: Request,
        body: object,
        caller: Credential,
        source: str | None,
        record_rejection: RejectionRecorder,
    ) -> CallerIdentity:
        """Verify ``Lictor-Delegation`` and put its principal and chain into ``body``.

        Without the header the body's principal stays, as an unverified claim (the
        audit entry says ``principal_verified: false``).

        Raises:
            AuthError: the token is forged, expired, revoked or for another audience
                (401; audited as a rejected request).
            Forbidden: the token was issued to another agent, or its chain is no
                longer allowed (403; audited).
            HTTPProblem: the body names another principal or chain (400; audited).
        """
        user_agent = request.headers.get("user-agent")
        token = request.headers.get(DELEGATION_HEADER)
        if token is None:
            return CallerIdentity(None, user_agent)
        mapping = body if isinstance(body, dict) else None
        try:
            chain: DelegationChain = await anyio.to_thread.run_sync(
                self.services.exchange.verify, token.strip()
            )
            if chain.current_actor != caller.subject:
                raise DelegationRefused(
                    TokenProblem.ACTOR_NOT_AGENT,
                    f"the delegation token was issued to agent {chain.current_actor!r}, "
                    f"not to {caller.subject!r}",
                )
        except (TokenRejected, DelegationRefused) as exc:
            record_rejection(mapping, f"delegation token refused: {exc}", "", caller, source)
            raise
        if mapping is not None:
            claimed = mapping.get("principal")
            claimed_id = claimed.get("id") if isinstance(claimed, dict) else claimed
            delegation = mapping.get("delegation")
            if (claimed is not None and claimed_id != chain.principal.id) or (
                delegation is not None and delegation != list(chain.delegation)
            ):
                pointer = "/principal" if claimed is not None else "/delegation"
                problem = (
                    f"the body names principal {claimed_id!r} or a delegation chain that "
                    f"the delegation token (for {chain.principal.id!r}) does not"
                )
                record_rejection(mapping, problem, pointer, caller, source)
                raise HTTPProblem("principal-mismatch", problem, pointer=pointer)
            mapping["principal"] = chain.principal.to_json()
            mapping["delegation"] = list(chain.delegation)
        return CallerIdentity(chain, user_agent)

    # -- inventory ----------------------------------------------------------------------

    async def list_agents(self, request: Request, caller: Credential) -> Response:
        """``GET /v1/agents[?status=S]``: inventory records sorted by id."""
        status: AgentStatus | None = None
        for key, value in request.query_params.multi_items():
            if key != "status" or status is not None:
                raise HTTPProblem(
                    "invalid-request", "the only parameter is status, once", parameter=key
                )
            try:
                status = AgentStatus(value)
            except ValueError:
                raise HTTPProblem(
                    "invalid-request",
                    f"must be one of {', '.join(s.value for s in AgentStatus)}",
                    parameter="status",
                ) from None
        agents = await anyio.to_thread.run_sync(lambda: self.services.inventory.list(status=status))
        return _json({"agents": [a.to_json() for a in agents]})

    async def get_agent(self, request: Request, caller: Credential) -> Response:
        """``GET /v1/agents/{agent_id}``."""
        agent_id = request.path_params["agent_id"]
        agent = await anyio.to_thread.run_sync(self.runtime.agents.store.get, agent_id)
        if agent is None:
            raise NotFound("agent", agent_id)
        return _json(agent.to_json())

    async def put_agent(self, request: Request, caller: Credential) -> Response:
        """``PUT /v1/agents/{agent_id}``: create or replace; 201 when created, 409 if stale.

        A ``version`` in the body is the version the client read (0: "create only");
        without one the write is unconditional. Bookkeeping fields in the body are
        ignored: Lictor sets them.
        """
        from lictor.server.app import read_json  # the app module imports this one

        runtime = self.runtime
        agent_id = request.path_params["agent_id"]
        body = await read_json(request, runtime.settings.max_body_bytes)
        expected: int | None = None
        if isinstance(body, dict):
            if "id" not in body:
                body["id"] = agent_id  # the URL names the agent; an explicit null is invalid
            expected = _version(body.pop("version", None))
            for name in BOOKKEEPING_FIELDS:
                body.pop(name, None)  # Lictor's to set; a client may echo them back
        agent = parse_agent(body)
        if agent.id != agent_id:
            raise HTTPProblem(
                "invalid-request", "must match the agent id in the URL", pointer="/id"
            )
        source = request.client.host if request.client is not None else None
        change = await anyio.to_thread.run_sync(
            lambda: self.services.inventory.put(
                agent,
                expected_version=expected,
                actor=caller.subject,
                credential_id=caller.id,
                source=source,
            )
        )
        result = change.after if change.after is not None else agent
        return _json(result.to_json(), status=201 if change.before is None else 200)

    async def delete_agent(self, request: Request, caller: Credential) -> Response:
        """``DELETE /v1/agents/{agent_id}``: 204, or 404 if there was no such record."""
        agent_id = request.path_params["agent_id"]
        source = request.client.host if request.client is not None else None
        await anyio.to_thread.run_sync(
            lambda: self.services.inventory.delete(
                agent_id, actor=caller.subject, credential_id=caller.id, source=source
            )
        )
        return Response(status_code=204)


def _version(value: object) -> int | None:
    """The ``version`` a PUT names: a non-negative integer (``3.0`` is 3, as in JSON)."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise HTTPProblem(
            "invalid-request", "version must be a non-negative integer", pointer="/version"
        )
    return value
