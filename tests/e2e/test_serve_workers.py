"""``lictor serve --workers 2`` with ``audit_sync = "os"``: one chain, and SIGKILL loses nothing.

Two worker processes append to one SQLite trail; each group commit takes the database's
write lock, reads the head and appends after it, so the trail stays one sequence. With
``audit_sync = "os"`` a commit is in the operating system's cache when the answer
leaves: killing every process (SIGKILL to the whole group) must not lose an answered
decision, and ``lictor audit verify`` must pass afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from e2e.serving import run_cli, serve, wait_healthy, wait_listening

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
FINANCE = REPO / "examples" / "finance"
START_SECONDS = 60.0
CLIENTS = 8
DECISIONS_PER_CLIENT = 6


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=cwd, timeout=120)


def start(config: Path, log: Path, cwd: Path) -> tuple[subprocess.Popen[bytes], str]:
    server = serve(config, log, cwd)
    wait_listening(server, START_SECONDS)
    wait_healthy(server, START_SECONDS)
    return server.process, server.url


def test_two_workers_keep_one_chain_and_sigkill_loses_no_answer(tmp_path: Path) -> None:
    config = tmp_path / "lictor.toml"
    settings = [
        f'data_dir = "{(tmp_path / "data").as_posix()}"',
        f'policies = "{(FINANCE / "policies").as_posix()}"',
        f'agents = "{(FINANCE / "agents.yaml").as_posix()}"',
        "port = 0",
        "checkpoint_every = 10",
        'log_level = "warning"',
        'audit_sync = "os"',
    ]
    config.write_text("\n".join([*settings, "workers = 2"]) + "\n")
    init = cli("init", "--config", str(config), "--json", cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    admin = json.loads(init.stdout)["token"]
    issued = cli(
        "credentials",
        "create",
        "--agent",
        "payments-bot",
        "--config",
        str(config),
        "--json",
        cwd=tmp_path,
    )
    assert issued.returncode == 0, issued.stderr
    agent = {"Authorization": f"Bearer {json.loads(issued.stdout)['token']}"}

    process, url = start(config, tmp_path / "serve-0.log", tmp_path)
    answered: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        # One connection per decision, so the kernel spreads them over both workers.
        for _ in range(DECISIONS_PER_CLIENT):
            response = httpx.post(f"{url}/v1/decide", json={"tool": "get_invoice"}, headers=agent)
            assert response.status_code == 200
            with lock:
                answered.append(response.json()["decision_id"])

    try:
        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the parent and both workers, no shutdown
        process.wait(timeout=10)
    assert len(answered) == CLIENTS * DECISIONS_PER_CLIENT

    config.write_text("\n".join(settings) + "\n")  # one worker reads the trail back
    second, url = start(config, tmp_path / "serve-1.log", tmp_path)
    try:
        page = httpx.get(
            f"{url}/v1/audit",
            params={"kind": "decision", "limit": "1000"},
            headers={"Authorization": f"Bearer {admin}"},
        ).json()
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(timeout=30)
    recorded = {record["payload"]["decision_id"] for record in page["records"]}
    assert set(answered) <= recorded
    seqs = [record["seq"] for record in page["records"]]
    assert seqs == sorted(seqs)

    verify = cli("audit", "verify", "--config", str(config), "--json", cwd=tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    report = json.loads(verify.stdout)
    assert report["ok"] is True
    assert report["checkpoints_checked"] >= 1
