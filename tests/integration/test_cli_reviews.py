"""``lictor reviews``, ``lictor agents quarantine|release|timeline`` and ``lictor emergency``.

The review and kill-switch commands talk to a real server on loopback (uvicorn in a
thread), so the server's role checks are what the tests see; the timeline reads the store.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from lictor.cli.main import EXIT_FAILED, EXIT_INVALID, EXIT_USAGE, app
from lictor.sdk import LictorClient
from lictor.server.app import create_app
from lictor.server.runtime import Runtime
from lictor.service.memory import FixedClock
from lictor.service.ports import CredentialKind, Role
from lictor.settings import Settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
FINANCE = REPO / "examples" / "finance"
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
PAYEE = "DE89370400440532013000"


@dataclass
class Site:
    runtime: Runtime
    url: str
    store_url: str
    agent: str
    admin: str
    reviewer: str

    def cli(self, *args: str, token: str | None = None) -> tuple[int, Any, str]:
        env = {"LICTOR_URL": self.url}
        if token is not None:
            env["LICTOR_TOKEN"] = token
        result = CliRunner().invoke(app, list(args), env=env)
        try:
            data = json.loads(result.stdout)
        except json.JSONDecodeError:
            data = result.stdout
        return result.exit_code, data, result.stderr

    def decide(self, amount: int = 20_000, tool: str = "send_money") -> dict[str, Any]:
        with LictorClient(self.url, self.agent) as client:
            decision = client.decide(
                {
                    "tool": tool,
                    "arguments": {"amount": amount, "to_account": PAYEE},
                    "principal": {"id": "emma@corp.example", "groups": ["finance"]},
                    "delegation": ["emma@corp.example", "planner", "payments-bot"],
                    "context": {"task": f"pay {amount} to {PAYEE}"},
                }
            )
        return decision.to_json()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    store_url = f"sqlite:///{(tmp_path / 'lictor.db').as_posix()}"
    settings = Settings(
        data_dir=tmp_path / "data",
        store_url=store_url,
        policies=FINANCE / "policies",
        agents=FINANCE / "agents.yaml",
        checkpoint_seconds=3600,
    )
    runtime = Runtime.open(settings, clock=FixedClock(NOW))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.005)
        issue = runtime.credentials.issue
        yield Site(
            runtime=runtime,
            url=f"http://127.0.0.1:{sock.getsockname()[1]}",
            store_url=store_url,
            agent=issue(CredentialKind.AGENT, "payments-bot", Role.AGENT).token,
            admin=issue(CredentialKind.ADMIN, "alice", Role.ADMIN).token,
            reviewer=issue(CredentialKind.ADMIN, "rick", Role.REVIEWER).token,
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        runtime.close()


def test_reviewers_list_show_approve_and_deny(site: Site) -> None:
    held = site.decide()
    review_id = held["review_id"]
    code, listed, _ = site.cli("reviews", "list", "--json", token=site.reviewer)
    assert code == 0
    assert [r["review_id"] for r in listed] == [review_id]
    code, shown, _ = site.cli("reviews", "show", review_id, token=site.reviewer)
    assert code == 0
    assert "send_money" in shown
    assert "finance/large-transfer" in shown

    # The server refuses an admin's verdict: the role check is not the CLI's.
    code, _, err = site.cli("reviews", "approve", review_id, "--comment", "ok", token=site.admin)
    assert code == EXIT_FAILED
    assert "reviewer" in err
    code, _, err = site.cli("reviews", "approve", review_id, "--comment", "ok")
    assert code == EXIT_INVALID
    assert "--token" in err

    code, approved, _ = site.cli(
        "reviews", "approve", review_id, "--comment", "invoice checked", "--json",
        token=site.reviewer,
    )  # fmt: skip
    assert code == 0
    assert approved["status"] == "approved"
    assert approved["comment"] == "invoice checked"
    assert site.decide()["outcome"] == "allow"

    other = site.decide(30_000)["review_id"]
    code, denied, _ = site.cli("reviews", "deny", other, "-m", "no", "--json", token=site.reviewer)
    assert denied["status"] == "denied"
    code, everything, _ = site.cli("reviews", "list", "--status", "all", "--json", token=site.admin)
    assert {r["status"] for r in everything} == {"consumed", "denied"}


def test_quarantine_release_emergency_and_the_timeline(site: Site) -> None:
    held = site.decide()
    code, _, err = site.cli("agents", "quarantine", "--reason", "x", token=site.admin)
    assert code == EXIT_USAGE
    code, _, err = site.cli("agents", "quarantine", "payments-bot", token=site.admin)
    assert code == EXIT_USAGE
    assert "--reason" in err
    code, record, _ = site.cli(
        "agents", "quarantine", "payments-bot", "--reason", "odd transfers", "--json",
        token=site.admin,
    )  # fmt: skip
    assert code == 0, record
    assert record["status"] == "quarantined"
    code, _, _ = site.cli("agents", "quarantine", "ghost", "--reason", "x", token=site.admin)
    assert code == EXIT_INVALID  # not found
    code, _, _ = site.cli(
        "agents", "quarantine", "--principal", "emma@corp.example", "--reason", "phished",
        token=site.admin,
    )  # fmt: skip
    assert code == 0
    code, _, _ = site.cli("agents", "release", "--principal", "emma@corp.example", token=site.admin)
    assert code == 0
    code, record, _ = site.cli(
        "agents", "release", "payments-bot", "--reason", "ok", "--json", token=site.admin
    )
    assert record["status"] == "active"

    fresh = site.runtime.credentials.issue(CredentialKind.AGENT, "payments-bot", Role.AGENT)
    site.agent = fresh.token
    code, state, _ = site.cli("emergency", "on", "--reason", "drill", "--json", token=site.admin)
    assert code == 0
    assert state["on"] is True
    denied = site.decide(5)
    assert [r["rule"] for r in denied["reasons"]] == ["lictor/emergency-mode"]
    code, state, _ = site.cli("emergency", "off", "--reason", "done", "--json", token=site.admin)
    assert state["on"] is False
    code, _, _ = site.cli("emergency", "on", token=site.admin)
    assert code == EXIT_USAGE

    site.runtime.writer.checkpoint_now()  # everything submitted is committed
    code, timeline, _ = site.cli(
        "agents", "timeline", "payments-bot", "--store", site.store_url, "--json"
    )
    assert code == 0, timeline
    assert timeline["delegation_chains"] == [["emma@corp.example", "planner", "payments-bot"]]
    assert timeline["principals"] == ["emma@corp.example"]
    steps = [(e["kind"], e["record"].get("action") or e["record"].get("outcome"))
             for e in timeline["events"]]  # fmt: skip
    for expected in [
        ("decision", "review"),
        ("incident", "quarantined"),
        ("review", "cancelled"),
        ("incident", "quarantine_principal"),
        ("incident", "release_principal"),
        ("incident", "release"),
        ("decision", "deny"),
    ]:
        assert expected in steps, expected
    assert steps.index(("decision", "review")) < steps.index(("incident", "quarantined"))
    assert steps.index(("incident", "release")) < steps.index(("decision", "deny"))
    seqs = [e["seq"] for e in timeline["events"]]
    assert seqs == sorted(seqs)
    assert held["review_id"] in json.dumps(timeline)

    code, text, _ = site.cli("agents", "timeline", "payments-bot", "--store", site.store_url)
    assert code == 0
    assert "quarantined" in text
    code, later, _ = site.cli(
        "agents", "timeline", "payments-bot", "--store", site.store_url, "--json",
        "--since", "2030-01-01T00:00:00Z",
    )  # fmt: skip
    assert later["events"] == []
    code, _, _ = site.cli(
        "agents", "timeline", "payments-bot", "--store", site.store_url, "--since", "yesterday"
    )
    assert code == EXIT_USAGE
