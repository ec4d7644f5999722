"""Identity over HTTP: /v1/token, the JWKS, Lictor-Delegation on decide, shadow agents.

A small OpenID provider runs on loopback (its JWKS over real HTTP); Lictor runs on a
real store (SQLite and PostgreSQL) behind an in-process ASGI transport.
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from lictor.core.agents import AgentStatus
from lictor.sdk.client import AsyncLictorClient
from lictor.server.app import create_app
from lictor.server.runtime import Runtime
from lictor.service.events import Event, EventKind
from lictor.service.memory import FixedClock
from lictor.service.ports import AuditQuery, CredentialKind, Role
from lictor.settings import Settings, TrustedIssuerSettings
from server.support import FINANCE, NOW, bearer, problem_type, slug

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105 - a URN
CLIENT_ID = "lictor-app"
LICTOR_ISSUER = "https://lictor.corp.example"
PAYEE = "DE89370400440532013000"


class Provider:
    """Serves one EC key as JWKS on 127.0.0.1 and signs people's ID tokens with it."""

    def __init__(self) -> None:
        self.key = ECKey.generate_key("P-256", parameters={"kid": "idp-1", "alg": "ES256"})
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps({"keys": [provider.key.as_dict(private=False)]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def id_token(self, email: str, groups: list[str], scope: str = "openid tool:*") -> str:
        claims = {
            "iss": self.url,
            "sub": email,
            "aud": CLIENT_ID,
            "iat": int(NOW.timestamp()),
            "exp": int(NOW.timestamp()) + 3600,
            "groups": groups,
            "scope": scope,
        }
        return jwt.encode({"alg": "ES256", "kid": "idp-1"}, claims, self.key)


@pytest.fixture
def provider() -> Iterator[Provider]:
    running = Provider()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def runtime(tmp_path: Path, store_url: str, provider: Provider) -> Iterator[Runtime]:
    settings = Settings(
        data_dir=tmp_path / "data",
        store_url=store_url,
        policies=FINANCE / "policies",
        agents=FINANCE / "agents.yaml",
        checkpoint_seconds=3600,
        token_issuer=LICTOR_ISSUER,
        trusted_issuers=[
            TrustedIssuerSettings(
                issuer=provider.url, audiences=[CLIENT_ID], jwks_url=f"{provider.url}/jwks"
            )
        ],
    )
    opened = Runtime.open(settings, clock=FixedClock(NOW))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(runtime), client=("10.1.2.3", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://lictor.test") as http:
        yield http


def agent_token(runtime: Runtime, agent_id: str) -> str:
    return runtime.credentials.issue(CredentialKind.AGENT, agent_id, Role.AGENT).token


def admin_token(runtime: Runtime) -> str:
    return runtime.credentials.issue(CredentialKind.ADMIN, "alice", Role.ADMIN).token


async def exchange(
    client: httpx.AsyncClient, credential: str, person: str, **extra: str
) -> httpx.Response:
    form = {"grant_type": GRANT, "subject_token": person, "subject_token_type": ID_TOKEN}
    return await client.post("/v1/token", data={**form, **extra}, headers=bearer(credential))


def transfer(amount: int = 1200) -> dict[str, Any]:
    return {
        "tool": "send_money",
        "arguments": {"amount": amount, "to_account": PAYEE},
        "context": {"task": f"pay {amount} to {PAYEE}"},
    }


async def delegated(
    client: httpx.AsyncClient, credential: str, token: str, body: dict[str, Any]
) -> httpx.Response:
    headers = {**bearer(credential), "Lictor-Delegation": token}
    return await client.post("/v1/decide", json=body, headers=headers)


def decision_records(runtime: Runtime) -> list[dict[str, Any]]:
    page = runtime.store.audit.query(AuditQuery(kind="decision"))
    return [dict(r.payload) for r in page.records]


async def test_exchange_then_decide_with_the_verified_chain(
    client: httpx.AsyncClient, runtime: Runtime, provider: Provider
) -> None:
    bot = agent_token(runtime, "payments-bot")
    issued = await exchange(client, bot, provider.id_token("emma@corp.example", ["finance"]))
    assert issued.status_code == 200, issued.text
    assert issued.headers["cache-control"] == "no-store"
    grant = issued.json()
    assert grant["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a URN
    assert "tool:send_money" in grant["scope"].split()

    # The token verifies against the open JWKS endpoint, as any other service would check it.
    jwks = await client.get("/.well-known/jwks.json")
    assert jwks.status_code == 200
    claims = jwt.decode(grant["access_token"], KeySet.import_key_set(jwks.json())).claims
    assert (claims["sub"], claims["act"], claims["iss"]) == (
        "emma@corp.example",
        {"sub": "payments-bot"},
        LICTOR_ISSUER,
    )

    response = await delegated(client, bot, grant["access_token"], transfer())
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "allow"
    record = decision_records(runtime)[-1]
    assert record["principal"] == {
        "id": "emma@corp.example",
        "groups": ["finance"],
        "attributes": {},
    }
    assert record["delegation"] == ["emma@corp.example", "payments-bot"]
    assert record["principal_verified"] is True
    assert record["delegation_token"]["principal_issuer"] == provider.url


async def test_the_person_must_be_allowed_too(
    client: httpx.AsyncClient, runtime: Runtime, provider: Provider
) -> None:
    bot = agent_token(runtime, "payments-bot")
    grant = (await exchange(client, bot, provider.id_token("dave@corp.example", ["sales"]))).json()

    paying = await delegated(client, bot, grant["access_token"], transfer())
    reading = await delegated(client, bot, grant["access_token"], {"tool": "get_invoice"})

    assert paying.json()["outcome"] == "deny"
    assert [r["rule"] for r in paying.json()["reasons"]] == ["finance/principal-not-in-finance"]
    assert reading.json()["outcome"] == "allow"


async def test_a_tool_outside_the_token_scope_is_denied(
    client: httpx.AsyncClient, runtime: Runtime, provider: Provider
) -> None:
    bot = agent_token(runtime, "payments-bot")
    person = provider.id_token("emma@corp.example", ["finance"])
    grant = (await exchange(client, bot, person, scope="tool:get_invoice")).json()
    assert grant["scope"] == "tool:get_invoice"

    response = await delegated(client, bot, grant["access_token"], transfer())

    body = response.json()
    assert body["outcome"] == "deny"
    assert [(r["rule"], r["code"]) for r in body["reasons"]] == [
        ("lictor/delegation-scope", "delegation")
    ]


async def test_a_body_naming_another_principal_is_refused_and_audited(
    client: httpx.AsyncClient, runtime: Runtime, provider: Provider
) -> None:
    bot = agent_token(runtime, "payments-bot")
    grant = (await exchange(client, bot, provider.id_token("dave@corp.example", ["sales"]))).json()
    forged = {**transfer(), "principal": {"id": "emma@corp.example", "groups": ["finance"]}}

    response = await delegated(client, bot, grant["access_token"], forged)

    assert response.status_code == 400
    assert problem_type(response) == slug("principal-mismatch")
    # The writer commits in order: once a later decision is durable, so is the rejection.
    later = await client.post("/v1/decide", json={"tool": "get_invoice"}, headers=bearer(bot))
    assert later.status_code == 200
    rejected = runtime.store.audit.query(AuditQuery(kind="rejected")).records
    assert rejected[-1].payload["pointer"] == "/principal"
    assert [r["tool"] for r in decision_records(runtime)] == ["get_invoice"]


async def test_another_agents_token_and_a_forged_token_are_refused(
    client: httpx.AsyncClient, runtime: Runtime, provider: Provider
) -> None:
    helper = agent_token(runtime, "expense-helper")
    bot = agent_token(runtime, "payments-bot")
    person = provider.id_token("emma@corp.example", ["finance"])
    grant = (await exchange(client, helper, person)).json()

    stolen = await delegated(client, bot, grant["access_token"], {"tool": "get_invoice"})
    forged = await delegated(client, bot, grant["access_token"][:-4] + "AAAA", {"tool": "x"})

    assert stolen.status_code == 403
    assert forged.status_code == 401
    assert decision_records(runtime) == []


async def test_without_a_token_the_body_principal_is_kept_but_unverified(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    bot = agent_token(runtime, "payments-bot")
    body = {"tool": "get_invoice", "principal": {"id": "emma@corp.example"}}

    response = await client.post("/v1/decide", json=body, headers=bearer(bot))

    assert response.json()["outcome"] == "allow"
    record = decision_records(runtime)[-1]
    assert record["principal"]["id"] == "emma@corp.example"
    assert record["principal_verified"] is False
    assert record["delegation_token"] is None


async def test_a_token_issued_before_the_agents_cut_off_is_revoked(
    client: httpx.AsyncClient, runtime: Runtime, provider: Provider
) -> None:
    bot = agent_token(runtime, "payments-bot")
    grant = (
        await exchange(client, bot, provider.id_token("emma@corp.example", ["finance"]))
    ).json()
    assert runtime.identity is not None
    runtime.identity.inventory.revoke_tokens(
        "payments-bot", after=runtime.clock.now(), actor="ir", reason="quarantine drill"
    )

    response = await delegated(client, bot, grant["access_token"], {"tool": "get_invoice"})

    assert response.status_code == 401
    assert "token revoked" in response.json()["detail"]


REFUSALS: list[tuple[dict[str, str], str]] = [
    ({"grant_type": "password"}, "unsupported_grant_type"),
    ({"subject_token": "not-a-jwt"}, "invalid_request"),
    ({"subject_token_type": "urn:x"}, "invalid_request"),
    ({"scope": "tool:send_money tool:delete_everything"}, "invalid_scope"),
    ({"audience": "elsewhere"}, "invalid_target"),
    (
        {
            "actor_token": "lct_nope_nope",
            "actor_token_type": "urn:lictor:params:oauth:token-type:credential",
        },
        "invalid_request",
    ),
    ({"actor_token_type": "urn:lictor:params:oauth:token-type:credential"}, "invalid_request"),
]


async def test_token_refusals_are_oauth_errors(
    client: httpx.AsyncClient, runtime: Runtime, provider: Provider
) -> None:
    bot = agent_token(runtime, "payments-bot")
    person = provider.id_token("emma@corp.example", ["finance"], scope="openid tool:send_money")
    answers = []
    for form, _ in REFUSALS:
        response = await exchange(client, bot, person, **form)
        assert response.status_code == 400, form
        assert response.headers["content-type"] == "application/json"
        assert response.headers["cache-control"] == "no-store"
        assert response.json()["error_description"]
        answers.append(response.json()["error"])
    assert answers == [error for _, error in REFUSALS]


async def test_a_repeated_form_parameter_and_a_json_body_are_refused(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    bot = agent_token(runtime, "payments-bot")
    repeated = await client.post(
        "/v1/token",
        content=f"grant_type={GRANT}&grant_type={GRANT}",
        headers={**bearer(bot), "Content-Type": "application/x-www-form-urlencoded"},
    )
    as_json = await client.post("/v1/token", json={"grant_type": GRANT}, headers=bearer(bot))
    assert [repeated.json()["error"], as_json.json()["error"]] == ["invalid_request"] * 2


async def test_shadow_agent_is_denied_recorded_and_raises_an_event(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    events: list[Event] = []
    runtime.events.subscribe(events.append)
    ghost = agent_token(runtime, "ghost-bot")
    headers = {**bearer(ghost), "User-Agent": "rogue-agent/0.1"}

    for tool in ("get_invoice", "send_money", "get_invoice"):
        response = await client.post("/v1/decide", json={"tool": tool}, headers=headers)
        assert response.json()["outcome"] == "deny"
        assert [r["rule"] for r in response.json()["reasons"]] == ["lictor/shadow-agent"]
    assert runtime.identity is not None
    runtime.identity.shadow.flush()

    admin = admin_token(runtime)
    listed = await client.get("/v1/agents?status=shadow", headers=bearer(admin))
    (record,) = listed.json()["agents"]
    assert record["id"] == "ghost-bot"
    assert record["status"] == AgentStatus.SHADOW.value
    assert record["shadow"]["count"] == 3
    assert record["shadow"]["tools"] == ["get_invoice", "send_money"]
    assert record["shadow"]["source"] == "10.1.2.3"
    assert record["shadow"]["user_agent"] == "rogue-agent/0.1"
    assert [e.kind for e in events] == [EventKind.SHADOW_AGENT_SEEN]
    assert events[0].agent_id == "ghost-bot"


async def test_put_with_a_stale_version_is_a_conflict(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    admin = admin_token(runtime)
    record = (await client.get("/v1/agents/payments-bot", headers=bearer(admin))).json()
    first = await client.put(
        "/v1/agents/payments-bot", json={**record, "name": "first"}, headers=bearer(admin)
    )
    assert first.status_code == 200
    assert first.json()["version"] == record["version"] + 1
    assert first.json()["updated_by"] == "alice"

    stale = await client.put(
        "/v1/agents/payments-bot", json={**record, "name": "second"}, headers=bearer(admin)
    )

    assert stale.status_code == 409
    assert problem_type(stale) == slug("conflict")
    current = (await client.get("/v1/agents/payments-bot", headers=bearer(admin))).json()
    assert current["name"] == "first"


async def test_the_sdk_sends_the_delegation_token(
    client: httpx.AsyncClient, runtime: Runtime, provider: Provider
) -> None:
    bot = agent_token(runtime, "payments-bot")
    grant = (
        await exchange(client, bot, provider.id_token("emma@corp.example", ["finance"]))
    ).json()
    sdk = AsyncLictorClient(token=bot, http=client)

    decision = await sdk.decide(transfer(), delegation_token=grant["access_token"])

    assert decision.outcome.value == "allow"
    record = decision_records(runtime)[-1]
    assert (record["principal_verified"], record["delegation"]) == (
        True,
        ["emma@corp.example", "payments-bot"],
    )
