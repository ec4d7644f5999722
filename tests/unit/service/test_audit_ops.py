"""Tests for verifying a stored trail, signing checkpoints and inclusion proofs."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lictor.core.audit import (
    Checkpoint,
    SignatureCheck,
    issue_checkpoint,
    seal_many,
    verify_chain,
)
from lictor.errors import AuditIntegrityError, NotFound
from lictor.identity.keys import CheckpointSigner, verifier_from_public_pem
from lictor.service.audit_ops import (
    inclusion_proof_for,
    proof_to_json,
    sign_checkpoint,
    verify_proof,
    verify_trail,
)
from lictor.service.memory import MemoryAuditStore

ISSUED_AT = "2026-11-25T14:03:22.418Z"


def entry(i: int, kind: str = "decision") -> dict[str, Any]:
    return {
        "v": 1,
        "kind": kind,
        "decision_id": f"d{i}",
        "at": f"2026-11-25T14:{i // 60 % 60:02d}:{i % 60:02d}.000Z",
        "agent_id": "mail-assistant",
        "tool": "send_email",
        "outcome": "allow",
    }


def make_signer() -> tuple[CheckpointSigner, SignatureCheck]:
    signer = CheckpointSigner(Ed25519PrivateKey.generate())
    return signer, verifier_from_public_pem(signer.public_key_pem())


def trail(sizes: list[int], signer: CheckpointSigner) -> MemoryAuditStore:
    """A trail with a checkpoint signed after reaching each of ``sizes`` records."""
    store = MemoryAuditStore()
    written = 0
    for size in sizes:
        store.append_batch([entry(i) for i in range(written, size)])
        written = size
        summary = verify_chain(store.records())
        store.add_checkpoint(issue_checkpoint(summary, issued_at=ISSUED_AT, signer=signer))
    return store


def tamper(store: MemoryAuditStore, index: int, **changes: Any) -> None:
    """Overwrite a stored record in place, as an attacker with database access would."""
    records = store._records  # the reference store keeps them in a list
    record = records[index]
    records[index] = dataclasses.replace(record, payload={**record.payload, **changes})


def test_empty_trail_verifies() -> None:
    report = verify_trail(MemoryAuditStore(), None)
    assert report.ok
    assert report.size == 0
    assert report.checkpoints_total == 0
    assert report.error is None


def test_intact_trail_verifies_every_checkpoint() -> None:
    signer, check = make_signer()
    store = trail([3, 7, 7, 12], signer)
    store.append_batch([entry(i) for i in range(12, 15)])  # records after the last checkpoint

    report = verify_trail(store, check)

    assert report.ok, report.error
    assert report.size == 15
    assert report.checkpoints_total == 4
    assert report.checkpoints_checked == 4
    assert report.signatures_verified
    assert report.head_hash == store.head().record_hash  # type: ignore[union-attr]  # not empty
    assert report.latest_checkpoint is not None
    assert report.latest_checkpoint["tree_size"] == 12
    assert report.to_json()["ok"] is True


def test_checkpoints_out_of_size_order_still_verify() -> None:
    signer, check = make_signer()
    store = trail([2, 5], signer)
    first, second = store.checkpoints()
    store._checkpoints[:] = [second, first]
    assert verify_trail(store, check).checkpoints_checked == 2


def test_edited_record_is_named_by_its_index() -> None:
    signer, check = make_signer()
    store = trail([6], signer)
    tamper(store, 3, outcome="deny")

    report = verify_trail(store, check)

    assert not report.ok
    assert report.error_index == 3
    assert report.size == 3
    assert report.bad_record == {"seq": 3, "kind": "decision", "decision_id": "d3"}
    assert report.checkpoints_checked == 0


def test_truncated_trail_fails_against_the_checkpoint() -> None:
    signer, check = make_signer()
    store = trail([5], signer)
    del store._records[3:]

    report = verify_trail(store, check)

    assert not report.ok
    assert report.error_index == 3
    assert report.bad_record is None  # nothing stored there: it is missing
    assert "truncated" in (report.error or "")


def test_resealed_history_fails_on_the_root() -> None:
    signer, check = make_signer()
    store = trail([4], signer)
    forged = [entry(i) for i in range(4)]
    forged[1]["outcome"] = "deny"
    store._records[:] = seal_many(None, forged)

    report = verify_trail(store, check)

    assert not report.ok
    assert report.error_index is None
    assert report.size == 4


def test_checkpoint_signed_by_another_key_fails_before_any_record() -> None:
    signer, _ = make_signer()
    _, other_check = make_signer()
    store = trail([2], signer)

    report = verify_trail(store, other_check)

    assert not report.ok
    assert report.error_index is None
    assert report.size == 0
    assert "checkpoint for size 2" in (report.error or "")


def test_without_a_key_roots_are_compared_but_signatures_are_not() -> None:
    signer, _ = make_signer()
    store = trail([3], signer)
    report = verify_trail(store, None)
    assert report.ok
    assert not report.signatures_verified
    assert report.checkpoints_checked == 1

    del store._records[2:]
    assert verify_trail(store, None).error_index == 2


def test_sign_checkpoint_covers_the_trail_once() -> None:
    signer, check = make_signer()
    store = MemoryAuditStore()
    assert sign_checkpoint(store, signer, issued_at=ISSUED_AT, verify_signature=check) is None
    store.append_batch([entry(i) for i in range(5)])

    checkpoint = sign_checkpoint(store, signer, issued_at=ISSUED_AT, verify_signature=check)

    assert checkpoint is not None
    assert checkpoint.tree_size == 5
    assert store.checkpoints() == [checkpoint]
    assert sign_checkpoint(store, signer, issued_at=ISSUED_AT, verify_signature=check) is None
    assert verify_trail(store, check).checkpoints_checked == 1


def test_sign_checkpoint_refuses_a_tampered_trail() -> None:
    signer, check = make_signer()
    store = MemoryAuditStore()
    store.append_batch([entry(i) for i in range(3)])
    tamper(store, 1, agent_id="someone-else")

    with pytest.raises(AuditIntegrityError):
        sign_checkpoint(store, signer, issued_at=ISSUED_AT, verify_signature=check)
    assert store.checkpoints() == []


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13])
def test_every_record_has_a_proof_that_verifies(size: int) -> None:
    signer, check = make_signer()
    store = trail([size], signer)
    for i in range(size):
        proof = inclusion_proof_for(store, f"d{i}")
        assert proof["leaf_index"] == i
        assert proof["tree_size"] == size
        verify_proof(json.loads(proof_to_json(proof)), check)


def test_proof_against_an_older_checkpoint() -> None:
    signer, check = make_signer()
    store = trail([3, 9], signer)
    older = store.checkpoints()[0]
    proof = inclusion_proof_for(store, "d1", older)
    assert proof["tree_size"] == 3
    verify_proof(proof, check)


def test_proof_for_unknown_or_uncovered_decision_is_not_found() -> None:
    signer, _ = make_signer()
    store = trail([2], signer)
    store.append_batch([entry(2)])
    with pytest.raises(NotFound):
        inclusion_proof_for(store, "nope")
    with pytest.raises(NotFound):
        inclusion_proof_for(store, "d2")  # newer than the newest checkpoint
    with pytest.raises(NotFound):
        inclusion_proof_for(MemoryAuditStore(), "d0")


def test_proof_is_not_built_over_a_tampered_trail() -> None:
    signer, _ = make_signer()
    store = trail([4], signer)
    tamper(store, 0, tool="wire_money")
    with pytest.raises(AuditIntegrityError) as info:
        inclusion_proof_for(store, "d2")
    assert info.value.index == 0


def test_proof_is_not_built_against_a_checkpoint_of_another_history() -> None:
    signer, _ = make_signer()
    store = trail([4], signer)
    stale = dataclasses.replace(store.checkpoints()[0], root_hash="ab" * 32)
    with pytest.raises(AuditIntegrityError):
        inclusion_proof_for(store, "d2", stale)


def proof_of(index: int = 2, size: int = 6) -> tuple[dict[str, Any], SignatureCheck]:
    signer, check = make_signer()
    store = trail([size], signer)
    return json.loads(proof_to_json(inclusion_proof_for(store, f"d{index}"))), check


def mutate_record_payload(proof: dict[str, Any]) -> None:
    proof["record"]["payload"]["outcome"] = "deny"


def mutate_path(proof: dict[str, Any]) -> None:
    proof["audit_path"][0] = "00" * 32


def mutate_index(proof: dict[str, Any]) -> None:
    proof["leaf_index"] = 3


def mutate_decision_id(proof: dict[str, Any]) -> None:
    proof["decision_id"] = "d3"


def mutate_root(proof: dict[str, Any]) -> None:
    proof["root_hash"] = "00" * 32


def mutate_checkpoint(proof: dict[str, Any]) -> None:
    proof["checkpoint"]["tree_size"] = 7


def mutate_padded_path(proof: dict[str, Any]) -> None:
    proof["audit_path"].append("00" * 32)


def mutate_leaf_hash(proof: dict[str, Any]) -> None:
    proof["leaf_hash"] = "00" * 32


@pytest.mark.parametrize(
    "mutate",
    [
        mutate_record_payload,
        mutate_path,
        mutate_index,
        mutate_decision_id,
        mutate_root,
        mutate_checkpoint,
        mutate_padded_path,
        mutate_leaf_hash,
    ],
)
def test_altered_proof_fails(mutate: Any) -> None:
    proof, check = proof_of()
    verify_proof(proof, check)
    mutate(proof)
    with pytest.raises(AuditIntegrityError):
        verify_proof(proof, check)


def test_proof_fails_with_another_key() -> None:
    proof, _ = proof_of()
    _, other = make_signer()
    with pytest.raises(AuditIntegrityError, match="signature"):
        verify_proof(proof, other)


@pytest.mark.parametrize(
    "change",
    [
        {"type": "something-else"},
        {"version": 2},
        {"leaf_index": -1},
        {"leaf_index": True},
        {"tree_size": "6"},
        {"audit_path": "00"},
        {"audit_path": ["zz"]},
        {"audit_path": [12]},
        {"checkpoint": {}},
        {"record": []},
        {"extra": 1},
    ],
)
def test_malformed_proof_is_an_integrity_error(change: dict[str, Any]) -> None:
    proof, check = proof_of()
    proof.update(change)
    with pytest.raises(AuditIntegrityError):
        verify_proof(proof, check)


def test_non_mapping_proof_is_an_integrity_error() -> None:
    _, check = make_signer()
    with pytest.raises(AuditIntegrityError):
        verify_proof([], check)


def test_proof_carries_the_signed_checkpoint() -> None:
    proof, _ = proof_of()
    checkpoint = Checkpoint.from_dict(proof["checkpoint"])
    assert checkpoint.root_hash == proof["root_hash"]
    assert checkpoint.tree_size == proof["tree_size"]
