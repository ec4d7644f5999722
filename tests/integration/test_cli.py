"""The ``lictor`` command: exit codes, streams and ``--json``, in process and as a process."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lictor.cli.main import main

FINANCE = Path(__file__).resolve().parents[2] / "examples" / "finance"
POLICIES = FINANCE / "policies"
MONDAY = "2026-01-05T10:00:00Z"

READ = {"agent_id": "payments-bot", "tool": "get_invoice", "arguments": {"id": "INV-7"}}
LARGE = {
    "agent_id": "payments-bot",
    "tool": "send_money",
    "arguments": {"amount": 25000, "to_account": "DE89370400440532013000"},
    "context": {"task": "Pay the 25,000 EUR milestone invoice"},
}
OUTSIDE = {"agent_id": "expense-helper", "tool": "delete_invoice"}


class Run:
    """Runs the CLI in process and returns exit code, stdout and stderr."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def __call__(self, *argv: str | Path) -> tuple[int, str, str]:
        code = main([str(arg) for arg in argv])
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    return Run(capsys)


@pytest.fixture
def finance(tmp_path: Path) -> Path:
    """A private copy of examples/finance (policies/ and agents.yaml beside it)."""
    return Path(shutil.copytree(FINANCE, tmp_path / "finance"))


def request_file(tmp_path: Path, data: Any, name: str = "request.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


# --- policy test / check ----------------------------------------------------------------


def test_policy_test_passes_on_the_finance_example(run: Run) -> None:
    code, out, _ = run("policy", "test", POLICIES)

    assert code == 0
    assert "0 failed" in out


def test_policy_test_json_reports_every_case(run: Run) -> None:
    code, out, _ = run("policy", "test", POLICIES, "--json")

    report = json.loads(out)
    assert code == 0
    assert report["failed"] == 0
    assert report["passed"] == len(report["results"]) > 0
    assert report["untested_rules"] == []
    assert all(r["passed"] and r["diff"] == [] for r in report["results"])


def break_first_expectation(finance: Path) -> None:
    tests = finance / "policies" / "tests" / "payments_test.yaml"
    text = tests.read_text(encoding="utf-8")
    broken = text.replace(
        "expect: {outcome: allow, rules: [finance/read]}",
        "expect: {outcome: deny, rules: [finance/read]}",
        1,
    )
    assert broken != text
    tests.write_text(broken, encoding="utf-8")


def test_policy_test_with_a_broken_expectation_fails_with_a_diff(run: Run, finance: Path) -> None:
    break_first_expectation(finance)

    code, out, _ = run("policy", "test", finance / "policies")

    assert code == 1
    assert "FAIL reading an invoice is allowed" in out
    assert "outcome: expected deny, got allow" in out
    assert "1 failed" in out


def test_policy_test_json_lists_the_diff_of_the_failing_case(run: Run, finance: Path) -> None:
    break_first_expectation(finance)

    code, out, _ = run("policy", "test", finance / "policies", "--json")

    report = json.loads(out)
    (failed,) = [r for r in report["results"] if not r["passed"]]
    assert code == 1
    assert report["failed"] == 1
    assert failed["outcome"] == "allow"
    assert "outcome: expected deny, got allow" in failed["diff"]
    assert failed["source"].endswith("payments_test.yaml:3")


def test_policy_test_without_cases_fails(run: Run, tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("rules: []\n", encoding="utf-8")

    code, _, err = run("policy", "test", tmp_path)

    assert code == 1
    assert "no test cases" in err


def test_policy_check_accepts_the_finance_example(run: Run) -> None:
    code, out, _ = run("policy", "check", POLICIES, "--json")

    summary = json.loads(out)
    assert code == 0
    assert summary["ok"] is True
    assert (summary["rules"], summary["agents"]) == (12, 3)
    assert summary["timezone"] == "Europe/Berlin"
    assert summary["version"].startswith("sha256:")


def write_broken_bundle(root: Path) -> Path:
    root.mkdir()
    (root / "good.yaml").write_text("rules:\n  - {id: ok, effect: allow}\n", encoding="utf-8")
    bad = root / "bad.yaml"
    bad.write_text(
        'rules:\n  - id: broken\n    effect: deny\n    when: "arguments.amount >"\n',
        encoding="utf-8",
    )
    return bad


def test_policy_check_with_a_cel_error_exits_3_naming_file_and_line(
    run: Run, tmp_path: Path
) -> None:
    bad = write_broken_bundle(tmp_path / "policies")

    code, out, err = run("policy", "check", tmp_path / "policies")

    assert code == 3
    assert out == ""
    assert f"{bad}:4" in err
    assert len(err.strip().splitlines()) == 1


def test_policy_check_json_error_has_file_line_and_rule(run: Run, tmp_path: Path) -> None:
    bad = write_broken_bundle(tmp_path / "policies")

    code, out, _ = run("policy", "check", tmp_path / "policies", "--json")

    result = json.loads(out)
    assert code == 3
    assert result["ok"] is False
    assert (result["error"]["source"], result["error"]["line"]) == (str(bad), 4)
    assert result["error"]["rule_id"] == "broken"


def test_policy_check_on_a_missing_directory_exits_3(run: Run, tmp_path: Path) -> None:
    code, _, err = run("policy", "check", tmp_path / "absent")

    assert code == 3
    assert "absent" in err


def test_policy_error_text_that_looks_like_markup_is_printed_verbatim(
    run: Run, tmp_path: Path
) -> None:
    (tmp_path / "p.yaml").write_text(
        "rules:\n  - {id: r, effect: deny, when: 'tool == [/x]'}\n", encoding="utf-8"
    )

    code, _, err = run("policy", "check", tmp_path)

    assert code == 3
    assert "[/x]" in err


# --- decide -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_data", "code", "outcome"),
    [(READ, 0, "allow"), (OUTSIDE, 10, "deny"), (LARGE, 11, "review")],
    ids=["allow", "deny", "review"],
)
def test_decide_exit_code_is_the_outcome(
    run: Run, tmp_path: Path, request_data: dict[str, Any], code: int, outcome: str
) -> None:
    path = request_file(tmp_path, request_data)

    result, out, _ = run("decide", path, "-p", POLICIES, "--now", MONDAY)

    assert result == code
    assert out.split()[0] == outcome.upper()


def test_decide_json_output_is_a_decision(run: Run, tmp_path: Path) -> None:
    path = request_file(tmp_path, LARGE)

    code, out, _ = run("decide", path, "-p", POLICIES, "--now", MONDAY, "--json")

    decision = json.loads(out)
    assert code == 11
    assert decision["outcome"] == "review"
    assert [r["rule"] for r in decision["reasons"]] == ["finance/large-transfer"]
    assert decision["decided_at"] == "2026-01-05T10:00:00.000Z"
    assert decision["policy_version"].startswith("sha256:")


def test_decide_lists_the_deciding_rules_for_people(run: Run, tmp_path: Path) -> None:
    path = request_file(tmp_path, OUTSIDE)

    _, out, _ = run("decide", path, "-p", POLICIES, "--now", MONDAY)

    assert "lictor/tool-not-in-inventory" in out


def test_decide_reads_stdin(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(READ)))

    code, out, _ = run("decide", "-", "-p", POLICIES, "--now", MONDAY, "--json")

    assert code == 0
    assert json.loads(out)["outcome"] == "allow"


