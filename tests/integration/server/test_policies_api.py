"""Policy changes over real HTTP: upload, reload, refusal, and replicas converging.

Two Runtimes on one store stand for two replicas; the first serves HTTP on loopback.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from lictor.server.app import create_app
from lictor.server.runtime import Runtime
from lictor.service.lifecycle import backtest, decision_records
from lictor.service.memory import FixedClock
from lictor.service.ports import CredentialKind, Role
from lictor.settings import Settings
from server.support import FINANCE, bearer, problem_type, slug

CONVERGE_SECONDS = 5.0


@contextmanager
def serving(runtime: Runtime) -> Iterator[str]:
    """Serve the runtime's app with uvicorn on a free loopback port, in a thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:  # uvicorn offers a flag, not an event, across threads
            assert time.monotonic() < deadline
            assert thread.is_alive()
            time.sleep(0.005)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def wait_for(check: Callable[[], bool], seconds: float = CONVERGE_SECONDS) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(FINANCE / "policies", target)
    return target


@pytest.fixture
def replicas(
    settings: Settings, policy_dir: Path, clock: FixedClock, tmp_path: Path
) -> Iterator[tuple[Runtime, Runtime]]:
    first = settings.model_copy(
        update={"policies": policy_dir, "policy_poll_seconds": 0.1, "max_body_bytes": 1 << 20}
    )
    second = first.model_copy(update={"data_dir": tmp_path / "data2"})
    one = Runtime.open(first, clock=clock)
    try:
        two = Runtime.open(second, clock=clock)
        try:
            yield one, two
        finally:
            two.close()
    finally:
        one.close()


