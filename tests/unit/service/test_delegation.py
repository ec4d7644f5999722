"""Token exchange (RFC 8693): chains, scope narrowing and every refusal, with keys made here."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lictor.core.agents import Agent, AgentStatus
from lictor.core.requests import ActionRequest, AgentId, Principal
from lictor.errors import AuthError, ConfigError, Forbidden
from lictor.identity.jwks import StaticKeySet
from lictor.identity.tokens import JWTVerifier, SigningKey
from lictor.service.delegation import (
    DelegationChain,
    DelegationRefused,
    ExchangePolicy,
    TokenExchange,
    TokenProblem,
    TokenRejected,
    TrustedIssuer,
    bind_request,
    intersect_scopes,
    is_scope_covered,
    parse_scope,
    request_identity,
)
from lictor.service.memory import FixedClock, MemoryAgents
from lictor.service.ports import Credential, CredentialKind, Role

NOW = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
T0 = int(NOW.timestamp())
IDP = "https://idp.corp.example"
LICTOR = "https://lictor.corp.example"

AGENTS = [
    Agent(
        id=AgentId("planner"),
        allowed_tools=("send_email", "read_*", "payments.*", "search"),
    ),
    Agent(id=AgentId("mailer"), allowed_tools=("send_email", "read_inbox")),
    Agent(id=AgentId("reader"), allowed_tools=("read_inbox",)),
    Agent(id=AgentId("helper"), allowed_tools=("*",)),
    Agent(id=AgentId("frozen"), allowed_tools=("*",), status=AgentStatus.SUSPENDED),
    Agent(id=AgentId("toolless")),
]


def agent_credential(agent_id: str) -> Credential:
    return Credential(f"cred-{agent_id}", CredentialKind.AGENT, agent_id, Role.AGENT, NOW)


@dataclass
class World:
    exchange: TokenExchange
    idp: SigningKey
    lictor: SigningKey
    clock: FixedClock
    agents: MemoryAgents

    def person_token(self, **overrides: Any) -> str:
        claims: dict[str, Any] = {
            "iss": IDP,
            "sub": "emma-0001",
            "email": "emma@corp.example",
            "aud": "lictor-client",
            "iat": T0 - 10,
            "nbf": T0 - 10,
            "exp": T0 + 3600,
            "groups": ["sales", "emea"],
            "department": {"name": "Sales"},
            "scope": "openid email tool:send_email tool:read_* tool:search",
        }
        claims.update(overrides)
        return self.idp.sign({k: v for k, v in claims.items() if v is not None})


def make_world(**policy: Any) -> World:
    idp = SigningKey.generate("ES256")
    lictor = SigningKey.generate("EdDSA")
    clock = FixedClock(NOW)
    agents = MemoryAgents(AGENTS)
    settings: dict[str, Any] = {
        "issuer": LICTOR,
        "audiences": ("lictor", "https://tools.corp.example"),
        "trusted_issuers": (
            TrustedIssuer(
                issuer=IDP,
                audiences=frozenset({"lictor-client"}),
                subject_claim="email",
                attribute_claims={"department": "department.name", "subject_id": "sub"},
            ),
        ),
    }
    settings.update(policy)
    verifier = JWTVerifier({IDP: StaticKeySet.from_jwks(idp.jwks()), LICTOR: lictor})
    exchange = TokenExchange(
        ExchangePolicy(**settings), verifier=verifier, signer=lictor, agents=agents, clock=clock
    )
    return World(exchange, idp, lictor, clock, agents)


@pytest.fixture
def world() -> World:
    return make_world()


def claims_of(world: World, token: str) -> Mapping[str, Any]:
    return JWTVerifier({LICTOR: world.lictor}).verify(token).claims


# --- the first exchange -----------------------------------------------------------------------


def test_exchange_issues_token_for_the_person_with_agent_as_actor(world: World) -> None:
    issued = world.exchange.exchange(world.person_token(), agent_credential("planner"))
    chain = issued.chain
    assert chain.principal == Principal(
        "emma@corp.example",
        ("sales", "emea"),
        {"department": "Sales", "subject_id": "emma-0001"},
    )
    assert chain.actors == ("planner",)
    assert chain.delegation == ("emma@corp.example", "planner")
    assert chain.principal_issuer == IDP
    claims = claims_of(world, issued.access_token)
    assert claims["sub"] == "emma@corp.example"
    assert claims["act"] == {"sub": "planner"}
    assert claims["iss"] == LICTOR
    assert claims["aud"] == "lictor"
    assert claims["exp"] == T0 + 300
    assert claims["jti"] == chain.token_id
    assert issued.expires_at == datetime.fromtimestamp(T0 + 300, UTC)


def test_scope_is_person_scope_narrowed_by_agent_allowed_tools(world: World) -> None:
    issued = world.exchange.exchange(world.person_token(), agent_credential("planner"))
    # Person: send_email, read_*, search (openid/email are not tool scopes). Planner
    # adds payments.* which the person lacks: it is not granted.
    assert issued.scope == {"tool:send_email", "tool:read_*", "tool:search"}
    issued = world.exchange.exchange(world.person_token(), agent_credential("mailer"))
    assert issued.scope == {"tool:send_email", "tool:read_inbox"}


def test_requested_scope_narrows_further(world: World) -> None:
    issued = world.exchange.exchange(
        world.person_token(), agent_credential("planner"), ["tool:read_inbox"]
    )
    assert issued.scope == {"tool:read_inbox"}
    assert claims_of(world, issued.access_token)["scope"] == "tool:read_inbox"


def test_scp_list_claim_is_read_too(world: World) -> None:
    token = world.person_token(scope=None, scp=["tool:search"])
    issued = world.exchange.exchange(token, agent_credential("planner"))
    assert issued.scope == {"tool:search"}


def test_token_never_outlives_its_subject_token(world: World) -> None:
    issued = world.exchange.exchange(world.person_token(exp=T0 + 60), agent_credential("planner"))
    assert issued.expires_at == datetime.fromtimestamp(T0 + 60, UTC)
    assert issued.to_response()["expires_in"] == 60


def test_ttl_is_configurable() -> None:
    world = make_world(token_ttl_seconds=30)
    issued = world.exchange.exchange(world.person_token(), agent_credential("planner"))
    assert issued.expires_at == datetime.fromtimestamp(T0 + 30, UTC)


def test_response_follows_rfc_8693(world: World) -> None:
    issued = world.exchange.exchange(world.person_token(), agent_credential("mailer"))
    body = issued.to_response()
    assert body == {
        "access_token": issued.access_token,
        "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "tool:read_inbox tool:send_email",
    }


def test_requested_audience_is_used_when_allowed(world: World) -> None:
    issued = world.exchange.exchange(
        world.person_token(), agent_credential("planner"), audience="https://tools.corp.example"
    )
    assert claims_of(world, issued.access_token)["aud"] == "https://tools.corp.example"
    chain = world.exchange.verify(issued.access_token, audience="https://tools.corp.example")
    assert chain == issued.chain
    with pytest.raises(TokenRejected) as info:
        world.exchange.verify(issued.access_token, audience="lictor")
    assert info.value.problem is TokenProblem.WRONG_AUDIENCE


# --- sub-agents -------------------------------------------------------------------------------


def test_sub_agent_exchange_grows_chain_and_shrinks_scope(world: World) -> None:
    first = world.exchange.exchange(world.person_token(), agent_credential("planner"))
    second = world.exchange.exchange(first.access_token, agent_credential("mailer"))
    assert second.chain.actors == ("planner", "mailer")
    assert second.chain.delegation == ("emma@corp.example", "planner", "mailer")
    assert second.scope == {"tool:send_email", "tool:read_inbox"}
    assert second.scope < first.scope | {"tool:read_inbox"}
    assert second.chain.principal == first.chain.principal
    # RFC 8693 §4.1: the current actor is outermost, prior actors nested inside.
    assert claims_of(world, second.access_token)["act"] == {
        "sub": "mailer",
        "act": {"sub": "planner"},
    }
    third = world.exchange.exchange(second.access_token, agent_credential("reader"))
    assert third.chain.actors == ("planner", "mailer", "reader")
    assert third.scope == {"tool:read_inbox"}
    assert world.exchange.verify(third.access_token) == third.chain


def test_sub_agent_cannot_widen_scope(world: World) -> None:
    first = world.exchange.exchange(
        world.person_token(), agent_credential("planner"), ["tool:read_inbox"]
    )
    with pytest.raises(DelegationRefused) as info:
        world.exchange.exchange(
            first.access_token, agent_credential("helper"), ["tool:read_inbox", "tool:search"]
        )
    assert info.value.problem is TokenProblem.SCOPE_ESCALATION
    assert info.value.problem.oauth_error == "invalid_scope"
    assert "tool:search" in str(info.value)
    # Without a request, the sub-agent gets at most what the parent held.
    child = world.exchange.exchange(first.access_token, agent_credential("helper"))
    assert child.scope == {"tool:read_inbox"}


def test_person_cannot_be_asked_for_more_than_they_hold(world: World) -> None:
    with pytest.raises(DelegationRefused) as info:
        world.exchange.exchange(
            world.person_token(), agent_credential("planner"), ["tool:payments.transfer"]
        )
    assert info.value.problem is TokenProblem.SCOPE_ESCALATION


def test_depth_limit_refuses_beyond_max_depth() -> None:
    world = make_world(max_depth=2)
    first = world.exchange.exchange(world.person_token(), agent_credential("planner"))
    second = world.exchange.exchange(first.access_token, agent_credential("mailer"))
    with pytest.raises(DelegationRefused) as info:
        world.exchange.exchange(second.access_token, agent_credential("reader"))
    assert info.value.problem is TokenProblem.DEPTH_EXCEEDED


def test_default_depth_limit_is_four(world: World) -> None:
    token = world.person_token()
    for agent in ("helper", "planner", "mailer", "reader"):
        token = world.exchange.exchange(token, agent_credential(agent)).access_token
    world.agents.put(Agent(id=AgentId("fifth"), allowed_tools=("*",)))
    with pytest.raises(DelegationRefused) as info:
        world.exchange.exchange(token, agent_credential("fifth"))
    assert info.value.problem is TokenProblem.DEPTH_EXCEEDED


def test_verify_refuses_chain_deeper_than_configured(world: World) -> None:
    token = world.person_token()
    for agent in ("helper", "planner", "mailer"):
        token = world.exchange.exchange(token, agent_credential(agent)).access_token
    shallower = TokenExchange(
        ExchangePolicy(
            issuer=LICTOR,
            audiences=("lictor",),
            trusted_issuers=world.exchange.policy.trusted_issuers,
            max_depth=2,
        ),
        verifier=JWTVerifier({LICTOR: world.lictor}),
        signer=world.lictor,
        agents=world.agents,
        clock=world.clock,
    )
    with pytest.raises(DelegationRefused) as info:
        shallower.verify(token)
    assert info.value.problem is TokenProblem.DEPTH_EXCEEDED


def test_agent_cannot_reappear_in_its_own_chain(world: World) -> None:
    first = world.exchange.exchange(world.person_token(), agent_credential("planner"))
    second = world.exchange.exchange(first.access_token, agent_credential("helper"))
    with pytest.raises(DelegationRefused) as info:
        world.exchange.exchange(second.access_token, agent_credential("planner"))
    assert info.value.problem is TokenProblem.DELEGATION_LOOP


# --- may_act ----------------------------------------------------------------------------------


def test_may_act_allows_the_named_agent(world: World) -> None:
    token = world.person_token(may_act={"sub": "planner", "iss": LICTOR})
    assert world.exchange.exchange(token, agent_credential("planner")).chain.actors == ("planner",)


@pytest.mark.parametrize(
    "may_act", [{"sub": "mailer"}, {"sub": "planner", "iss": "https://other.example"}]
)
def test_may_act_refuses_any_other_actor(world: World, may_act: dict[str, str]) -> None:
    with pytest.raises(DelegationRefused) as info:
        world.exchange.exchange(world.person_token(may_act=may_act), agent_credential("planner"))
    assert info.value.problem is TokenProblem.MAY_ACT_MISMATCH


def test_may_act_must_be_an_object(world: World) -> None:
    with pytest.raises(TokenRejected) as info:
        world.exchange.exchange(world.person_token(may_act="planner"), agent_credential("planner"))
    assert info.value.problem is TokenProblem.MALFORMED


# --- the subject token's claims ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"exp": T0 - 31}, TokenProblem.EXPIRED),
        ({"exp": T0}, TokenProblem.EXPIRED),  # at exp + leeway ... see leeway test below
        ({"nbf": T0 + 31}, TokenProblem.NOT_YET_VALID),
        ({"iat": T0 + 31}, TokenProblem.NOT_YET_VALID),
        ({"aud": "another-app"}, TokenProblem.WRONG_AUDIENCE),
        ({"aud": ["a", "b"]}, TokenProblem.WRONG_AUDIENCE),
        ({"aud": None}, TokenProblem.WRONG_AUDIENCE),
        ({"exp": None}, TokenProblem.MALFORMED),
        ({"exp": "tomorrow"}, TokenProblem.MALFORMED),
        ({"exp": True}, TokenProblem.MALFORMED),
        ({"email": None}, TokenProblem.MALFORMED),
        ({"groups": [1, 2]}, TokenProblem.MALFORMED),
        ({"act": {"sub": "someone"}}, TokenProblem.MALFORMED),
    ],
)
def test_bad_subject_token_claims_are_rejected(
    world: World, overrides: dict[str, Any], problem: TokenProblem
) -> None:
    if overrides == {"exp": T0}:
        world.clock.advance(30)  # exactly exp + leeway: RFC 7519 says "on or after" fails
    with pytest.raises(TokenRejected) as info:
        world.exchange.exchange(world.person_token(**overrides), agent_credential("planner"))
    assert info.value.problem is problem
    assert isinstance(info.value, AuthError)
    assert not isinstance(info.value, Forbidden)


def test_small_clock_skew_is_tolerated(world: World) -> None:
    token = world.person_token(exp=T0 - 29, nbf=T0 + 29, iat=T0 + 29)
    assert world.exchange.exchange(token, agent_credential("planner")).chain.actors == ("planner",)


def test_group_claim_may_be_a_single_string(world: World) -> None:
    issued = world.exchange.exchange(world.person_token(groups="sales"), agent_credential("mailer"))
    assert issued.chain.principal.groups == ("sales",)


def test_untrusted_issuer_is_refused_even_with_a_trusted_key(world: World) -> None:
    # Signed by the trusted IdP key, but claiming another issuer: the verifier only
    # has keys per configured issuer, so it refuses before looking at any key.
    with pytest.raises(TokenRejected) as info:
        world.exchange.exchange(
            world.person_token(iss="https://evil.example"), agent_credential("planner")
        )
    assert info.value.problem is TokenProblem.UNKNOWN_ISSUER


def test_token_signed_by_another_key_is_refused(world: World) -> None:
    forger = SigningKey.generate("ES256")
    token = forger.sign({"iss": IDP, "email": "emma@corp.example", "exp": T0 + 60})
    with pytest.raises(TokenRejected) as info:
        world.exchange.exchange(token, agent_credential("planner"))
    assert info.value.problem is TokenProblem.UNKNOWN_KEY


# --- the actor --------------------------------------------------------------------------------


def test_actor_must_be_an_agent_credential(world: World) -> None:
    admin = Credential("cred-admin", CredentialKind.ADMIN, "root", Role.ADMIN, NOW)
    with pytest.raises(DelegationRefused) as info:
        world.exchange.exchange(world.person_token(), admin)
    assert info.value.problem is TokenProblem.ACTOR_NOT_AGENT


def test_revoked_actor_credential_is_rejected(world: World) -> None:
    revoked = Credential("c", CredentialKind.AGENT, "planner", Role.AGENT, NOW, revoked_at=NOW)
    with pytest.raises(TokenRejected):
        world.exchange.exchange(world.person_token(), revoked)


@pytest.mark.parametrize(
    ("agent", "problem"),
    [("ghost", TokenProblem.UNKNOWN_AGENT), ("frozen", TokenProblem.AGENT_INACTIVE)],
)
def test_actor_must_be_active_in_inventory(world: World, agent: str, problem: TokenProblem) -> None:
    with pytest.raises(DelegationRefused) as info:
        world.exchange.exchange(world.person_token(), agent_credential(agent))
    assert info.value.problem is problem


def test_agent_without_allowed_tools_gets_nothing(world: World) -> None:
    with pytest.raises(DelegationRefused) as info:
        world.exchange.exchange(world.person_token(), agent_credential("toolless"))
    assert info.value.problem is TokenProblem.INVALID_SCOPE


def test_unknown_audience_is_refused(world: World) -> None:
    with pytest.raises(DelegationRefused) as info:
        world.exchange.exchange(
            world.person_token(), agent_credential("planner"), audience="https://bank.example"
        )
    assert info.value.problem is TokenProblem.AUDIENCE_NOT_ALLOWED
    assert info.value.problem.oauth_error == "invalid_target"


@pytest.mark.parametrize("scope", [["openid"], ["tool:"], ["tool:a b"], [7]])
def test_malformed_requested_scope_is_refused(world: World, scope: list[Any]) -> None:
    with pytest.raises(DelegationRefused) as info:
        world.exchange.exchange(world.person_token(), agent_credential("planner"), scope)
    assert info.value.problem is TokenProblem.INVALID_SCOPE


# --- verify -----------------------------------------------------------------------------------


def test_verify_returns_the_chain(world: World) -> None:
    issued = world.exchange.exchange(world.person_token(), agent_credential("planner"))
    chain = world.exchange.verify(issued.access_token)
    assert chain == issued.chain
    assert chain.current_actor == "planner"
    assert chain.permits("read_inbox")
    assert chain.permits("send_email")
    assert not chain.permits("payments.transfer")
    assert chain.to_json()["delegation"] == ["emma@corp.example", "planner"]


def test_replay_of_an_expired_delegation_token_is_refused(world: World) -> None:
    issued = world.exchange.exchange(world.person_token(), agent_credential("planner"))
    world.clock.advance(300 + 30)
    with pytest.raises(TokenRejected) as info:
        world.exchange.verify(issued.access_token)
    assert info.value.problem is TokenProblem.EXPIRED
    with pytest.raises(TokenRejected) as info:
        world.exchange.exchange(issued.access_token, agent_credential("mailer"))
    assert info.value.problem is TokenProblem.EXPIRED


def test_verify_refuses_an_idp_token(world: World) -> None:
    with pytest.raises(TokenRejected) as info:
        world.exchange.verify(world.person_token())
    assert info.value.problem is TokenProblem.UNKNOWN_ISSUER


def test_suspending_an_agent_cuts_off_its_sub_agents(world: World) -> None:
    first = world.exchange.exchange(world.person_token(), agent_credential("planner"))
    second = world.exchange.exchange(first.access_token, agent_credential("mailer"))
    world.agents.put(Agent(id=AgentId("planner"), status=AgentStatus.QUARANTINED))
    with pytest.raises(DelegationRefused) as info:
        world.exchange.verify(second.access_token)
    assert info.value.problem is TokenProblem.AGENT_INACTIVE


def test_forged_lictor_token_is_refused(world: World) -> None:
    forger = SigningKey.generate("EdDSA")
    claims = claims_of(
        world,
        world.exchange.exchange(world.person_token(), agent_credential("planner")).access_token,
    )
    forged = forger.sign({**claims, "scope": "tool:*"})
    with pytest.raises(TokenRejected) as info:
        world.exchange.verify(forged)
    assert info.value.problem is TokenProblem.UNKNOWN_KEY


@pytest.mark.parametrize(
    "change",
    [
        {"act": None},
        {"act": {"sub": ""}},
        {"act": "planner"},
        {"scope": None},
        {"scope": "openid"},
        {"jti": None},
        {"principal": []},
        {"principal": {"groups": "x"}},
    ],
)
def test_malformed_lictor_token_claims_are_rejected(world: World, change: dict[str, Any]) -> None:
    claims = dict(
        claims_of(
            world,
            world.exchange.exchange(world.person_token(), agent_credential("planner")).access_token,
        )
    )
    claims.update(change)
    token = world.lictor.sign({k: v for k, v in claims.items() if v is not None})
    with pytest.raises(TokenRejected) as info:
        world.exchange.verify(token)
    assert info.value.problem is TokenProblem.MALFORMED


# --- mapping to the request -------------------------------------------------------------------


def test_bind_request_takes_principal_and_delegation_from_the_token(world: World) -> None:
    first = world.exchange.exchange(world.person_token(), agent_credential("planner"))
    chain = world.exchange.exchange(first.access_token, agent_credential("mailer")).chain
    claimed = ActionRequest(
        agent_id=AgentId("mailer"),
        tool="send_email",
        principal=Principal("ceo@corp.example", ("board",)),
        delegation=("ceo@corp.example", "mailer"),
    )
    bound = bind_request(claimed, chain)
    assert bound.principal == chain.principal
    assert bound.delegation == ("emma@corp.example", "planner", "mailer")
    assert request_identity(chain) == (chain.principal, bound.delegation)
    assert bound.tool == "send_email"


def test_bind_request_refuses_a_request_from_another_agent(world: World) -> None:
    chain = world.exchange.exchange(world.person_token(), agent_credential("planner")).chain
    with pytest.raises(DelegationRefused):
        bind_request(ActionRequest(agent_id=AgentId("mailer"), tool="x"), chain)


# --- scope algebra ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ({"tool:mail.*"}, {"tool:mail.send"}, {"tool:mail.send"}),
        ({"tool:*"}, {"tool:a", "tool:b.*"}, {"tool:a", "tool:b.*"}),
        ({"tool:a"}, {"tool:b"}, set()),
        ({"tool:mail.*"}, {"tool:*.send"}, set()),  # partial overlap: the safe side
        ({"tool:read_*"}, {"tool:read_inbox", "tool:send"}, {"tool:read_inbox"}),
    ],
)
def test_intersect_scopes(first: set[str], second: set[str], expected: set[str]) -> None:
    assert intersect_scopes(first, second) == expected
    assert intersect_scopes(second, first) == expected


def test_parse_scope_accepts_space_separated_string() -> None:
    assert parse_scope("tool:a tool:b.*") == {"tool:a", "tool:b.*"}
    with pytest.raises(DelegationRefused):
        parse_scope(["tool:x"] * 300)


_names = st.text(alphabet="ab.*?_", min_size=1, max_size=5)


@given(outer=_names, inner=_names, tool=st.text(alphabet="ab._", max_size=6))
def test_coverage_is_sound(outer: str, inner: str, tool: str) -> None:
    # If a scope is said to be covered, no tool it grants may fall outside the cover.
    if is_scope_covered({"tool:" + outer}, "tool:" + inner) and fnmatch.fnmatchcase(tool, inner):
        assert fnmatch.fnmatchcase(tool, outer)


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"issuer": ""},
        {"audiences": ()},
        {"token_ttl_seconds": 0},
        {"max_depth": 0},
        {"leeway_seconds": 3600},
        {"issuer": IDP},
    ],
)
def test_bad_exchange_policy_is_a_config_error(change: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        make_world(**change)


def test_trusted_issuer_needs_an_audience() -> None:
    with pytest.raises(ConfigError):
        TrustedIssuer(issuer=IDP, audiences=frozenset())


def test_duplicate_trusted_issuers_are_a_config_error() -> None:
    issuer = TrustedIssuer(issuer=IDP, audiences=frozenset({"x"}))
    with pytest.raises(ConfigError):
        ExchangePolicy(issuer=LICTOR, audiences=("lictor",), trusted_issuers=(issuer, issuer))


def test_problems_map_to_oauth_errors() -> None:
    assert TokenProblem.EXPIRED.oauth_error == "invalid_request"
    assert TokenProblem.MAY_ACT_MISMATCH.oauth_error == "invalid_request"
    assert TokenProblem.INVALID_SCOPE.oauth_error == "invalid_scope"


def test_chain_is_plain_data() -> None:
    chain = DelegationChain(
        principal=Principal("p"),
        actors=(AgentId("a"),),
        scope=frozenset({"tool:x"}),
        token_id="t",  # noqa: S106 - a token id, not a secret
        expires_at=NOW,
    )
    assert chain.delegation == ("p", "a")
    assert chain.to_json()["expires_at"] == "2026-11-25T14:00:00.000Z"
