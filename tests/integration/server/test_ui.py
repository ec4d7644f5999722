"""The dashboard over HTTP: log-in, roles, CSRF, security headers, pages with real data."""

from __future__ import annotations

import re

import anyio
import httpx
import pytest

from lictor.server.runtime import Runtime
from server.support import Tokens, bearer

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def log_in(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(
        "/ui/login",
        content=f"token={token}&next=/ui".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


def session(token: str) -> dict[str, str]:
    return {"Cookie": f"lictor_session={token}"}


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert match is not None, "no CSRF token on the page"
    return match.group(1)


async def test_pages_need_a_session(client: httpx.AsyncClient) -> None:
    response = await client.get("/ui/agents")
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login?next=/ui/agents"


async def test_login_sets_a_hardened_cookie(client: httpx.AsyncClient, tokens: Tokens) -> None:
    response = await log_in(client, tokens.admin)
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    for flag in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/ui"):
        assert flag in cookie
    page = await client.get("/ui", headers=session(tokens.admin))
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert "alice" in page.text


async def test_agent_and_wrong_tokens_cannot_log_in(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    refused = await log_in(client, tokens.agent)
    assert refused.status_code == 401
    assert "Agent credentials cannot open the dashboard" in refused.text
    assert "set-cookie" not in refused.headers
    wrong = await log_in(client, "lct_nope_nope")
    assert wrong.status_code == 401
    # A stolen agent token in the cookie does not open pages either.
    page = await client.get("/ui", headers=session(tokens.agent))
    assert page.status_code == 403


async def test_roles_bound_pages(client: httpx.AsyncClient, tokens: Tokens) -> None:
    reviewer = session(tokens.reviewer)
    assert (await client.get("/ui/audit", headers=reviewer)).status_code == 403
    assert (await client.get("/ui/agents", headers=reviewer)).status_code == 200
    auditor = session(tokens.auditor)
    assert (await client.get("/ui/audit", headers=auditor)).status_code == 200


async def test_forms_need_the_csrf_token_and_same_origin(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    cookies = session(tokens.auditor)
    form = {"Content-Type": "application/x-www-form-urlencoded", **cookies}
    page = await client.get("/ui/audit", headers=cookies)
    token = csrf_of(page.text)
    missing = await client.post("/ui/audit/verify", content=b"", headers=form)
    assert missing.status_code == 403
    forged = await client.post("/ui/audit/verify", content=b"csrf=" + b"0" * 64, headers=form)
    assert forged.status_code == 403
    cross = await client.post(
        "/ui/audit/verify",
        content=f"csrf={token}".encode(),
        headers={**form, "Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    ok = await client.post(
        "/ui/audit/verify",
        content=f"csrf={token}".encode(),
        headers={**form, "Origin": "http://lictor.test"},
    )
    assert ok.status_code == 303
    after = await client.get("/ui/audit", headers=cookies)
    assert "Chain, tree and checkpoint signatures verified" in after.text


async def test_pages_show_recorded_decisions(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime
) -> None:
    body = {
        "tool": "send_money",
        "arguments": {"amount": 20_000, "to_account": "DE89370400440532013000"},
        "context": {"task": "pay the <b>supplier</b> invoice"},
    }
    decided = await client.post("/v1/decide", json=body, headers=bearer(tokens.agent))
    decision_id = decided.json()["decision_id"]
    cookies = session(tokens.admin)
    overview = await client.get("/ui", headers=cookies)
    assert "review 1" in overview.text
    agent = await client.get("/ui/agents/payments-bot", headers=cookies)
    assert "finance/large-transfer" in agent.text
    # Task text from the agent is escaped, never markup.
    assert "pay the &lt;b&gt;supplier&lt;/b&gt; invoice" in agent.text
    assert "<b>supplier</b>" not in agent.text
    record = runtime.store.audit.find_decision(decision_id)
    assert record is not None
    detail = await client.get(f"/ui/audit/records/{record.seq}", headers=cookies)
    assert decision_id in detail.text
    assert record.record_hash in detail.text
    export = await client.get("/ui/audit/export?format=jsonl", headers=cookies)
    assert export.status_code == 200
    assert decision_id in export.text
    policies = await client.get("/ui/policies", headers=cookies)
    assert "finance/large-transfer" in policies.text
    # The bundle's own tests run for the page: the example's rules all pass.
    assert "passing" in policies.text
    assert "failing" not in policies.text


async def test_actions_are_bound_to_their_roles(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime
) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    reviewer = session(tokens.reviewer)
    token = csrf_of((await client.get("/ui/agents", headers=reviewer)).text)
    # A reviewer cannot quarantine; an admin cannot approve reviews.
    refused = await client.post(
        "/ui/agents/payments-bot/status",
        content=f"csrf={token}&action=quarantine&reason=x".encode(),
        headers={**form, **reviewer},
    )
    assert refused.status_code == 403
    admin = session(tokens.admin)
    admin_csrf = csrf_of((await client.get("/ui/agents", headers=admin)).text)
    refused = await client.post(
        "/ui/reviews/01ANYREVIEW",
        content=f"csrf={admin_csrf}&verdict=approve&comment=ok".encode(),
        headers={**form, **admin},
    )
    assert refused.status_code == 403
    # The admin can quarantine, with a reason; the inventory says so right away.
    done = await client.post(
        "/ui/agents/payments-bot/status",
        content=f"csrf={admin_csrf}&action=quarantine&reason=incident+42".encode(),
        headers={**form, **admin},
    )
    assert done.status_code == 303
    agent = runtime.store.agents.get("payments-bot")
    assert agent is not None
    assert agent.status.value == "quarantined"


async def test_admin_adopts_a_shadow_agent_and_rotates_a_credential(
    client: httpx.AsyncClient, tokens: Tokens, runtime: Runtime
) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    refused = await client.post(
        "/v1/decide", json={"tool": "http_get"}, headers=bearer(tokens.unknown_agent)
    )
    assert refused.json()["outcome"] == "deny"
    for _ in range(100):  # sightings are written by a background thread
        if runtime.store.agents.get("ghost-bot") is not None:
            break
        await anyio.sleep(0.05)
    admin = session(tokens.admin)
    page = await client.get("/ui/agents/ghost-bot", headers=admin)
    assert "Adopt this shadow agent" in page.text
    token = csrf_of(page.text)
    adopted = await client.post(
        "/ui/agents/ghost-bot/adopt",
        content=f"csrf={token}&owner=web-team&purpose=crawl+docs&tools=http_get&tier=low".encode(),
        headers={**form, **admin},
    )
    assert adopted.status_code == 303
    agent = runtime.store.agents.get("ghost-bot")
    assert agent is not None
    assert agent.status.value == "active"
    assert agent.owner == "web-team"
    assert agent.allowed_tools == ("http_get",)
    [credential] = runtime.store.credentials.list("ghost-bot")
    rotated = await client.post(
        f"/ui/agents/ghost-bot/credentials/{credential.id}",
        content=f"csrf={token}&action=rotate".encode(),
        headers={**form, **admin},
    )
    assert rotated.status_code == 200
    new_token = re.search(r'id="new-token" readonly value="([^"]+)"', rotated.text)
    assert new_token is not None
    # The old token stops working; the new one decides.
    old = await client.post(
        "/v1/decide", json={"tool": "http_get"}, headers=bearer(tokens.unknown_agent)
    )
    assert old.status_code == 401
    fresh = await client.post(
        "/v1/decide", json={"tool": "http_get"}, headers=bearer(new_token.group(1))
    )
    assert fresh.status_code == 200
    # Decided as a registered agent now (the finance rules grant it nothing), not a shadow.
    assert "lictor/shadow-agent" not in [r["rule"] for r in fresh.json()["reasons"]]
    assert "lictor/shadow-agent" in [r["rule"] for r in refused.json()["reasons"]]


async def test_reviewer_sees_where_each_argument_came_from(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    agent = bearer(tokens.agent)
    read = await client.post(
        "/v1/decide",
        json={"tool": "get_invoice", "arguments": {"id": "INV-7"}, "session_id": "s-1"},
        headers=agent,
    )
    assert read.json()["outcome"] == "allow"
    reported = await client.post(
        f"/v1/decisions/{read.json()['decision_id']}/result",
        json={"status": "ok", "output": {"amount": 24000, "payee": "DE89370400440532013000"}},
        headers=agent,
    )
    assert reported.status_code == 204
    held = await client.post(
        "/v1/decide",
        json={
            "tool": "send_money",
            "arguments": {"amount": 24000, "to_account": "DE89370400440532013000"},
            "context": {"task": "settle the open invoice"},
            "session_id": "s-1",
        },
        headers=agent,
    )
    assert held.json()["outcome"] == "review"
    page = await client.get("/ui/reviews", headers=session(tokens.reviewer))
    assert "Where the values came from" in page.text
    row = re.search(r"<code>to_account</code></td><td>(.*?)</td>", page.text)
    assert row is not None
    # The payee was in the invoice the agent read, and on the agent's allowlist.
    assert "tool_output:get_invoice" in row.group(1)
    assert "trusted" in row.group(1)