def files_of(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*.yaml"))}


def admin_token(runtime: Runtime) -> str:
    return runtime.credentials.issue(CredentialKind.ADMIN, "alice", Role.ADMIN).token


def decide_version(runtime: Runtime) -> str:
    decision = runtime.governor.decide({"agent_id": "payments-bot", "tool": "get_invoice"})
    return decision.policy_version


def test_upload_goes_live_on_every_replica_and_a_broken_one_changes_nothing(
    replicas: tuple[Runtime, Runtime], policy_dir: Path
) -> None:
    one, two = replicas
    start = one.governor.policy.version
    assert two.governor.policy.version == start
    token = admin_token(one)
    files = files_of(policy_dir)
    files["payments.yaml"] = files["payments.yaml"].replace("> 10000", "> 5000")
    with serving(one) as url, httpx.Client(base_url=url, headers=bearer(token)) as http:
        answer = http.post(
            "/v1/policies", json={"files": files, "message": "lower the review threshold"}
        )
        assert answer.status_code == 201, answer.text
        new = answer.json()["version"]
        assert answer.json()["author"] == "alice"
        assert one.governor.policy.version == new
        assert wait_for(lambda: two.governor.policy.version == new)
        assert decide_version(two) == new

        broken = dict(files)
        broken["payments.yaml"] = broken["payments.yaml"].replace("effect: review", "effect: hold")
        refused = http.post("/v1/policies", json={"files": broken})
        assert refused.status_code == 422
        assert problem_type(refused) == slug("invalid-request")
        assert "payments.yaml:" in refused.json()["detail"]
        assert refused.json()["pointer"] == "/files/payments.yaml"

        failing = dict(files)
        failing["payments.yaml"] = failing["payments.yaml"].replace("> 5000", "> 50000000")
        refused = http.post("/v1/policies", json={"files": failing})
        assert refused.status_code == 422
        assert "policy test" in refused.json()["detail"]

        bad_name = http.post("/v1/policies", json={"files": {"../x.yaml": "rules: []"}})
        assert bad_name.status_code == 422

        auditor = one.credentials.issue(CredentialKind.ADMIN, "audrey", Role.AUDITOR).token
        forbidden = http.post("/v1/policies", json={"files": files}, headers=bearer(auditor))
        assert forbidden.status_code == 403

        listed = http.get("/v1/policies").json()
        assert listed["version"] == new

    assert one.governor.policy.version == new
    assert two.governor.policy.version == new
    pointer = one.store.policies.active()
    assert pointer is not None
    assert pointer.digest == new
    assert {v.digest for v in one.store.policies.history()} == {start, new}


def test_reload_from_the_directory(replicas: tuple[Runtime, Runtime], policy_dir: Path) -> None:
    one, two = replicas
    start = one.governor.policy.version
    token = admin_token(one)
    payments = policy_dir / "payments.yaml"
    with serving(one) as url, httpx.Client(base_url=url, headers=bearer(token)) as http:
        payments.write_text(payments.read_text().replace("effect: review", "effect: hold"))
        refused = http.post("/v1/policies/reload")
        assert refused.status_code == 422
        assert str(payments.name) in refused.json()["detail"]
        assert one.governor.policy.version == start

        payments.write_text(payments.read_text().replace("effect: hold", "effect: review") + "\n")
        answer = http.post("/v1/policies/reload")
        assert answer.status_code == 200, answer.text
        new = answer.json()["version"]
        assert new != start
        assert wait_for(lambda: two.governor.policy.version == new)


def test_watch_reloads_a_changed_directory_and_refuses_a_broken_change(
    settings: Settings, policy_dir: Path, clock: FixedClock
) -> None:
    watched = settings.model_copy(update={"policies": policy_dir, "policy_watch": True})
    runtime = Runtime.open(watched, clock=clock)
    try:
        replication = runtime.replication
        assert replication is not None
        assert replication.watching.wait(5)
        start = runtime.governor.policy.version
        payments = policy_dir / "payments.yaml"
        text = payments.read_text()

        def changed_to(body: str) -> Callable[[], bool]:
            def check() -> bool:
                payments.write_text(body)  # rewritten until seen: the watch may start late
                return wait_for(lambda: runtime.governor.policy.version != start, 0.5)

            return check

        broken = text.replace("effect: review", "effect: hold")
        assert not wait_for(changed_to(broken), 2.0)
        assert runtime.governor.policy.version == start

        fixed = text.replace("> 10000", "> 9000")
        assert wait_for(changed_to(fixed))
        authors = {v.author for v in runtime.store.policies.history()}
        assert "lictor:watch" in authors
    finally:
        runtime.close()


def test_upload_body_is_validated(replicas: tuple[Runtime, Runtime]) -> None:
    one, _ = replicas
    token = admin_token(one)
    bodies: list[Any] = [
        [],
        {"files": {}},
        {"files": {"a.yaml": 1}},
        {"files": {"a.yaml": ""}, "extra": 1},
        {"files": {"a.yaml": ""}, "author": 5},
    ]
    with serving(one) as url, httpx.Client(base_url=url, headers=bearer(token)) as http:
        for body in bodies:
            answer = http.post("/v1/policies", json=body)
            assert answer.status_code == 422, body
            assert problem_type(answer) == slug("invalid-request")


def test_backtest_reads_the_trail_of_either_store(runtime: Runtime, clock: FixedClock) -> None:
    for tool in ("get_invoice", "get_balance", "delete_ledger"):
        runtime.governor.decide({"agent_id": "payments-bot", "tool": tool, "session_id": "s"})
        clock.advance(1)
    runtime.governor.decide({"agent_id": "expense-helper", "tool": "get_invoice"})
    since = clock.now() - timedelta(seconds=2)
    streamed = list(decision_records(runtime.store.audit, since=since))
    assert [p["tool"] for p in streamed] == ["get_balance", "delete_ledger", "get_invoice"]
    paged = list(decision_records(runtime.store.audit, agent_id="payments-bot", page_size=2))
    assert [p["tool"] for p in paged] == ["get_invoice", "get_balance", "delete_ledger"]
    assert len(list(decision_records(runtime.store.audit, limit=2))) == 2
    agents = {a.id: a for a in runtime.agents.list()}
    report = backtest(runtime.governor.policy, paged, agents)
    assert (report.replayed, report.flipped, report.inexact) == (3, 0, 0)
