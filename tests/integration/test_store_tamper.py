"""Tampering with the stored audit trail behind Lictor's back is caught by verification.

Each test writes a trail through the store, signs a checkpoint over it, then edits the
tables with raw SQL the way an attacker with database access would, and checks what
:func:`verify_chain` and :func:`verify_with_checkpoint` say about ``store.audit.records()``:
the first bad record's ``index``, or a failed checkpoint for truncation and re-sealing.
Run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from contract.backends import backend_named, drop_session_schemas
from sqlalchemy import text

from lictor.core.audit.chain import (
    Checkpoint,
    issue_checkpoint,
    record_hash_of,
    verify_chain,
    verify_with_checkpoint,
)
from lictor.errors import AuditIntegrityError
from lictor.identity.keys import CheckpointSigner, generate_key_file, verifier_from_public_pem
from lictor.service.ports import AuditQuery
from lictor.store import Store

pytestmark = pytest.mark.integration

COUNT = 10


@pytest.fixture(scope="module", autouse=True)
def _postgres_cleanup() -> Iterator[None]:
    yield
    drop_session_schemas()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with backend_named(request.param, tmp_path) as backend:
        yield backend.open_store()


@pytest.fixture
def signer(tmp_path: Path) -> CheckpointSigner:
    return generate_key_file(tmp_path / "checkpoint-key.pem")


@pytest.fixture
def check(signer: CheckpointSigner) -> Callable[[bytes, bytes], bool]:
    return verifier_from_public_pem(signer.public_key_pem())


@pytest.fixture
def checkpoint(store: Store, signer: CheckpointSigner) -> Checkpoint:
    """Write COUNT records in three batches and sign a checkpoint over all of them."""
    entries = [
        {"kind": "decision", "decision_id": f"d{i}", "tool": f"tool-{i}", "agent_id": "a"}
        for i in range(COUNT)
    ]
    for batch in (entries[:3], entries[3:8], entries[8:]):
        store.audit.append_batch(batch)
    summary = verify_chain(store.audit.records())
    signed = issue_checkpoint(summary, issued_at="2026-03-01T12:00:00.000Z", signer=signer)
    store.audit.add_checkpoint(signed)
    return signed


def sql(store: Store, *statements: str, **params: Any) -> None:
    """Run raw SQL in one transaction, bypassing the store."""
    with store.engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement), params)


def first_bad(store: Store, checkpoint: Checkpoint, check: Callable[[bytes, bytes], bool]) -> Any:
    """Return the ``index`` from verify_with_checkpoint's error (failing if none)."""
    with pytest.raises(AuditIntegrityError) as caught:
        verify_with_checkpoint(store.audit.records(), checkpoint, check)
    return caught.value.index


def test_the_untouched_trail_verifies(store: Store, checkpoint: Checkpoint, check: Any) -> None:
    (stored,) = store.audit.checkpoints()
    assert stored == checkpoint
    assert verify_with_checkpoint(store.audit.records(), stored, check).size == COUNT


def test_an_edited_payload_fails_at_that_record(
    store: Store, checkpoint: Checkpoint, check: Any
) -> None:
    sql(
        store,
        "UPDATE audit_records SET payload = replace(payload, :old, :new) WHERE seq = 3",
        old='"tool":"tool-3"',
        new='"tool":"wire_money"',
    )
    assert store.audit.query(AuditQuery(decision_id="d3")).records[0].payload["tool"] == (
        "wire_money"
    )

    with pytest.raises(AuditIntegrityError) as caught:
        verify_chain(store.audit.records())

    assert caught.value.index == 3
    assert first_bad(store, checkpoint, check) == 3


def test_a_payload_that_is_no_longer_json_fails_at_that_record(
    store: Store, checkpoint: Checkpoint, check: Any
) -> None:
    sql(store, "UPDATE audit_records SET payload = '{\"kind\": ' WHERE seq = 5")

    assert first_bad(store, checkpoint, check) == 5


