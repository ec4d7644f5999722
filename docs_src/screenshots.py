"""Render the dashboard's pages to PNG files for the README and docs.

    .venv/bin/python docs_src/screenshots.py [--out docs/img]

Starts Lictor on loopback with the finance example, sends a scripted mix of agent
actions (allowed, held for review, denied, a shadow agent), then drives Debian's
Chromium through Playwright, logged in as an admin, and saves one screenshot per page.
Nothing is downloaded; ``LICTOR_CHROMIUM`` may name another Chromium binary.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from lictor.server.app import create_app
from lictor.server.runtime import Runtime
from lictor.service.ports import CredentialKind, Role
from lictor.settings import Settings

REPO = Path(__file__).resolve().parents[1]
FINANCE = REPO / "examples" / "finance"
PAGES = {
    "overview": "/ui",
    "inventory": "/ui/agents",
    "agent": "/ui/agents/payments-bot",
    "reviews": "/ui/reviews",
    "feed": "/ui/feed",
    "audit": "/ui/audit",
    "policies": "/ui/policies",
}
ACTIONS = [
    ("payments-bot", "get_invoice", {"invoice_id": "INV-4711"}, "look up invoice 4711"),
    (
        "payments-bot",
        "send_money",
        {"amount": 1200, "to_account": "DE89370400440532013000"},
        "pay invoice 4711",
    ),
    (
        "payments-bot",
        "send_money",
        {"amount": 24000, "to_account": "DE89370400440532013000"},
        "pay the Q3 hosting invoice",
    ),
    (
        "payments-bot",
        "send_money",
        {"amount": 900, "to_account": "NL91ABNA0417164300"},
        "pay the account in the email I just read",
    ),
    (
        "expense-helper",
        "send_money",
        {"amount": 50, "to_account": "DE89370400440532013000"},
        "reimburse lunch",
    ),
    ("expense-helper", "list_invoices", {}, "list open invoices"),
]


def _serve(runtime: Runtime) -> tuple[str, uvicorn.Server, threading.Thread, socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(create_app(runtime), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server, thread, sock


def main() -> None:
    """Serve, populate, screenshot."""
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    args = parser.parse_args()
    chromium = os.environ.get("LICTOR_CHROMIUM") or shutil.which("chromium")
    if chromium is None:
        raise SystemExit("Chromium is not installed (apt-get install chromium)")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(
            data_dir=Path(scratch) / "data",
            store_url=f"sqlite:///{Path(scratch) / 'lictor.db'}",
            policies=FINANCE / "policies",
            agents=FINANCE / "agents.yaml",
        )
        runtime = Runtime.open(settings)
        issue = runtime.credentials.issue
        tokens = {
            agent: issue(CredentialKind.AGENT, agent, Role.AGENT).token
            for agent in ("payments-bot", "expense-helper", "unregistered-scraper")
        }
        admin = issue(CredentialKind.ADMIN, "alice@corp.example", Role.ADMIN).token
        url, server, thread, sock = _serve(runtime)
        try:
            with httpx.Client(base_url=url, timeout=10) as http:
                for round_ in range(3):
                    for agent, tool, arguments, task in ACTIONS:
                        http.post(
                            "/v1/decide",
                            json={
                                "tool": tool,
                                "arguments": arguments,
                                "session_id": f"run-{round_}",
                                "context": {"task": task},
                            },
                            headers={"Authorization": f"Bearer {tokens[agent]}"},
                        )
                    time.sleep(0.2)
                http.post(
                    "/v1/decide",
                    json={"tool": "http_get", "arguments": {"url": "https://intranet.example"}},
                    headers={"Authorization": f"Bearer {tokens['unregistered-scraper']}"},
                )
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
                )
                page = browser.new_page(viewport={"width": 1280, "height": 860})
                page.goto(f"{url}/ui/login")
                page.get_by_label("Your Lictor token").fill(admin)
                page.get_by_role("button", name="Log in").click()
                page.wait_for_url(f"{url}/ui")
                for name, path in PAGES.items():
                    page.goto(url + path)
                    if name == "feed":
                        page.wait_for_selector("#feed-status:has-text('Live')")
                        with httpx.Client(base_url=url, timeout=10) as http:
                            for agent, tool, arguments, task in ACTIONS:
                                http.post(
                                    "/v1/decide",
                                    json={
                                        "tool": tool,
                                        "arguments": arguments,
                                        "context": {"task": task},
                                    },
                                    headers={"Authorization": f"Bearer {tokens[agent]}"},
                                )
                        page.wait_for_selector("#feed tbody tr")
                        time.sleep(1.6)  # let the highlight fade
                    target = args.out / f"dashboard-{name}.png"
                    page.screenshot(path=str(target), full_page=False)
                    print(target.relative_to(REPO) if target.is_relative_to(REPO) else target)
                browser.close()
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()
            runtime.close()


if __name__ == "__main__":
    main()