def test_decide_uses_an_explicit_inventory(run: Run, tmp_path: Path) -> None:
    agents = tmp_path / "agents.yaml"
    agents.write_text("agents:\n  - {id: payments-bot, status: suspended}\n", encoding="utf-8")
    path = request_file(tmp_path, READ)

    code, out, _ = run("decide", path, "-p", POLICIES, "-a", agents, "--now", MONDAY, "--json")

    assert code == 10
    assert json.loads(out)["reasons"][0]["rule"] == "lictor/agent-suspended"


@pytest.mark.parametrize(
    "text",
    ['{"agent_id": "payments-bot", "tool": ', "not json", ""],
    ids=["truncated", "garbage", "empty"],
)
def test_decide_on_malformed_json_exits_3(run: Run, tmp_path: Path, text: str) -> None:
    path = request_file(tmp_path, text)

    code, out, err = run("decide", path, "-p", POLICIES, "--now", MONDAY)

    assert code == 3
    assert out == ""
    assert "not valid JSON" in err


@pytest.mark.parametrize(
    "data",
    [{"agent_id": "payments-bot"}, {"agent_id": "x", "tool": "t", "argumnets": {}}, []],
    ids=["missing-tool", "unknown-field", "not-an-object"],
)
def test_decide_on_an_invalid_request_exits_3(run: Run, tmp_path: Path, data: Any) -> None:
    path = request_file(tmp_path, data)

    code, out, err = run("decide", path, "-p", POLICIES, "--now", MONDAY)

    assert code == 3
    assert out == ""
    assert len(err.strip().splitlines()) == 1