def test_an_edited_extracted_column_does_not_touch_the_record(
    store: Store, checkpoint: Checkpoint, check: Any
) -> None:
    # The extracted columns are an index, not the record: verification recomputes every
    # hash from ``payload`` and never reads them, so the trail still verifies. What the
    # edit can do is steer queries: the store re-checks results against the payload, so
    # the record is not returned for the forged value, but it no longer turns up for its
    # real value either. Hiding a record from queries this way is not tampering with the
    # trail; an export or a full verification still shows it.
    sql(store, "UPDATE audit_records SET tool = 'forged', agent_id = 'forged' WHERE seq = 3")

    assert verify_with_checkpoint(store.audit.records(), checkpoint, check).size == COUNT
    assert store.audit.query(AuditQuery(tool="forged")).records == ()
    assert store.audit.query(AuditQuery(agent_id="forged")).records == ()
    assert store.audit.query(AuditQuery(tool="tool-3")).records == ()
    assert [r.payload["tool"] for r in store.audit.records(3, 4)] == ["tool-3"]


def test_a_deleted_record_fails_where_it_was(
    store: Store, checkpoint: Checkpoint, check: Any
) -> None:
    sql(store, "DELETE FROM audit_records WHERE seq = 4")

    with pytest.raises(AuditIntegrityError) as caught:
        verify_chain(store.audit.records())

    assert caught.value.index == 4
    assert first_bad(store, checkpoint, check) == 4


def test_two_swapped_records_fail_at_the_first(
    store: Store, checkpoint: Checkpoint, check: Any
) -> None:
    sql(
        store,
        "UPDATE audit_records SET seq = -1 WHERE seq = 3",
        "UPDATE audit_records SET seq = 3 WHERE seq = 6",
        "UPDATE audit_records SET seq = 6 WHERE seq = -1",
    )

    with pytest.raises(AuditIntegrityError) as caught:
        verify_chain(store.audit.records())

    assert caught.value.index == 3
    assert first_bad(store, checkpoint, check) == 3


def test_a_truncated_tail_fails_only_against_the_checkpoint(
    store: Store, checkpoint: Checkpoint, check: Any
) -> None:
    sql(store, "DELETE FROM audit_records WHERE seq >= 7")

    # What is left is a perfectly good, shorter chain ...
    assert verify_chain(store.audit.records()).size == 7
    # ... that the signed checkpoint says is missing records 7 to 9.
    assert first_bad(store, checkpoint, check) == 7


def test_a_resealed_trail_fails_only_against_the_checkpoint(
    store: Store, checkpoint: Checkpoint, check: Any
) -> None:
    sql(
        store,
        "UPDATE audit_records SET payload = replace(payload, :old, :new) WHERE seq = 3",
        old='"tool":"tool-3"',
        new='"tool":"wire_money"',
    )
    reseal_from(store, 3)

    # Every hash was recomputed, so the chain is consistent again ...
    assert verify_chain(store.audit.records()).size == COUNT
    # ... but its root is not the one that was signed; the root cannot say where.
    assert first_bad(store, checkpoint, check) is None


def reseal_from(store: Store, start: int) -> None:
    """Recompute prev_hash and record_hash from ``start`` on, as a thorough attacker would."""
    with store.engine.begin() as connection:
        rows = connection.execute(
            text("SELECT seq, prev_hash, payload FROM audit_records ORDER BY seq")
        ).all()
        prev = rows[start].prev_hash
        for seq, _, payload in rows[start:]:
            record_hash = record_hash_of(seq, prev, json.loads(payload))
            connection.execute(
                text(
                    "UPDATE audit_records SET prev_hash = :prev, record_hash = :hash "
                    "WHERE seq = :seq"
                ),
                {"prev": prev, "hash": record_hash, "seq": seq},
            )
            prev = record_hash
