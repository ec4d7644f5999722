"""``lictor policy history|diff|backtest|check`` and ``lictor agents review-access``.

The store is a real SQLite file written by a real Runtime (decisions, a second version).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lictor.cli.main import main
from lictor.core.agents import Agent
from lictor.server.runtime import Runtime
from lictor.service.documents import load_yaml
from lictor.service.memory import FixedClock
from lictor.service.policies import parse_inventory
from lictor.settings import Settings

FINANCE = Path(__file__).resolve().parents[2] / "examples" / "finance"


@dataclass
class Trail:
    store: str
    policies: Path
    agents: Path
    first: str
    second: str


def recent_office_hours() -> datetime:
    """A weekday at 10:00 UTC in the last week: inside finance's hours, inside --since 7d."""
    day = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0) - timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def trail(tmp_path: Path) -> Trail:
    finance = Path(shutil.copytree(FINANCE, tmp_path / "finance"))
    store = f"sqlite:///{tmp_path / 'data' / 'lictor.db'}"
    settings = Settings(
        data_dir=tmp_path / "data",
        store_url=store,
        policies=finance / "policies",
        agents=finance / "agents.yaml",
    )
    runtime = Runtime.open(settings, clock=FixedClock(recent_office_hours()))
    try:
        first = runtime.governor.policy.version
        for amount in (50, 12000, 20000):
            runtime.governor.decide(
                {
                    "agent_id": "payments-bot",
                    "tool": "send_money",
                    "arguments": {"amount": amount, "to_account": "DE89370400440532013000"},
                    "context": {"task": f"pay the invoice of {amount} EUR"},
                    "session_id": "s1",
                }
            )
        runtime.governor.decide({"agent_id": "expense-helper", "tool": "get_invoice"})
        files = dict(runtime.bundle.files)
        files["payments.yaml"] = files["payments.yaml"].replace('> 10000"', '> 15000"')
        second = runtime.lifecycle.propose_files(files, author="alice", message="raise").version
    finally:
        runtime.close()
    return Trail(store, finance / "policies", finance / "agents.yaml", first, second)


def test_history_lists_both_versions_and_marks_the_active_one(
    trail: Trail, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "policy", "history", "--store", trail.store, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["active"] == trail.second
    assert {v["version"]: v["active"] for v in data["versions"]} == {
        trail.first: False,
        trail.second: True,
    }
    code, out, _ = run(capsys, "policy", "history", "--store", trail.store)
    assert code == 0
    assert "alice" in out


def test_diff_between_stored_versions_and_directories(
    trail: Trail, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys,
        "policy",
        "diff",
        trail.first[7:19],
        trail.second[:20],
        "--store",
        trail.store,
        "--json",
    )
    assert code == 0, out
    data = json.loads(out)
    assert [c["id"] for c in data["changed"]] == ["finance/large-transfer"]
    assert set(data["changed"][0]["fields"]) == {"condition"}
    code, out, _ = run(
        capsys, "policy", "diff", trail.policies, trail.second[:20], "--store", trail.store
    )
    assert code == 0
    assert "finance/large-transfer" in out
    code, _, err = run(capsys, "policy", "diff", "ffff", trail.policies, "--store", trail.store)
    assert code == 3
    assert "not found" in err


def test_backtest_reports_flips_with_examples(
    trail: Trail, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    candidate = Path(shutil.copytree(trail.policies, tmp_path / "candidate"))
    payments = candidate / "payments.yaml"
    payments.write_text(payments.read_text().replace('> 10000"', '> 15000"'))
    code, out, _ = run(
        capsys,
        "policy",
        "backtest",
        candidate,
        "--store",
        trail.store,
        "--since",
        "7d",
        "--agents",
        trail.agents,
        "--json",
    )
    assert code == 0, out
    data = json.loads(out)
    assert data["replayed"] == 4, data
    assert data["by_direction"] == {"review->allow": 1}
    assert data["by_rule"] == {"review->allow finance/large-transfer": 1}
    assert len(data["examples"]["review->allow"]) == 1
    assert data["inexact"] == 0
    code, out, _ = run(
        capsys,
        "policy",
        "backtest",
        candidate,
        "--store",
        trail.store,
        "--agent",
        "expense-helper",
    )
    assert code == 0
    assert "replayed 1 decisions" in out
    code, _, err = run(
        capsys, "policy", "backtest", candidate, "--store", trail.store, "--since", "yesterday"
    )
    assert code == 3
    assert "--since" in err


def test_review_access_writes_an_inventory_file(
    trail: Trail, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "least-privilege.yaml"
    code, out, _ = run(
        capsys,
        "agents",
        "review-access",
        "--store",
        trail.store,
        "--days",
        "30",
        "--json",
        "--output",
        output,
    )
    assert code == 0, out
    data = {a["agent_id"]: a for a in json.loads(out)["agents"]}
    bot = data["payments-bot"]
    assert bot["used_tools"] == {"send_money": 1}
    assert set(bot["unused_tools"]) == {"get_invoice", "list_invoices", "get_balance", "payments.*"}
    assert bot["unused_destinations"]["payee_allowlist"] == [
        "GB29NWBK60161331926819",
        "FR1420041010050500013M02606",
    ]
    suggested: dict[str, Agent] = {
        a.id: a for a in parse_inventory(load_yaml(output.read_text(), "x.yaml"))
    }
    assert suggested["payments-bot"].allowed_tools == ("send_money",)
    assert suggested["payments-bot"].attributes["payee_allowlist"] == ["DE89370400440532013000"]
    assert suggested["old-batch-job"].allowed_tools == ("list_invoices",)  # idle: kept


def test_policy_check_lint_is_a_warning_unless_strict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "policies"
    bundle.mkdir()
    (bundle / "p.yaml").write_text(
        "rules:\n"
        "  - {id: block, effect: deny, match: {tools: [rm]}}\n"
        "  - {id: allow-rm, effect: allow, match: {tools: [rm]}}\n"
        "  - {id: odd, effect: deny, when: 'arguments.n > 5 && arguments.n < 3'}\n"
    )
    code, out, _ = run(capsys, "policy", "check", bundle)
    assert code == 0
    assert "[shadowed]" in out
    assert "[never-matches]" in out
    code, out, _ = run(capsys, "policy", "check", bundle, "--json", "--strict")
    assert code == 1
    findings = {(f["rule"], f["code"]) for f in json.loads(out)["findings"]}
    assert ("allow-rm", "shadowed") in findings
    assert ("odd", "never-matches") in findings
    assert (None, "no-tests") in findings
