"""The kill switch across replicas: two ``lictor serve`` processes on one PostgreSQL schema.

Quarantine an agent through one replica; the other must deny the agent's next request
within one second (measured, not assumed), and the shared audit trail must verify with
``lictor audit verify``. Emergency mode, turned on through one replica, must reach the
other within the same bound.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import psycopg
import pytest

from e2e.serving import Served, run_cli, serve, wait_listening
from lictor.server.runtime import initialize
from lictor.service.credentials import Credentials
from lictor.service.memory import SystemClock
from lictor.service.ports import CredentialKind, Role
from lictor.settings import load_settings
from lictor.store import open_store

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
FINANCE = REPO / "examples" / "finance"
POSTGRES_URL = os.environ.get(
    "LICTOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
PROPAGATION_BOUND_SECONDS = 1.0


def launch(root: Path, config: Path, name: str) -> Served:
    return serve(config, root / f"{name}.log", root)


@pytest.fixture
def store_url() -> Iterator[str]:
    """A PostgreSQL schema of this test's own, dropped at the end."""
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL at {POSTGRES_URL} is unreachable: {exc}".strip()
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (CI=true: PostgreSQL tests are mandatory)")
        pytest.skip(reason)
    schema = f"e2e_{secrets.token_hex(6)}"
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield f"{POSTGRES_URL}?options={quote(f'-csearch_path={schema}')}"
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def first_refusal(url: str, headers: dict[str, str], started: float) -> float:
    """Ask as the agent until refused (401 or deny); return the seconds since ``started``."""
    with httpx.Client(timeout=5, headers=headers) as client:
        while time.monotonic() - started < 10:
            response = client.post(f"{url}/v1/decide", json={"tool": "get_invoice"})
            if response.status_code == 401 or response.json()["outcome"] == "deny":
                return time.monotonic() - started
            time.sleep(0.01)
    pytest.fail("the other replica never refused the agent")


def test_quarantine_through_one_replica_is_enforced_by_the_other_within_a_second(
    tmp_path: Path, store_url: str
) -> None:
    config = tmp_path / "lictor.toml"
    config.write_text(
        "\n".join(
            [
                f'data_dir = "{(tmp_path / "data").as_posix()}"',
                f"store_url = {json.dumps(store_url)}",
                f'policies = "{(FINANCE / "policies").as_posix()}"',
                f'agents = "{(FINANCE / "agents.yaml").as_posix()}"',
                'host = "127.0.0.1"',
                "port = 0",
                'log_level = "warning"',
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    # Set-up in process (what `lictor init` and `lictor credentials create` do): the CLI's
    # start-up time is not what this test measures.
    settings = load_settings(config)
    initialized = initialize(settings)
    assert initialized.admin is not None
    admin = {"Authorization": f"Bearer {initialized.admin.token}"}
    store = open_store(settings.resolved_store_url)
    try:
        issue = Credentials(store.credentials, SystemClock()).issue
        agent_tokens = [
            issue(CredentialKind.AGENT, "expense-helper", Role.AGENT).token for _ in range(2)
        ]
        payments_token = issue(CredentialKind.AGENT, "payments-bot", Role.AGENT).token
    finally:
        store.close()
    agent = {"Authorization": f"Bearer {agent_tokens[0]}"}

    replicas = [launch(tmp_path, config, "a"), launch(tmp_path, config, "b")]
    try:
        for replica, name in zip(replicas, "ab", strict=True):
            wait_listening(replica, 60, name)
        a, b = replicas
        for replica in replicas:  # both allow, and both have the agent in their caches
            answer = httpx.post(f"{replica.url}/v1/decide", json={"tool": "get_invoice"},
                                headers=agent)  # fmt: skip
            assert answer.json()["outcome"] == "allow", answer.text

        quarantined = httpx.post(
            f"{a.url}/v1/agents/expense-helper/quarantine",
            json={"reason": "e2e: suspected prompt injection"},
            headers=admin,
        )
        started = time.monotonic()
        assert quarantined.status_code == 200, quarantined.text
        seconds = first_refusal(b.url, agent, started)
        print(f"\nquarantine through A, refused by B after {seconds * 1000:.0f} ms")  # noqa: T201
        assert seconds < PROPAGATION_BOUND_SECONDS

        # A credential B never cached is refused too: all the agent's credentials were revoked.
        fresh = {"Authorization": f"Bearer {agent_tokens[1]}"}
        refused = httpx.post(f"{b.url}/v1/decide", json={"tool": "get_invoice"}, headers=fresh)
        assert refused.status_code == 401  # every credential of the agent was revoked

        released = httpx.post(
            f"{b.url}/v1/agents/expense-helper/release", json={"reason": "cleared"}, headers=admin
        )
        assert released.json()["status"] == "active", released.text

        # Emergency mode through B; A denies every agent within the same bound.
        payments = {"Authorization": f"Bearer {payments_token}"}
        assert httpx.post(f"{a.url}/v1/decide", json={"tool": "get_invoice"},
                          headers=payments).json()["outcome"] == "allow"  # fmt: skip
        switched = httpx.post(
            f"{b.url}/v1/emergency", json={"on": True, "reason": "e2e drill"}, headers=admin
        )
        started = time.monotonic()
        assert switched.json()["on"] is True, switched.text
        seconds = first_refusal(a.url, payments, started)
        print(f"emergency through B, enforced by A after {seconds * 1000:.0f} ms")  # noqa: T201
        assert seconds < PROPAGATION_BOUND_SECONDS

        for replica in replicas:
            report = httpx.get(f"{replica.url}/v1/audit/verify", headers=admin, timeout=30)
            assert report.json()["ok"] is True, report.text
        for replica in replicas:
            replica.process.send_signal(signal.SIGTERM)
            assert replica.process.wait(timeout=20) in (0, -signal.SIGTERM), replica.log_text()
            assert "Traceback" not in replica.log_text()
    finally:
        for replica in replicas:
            if replica.process.poll() is None:
                replica.process.kill()
                replica.process.wait(timeout=10)

    verify = run_cli("audit", "verify", "--config", str(config), "--json", cwd=tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert json.loads(verify.stdout)["ok"] is True
