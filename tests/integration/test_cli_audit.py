"""``lictor audit`` against a real SQLite store written by the AuditWriter.

Tampering is done the way an attacker with database access would: raw SQL on the file.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]  # no stubs shipped
from ocsf_json_schema import (  # type: ignore[import-untyped]  # no stubs shipped
    OcsfJsonSchemaEmbedded,
    get_ocsf_schema,
)
from typer.testing import CliRunner

from lictor.cli.audit import audit_app
from lictor.core.decisions import Decision, Outcome, Reason, ResultReport, ResultStatus
from lictor.core.requests import parse_request
from lictor.identity.keys import CheckpointSigner, generate_key_file
from lictor.service.audit_writer import AuditWriter
from lictor.service.exports import OCSF_PROFILES, OCSF_VERSION
from lictor.service.memory import FixedClock
from lictor.service.records import decision_entry, result_entry
from lictor.store import open_store

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 25, 14, 0, 0, tzinfo=UTC)
DECISIONS = 12


@dataclass
class Site:
    data_dir: Path
    signer: CheckpointSigner

    @property
    def db(self) -> Path:
        return self.data_dir / "lictor.db"

    def sql(self, statement: str, *params: object) -> None:
        with sqlite3.connect(self.db) as connection:
            connection.execute(statement, params)


@cache
def ocsf_validator() -> Any:
    schema = OcsfJsonSchemaEmbedded(get_ocsf_schema(version=OCSF_VERSION))
    return Draft202012Validator(schema.get_class_schema("api_activity", list(OCSF_PROFILES)))


def decision_payload(i: int) -> dict[str, Any]:
    request = parse_request(
        {
            "agent_id": "mail-assistant" if i % 2 == 0 else "planner",
            "principal": {"id": "emma@corp.example", "groups": ["sales"]},
            "delegation": ["emma@corp.example", "mail-assistant"],
            "session_id": "run-42",
            "tool": "send_email",
            "arguments": {"n": i},
            "context": {"ticket": "SALES-1"},
        }
    )
    outcome = [Outcome.ALLOW, Outcome.DENY, Outcome.REVIEW][i % 3]
    decision = Decision(
        decision_id=f"d{i}",
        outcome=outcome,
        reasons=(Reason("mail/rule", outcome, "because"),),
        policy_version="sha256:abc",
        decided_at=START + timedelta(minutes=i),
        review_id="rev" if outcome is Outcome.REVIEW else None,
    )
    return decision_entry(request, decision)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Site:
    """A data dir with a key and a trail of decisions and results, checkpointed by the writer."""
    monkeypatch.chdir(tmp_path)  # no stray lictor.toml
    for name in [n for n in os.environ if n.startswith("LICTOR_")]:
        monkeypatch.delenv(name)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    signer = generate_key_file(data_dir / "checkpoint-key.pem")
    store = open_store(f"sqlite:///{data_dir / 'lictor.db'}")
    store.migrate()
    writer = AuditWriter(store.audit, FixedClock(START), signer=signer, checkpoint_every=5)
    writer.start()
    try:
        for i in range(DECISIONS):
            writer.append(decision_payload(i))
            if i % 3 == 0:
                report = ResultReport(f"d{i}", ResultStatus.OK, output="sent")
                writer.append(result_entry(report, at=START + timedelta(minutes=i, seconds=30)))
    finally:
        writer.close()
        store.close()
    return Site(data_dir, signer)


def run(*args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(audit_app, list(args), input=stdin)


def test_intact_trail_verifies(site: Site) -> None:
    result = run("verify", "--data-dir", str(site.data_dir))
    assert result.exit_code == 0, result.output + result.stderr
    assert f"ok {DECISIONS + 4} records verified" in result.stdout
    assert "root" in result.stdout
    assert "signatures verified" in result.stdout


def test_verify_json_reports_size_root_and_checkpoints(site: Site) -> None:
    result = run("verify", "--data-dir", str(site.data_dir), "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["size"] == DECISIONS + 4
    assert report["checkpoints_checked"] == report["checkpoints_total"] >= 3
    assert len(report["root_hash"]) == 64
    assert report["latest_checkpoint"]["tree_size"] == DECISIONS + 4


def test_edited_row_fails_and_names_the_record(site: Site) -> None:
    site.sql(
        "UPDATE audit_records SET payload = replace(payload, '\"deny\"', '\"allow\"') "
        "WHERE decision_id = 'd4'"
    )
    result = run("verify", "--data-dir", str(site.data_dir))
    assert result.exit_code == 1
    assert "TAMPERED" in result.stdout
    assert "first bad record: seq 6 (decision d4)" in result.stderr

    as_json = json.loads(run("verify", "--data-dir", str(site.data_dir), "--json").stdout)
    assert as_json["ok"] is False
    assert as_json["error_index"] == 6
    assert as_json["bad_record"]["decision_id"] == "d4"


def test_row_that_is_no_longer_json_fails(site: Site) -> None:
    site.sql("UPDATE audit_records SET payload = '{broken' WHERE seq = 2")
    result = run("verify", "--data-dir", str(site.data_dir), "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error_index"] == 2


def test_truncated_trail_fails(site: Site) -> None:
    site.sql("DELETE FROM audit_records WHERE seq >= 10")
    result = run("verify", "--data-dir", str(site.data_dir))
    assert result.exit_code == 1
    assert "truncated" in result.stderr


def test_deleted_checkpoints_pass_with_a_warning(site: Site) -> None:
    site.sql("DELETE FROM audit_checkpoints")
    result = run("verify", "--data-dir", str(site.data_dir))
    assert result.exit_code == 0
    assert "no signed checkpoint yet" in result.stdout


def test_forged_checkpoint_fails(site: Site) -> None:
    site.sql("UPDATE audit_checkpoints SET tree_size = tree_size + 1")
    assert run("verify", "--data-dir", str(site.data_dir)).exit_code == 1


def test_verify_with_only_the_public_key(site: Site, tmp_path: Path) -> None:
    public = tmp_path / "checkpoint.pub"
    public.write_text(site.signer.public_key_pem())
    store = f"sqlite:///{site.db}"
    result = run("verify", "--store", store, "--public-key", str(public))
    assert result.exit_code == 0, result.stderr


def test_verify_with_another_key_fails(site: Site, tmp_path: Path) -> None:
    other = generate_key_file(tmp_path / "other.pem")
    public = tmp_path / "other.pub"
    public.write_text(other.public_key_pem())
    result = run("verify", "--data-dir", str(site.data_dir), "--public-key", str(public))
    assert result.exit_code == 1
    assert "signature" in result.stderr


def test_verify_without_any_key_is_a_usage_problem(site: Site) -> None:
    (site.data_dir / "checkpoint-key.pem").unlink()
    result = run("verify", "--data-dir", str(site.data_dir))
    assert result.exit_code == 3
    assert "--public-key" in result.stderr

    unsafe = run("verify", "--data-dir", str(site.data_dir), "--unsafe-skip-signatures")
    assert unsafe.exit_code == 0
    assert "signatures NOT checked" in unsafe.stdout


def test_missing_store_is_not_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("verify", "--data-dir", str(tmp_path / "nowhere"), "--unsafe-skip-signatures")
    assert result.exit_code == 3
    assert "no Lictor store" in result.stderr
    assert not (tmp_path / "nowhere" / "lictor.db").exists()


def test_prove_then_verify_proof_round_trip(site: Site, tmp_path: Path) -> None:
    proved = run("prove", "d7", "--data-dir", str(site.data_dir))
    assert proved.exit_code == 0, proved.stderr
    proof = json.loads(proved.stdout)
    assert proof["decision_id"] == "d7"
    assert proof["tree_size"] == DECISIONS + 4
    proof_file = tmp_path / "proof.json"
    proof_file.write_text(proved.stdout)

    checked = run("verify-proof", str(proof_file), "--data-dir", str(site.data_dir))
    assert checked.exit_code == 0, checked.stderr
    assert "ok decision d7" in checked.stdout

    public = tmp_path / "checkpoint.pub"
    public.write_text(site.signer.public_key_pem())
    from_stdin = run("verify-proof", "-", "--public-key", str(public), stdin=proved.stdout)
    assert from_stdin.exit_code == 0, from_stdin.stderr


def test_prove_writes_to_a_file(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    assert run("prove", "d0", "--data-dir", str(site.data_dir), "--out", str(out)).exit_code == 0
    assert json.loads(out.read_text())["leaf_index"] == 0


def test_tampered_proof_fails(site: Site) -> None:
    proof = json.loads(run("prove", "d3", "--data-dir", str(site.data_dir)).stdout)
    proof["record"]["payload"]["outcome"] = "deny"  # d3 was allowed
    result = run("verify-proof", "-", "--data-dir", str(site.data_dir), stdin=json.dumps(proof))
    assert result.exit_code == 1
    assert "altered" in result.stderr


def test_proof_that_is_not_json_is_invalid_input(site: Site) -> None:
    result = run("verify-proof", "-", "--data-dir", str(site.data_dir), stdin="{nope")
    assert result.exit_code == 3


def test_prove_unknown_decision(site: Site) -> None:
    result = run("prove", "nope", "--data-dir", str(site.data_dir))
    assert result.exit_code == 3
    assert "not found" in result.stderr


def test_ocsf_export_validates_against_the_schema(site: Site) -> None:
    result = run("export", "--format", "ocsf", "--data-dir", str(site.data_dir))
    assert result.exit_code == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(events) == DECISIONS + 4
    for event in events:
        errors = [e.message for e in ocsf_validator().iter_errors(event)]
        assert not errors, errors
    assert {e["disposition_id"] for e in events if "disposition_id" in e} == {1, 2, 14}
    assert f"exported {DECISIONS + 4} OCSF events" in result.stderr


def test_jsonl_export_with_filters_to_a_file(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "planner.jsonl"
    result = run(
        "export",
        "--agent",
        "planner",
        "--since",
        "2026-11-25T14:03:00Z",
        "--until",
        "2026-11-25T14:09:00Z",
        "--out",
        str(out),
        "--data-dir",
        str(site.data_dir),
    )
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["payload"]["decision_id"] for r in records] == ["d3", "d5", "d7"]
    assert all(set(r) == {"seq", "prev_hash", "payload", "record_hash"} for r in records)


def test_export_rejects_a_bad_time(site: Site) -> None:
    result = run("export", "--since", "yesterday", "--data-dir", str(site.data_dir))
    assert result.exit_code == 3
    assert "--since" in result.stderr


def test_checkpoint_signs_new_records_once(site: Site) -> None:
    store = open_store(f"sqlite:///{site.db}")
    try:
        store.audit.append_batch([decision_payload(100), decision_payload(101)])
    finally:
        store.close()

    signed = run("checkpoint", "--data-dir", str(site.data_dir))
    assert signed.exit_code == 0, signed.stderr
    assert json.loads(signed.stdout)["tree_size"] == DECISIONS + 6

    again = run("checkpoint", "--data-dir", str(site.data_dir))
    assert again.exit_code == 0
    assert "nothing to sign" in again.stdout
    report = json.loads(run("verify", "--data-dir", str(site.data_dir), "--json").stdout)
    assert report["latest_checkpoint"]["tree_size"] == DECISIONS + 6


def test_checkpoint_refuses_a_tampered_trail(site: Site) -> None:
    site.sql("UPDATE audit_records SET payload = replace(payload, 'send_email', 'wire_money')")
    result = run("checkpoint", "--data-dir", str(site.data_dir))
    assert result.exit_code == 1


def test_checkpoint_needs_the_private_key(site: Site) -> None:
    (site.data_dir / "checkpoint-key.pem").unlink()
    result = run("checkpoint", "--data-dir", str(site.data_dir))
    assert result.exit_code == 3
    assert "checkpoint-key.pem" in result.stderr
