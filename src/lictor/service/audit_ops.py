"""Operations on a stored audit trail: verify it, sign a checkpoint, prove an inclusion.

Everything here works on any :class:`~lictor.service.ports.AuditStore` (memory, SQLite,
PostgreSQL) and streams ``store.records()``; the hashing rules live in
:mod:`lictor.core.audit` and are only put in order here. Nothing here decides what
counts as tampering: the core does, and this module reports where.

Memory: :func:`verify_trail` holds O(log n) hashes (the Merkle frontier).
:func:`inclusion_proof_for` holds the 32-byte leaf hash of every record up to the
checkpoint's size, O(n): 32 MB for a million records. That is the price of building an
RFC 9162 audit path without a stored tree; a store that keeps interior nodes could
answer in O(log n), and this function is the place to use it when one does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from lictor.core.audit.chain import (
    ChainSummary,
    ChainVerifier,
    Checkpoint,
    CheckpointSigning,
    SealedRecord,
    SignatureCheck,
    issue_checkpoint,
    record_hash_of,
    verify_against_checkpoint,
    verify_checkpoint_signature,
)
from lictor.core.audit.merkle import HASH_SIZE, inclusion_proof, verify_inclusion
from lictor.errors import AuditIntegrityError, NotFound
from lictor.service.events import Event, EventBus, EventKind, Severity
from lictor.service.ports import AuditStore

__all__ = [
    "PROOF_TYPE",
    "PROOF_VERSION",
    "VerifyReport",
    "inclusion_proof_for",
    "proof_to_json",
    "sign_checkpoint",
    "verify_proof",
    "verify_trail",
]

PROOF_TYPE: Final = "lictor-inclusion-proof"
"""The ``type`` of a proof document, so a verifier never mistakes another JSON for one."""

PROOF_VERSION: Final = 1
"""Bumped when the proof document changes shape; verifiers refuse versions they lack."""

_PROOF_FIELDS: Final = frozenset(
    {
        "type",
        "version",
        "decision_id",
        "leaf_index",
        "tree_size",
        "leaf_hash",
        "audit_path",
        "root_hash",
        "checkpoint",
        "record",
    }
)


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What :func:`verify_trail` found; ``ok`` is False as soon as anything failed.

    Attributes:
        ok: True only if every record chained and every checkpoint matched.
        size: Records verified (up to, not including, the first bad one).
        head_hash: Hex hash of the last verified record.
        root_hash: Hex RFC 9162 root over the verified records.
        checkpoints_total: Checkpoints stored.
        checkpoints_checked: Checkpoints whose signature and root were confirmed.
        signatures_verified: False when run without a key: roots and sizes were compared,
            but a forger who also rewrote the checkpoints would not be caught.
        latest_checkpoint: The newest stored checkpoint, as a mapping, if any.
        error: What failed, for people; None when ``ok``.
        error_index: seq of the first bad (or first missing) record; None when no single
            record is to blame (a forged checkpoint, a re-sealed history).
        bad_record: ``seq``, ``kind`` and ``decision_id`` of the record at
            ``error_index`` as stored, when there is one, so a person can find it.
        summary: The chain summary of the verified prefix (for signing a checkpoint).
    """

    ok: bool
    size: int
    head_hash: str
    root_hash: str
    checkpoints_total: int
    checkpoints_checked: int
    signatures_verified: bool
    latest_checkpoint: Mapping[str, Any] | None = None
    error: str | None = None
    error_index: int | None = None
    bad_record: Mapping[str, Any] | None = None
    summary: ChainSummary | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form (``lictor audit verify --json``, ``GET /v1/audit/verify``)."""
        return {
            "ok": self.ok,
            "size": self.size,
            "head_hash": self.head_hash,
            "root_hash": self.root_hash,
            "checkpoints_total": self.checkpoints_total,
            "checkpoints_checked": self.checkpoints_checked,
            "signatures_verified": self.signatures_verified,
            "latest_checkpoint": (
                dict(self.latest_checkpoint) if self.latest_checkpoint is not None else None
            ),
            "error": self.error,
            "error_index": self.error_index,
            "bad_record": dict(self.bad_record) if self.bad_record is not None else None,
        }


def _accept_any_signature(message: bytes, signature: bytes) -> bool:
    """Stand-in signature check for runs without a key; the report says so."""
    return True


def verify_trail(store: AuditStore, verify_signature: SignatureCheck | None) -> VerifyReport:
    """Verify the whole stored trail and every stored checkpoint, streaming.

    Checks, in order: each checkpoint's signature (before reading any record, so a
    forged checkpoint is named as such); then every record's seq, prev hash and record
    hash; and at each checkpoint's size, that the root and head match what was signed.
    Checkpoints larger than the trail mean records were cut off the end.

    Args:
        store: The trail.
        verify_signature: ``check(message, signature)`` for the checkpoint key. None
            compares checkpoints without trusting their signatures, which
            ``signatures_verified=False`` in the report makes plain.

    Returns:
        The report; it never raises for a bad trail, so a caller can show everything
        that was established before the first failure.

    Raises:
        StoreError: The store could not be read.
    """
    # Checkpoints first, records second: while writers keep appending, every checkpoint
    # read now covers at most the records read afterwards, so a live trail is never
    # mistaken for a truncated one.
    checkpoints = store.checkpoints()
    latest = checkpoints[-1].to_dict() if checkpoints else None
    check = verify_signature if verify_signature is not None else _accept_any_signature
    verifier = ChainVerifier()

    def report(error: AuditIntegrityError | None, checked: int) -> VerifyReport:
        summary = verifier.summary()
        index = error.index if error is not None else None
        return VerifyReport(
            ok=error is None,
            size=summary.size,
            head_hash=summary.head_hash,
            root_hash=summary.merkle_root,
            checkpoints_total=len(checkpoints),
            checkpoints_checked=checked,
            signatures_verified=verify_signature is not None,
            latest_checkpoint=latest,
            error=str(error) if error is not None else None,
            error_index=index,
            bad_record=_describe_record(store, index) if index is not None else None,
            summary=summary,
        )

    for checkpoint in checkpoints:
        try:
            verify_checkpoint_signature(checkpoint, check)
        except AuditIntegrityError as exc:
            return report(
                AuditIntegrityError(
                    f"checkpoint for size {checkpoint.tree_size} issued at "
                    f"{checkpoint.issued_at}: {exc}",
                    index=None,
                ),
                0,
            )
    # Checkpoints are stored oldest first, but nothing forces their sizes to ascend
    # (two writers, a restored backup), so compare them in size order.
    pending = sorted(checkpoints, key=lambda c: c.tree_size)
    checked = 0
    try:
        checked += _compare_due(verifier, pending, check)
        canonical = getattr(store, "canonical_records", None)
        if canonical is not None:
            # Stores that keep the hashed bytes verifiably skip JSON parsing: one hash each.
            for seq, prev_hash, payload_json, record_hash in canonical():
                verifier.add_canonical(seq, prev_hash, payload_json, record_hash)
                if pending and pending[0].tree_size == verifier.size:
                    checked += _compare_due(verifier, pending, check)
        else:
            for record in store.records():
                verifier.add(record)
                if pending and pending[0].tree_size == verifier.size:
                    checked += _compare_due(verifier, pending, check)
        summary = verifier.summary()
        for checkpoint in pending:
            # The trail ended before this checkpoint's size: truncated.
            verify_against_checkpoint(summary, checkpoint, check)
    except AuditIntegrityError as exc:
        return report(exc, checked)
    return report(None, checked)


def _compare_due(verifier: ChainVerifier, pending: list[Checkpoint], check: SignatureCheck) -> int:
    """Compare the checkpoints of exactly the verified size; drop them from ``pending``."""
    compared = 0
    summary = verifier.summary()
    while pending and pending[0].tree_size == summary.size:
        verify_against_checkpoint(summary, pending.pop(0), check)
        compared += 1
    return compared


def _describe_record(store: AuditStore, index: int) -> Mapping[str, Any] | None:
    """Return what the store holds at ``index``, to name the bad record for a person."""
    try:
        for record in store.records(index, index + 1):
            return {
                "seq": record.seq,
                "kind": record.payload.get("kind"),
                "decision_id": record.payload.get("decision_id"),
            }
    except AuditIntegrityError:
        return {"seq": index, "kind": None, "decision_id": None}  # not even JSON any more
    return None  # the first missing record of a truncated trail


def sign_checkpoint(
    store: AuditStore,
    signer: CheckpointSigning,
    *,
    issued_at: str,
    verify_signature: SignatureCheck | None,
) -> Checkpoint | None:
    """Verify the trail against its checkpoints, then sign and store a new checkpoint.

    We refuse to sign a trail that does not verify: a fresh signature over a rewritten
    history would lend it the authority of the key.

    Args:
        store: The trail.
        signer: The checkpoint key.
        issued_at: RFC 3339 time with offset, from the caller's clock.
        verify_signature: The check for existing checkpoints (normally the signer's
            own public key); None skips their signatures, as in :func:`verify_trail`.

    Returns:
        The new checkpoint, or None if the newest stored one already covers the trail.

    Raises:
        AuditIntegrityError: The trail does not verify; nothing is signed.
        StoreError: The store could not be read or written.
    """
    report = verify_trail(store, verify_signature)
    if not report.ok or report.summary is None:
        raise AuditIntegrityError(report.error or "the trail does not verify", index=None)
    existing = store.checkpoints()
    if report.size == 0 or any(c.tree_size == report.size for c in existing):
        return None
    checkpoint = issue_checkpoint(report.summary, issued_at=issued_at, signer=signer)
    store.add_checkpoint(checkpoint)
    return checkpoint


def inclusion_proof_for(
    store: AuditStore, decision_id: str, checkpoint: Checkpoint | None = None
) -> dict[str, Any]:
    """Build an RFC 9162 inclusion proof of a decision's record under a signed checkpoint.

    The proof is self-contained: it carries the record itself, its audit path and the
    checkpoint, so :func:`verify_proof` needs only the public key. Records up to the
    checkpoint's size are re-verified on the way (a proof over a broken chain would
    prove nothing); their leaf hashes are held in memory, 32 bytes each.

    Args:
        store: The trail.
        decision_id: The decision whose record to prove.
        checkpoint: The checkpoint to prove against; default the newest stored one.

    Returns:
        A JSON-ready mapping: ``type``, ``version``, ``decision_id``, ``leaf_index``,
        ``tree_size``, ``leaf_hash``, ``audit_path`` (hex, leaf to root),
        ``root_hash``, ``checkpoint`` and ``record``.

    Raises:
        NotFound: No decision with this id, or no checkpoint covers its record yet
            (sign one with ``lictor audit checkpoint``).
        AuditIntegrityError: The stored records do not chain, or do not match the
            checkpoint.
        StoreError: The store could not be read.
    """
    record = store.find_decision(decision_id)
    if record is None:
        raise NotFound("decision", decision_id)
    if checkpoint is None:
        stored = store.checkpoints()
        checkpoint = max(stored, key=lambda c: c.tree_size) if stored else None
    if checkpoint is None or checkpoint.tree_size <= record.seq:
        raise NotFound("signed checkpoint covering decision", decision_id)
    verifier = ChainVerifier()
    leaves: list[bytes] = []
    for stored_record in store.records(0, checkpoint.tree_size):
        verifier.add(stored_record)  # raises at the first bad record
        leaves.append(bytes.fromhex(stored_record.record_hash))
    summary = verifier.summary()
    # Signature not checked here (the prover may lack the key); verify_proof does.
    verify_against_checkpoint(summary, checkpoint, _accept_any_signature)
    path = inclusion_proof(record.seq, leaves)
    return {
        "type": PROOF_TYPE,
        "version": PROOF_VERSION,
        "decision_id": decision_id,
        "leaf_index": record.seq,
        "tree_size": checkpoint.tree_size,
        "leaf_hash": record.record_hash,
        "audit_path": [node.hex() for node in path],
        "root_hash": checkpoint.root_hash,
        "checkpoint": checkpoint.to_dict(),
        "record": record.to_dict(),
    }


def verify_proof(proof: object, verify_signature: SignatureCheck) -> None:
    """Check an inclusion proof from :func:`inclusion_proof_for`, trusting only the key.

    Checks that the checkpoint is signed by the key, that the record's contents hash to
    the leaf, that the leaf is the named decision at ``leaf_index``, and that the audit
    path leads from that leaf to the signed root (RFC 9162 §2.1.3.2).

    Args:
        proof: The proof document (parsed JSON, untrusted: any value is refused
            cleanly unless it is a well-formed proof).
        verify_signature: ``check(message, signature)`` for the checkpoint key.

    Raises:
        AuditIntegrityError: The proof is malformed or does not verify. ``index`` is
            the leaf index when the proof names one.
    """
    if not isinstance(proof, Mapping) or set(proof) != _PROOF_FIELDS:
        raise AuditIntegrityError(
            f"a proof is an object with fields {sorted(_PROOF_FIELDS)}", index=None
        )
    if proof["type"] != PROOF_TYPE or proof["version"] != PROOF_VERSION:
        raise AuditIntegrityError(
            f"not a {PROOF_TYPE} version {PROOF_VERSION} document "
            f"(type {proof['type']!r}, version {proof['version']!r})",
            index=None,
        )
    index = _int_field(proof, "leaf_index")
    tree_size = _int_field(proof, "tree_size")
    checkpoint = Checkpoint.from_dict(proof["checkpoint"])
    verify_checkpoint_signature(checkpoint, verify_signature)
    record = SealedRecord.from_dict(proof["record"])

    def fail(message: str) -> AuditIntegrityError:
        return AuditIntegrityError(f"inclusion proof for leaf {index}: {message}", index=index)

    if tree_size != checkpoint.tree_size or proof["root_hash"] != checkpoint.root_hash:
        raise fail("tree size or root differs from the signed checkpoint's")
    if record.seq != index:
        raise fail(f"the record has seq {record.seq}, not the proven index")
    payload = record.payload
    if payload.get("kind") != "decision" or payload.get("decision_id") != proof["decision_id"]:
        raise fail(f"the record is not decision {proof['decision_id']!r}")
    try:
        recomputed = record_hash_of(record.seq, record.prev_hash, payload)
    except (TypeError, ValueError) as exc:
        raise fail(f"the record is not canonical JSON ({exc})") from exc
    if recomputed != record.record_hash or recomputed != proof["leaf_hash"]:
        raise fail("the record's contents do not hash to the proven leaf: it was altered")
    path = _hashes(proof["audit_path"], index)
    leaf = bytes.fromhex(recomputed)
    root = bytes.fromhex(checkpoint.root_hash)
    if not verify_inclusion(leaf, index, tree_size, path, root):
        raise fail("the audit path does not lead to the signed root")


def _int_field(proof: Mapping[Any, Any], name: str) -> int:
    value = proof[name]
    if type(value) is not int or value < 0:  # not bool, which is an int subclass
        raise AuditIntegrityError(f"proof {name!r} must be a non-negative integer", index=None)
    return value


def _hashes(value: object, index: int) -> list[bytes]:
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise AuditIntegrityError("proof 'audit_path' must be a list", index=index)
    hashes: list[bytes] = []
    for item in value:
        try:
            node = bytes.fromhex(item) if isinstance(item, str) else b""
        except ValueError:
            node = b""
        if len(node) != HASH_SIZE:
            raise AuditIntegrityError(
                f"proof 'audit_path' entries must be {HASH_SIZE * 2} hex digits", index=index
            )
        hashes.append(node)
    return hashes


def proof_to_json(proof: Mapping[str, Any]) -> str:
    """Return a proof as indented JSON text, the form ``lictor audit prove`` prints."""
    return json.dumps(proof, indent=2, sort_keys=True, ensure_ascii=False)


def announce_verification_failure(events: EventBus, report: VerifyReport, at: datetime) -> None:
    """Tell the security team a verification failed: the trail may have been tampered with."""
    events.emit(
        Event(
            kind=EventKind.AUDIT_VERIFICATION_FAILED,
            at=at,
            severity=Severity.CRITICAL,
            summary=f"audit trail verification failed: {report.error}",
            details={"error": report.error, "first_bad_seq": report.error_index},
        )
    )
