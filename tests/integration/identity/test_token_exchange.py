"""Token exchange end to end against a real OpenID Connect issuer on loopback.

The issuer is a small ``http.server`` in a thread on 127.0.0.1, port 0: it serves
``/.well-known/openid-configuration`` and its JWKS, signs ID and access tokens with a
generated RSA and EC key, and rotates keys by ``kid``. Lictor fetches its keys over real
HTTP with httpx. Time never passes by itself: tokens and caches use a FixedClock.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from lictor.core.agents import Agent
from lictor.core.requests import ActionRequest, AgentId
from lictor.identity.jwks import RemoteJWKS
from lictor.identity.tokens import JWTVerifier, SigningKey
from lictor.service.delegation import (
    DelegationRefused,
    ExchangePolicy,
    TokenExchange,
    TokenProblem,
    TokenRejected,
    TrustedIssuer,
    bind_request,
)
from lictor.service.memory import FixedClock, MemoryAgents
from lictor.service.ports import Credential, CredentialKind, Role

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
T0 = int(NOW.timestamp())
LICTOR = "https://lictor.corp.example"
CLIENT_ID = "lictor-gateway"


@functools.cache
def _rsa_material(name: str) -> dict[str, Any]:
    """RSA key generation is slow; each test run makes each named key once."""
    return dict(RSAKey.generate_key(2048).as_dict(private=True))


def rsa_key(name: str, **parameters: str) -> RSAKey:
    return RSAKey.import_key({**_rsa_material(name), **parameters})


class Issuer:
    """A minimal OpenID Connect provider: discovery, JWKS, token signing, rotation."""

    def __init__(self) -> None:
        self.rsa = rsa_key("rsa-1", kid="rsa-1", alg="RS256", use="sig")
        self.ec = ECKey.generate_key("P-256", parameters={"kid": "ec-1", "alg": "ES256"})
        self.published: list[RSAKey | ECKey] = [self.rsa, self.ec]
        self.hits: Counter[str] = Counter()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.hits[self.path] += 1
                if self.path == "/.well-known/openid-configuration":
                    body: dict[str, Any] = {
                        "issuer": issuer.url,
                        "jwks_uri": f"{issuer.url}/jwks",
                        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                    }
                elif self.path == "/jwks":
                    body = {"keys": [dict(k.as_dict(private=False)) for k in issuer.published]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        self._running = True

    def stop(self) -> None:
        if self._running:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._running = False

    def token(self, key: RSAKey | ECKey | None = None, **claims: Any) -> str:
        key = key or self.rsa
        alg = "RS256" if isinstance(key, RSAKey) else "ES256"
        body: dict[str, Any] = {
            "iss": self.url,
            "sub": "00u1emma",
            "email": "emma@corp.example",
            "aud": CLIENT_ID,
            "iat": T0,
            "exp": T0 + 3600,
            "groups": ["sales"],
            "scope": "openid tool:send_email tool:read_* tool:crm.*",
        }
        body.update(claims)
        return jwt.encode({"alg": alg, "kid": key.kid}, body, key)

    def rotate(self) -> RSAKey:
        new = rsa_key("rsa-2", kid="rsa-2", alg="RS256")
        self.published.append(new)
        return new


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    running = Issuer()
    try:
        yield running
    finally:
        running.stop()


@dataclass
class Lictor:
    exchange: TokenExchange
    clock: FixedClock
    keys: RemoteJWKS
    agents: MemoryAgents


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    # One client for the module: building its TLS context takes longer than a test.
    with httpx.Client(timeout=5.0) as client:
        yield client


def build(issuer: Issuer, http: httpx.Client, clock: FixedClock | None = None) -> Lictor:
    clock = clock or FixedClock(NOW)
    keys = RemoteJWKS(issuer.url, client=http, clock=clock, ttl_seconds=300, min_refresh_seconds=30)
    signer = SigningKey.generate("ES256")
    agents = MemoryAgents(
        [
            Agent(id=AgentId("planner"), allowed_tools=("send_email", "read_*", "crm.*")),
            Agent(id=AgentId("mailer"), allowed_tools=("send_email", "read_inbox")),
            Agent(id=AgentId("reader"), allowed_tools=("read_inbox",)),
        ]
    )
    policy = ExchangePolicy(
        issuer=LICTOR,
        audiences=("lictor",),
        trusted_issuers=(
            TrustedIssuer(
                issuer=issuer.url, audiences=frozenset({CLIENT_ID}), subject_claim="email"
            ),
        ),
        max_depth=3,
    )
    exchange = TokenExchange(
        policy,
        verifier=JWTVerifier({issuer.url: keys, LICTOR: signer}),
        signer=signer,
        agents=agents,
        clock=clock,
    )
    return Lictor(exchange, clock, keys, agents)


def agent(agent_id: str) -> Credential:
    return Credential(f"c-{agent_id}", CredentialKind.AGENT, agent_id, Role.AGENT, NOW)


def problem_of(excinfo: pytest.ExceptionInfo[TokenRejected]) -> TokenProblem:
    return excinfo.value.problem


def test_exchange_of_rs256_id_token_and_es256_access_token(
    issuer: Issuer, http: httpx.Client
) -> None:
    lictor = build(issuer, http)
    issued = lictor.exchange.exchange(issuer.token(), agent("planner"))
    assert issued.chain.principal.id == "emma@corp.example"
    assert issued.chain.principal.groups == ("sales",)
    assert issued.chain.actors == ("planner",)
    assert issued.scope == {"tool:send_email", "tool:read_*", "tool:crm.*"}
    from_ec = lictor.exchange.exchange(issuer.token(issuer.ec), agent("mailer"))
    assert from_ec.scope == {"tool:send_email", "tool:read_inbox"}
    # Discovery and JWKS were fetched once, over real HTTP, then cached.
    assert issuer.hits == {"/.well-known/openid-configuration": 1, "/jwks": 1}
    chain = lictor.exchange.verify(issued.access_token)
    request = bind_request(ActionRequest(agent_id=AgentId("planner"), tool="crm.update"), chain)
    assert request.delegation == ("emma@corp.example", "planner")
    assert chain.permits("crm.update")
    assert not chain.permits("payments.transfer")


def test_sub_agent_narrowing_and_depth_limit(issuer: Issuer, http: httpx.Client) -> None:
    lictor = build(issuer, http)
    first = lictor.exchange.exchange(issuer.token(), agent("planner"))
    second = lictor.exchange.exchange(first.access_token, agent("mailer"))
    third = lictor.exchange.exchange(second.access_token, agent("reader"), ["tool:read_inbox"])
    assert [len(t.chain.actors) for t in (first, second, third)] == [1, 2, 3]
    assert first.scope > {"tool:send_email"}
    assert second.scope == {"tool:send_email", "tool:read_inbox"}
    assert third.scope == {"tool:read_inbox"}
    assert lictor.exchange.verify(third.access_token).delegation == (
        "emma@corp.example",
        "planner",
        "mailer",
        "reader",
    )
    with pytest.raises(DelegationRefused) as escalation:
        lictor.exchange.exchange(second.access_token, agent("reader"), ["tool:crm.*"])
    assert escalation.value.problem is TokenProblem.SCOPE_ESCALATION
    lictor.agents.put(Agent(id=AgentId("fourth"), allowed_tools=("*",)))
    with pytest.raises(DelegationRefused) as depth:
        lictor.exchange.exchange(third.access_token, agent("fourth"))
    assert depth.value.problem is TokenProblem.DEPTH_EXCEEDED


def test_expired_id_token_is_refused(issuer: Issuer, http: httpx.Client) -> None:
    lictor = build(issuer, http)
    with pytest.raises(TokenRejected) as info:
        lictor.exchange.exchange(issuer.token(iat=T0 - 7200, exp=T0 - 3600), agent("planner"))
    assert problem_of(info) is TokenProblem.EXPIRED


def test_token_for_another_audience_is_refused(issuer: Issuer, http: httpx.Client) -> None:
    lictor = build(issuer, http)
    with pytest.raises(TokenRejected) as info:
        lictor.exchange.exchange(issuer.token(aud="payroll-app"), agent("planner"))
    assert problem_of(info) is TokenProblem.WRONG_AUDIENCE


def test_token_signed_by_an_unknown_key_is_refused(issuer: Issuer, http: httpx.Client) -> None:
    lictor = build(issuer, http)
    stranger = rsa_key("stranger", kid="stranger")
    with pytest.raises(TokenRejected) as info:
        lictor.exchange.exchange(issuer.token(stranger), agent("planner"))
    assert problem_of(info) is TokenProblem.UNKNOWN_KEY
    impostor = rsa_key("impostor", kid="rsa-1")  # a published kid, another key
    with pytest.raises(TokenRejected) as info:
        lictor.exchange.exchange(issuer.token(impostor), agent("planner"))
    assert problem_of(info) is TokenProblem.BAD_SIGNATURE


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def test_alg_none_token_is_refused(issuer: Issuer, http: httpx.Client) -> None:
    lictor = build(issuer, http)
    claims = {"iss": issuer.url, "email": "emma@corp.example", "aud": CLIENT_ID, "exp": T0 + 60}
    with pytest.raises(TokenRejected) as info:
        lictor.exchange.exchange(_unsigned({"alg": "none"}, claims) + ".", agent("planner"))
    assert problem_of(info) is TokenProblem.ALG_NONE
    assert issuer.hits == {}  # refused before any key was fetched


def test_hs256_with_the_public_key_as_secret_is_refused(issuer: Issuer, http: httpx.Client) -> None:
    lictor = build(issuer, http)
    claims = {"iss": issuer.url, "email": "emma@corp.example", "aud": CLIENT_ID, "exp": T0 + 60}
    signing_input = _unsigned({"alg": "HS256", "kid": "rsa-1"}, claims)
    for secret in (issuer.rsa.as_pem(private=False), json.dumps(issuer.rsa.as_dict()).encode()):
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        with pytest.raises(TokenRejected) as info:
            lictor.exchange.exchange(f"{signing_input}.{_b64(mac)}", agent("planner"))
        assert problem_of(info) is TokenProblem.ALG_NOT_ALLOWED


def test_replay_of_an_expired_delegation_token_is_refused(
    issuer: Issuer, http: httpx.Client
) -> None:
    lictor = build(issuer, http)
    issued = lictor.exchange.exchange(issuer.token(), agent("planner"))
    assert lictor.exchange.verify(issued.access_token) == issued.chain
    lictor.clock.advance(300 + 30)  # the 5-minute lifetime plus the leeway
    with pytest.raises(TokenRejected) as info:
        lictor.exchange.verify(issued.access_token)
    assert problem_of(info) is TokenProblem.EXPIRED
    with pytest.raises(TokenRejected) as info:
        lictor.exchange.exchange(issued.access_token, agent("mailer"))
    assert problem_of(info) is TokenProblem.EXPIRED


def test_key_rotation_by_kid(issuer: Issuer, http: httpx.Client) -> None:
    lictor = build(issuer, http)
    assert lictor.exchange.exchange(issuer.token(), agent("planner")).chain.actors == ("planner",)
    lictor.clock.advance(31)  # past the refresh rate limit, well within the TTL
    new = issuer.rotate()
    issued = lictor.exchange.exchange(issuer.token(new, iat=T0 + 31), agent("planner"))
    assert issued.chain.actors == ("planner",)
    assert issuer.hits["/jwks"] == 2  # the unknown kid caused exactly one refresh
    # The old key is withdrawn; once the cache refreshes, its tokens are refused.
    issuer.published = [new, issuer.ec]
    lictor.clock.advance(300)
    with pytest.raises(TokenRejected) as info:
        lictor.exchange.exchange(issuer.token(iat=T0 + 331), agent("planner"))
    assert problem_of(info) is TokenProblem.UNKNOWN_KEY


def test_issuer_unreachable_with_cached_keys_still_works(
    issuer: Issuer, http: httpx.Client
) -> None:
    lictor = build(issuer, http)
    assert lictor.exchange.exchange(issuer.token(), agent("planner")).chain.actors == ("planner",)
    issuer.stop()
    lictor.clock.advance(600)  # past the TTL: a refresh is tried, fails, stale keys serve
    stale = lictor.exchange.exchange(issuer.token(iat=T0 + 600), agent("planner"))
    assert stale.chain.principal.id == "emma@corp.example"
    # A key it never saw cannot be looked up while the issuer is down: fail closed.
    with pytest.raises(TokenRejected) as info:
        lictor.exchange.exchange(issuer.token(issuer.rotate(), iat=T0 + 600), agent("planner"))
    assert problem_of(info) is TokenProblem.ISSUER_UNREACHABLE


def test_issuer_unreachable_without_cached_keys_fails_closed(
    issuer: Issuer, http: httpx.Client
) -> None:
    token = issuer.token()
    issuer.stop()
    lictor = build(issuer, http)
    with pytest.raises(TokenRejected) as info:
        lictor.exchange.exchange(token, agent("planner"))
    assert problem_of(info) is TokenProblem.ISSUER_UNREACHABLE
