"""The dashboard in a real browser: Debian's Chromium driven by Playwright.

The server is the real ASGI app on uvicorn, on loopback, over a SQLite store. The
browser is the system Chromium (``/usr/bin/chromium``, or ``LICTOR_TEST_CHROMIUM``);
no browser is downloaded. Without it the tests skip with the reason, except under
``CI=true``, where they fail: CI installs it (``scripts/test``).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from lictor.errors import LictorError
from lictor.server.app import create_app
from lictor.server.runtime import Runtime
from lictor.service.memory import FixedClock
from lictor.service.ports import CredentialKind, Role
from lictor.settings import Settings

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
FINANCE = REPO / "examples" / "finance"
PAYEE = "DE89370400440532013000"


def _chromium() -> str:
    path = os.environ.get("LICTOR_TEST_CHROMIUM") or shutil.which("chromium") or ""
    if not path:
        reason = "Chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + "; CI=true makes the browser tests mandatory")
        pytest.skip(reason)
    return path


@dataclass
class Site:
    url: str
    runtime: Runtime
    agent: str
    admin: str
    auditor: str
    reviewer: str

    def decide(self, amount: int) -> dict[str, Any]:
        body = {
            "tool": "send_money",
            "arguments": {"amount": amount, "to_account": PAYEE},
            "context": {"task": f"pay invoice 4711 ({amount} EUR)"},
        }
        response = httpx.post(
            f"{self.url}/v1/decide",
            json=body,
            headers={"Authorization": f"Bearer {self.agent}"},
            timeout=10,
        )
        response.raise_for_status()
        decision: dict[str, Any] = response.json()
        return decision


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    settings = Settings(
        data_dir=tmp_path / "data",
        store_url=f"sqlite:///{(tmp_path / 'lictor.db').as_posix()}",
        policies=FINANCE / "policies",
        agents=FINANCE / "agents.yaml",
        checkpoint_seconds=3600,
    )
    # A fixed Wednesday morning: the finance rules hold transfers outside business hours,
    # and these tests must not depend on when they run.
    runtime = Runtime.open(settings, clock=FixedClock(datetime(2026, 11, 25, 10, tzinfo=UTC)))
    issue = runtime.credentials.issue
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(runtime), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        yield Site(
            url=f"http://127.0.0.1:{port}",
            runtime=runtime,
            agent=issue(CredentialKind.AGENT, "payments-bot", Role.AGENT).token,
            admin=issue(CredentialKind.ADMIN, "alice", Role.ADMIN).token,
            auditor=issue(CredentialKind.ADMIN, "audrey", Role.AUDITOR).token,
            reviewer=issue(CredentialKind.ADMIN, "rick", Role.REVIEWER).token,
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        runtime.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for the module: starting it costs more than most tests here."""
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def browser_page(browser: Any, site: Site) -> Iterator[Any]:
    # A new context per test: no cookie, storage or cache is carried from one to the next.
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        yield page
    finally:
        context.close()


def log_in(page: Any, site: Site, token: str) -> None:
    page.goto(f"{site.url}/ui")
    assert "/ui/login" in page.url
    page.get_by_label("Your Lictor token").fill(token)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{site.url}/ui")


def test_log_in_and_see_the_overview(browser_page: Any, site: Site) -> None:
    from playwright.sync_api import expect

    site.decide(500)
    site.decide(20_000)
    page = browser_page
    page.goto(f"{site.url}/ui")
    page.get_by_label("Your Lictor token").fill("lct_wrong_token")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    log_in(page, site, site.admin)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator(".legend")).to_contain_text("allow 1")
    expect(page.locator(".legend")).to_contain_text("review 1")
    page.get_by_role("link", name="Inventory", exact=True).click()
    expect(page.get_by_role("link", name="payments-bot")).to_be_visible()
    page.get_by_role("link", name="payments-bot").click()
    expect(page.locator(".timeline")).to_contain_text("finance/large-transfer")
    expect(page.locator(".timeline")).to_contain_text("Why: pay invoice 4711 (20000 EUR)")


def test_live_feed_shows_a_new_decision(browser_page: Any, site: Site) -> None:
    from playwright.sync_api import expect

    page = browser_page
    log_in(page, site, site.admin)
    page.get_by_role("link", name="Live feed", exact=True).click()
    expect(page.locator("#feed-status")).to_contain_text("Live")
    decision = site.decide(20_000)
    row = page.locator(f'#feed tr[data-decision="{decision["decision_id"]}"]')
    expect(row).to_contain_text("review")
    expect(row).to_contain_text("finance/large-transfer")
    # Click through to the full record and its "why".
    row.get_by_role("link").click()
    expect(page.get_by_role("heading", name="Audit record")).to_be_visible()
    expect(page.locator("dl.facts")).to_contain_text("pay invoice 4711")


def test_auditor_verifies_the_chain_from_the_audit_page(browser_page: Any, site: Site) -> None:
    from playwright.sync_api import expect

    site.decide(500)
    page = browser_page
    log_in(page, site, site.auditor)
    page.get_by_role("link", name="Audit", exact=True).click()
    page.get_by_role("button", name="Verify now").click()
    expect(page.get_by_role("status")).to_contain_text(
        "Chain, tree and checkpoint signatures verified"
    )


def test_approving_a_review_unblocks_the_waiting_agent_call(browser_page: Any, site: Site) -> None:
    from playwright.sync_api import expect

    from lictor.sdk import LictorClient, guard

    ran: list[int] = []
    outcome: list[object] = []
    with LictorClient(site.url, site.agent) as client:

        @guard(client, review_timeout_seconds=30)
        def send_money(amount: int, to_account: str) -> str:
            ran.append(amount)
            return f"sent {amount}"

        def agent() -> None:
            try:
                outcome.append(send_money(20_000, PAYEE))
            except LictorError as exc:  # the assertion below shows what it was
                outcome.append(exc)

        waiting = threading.Thread(target=agent)
        waiting.start()
        page = browser_page
        log_in(page, site, site.reviewer)
        page.get_by_role("link", name="Reviews", exact=True).click()
        review = page.get_by_role("article", name="Review of send_money by payments-bot")
        expect(review).to_contain_text("finance/large-transfer")
        assert ran == []  # held: nothing ran while the review is open
        review.get_by_label("Comment (recorded)").fill("invoice 4711 checked with the supplier")
        review.get_by_role("button", name="Approve once").click()
        expect(page.get_by_role("status")).to_contain_text("approved")
        waiting.join(timeout=30)
    assert outcome == ["sent 20000"]
    assert ran == [20_000]


def test_quarantine_from_the_agent_page_stops_the_next_call(browser_page: Any, site: Site) -> None:
    from playwright.sync_api import expect

    assert site.decide(500)["outcome"] == "allow"
    page = browser_page
    log_in(page, site, site.admin)
    page.goto(f"{site.url}/ui/agents/payments-bot")
    page.get_by_label("Reason (recorded)").fill("exfiltration suspected, incident 42")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Quarantine").click()
    expect(page.locator("dl.facts")).to_contain_text("quarantined")
    response = httpx.post(
        f"{site.url}/v1/decide",
        json={"tool": "send_money", "arguments": {"amount": 500, "to_account": PAYEE}},
        headers={"Authorization": f"Bearer {site.agent}"},
        timeout=10,
    )
    # Its credentials are revoked with the quarantine: the call never gets an allow.
    assert response.status_code == 401 or response.json()["outcome"] == "deny"