def test_decide_with_a_missing_request_file_exits_3(run: Run, tmp_path: Path) -> None:
    code, _, _ = run("decide", tmp_path / "nope.json", "-p", POLICIES)

    assert code == 3


def test_decide_with_a_missing_policy_directory_exits_3(run: Run, tmp_path: Path) -> None:
    path = request_file(tmp_path, READ)

    code, _, _ = run("decide", path, "-p", tmp_path / "nope")

    assert code == 3


# --- replay -----------------------------------------------------------------------------


def test_replay_reports_bad_lines_and_still_decides_the_good_ones(run: Run, tmp_path: Path) -> None:
    lines = [
        json.dumps(READ),
        '{"agent_id": "payments-bot", "tool": "get_invoice"',
        json.dumps(LARGE),
        "",
        json.dumps({"agent_id": "payments-bot"}),
        json.dumps(OUTSIDE),
    ]
    path = request_file(tmp_path, "\n".join(lines) + "\n", "requests.jsonl")

    code, out, err = run("replay", path, "-p", POLICIES, "--now", MONDAY)

    decisions = [json.loads(line) for line in out.splitlines()]
    assert code == 3
    assert [d["outcome"] for d in decisions] == ["allow", "review", "deny"]
    assert "line 2:" in err
    assert "line 5:" in err
    assert "line 1:" not in err
    assert "line 4:" not in err


def test_replay_json_summary_counts_outcomes_and_bad_lines(run: Run, tmp_path: Path) -> None:
    lines = [json.dumps(READ), "{", json.dumps(READ), json.dumps(OUTSIDE)]
    path = request_file(tmp_path, "\n".join(lines), "requests.jsonl")

    code, out, err = run("replay", path, "-p", POLICIES, "--now", MONDAY, "--json")

    # Bad lines are also printed as text before the JSON summary.
    summary = json.loads(err[err.index("{") :])
    assert code == 3
    assert len(out.splitlines()) == 3
    assert summary["decided"] == 3
    assert summary["outcomes"] == {"allow": 2, "deny": 1}
    assert [bad["line"] for bad in summary["bad_lines"]] == [2]
    assert summary["rules"]["allow  finance/read"] == 2


def test_replay_of_only_good_lines_exits_0(run: Run, tmp_path: Path) -> None:
    path = request_file(tmp_path, json.dumps(READ) + "\n" + json.dumps(LARGE) + "\n", "r.jsonl")

    code, out, _ = run("replay", path, "-p", POLICIES, "--now", MONDAY)

    assert code == 0
    assert len(out.splitlines()) == 2


def test_replay_prints_a_bad_line_whose_error_looks_like_markup(run: Run, tmp_path: Path) -> None:
    path = request_file(tmp_path, json.dumps({**READ, "[/x]": 1}) + "\n", "r.jsonl")

    code, _, err = run("replay", path, "-p", POLICIES, "--now", MONDAY)

    assert code == 3
    assert "line 1:" in err


# --- usage ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [["frobnicate"], ["policy", "frobnicate"], ["decide", "--no-such-option"], ["policy", "check"]],
)
def test_usage_errors_exit_2(run: Run, argv: list[str]) -> None:
    code, _, err = run(*argv)

    assert code == 2
    assert "Usage" in err


# --- as a real process ------------------------------------------------------------------


def lictor(*argv: str | Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and module, fixed arguments
        [sys.executable, "-m", "lictor.cli.main", *map(str, argv)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_process_policy_test_passes_on_the_finance_example() -> None:
    result = lictor("policy", "test", POLICIES)

    assert result.returncode == 0, result.stderr
    assert "0 failed" in result.stdout


def test_process_decide_from_stdin_exits_with_the_outcome() -> None:
    result = lictor(
        "decide", "-", "-p", POLICIES, "--now", MONDAY, "--json", stdin=json.dumps(LARGE)
    )

    assert result.returncode == 11, result.stderr
    assert json.loads(result.stdout)["outcome"] == "review"


def test_process_decide_on_malformed_json_exits_3_with_one_line() -> None:
    result = lictor("decide", "-", "-p", POLICIES, stdin="{oops")

    assert result.returncode == 3
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1


def test_process_unknown_command_exits_2() -> None:
    assert lictor("frobnicate").returncode == 2
