"""``lictor serve`` as a real process: decide over HTTP, survive SIGKILL, keep every answer.

The invariant under test is ARCHITECTURE.md's step 6: an answer leaves only after its
audit record is durable. So after SIGKILL in the middle of concurrent traffic and a
restart, every decision id any client got a 200 for is in the trail, and the trail
still verifies (``lictor audit verify`` exits 0).

The CLI is the ``lictor`` script beside the running interpreter; ``LICTOR_TEST_CLI`` may
name another command line (split on spaces), e.g. for an installed build.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e.serving import Served, run_cli, serve, wait_healthy, wait_listening

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
FINANCE = REPO / "examples" / "finance"
START_TIMEOUT_SECONDS = 30.0
HAMMER_THREADS = 8
KILL_AFTER_SECONDS = 2.0  # or after this many answers, whichever comes first:
ANSWERS_BEFORE_KILL = 40
HAMMER_LIMIT_SECONDS = 30.0  # a hard stop for the client threads, whatever happens


@dataclass
class Site:
    root: Path
    config: Path
    admin_token: str = ""
    agent_token: str = ""
    servers: list[Served] = field(default_factory=list)

    def start(self) -> Served:
        server = serve(self.config, self.root / f"serve-{len(self.servers)}.log", self.root)
        self.servers.append(server)
        wait_listening(server, START_TIMEOUT_SECONDS)
        wait_healthy(server, START_TIMEOUT_SECONDS)
        return server

    def stop_all(self) -> None:
        for server in self.servers:
            if server.process.poll() is None:
                server.process.kill()
                server.process.wait(timeout=10)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    help_text = run_cli("--help", cwd=tmp_path).stdout
    if not ("serve" in help_text and "credentials" in help_text):
        reason = "`lictor serve` and `lictor credentials` are not registered in lictor.cli.main"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    config = tmp_path / "lictor.toml"
    config.write_text(
        "\n".join(
            [
                f'data_dir = "{(tmp_path / "data").as_posix()}"',
                f'policies = "{(FINANCE / "policies").as_posix()}"',
                f'agents = "{(FINANCE / "agents.yaml").as_posix()}"',
                'host = "127.0.0.1"',
                "port = 0",
                "checkpoint_every = 25",
                'log_level = "warning"',
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    made = Site(tmp_path, config)
    try:
        yield made
    finally:
        made.stop_all()


def init_and_issue(site: Site) -> None:
    init = run_cli("init", "--config", str(site.config), "--json", cwd=site.root)
    assert init.returncode == 0, init.stderr
    site.admin_token = json.loads(init.stdout)["token"]
    issued = run_cli(
        "credentials",
        "create",
        "--agent",
        "payments-bot",
        "--config",
        str(site.config),
        "--json",
        cwd=site.root,
    )
    assert issued.returncode == 0, issued.stderr
    site.agent_token = json.loads(issued.stdout)["token"]


class Hammer:
    """Threads that post decisions until told to stop, keeping every id answered with 200."""

    def __init__(self, url: str, token: str) -> None:
        self._url = url
        self._headers = {"Authorization": f"Bearer {token}"}
        self.answered: list[str] = []
        self._lock = threading.Lock()
        self.enough = threading.Event()
        self.stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True)
            for i in range(HAMMER_THREADS)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=15)
            assert not thread.is_alive()

    def _run(self, number: int) -> None:
        deadline = time.monotonic() + HAMMER_LIMIT_SECONDS
        body: dict[str, Any] = {"tool": "get_invoice", "session_id": f"hammer-{number}"}
        with httpx.Client(timeout=5) as client:
            while not self.stop.is_set() and time.monotonic() < deadline:
                try:
                    response = client.post(
                        f"{self._url}/v1/decide", json=body, headers=self._headers
                    )
                except httpx.TransportError:
                    continue  # the server is gone (or restarting): keep trying until stopped
                if response.status_code == 200:
                    with self._lock:
                        self.answered.append(response.json()["decision_id"])
                        if len(self.answered) >= ANSWERS_BEFORE_KILL:
                            self.enough.set()


def trail_decision_ids(url: str, token: str) -> set[str]:
    ids: set[str] = set()
    params: dict[str, str] = {"kind": "decision", "limit": "1000"}
    with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {token}"}) as client:
        while True:
            page = client.get(f"{url}/v1/audit", params=params).json()
            ids.update(r["payload"]["decision_id"] for r in page["records"])
            if page["next"] is None:
                return ids
            params["after"] = page["next"]


def test_answered_decisions_survive_sigkill_and_the_trail_verifies(site: Site) -> None:
    init_and_issue(site)
    first = site.start()

    agent = {"Authorization": f"Bearer {site.agent_token}"}
    allowed = httpx.post(f"{first.url}/v1/decide", json={"tool": "get_invoice"}, headers=agent)
    assert allowed.status_code == 200
    assert allowed.json()["outcome"] == "allow"
    denied = httpx.post(f"{first.url}/v1/decide", json={"tool": "drop_tables"}, headers=agent)
    assert denied.json()["outcome"] == "deny"

    hammer = Hammer(first.url, site.agent_token)
    hammer.start()
    hammer.enough.wait(timeout=KILL_AFTER_SECONDS)
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=10)
    hammer.stop.set()
    hammer.join()
    assert hammer.answered, "no decision was answered while the clients ran"
    answered = {allowed.json()["decision_id"], denied.json()["decision_id"], *hammer.answered}

    second = site.start()
    recorded = trail_decision_ids(second.url, site.admin_token)
    assert answered - recorded == set()

    second.process.send_signal(signal.SIGTERM)
    # uvicorn re-raises SIGTERM after its graceful shutdown, so that is the exit status.
    assert second.process.wait(timeout=20) in (0, -signal.SIGTERM), second.log_text()
    assert "Traceback" not in second.log_text()

    verify = run_cli("audit", "verify", "--config", str(site.config), "--json", cwd=site.root)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    report = json.loads(verify.stdout)
    assert report["ok"] is True
    assert report["checkpoints_checked"] >= 1
    # The graceful shutdown signed a final checkpoint over the whole trail.
    assert report["latest_checkpoint"]["tree_size"] == report["size"]
