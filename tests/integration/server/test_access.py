"""Who may call what: the role matrix is derived from ``auth.ENDPOINTS``, so it cannot drift."""

from __future__ import annotations

import httpx
import pytest

from lictor.server.app import create_app
from lictor.server.auth import ENDPOINTS, Authenticator, Endpoint
from lictor.server.runtime import Runtime
from lictor.service.ports import CredentialKind, Role
from server.support import Tokens, bearer, problem_type, slug

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

PATH_VALUES = {
    "decision_id": "01NOSUCHDECISION0000000000",
    "agent_id": "payments-bot",
    "review_id": "01NOSUCHREVIEW000000000000",
    "principal_id": "emma@corp.example",
}
PROTECTED = [e for e in ENDPOINTS if e.roles is not None]
FORBIDDEN = [(e, role) for e in PROTECTED for role in Role if role not in (e.roles or ())]


def url(endpoint: Endpoint) -> str:
    return endpoint.path.format(**PATH_VALUES)


def endpoint_id(endpoint: Endpoint) -> str:
    return f"{endpoint.method} {endpoint.path}"


def test_every_route_but_health_needs_a_credential() -> None:
    open_routes = {e.path for e in ENDPOINTS if e.roles is None}
    # Lictor's public token keys are public by design: verifiers fetch them anonymously.
    assert open_routes == {"/healthz", "/readyz", "/.well-known/jwks.json"}


async def test_role_matrix_from_the_one_table(client: httpx.AsyncClient, tokens: Tokens) -> None:
    """Every role a route does not list gets 403, no token gets 401, listed roles pass."""
    wrong: list[str] = []
    for endpoint in PROTECTED:
        allowed = endpoint.roles or frozenset()
        anonymous = await client.request(endpoint.method, url(endpoint))
        if anonymous.status_code != 401 or problem_type(anonymous) != slug("unauthorized"):
            wrong.append(f"{endpoint_id(endpoint)} without token: {anonymous.status_code}")
        elif not anonymous.headers["www-authenticate"].startswith("Bearer"):
            wrong.append(f"{endpoint_id(endpoint)} without token: no Bearer challenge")
        for role in Role:
            response = await client.request(
                endpoint.method, url(endpoint), headers=bearer(tokens.for_role(role))
            )
            if role in allowed:
                if response.status_code in (401, 403):
                    wrong.append(f"{endpoint_id(endpoint)} as {role}: {response.status_code}")
            elif response.status_code != 403 or problem_type(response) != slug("forbidden"):
                wrong.append(f"{endpoint_id(endpoint)} as {role}: {response.status_code}")
    assert wrong == []


def test_matrix_covers_every_forbidden_pair() -> None:
    # Guards the table itself: each route is closed to at least one role but openapi, and
    # reading one review (an agent reads its own; the handler checks whose it is).
    open_to_all = {"openapi", "get_review"}
    assert {e.name for e, _ in FORBIDDEN} == {e.name for e in PROTECTED} - open_to_all


@pytest.mark.parametrize(
    "header",
    [
        "Bearer lct_nosuchid_secret",
        "Bearer not-a-token",
        "Basic dXNlcjpwYXNz",
        "Bearer",
    ],
)
async def test_invalid_credentials_get_401(client: httpx.AsyncClient, header: str) -> None:
    response = await client.get("/v1/agents", headers={"Authorization": header})
    assert response.status_code == 401
    assert problem_type(response) == slug("unauthorized")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_wrong_secret_for_a_real_id_gets_401(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    prefix, credential_id, _ = tokens.admin.split("_", 2)
    forged = f"{prefix}_{credential_id}_{'A' * 43}"
    response = await client.get("/v1/agents", headers=bearer(forged))
    assert response.status_code == 401


async def test_revoked_token_gets_401_once_the_cache_window_passed(runtime: Runtime) -> None:
    now = [0.0]
    runtime.authenticator = Authenticator(runtime.credentials, monotonic=lambda: now[0])
    issued = runtime.credentials.issue(CredentialKind.ADMIN, "mallory", Role.AUDITOR)
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/v1/agents", headers=bearer(issued.token))).status_code == 200
        runtime.credentials.revoke(issued.credential.id)
        # Documented: a successful lookup is trusted for up to one second.
        assert (await client.get("/v1/agents", headers=bearer(issued.token))).status_code == 200
        now[0] += 1.01
        response = await client.get("/v1/agents", headers=bearer(issued.token))
        assert response.status_code == 401
        assert problem_type(response) == slug("unauthorized")


async def test_token_revoked_before_first_use_is_refused_at_once(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    issued = runtime.credentials.issue(CredentialKind.AGENT, "payments-bot", Role.AGENT)
    runtime.credentials.revoke(issued.credential.id)
    response = await client.post(
        "/v1/decide", json={"tool": "get_invoice"}, headers=bearer(issued.token)
    )
    assert response.status_code == 401


async def test_health_probes_are_open(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"store": True, "audit_writer": True}}


async def test_openapi_needs_any_valid_credential(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    assert (await client.get("/openapi.json")).status_code == 401
    for role in Role:
        response = await client.get("/openapi.json", headers=bearer(tokens.for_role(role)))
        assert response.status_code == 200
        assert response.json()["openapi"] == "3.1.0"


async def test_openapi_documents_the_same_roles_as_the_server(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    document = (await client.get("/openapi.json", headers=bearer(tokens.admin))).json()
    for endpoint in ENDPOINTS:
        operation = document["paths"][endpoint.path][endpoint.method.lower()]
        expected = sorted(r.value for r in endpoint.roles or ())
        assert operation["x-lictor-roles"] == expected
        assert ("security" in operation) == (endpoint.roles is None)
